//! Emit-final windows: a closed window's final result reaches its topic before the table's
//! changelog holds the close, so neither a crash between the close and the send nor a failed
//! send loses it. On the mock cluster.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{mock, on_mock, stopped_by_itself, wait_until, Broker, WAIT};
use futures::StreamExt;
use streams::{App, Error, Timestamp, Topic, WindowResult};
use testkit::{ApiKey, Intercept, KafkaCode};

fn app(id: &str, broker: &Broker, commit_every: Duration) -> App {
    broker
        .app(id)
        .broker_commit_interval(commit_every)
        .build()
        .unwrap()
}

/// The topics of app `id` (real Kafka keeps topics between runs).
fn clicks(id: &str) -> String {
    format!("{id}-clicks")
}

fn finals_topic(id: &str) -> String {
    format!("{id}-finals")
}

/// Counts per key in 10 ms tumbling windows, final results to `finals`; counts events.
fn counting(app: &App) -> (Topic<String, i64>, Arc<AtomicUsize>) {
    let input = app.topic::<String, i64>(&clicks(app.id()));
    let finals = app.topic::<String, WindowResult<i64>>(&finals_topic(app.id()));
    let table = app
        .table::<String, i64>("clicks_per_window")
        .unwrap()
        .with_default(i64::default);
    let windows = table
        .tumbling(Duration::from_millis(10))
        .emit_final_to(&finals)
        .build()
        .unwrap();
    let agent = app.agent_builder("count", &input).table(&windows);
    let processed = Arc::new(AtomicUsize::new(0));
    let count = processed.clone();
    agent.run(move |mut events| {
        let (windows, count) = (windows.clone(), count.clone());
        async move {
            while let Some(e) = events.next().await {
                let key = e.key.clone().unwrap_or_default();
                windows.at(&e)?.update(&key, |n| *n += 1)?;
                count.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<(), Error>(())
        }
    });
    (input, processed)
}

/// `a` twice and `b` once in window 0..10, then an event at 25 that closes it (and 10..20,
/// where `a` has one).
async fn send_and_close(input: &Topic<String, i64>) {
    for (key, at) in [("a", 1), ("b", 2), ("a", 5), ("a", 12), ("c", 25)] {
        input
            .send_at(key.to_owned(), 1, Timestamp::from_millis(at))
            .await
            .unwrap();
    }
}

const EXPECTED: [(&str, i64, i64); 3] = [("a", 0, 2), ("b", 0, 1), ("a", 10, 1)];

/// The final results app `id` sent, as (key, window start, value), deduplicated.
async fn finals(broker: &Broker, id: &str) -> BTreeSet<(String, i64, i64)> {
    broker
        .records(&finals_topic(id), 0)
        .await
        .into_iter()
        .map(|(k, v)| {
            let key = String::from_utf8(k.unwrap().to_vec()).unwrap();
            let result: WindowResult<i64> = serde_json::from_slice(&v.unwrap()).unwrap();
            (key, result.window.start().as_millis(), result.value)
        })
        .collect()
}

fn expected() -> BTreeSet<(String, i64, i64)> {
    EXPECTED
        .iter()
        .map(|(k, s, v)| (k.to_string(), *s, *v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_crashes_between_the_close_and_the_send_sends_the_result_after_restart() {
    // On the mock only for now: on real Kafka this passed 16 times in 17 and once did not see
    // the results within 30 s (not diagnosed yet).
    let broker = on_mock(mock().await);
    let id = &testkit::unique_name("emit-crash");
    // No commit (and so no flush) before the crash.
    let first = app(id, &broker, Duration::from_secs(600));
    let (input, processed) = counting(&first);
    first.start().await.unwrap();
    send_and_close(&input).await;
    wait_until("every event processed", || {
        processed.load(Ordering::SeqCst) == 5
    })
    .await;
    first.abort().await; // the windows closed in memory only
    assert!(finals(&broker, id).await.is_empty());
    let second = app(id, &broker, Duration::from_millis(50));
    let (_, processed) = counting(&second);
    second.start().await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while processed.load(Ordering::SeqCst) < 5 || finals(&broker, id).await != expected() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replayed events did not close the windows again: {:?}",
            finals(&broker, id).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.shutdown().await.unwrap();
    assert_eq!(broker.committed(id, &clicks(id)).await, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_result_that_cannot_be_sent_keeps_the_close_out_of_the_changelog() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let id = "emit-refused";
    let first = app(id, &broker, Duration::from_millis(50));
    let (input, _) = counting(&first);
    first.start().await.unwrap();
    mock.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::InvalidRecord)
            .for_partition(finals_topic(id), 0)
            .always(),
    );
    send_and_close(&input).await;
    let err = stopped_by_itself(&first)
        .await
        .expect_err("the results were refused");
    assert!(err.to_string().contains(&finals_topic(id)), "{err}");
    // The close never reached the changelog, nor did the events' offsets get committed.
    let changelog = format!("{id}-clicks_per_window-changelog");
    assert_eq!(mock.high_watermark(&changelog, 0).unwrap_or(0), 0);
    assert_eq!(mock.committed_offset(id, &clicks(id), 0), None);
    // Once the topic takes records, a restarted worker sends every result.
    mock.clear_intercepts();
    let second = app(id, &broker, Duration::from_millis(50));
    let _ = counting(&second);
    second.start().await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while finals(&broker, id).await != expected() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every result sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.shutdown().await.unwrap();
}
