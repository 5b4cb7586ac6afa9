//! Time in the harness: an app driven by tokio's interval and the app's clock (an agent that
//! closes a windowed table's idle windows by the clock), and one with a leader crontab, run
//! on virtual time and do the same things at the same virtual times on every run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use streams::testing::Harness;
use streams::{App, Error, Timestamp, Topic};

/// 2030-01-01T00:00:00Z: a whole minute.
const T0: i64 = 1_893_456_000_000;
const MINUTE: i64 = 60_000;

/// A closed window: (key, start, end, total, when it closed), times relative to T0.
type Closed = (String, i64, i64, i64, i64);

struct Clicks {
    app: App,
    clicks: Topic<String, i64>,
    /// What the app's `on_window_close` callback saw.
    closed: Arc<Mutex<Vec<Closed>>>,
}

impl AsRef<App> for Clicks {
    fn as_ref(&self) -> &App {
        &self.app
    }
}

/// Clicks per key per minute; every 10 s (tokio's interval) the agent moves the windows to
/// the app's clock, so a minute with no later click still closes; the close callback notes
/// each window with the clock's reading.
fn clicks_app() -> streams::Result<Clicks> {
    let app = App::builder("clicks").topic_partitions(1).build()?;
    let clicks = app.topic::<String, i64>("clicks");
    let closed = Arc::new(Mutex::new(Vec::new()));
    let (seen, clock) = (closed.clone(), app.clock());
    let windows = app
        .table::<String, i64>("per_minute")?
        .with_default(i64::default)
        .tumbling(Duration::from_secs(60))
        .on_window_close(move |key: &String, w, total: &i64| {
            let at = |t: Timestamp| t.as_millis() - T0;
            seen.lock().unwrap().push((
                key.clone(),
                at(w.start()),
                at(w.end()),
                *total,
                at(clock.now()),
            ));
        })
        .build()?;
    let clock = app.clock();
    app.agent_builder("count", &clicks)
        .table(&windows)
        .run(move |mut events| {
            let (windows, clock) = (windows.clone(), clock.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tokio::select! {
                        biased;
                        event = events.next() => match event {
                            Some(e) => {
                                let key = e.key.clone().unwrap_or_default();
                                windows.at(&e)?.update(&key, |n| *n += 1)?;
                            }
                            None => return Ok::<(), Error>(()),
                        },
                        _ = tick.tick() => match windows.advance(0, clock.now()) {
                            Ok(_) | Err(Error::PartitionNotActive { .. }) => {}
                            Err(Error::NoSuchPartition { .. }) => {}
                            Err(e) => return Err(e),
                        },
                    }
                }
            }
        });
    Ok(Clicks {
        app,
        clicks,
        closed,
    })
}

/// Clicks every 25 s from T0 (`a` each time, `b` every other), then three idle minutes.
/// Returns the closed windows and the clock's reading when the app settled.
async fn run() -> (Vec<Closed>, Timestamp) {
    let h = Harness::builder()
        .start_at(Timestamp::from_millis(T0))
        .build(clicks_app)
        .await
        .unwrap();
    let clicks = h.worker(0).clicks.clone();
    for step in 0..5 {
        h.send(&clicks, "a".to_owned(), 1).await.unwrap();
        if step % 2 == 1 {
            h.send(&clicks, "b".to_owned(), 1).await.unwrap();
        }
        h.advance(Duration::from_secs(25)).await;
    }
    h.advance(Duration::from_secs(180)).await;
    h.settle().await.unwrap();
    let closed = h.worker(0).closed.lock().unwrap().clone();
    let now = h.now();
    h.shutdown().await.unwrap();
    (closed, now)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn windows_close_by_the_virtual_clock_the_same_way_on_every_run() {
    let (first, first_end) = run().await;
    let window = |key: &str, minute: i64, total: i64| {
        let start = minute * MINUTE;
        (key.to_owned(), start, start + MINUTE, total, start + MINUTE)
    };
    // Each minute closes at the first tick at its end (grace 0), by the clock: minute 1 has
    // no later click at all.
    let expected = vec![
        window("a", 0, 3),
        window("b", 0, 1),
        window("a", 1, 2),
        window("b", 1, 1),
    ];
    assert_eq!(first, expected);
    let (second, second_end) = run().await;
    assert_eq!(first, second);
    assert_eq!(first_end, second_end, "the runs took the same virtual time");
}

/// An app with a crontab on the leader: every quarter hour it sends the clock's reading.
fn quarterly() -> streams::Result<App> {
    let app = App::builder("quarterly").topic_partitions(2).build()?;
    let ticks = app.topic::<String, String>("ticks");
    let clock = app.clock();
    app.crontab("quarter", "*/15 * * * *")
        .on_leader()
        .run(move || {
            let (ticks, clock) = (ticks.clone(), clock.clone());
            async move {
                ticks
                    .send_at("tick".to_owned(), "tick".to_owned(), clock.now())
                    .await
            }
        })?;
    Ok(app)
}

/// Two workers, a virtual hour from T0: the minutes (after T0) the crontab fired at.
async fn quarters() -> Vec<i64> {
    let h = Harness::builder()
        .workers(2)
        .start_at(Timestamp::from_millis(T0 + 1))
        .build(quarterly)
        .await
        .unwrap();
    h.advance(Duration::from_secs(3600)).await;
    h.settle().await.unwrap();
    let ticks = h.app(0).topic::<String, String>("ticks");
    let mut at: Vec<i64> = h
        .sent(&ticks)
        .unwrap()
        .iter()
        .map(|e| (e.timestamp - T0) / MINUTE)
        .collect();
    at.sort();
    h.shutdown().await.unwrap();
    at
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_leader_crontab_fires_on_the_virtual_clock_once_per_schedule() {
    let first = quarters().await;
    assert_eq!(first, vec![15, 30, 45, 60], "one leader, on time");
    assert_eq!(first, quarters().await);
}
