//! `close_idle_after` in a running app on the mock, in real time with small durations: an
//! idle partition's windows close once its stream time, following the clock from its last
//! event, passes their end; a table without it waits for events; a failing close callback on
//! an idle close commits nothing past it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{wait_until, WAIT};
use futures::StreamExt;
use streams::{Clock, Error, Timestamp, Window};

const IDLE: Duration = Duration::from_millis(500);

type Closes = Arc<Mutex<Vec<(String, Window, i64, Timestamp)>>>;

/// Records each close with the app clock's time when it ran.
fn recorder(clock: &Clock, closes: &Closes) -> impl Fn(&String, Window, &i64) + Send + Sync {
    let (clock, closes) = (clock.clone(), closes.clone());
    move |key, window, count| {
        closes
            .lock()
            .unwrap()
            .push((key.clone(), window, *count, clock.now()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_partitions_windows_close_after_the_idle_interval_and_not_before() {
    let broker = common::on_mock(common::mock().await);
    let id = &testkit::unique_name("idle-close");
    let app = broker
        .app(id)
        .topic_partitions(1)
        .broker_commit_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    // A virtual clock in real time: it reads the wall time through tokio's clock, the one the
    // idle task measures idle time on.
    app.set_clock(Clock::starting_at(Timestamp::now())).unwrap();
    let clock = app.clock();
    let input = app.topic::<String, i64>(&format!("{id}-clicks"));
    let (idle_closes, plain_closes): (Closes, Closes) = Default::default();
    let idle = app
        .table::<String, i64>("idle")
        .unwrap()
        .with_default(i64::default)
        .tumbling(Duration::from_secs(1))
        .close_idle_after(IDLE)
        .on_window_close(recorder(&clock, &idle_closes))
        .build()
        .unwrap();
    let plain = app
        .table::<String, i64>("plain")
        .unwrap()
        .with_default(i64::default)
        .tumbling(Duration::from_secs(1))
        .on_window_close(recorder(&clock, &plain_closes))
        .build()
        .unwrap();
    let processed_at = Arc::new(Mutex::new(Vec::new()));
    let (tables, seen, at) = (
        (idle.clone(), plain.clone()),
        processed_at.clone(),
        clock.clone(),
    );
    app.agent_builder("count", &input)
        .table(&idle)
        .table(&plain)
        .run(move |mut events| {
            let (tables, seen, at) = (tables.clone(), seen.clone(), at.clone());
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    // Before the update: the idle interval counts from a later instant.
                    let now = at.now();
                    tables.0.at(&e)?.update(&key, |n| *n += 1)?;
                    tables.1.at(&e)?.update(&key, |n| *n += 1)?;
                    seen.lock().unwrap().push(now);
                }
                Ok::<(), Error>(())
            }
        });
    app.start().await.unwrap();
    let stamped = clock.now();
    input.send_at("a".to_owned(), 1, stamped).await.unwrap();
    wait_until("the window closes", || {
        !idle_closes.lock().unwrap().is_empty()
    })
    .await;

    let processed = processed_at.lock().unwrap()[0];
    let (key, window, count, closed_at) = idle_closes.lock().unwrap()[0].clone();
    assert_eq!((key.as_str(), count), ("a", 1));
    assert!(
        window.start() <= stamped && stamped < window.end(),
        "{window}"
    );
    let waited = closed_at.as_millis() - processed.as_millis();
    assert!(
        waited >= IDLE.as_millis() as i64,
        "closed {waited} ms after the event: before the idle interval"
    );
    assert!(
        stamped.as_millis() + waited >= window.end().as_millis(),
        "closed {waited} ms after the event stamped {stamped}: before stream time reached {}",
        window.end()
    );
    // The table without close_idle_after keeps its window open: observed for a second more.
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < until {
        assert!(
            plain_closes.lock().unwrap().is_empty(),
            "closed without events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(idle_closes.lock().unwrap().len(), 1, "closed once");
    app.commit().await.unwrap();
    app.shutdown().await.unwrap();
}

/// An app whose idle table's async close callback is `on_close`; counts processed events.
fn failing_app(
    broker: &common::Broker,
    id: &str,
    fail: bool,
    closes: &Closes,
    processed: &Arc<AtomicUsize>,
) -> (streams::App, streams::Topic<String, i64>) {
    let app = broker
        .app(id)
        .topic_partitions(1)
        .broker_commit_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    app.set_clock(Clock::starting_at(Timestamp::now())).unwrap();
    let input = app.topic::<String, i64>(&format!("{id}-clicks"));
    let (closes, counted, clock) = (closes.clone(), processed.clone(), app.clock());
    let table = app
        .table::<String, i64>("idle")
        .unwrap()
        .with_default(i64::default)
        .tumbling(Duration::from_secs(1))
        .close_idle_after(IDLE)
        .on_window_close_async(move |key, window, count| {
            let (closes, counted, now) = (closes.clone(), counted.clone(), clock.now());
            async move {
                closes
                    .lock()
                    .unwrap()
                    .push((key.clone(), window, count, now));
                if !fail {
                    return Ok(());
                }
                // Fails once a later event was processed, whose offset is then not committed.
                let deadline = tokio::time::Instant::now() + WAIT;
                while counted.load(Ordering::SeqCst) < 2 && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(Error::validation(
                    "key",
                    format!("cannot alert about {key}"),
                ))
            }
        })
        .build()
        .unwrap();
    let counted = processed.clone();
    app.agent_builder("count", &input)
        .table(&table)
        .run(move |mut events| {
            let (table, counted) = (table.clone(), counted.clone());
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    table.at(&e)?.update_async(&key, |n| *n += 1).await?;
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), Error>(())
            }
        });
    (app, input)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_close_callback_on_an_idle_close_commits_nothing_past_it() {
    let broker = common::on_mock(common::mock().await);
    let id = &testkit::unique_name("idle-fails");
    let topic = format!("{id}-clicks");
    let (closes, processed): (Closes, Arc<AtomicUsize>) = Default::default();
    let (app, input) = failing_app(&broker, id, true, &closes, &processed);
    app.start().await.unwrap();
    let stamped = app.clock().now();
    input.send_at("b".to_owned(), 1, stamped).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while broker.mock().committed_offset(id, &topic, 0) != Some(1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "offset 1 not committed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The idle close runs its callback; meanwhile a late event is processed.
    wait_until("the idle close runs", || !closes.lock().unwrap().is_empty()).await;
    input.send_at("b".to_owned(), 1, stamped).await.unwrap();
    let err = common::stopped_by_itself(&app)
        .await
        .expect_err("the callback's failure");
    // The idle task reports the callback's error, unless the commit that found the close
    // unfinished stopped the worker first (as for closes by events).
    let text = err.to_string();
    match &err {
        Error::IdleCloseFailed { partition: 0, .. } => {
            assert!(text.contains("cannot alert about b"), "{text}")
        }
        _ => assert!(
            text.contains("on_window_close callback failed in partition 0"),
            "{text}"
        ),
    }
    assert_eq!(processed.load(Ordering::SeqCst), 2);
    assert_eq!(
        broker.mock().committed_offset(id, &topic, 0),
        Some(1),
        "nothing past the failed close committed"
    );

    // A fixed worker recovers the window, still open in the changelog, replays the second
    // event into it, and closes it once idle.
    let (fixed_closes, processed): (Closes, Arc<AtomicUsize>) = Default::default();
    let (app, _) = failing_app(&broker, id, false, &fixed_closes, &processed);
    app.start().await.unwrap();
    wait_until("the idle close runs again", || {
        !fixed_closes.lock().unwrap().is_empty()
    })
    .await;
    let (key, window, count, _) = fixed_closes.lock().unwrap()[0].clone();
    assert_eq!((key.as_str(), count), ("b", 2));
    assert!(
        window.start() <= stamped && stamped < window.end(),
        "{window}"
    );
    app.shutdown().await.unwrap();
}
