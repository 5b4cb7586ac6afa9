//! Closing the windows of idle partitions (`close_idle_after`), driven as the runtime's idle
//! task drives it, under tokio's paused time with a virtual app clock.

use super::close_commit::{assert_flush_refused, held};
use super::*;
use crate::clock::Clock;
use crate::error::Error;
use crate::window::LatePolicy;

type Stamped = Arc<Mutex<Vec<(String, Window, i64, i64)>>>;

const IDLE: Duration = Duration::from_millis(500);

/// A tumbling 1 s table closing idle partitions after [`IDLE`], recording each close with the
/// clock's time when it ran.
fn stamped(clock: &Clock) -> (WindowedTable<String, i64>, Stamped) {
    let closes: Stamped = Arc::default();
    let (sink, clock) = (closes.clone(), clock.clone());
    let table = counts(1)
        .tumbling(ms(1000))
        .on_late(LatePolicy::Fail)
        .close_idle_after(IDLE)
        .on_window_close(move |k, w, v| {
            sink.lock()
                .unwrap()
                .push((k.clone(), w, *v, clock.now().as_millis()));
        })
        .build()
        .unwrap();
    (table, closes)
}

fn window(from: i64, to: i64) -> Window {
    Window::new(Timestamp::from_millis(from), Timestamp::from_millis(to))
}

async fn check(table: &WindowedTable<String, i64>, clock: &Clock) -> usize {
    table.close_idle(0, IDLE, clock.now()).await.unwrap().closed
}

#[tokio::test(start_paused = true)]
async fn an_idle_partition_closes_its_windows_once_its_clock_passes_their_end() {
    // The event is processed when the wall clock reads its timestamp.
    let clock = Clock::starting_at(Timestamp::from_millis(100_200));
    let (table, closes) = stamped(&clock);
    table.at_ms(100_200).update("a", |n| *n += 1).unwrap();
    let first = table.close_idle(0, IDLE, clock.now()).await.unwrap();
    assert_eq!(first.closed, 0);
    // Idle for 500 ms is not enough: stream time 100_200 + 800 reaches the window's end.
    assert_eq!(
        first.next,
        tokio::time::Instant::now() + Duration::from_millis(800)
    );
    tokio::time::sleep(ms(500)).await;
    assert_eq!(
        check(&table, &clock).await,
        0,
        "idle, but stream time 100_700"
    );
    tokio::time::sleep(ms(299)).await;
    assert_eq!(check(&table, &clock).await, 0, "stream time 100_999");
    assert!(closes.lock().unwrap().is_empty());
    tokio::time::sleep(ms(1)).await;
    assert_eq!(check(&table, &clock).await, 1);
    assert_eq!(
        *closes.lock().unwrap(),
        vec![("a".to_owned(), window(100_000, 101_000), 1, 101_000)]
    );
    assert_eq!(table.stream_ms(0).unwrap(), Some(101_000));
    // The window is closed: an event for it is late, and does not move stream time back.
    let err = table.at_ms(100_500).update("a", |n| *n += 1).unwrap_err();
    assert!(matches!(err, Error::LateEvent { .. }), "{err}");
    assert_eq!(table.stream_ms(0).unwrap(), Some(101_000));
    assert_eq!(check(&table, &clock).await, 0, "closed once");
}

#[tokio::test(start_paused = true)]
async fn idle_time_never_passes_the_wall_clock_and_an_event_restarts_it() {
    let clock = Clock::starting_at(Timestamp::from_millis(100_000));
    let (table, closes) = stamped(&clock);
    // An event stamped ahead of the wall clock.
    table.at_ms(100_900).update("a", |n| *n += 1).unwrap();
    tokio::time::sleep(ms(400)).await;
    // An older event: stream time stays at 100_900, the idle interval starts again.
    table.at_ms(100_100).update("b", |n| *n += 1).unwrap();
    tokio::time::sleep(ms(499)).await;
    assert_eq!(check(&table, &clock).await, 0, "idle for 499 ms only");
    tokio::time::sleep(ms(1)).await;
    assert_eq!(check(&table, &clock).await, 0, "wall time 100_900");
    tokio::time::sleep(ms(99)).await;
    assert_eq!(check(&table, &clock).await, 0, "wall time 100_999");
    tokio::time::sleep(ms(1)).await;
    assert_eq!(check(&table, &clock).await, 2);
    let at: Vec<_> = closes
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.0.clone(), c.3))
        .collect();
    assert_eq!(at, vec![("a".into(), 101_000), ("b".into(), 101_000)]);
    assert_eq!(table.stream_ms(0).unwrap(), Some(101_000));
}

#[tokio::test(start_paused = true)]
async fn a_partition_without_events_closes_nothing() {
    let clock = Clock::starting_at(Timestamp::from_millis(100_000));
    let (table, closes) = stamped(&clock);
    tokio::time::sleep(ms(10_000)).await;
    assert_eq!(check(&table, &clock).await, 0);
    assert_eq!(table.stream_ms(0).unwrap(), None);
    assert!(closes.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_callback_on_an_idle_close_fails_its_partitions_flush() {
    let clock = Clock::starting_at(Timestamp::from_millis(100_000));
    let table = held()
        .tumbling(ms(1000))
        .close_idle_after(IDLE)
        .on_window_close_async(|key: String, _, _| async move {
            Err(Error::validation(
                "key",
                format!("cannot alert about {key}"),
            ))
        })
        .build()
        .unwrap();
    table
        .at_ms(100_000)
        .update_async("a", |n| *n += 1)
        .await
        .unwrap();
    tokio::time::sleep(ms(1000)).await;
    let err = table.close_idle(0, IDLE, clock.now()).await.unwrap_err();
    assert!(err.to_string().contains("cannot alert about a"), "{err}");
    assert_flush_refused(&table).await;
}

#[test]
fn close_idle_after_refuses_zero_and_global_tables() {
    let err = counts(1)
        .tumbling(ms(1000))
        .close_idle_after(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("0: give how long"), "{err}");
    let global = Table::<String, i64>::detached(TableSpec::new("test", "g").global()).unwrap();
    let err = global
        .tumbling(ms(1000))
        .close_idle_after(IDLE)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("global"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn after_a_reassignment_the_idle_interval_counts_from_the_activation() {
    let clock = Clock::starting_at(Timestamp::from_millis(100_200));
    let closes: Stamped = Arc::default();
    let (sink, at) = (closes.clone(), clock.clone());
    let table = held()
        .tumbling(ms(1000))
        .close_idle_after(IDLE)
        .on_window_close(move |k, w, v| {
            sink.lock()
                .unwrap()
                .push((k.clone(), w, *v, at.now().as_millis()));
        })
        .build()
        .unwrap();
    table.at_ms(100_200).update("a", |n| *n += 1).unwrap();
    // The partition's writes reach the store; then it goes away and comes back 5 s later,
    // recovered with stream time 100_200 (as a restart finds it).
    let core = table.table.core().clone();
    let flush = core.take_settled(0, ms(1000)).await.unwrap().unwrap();
    core.complete_flush(flush, Some(0)).unwrap();
    core.revoke(0);
    tokio::time::sleep(ms(5000)).await;
    core.assign(0).unwrap();
    core.set_active(0).unwrap();
    assert_eq!(table.stream_ms(0).unwrap(), Some(100_200));
    assert_eq!(
        check(&table, &clock).await,
        0,
        "idle since the activation only"
    );
    tokio::time::sleep(ms(799)).await;
    assert_eq!(check(&table, &clock).await, 0);
    tokio::time::sleep(ms(1)).await;
    assert_eq!(check(&table, &clock).await, 1);
    assert_eq!(
        *closes.lock().unwrap(),
        vec![("a".to_owned(), window(100_000, 101_000), 1, 106_000)]
    );
}
