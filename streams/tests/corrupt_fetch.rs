//! A source batch that stays corrupt when fetched: the worker stops with an error naming
//! topic, partition and offset, and commits nothing past it; with
//! `consumer_skip_corrupt_batches(true)` it skips the batch and goes on. On the mock cluster,
//! whose `corrupt_records` intercept damages fetched batches.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{mock, mock_app};
use futures::StreamExt;
use streams::{App, AppBuilder, Error};
use testkit::{ApiKey, Intercept, MockCluster};

fn builder(id: &str, mock: &MockCluster) -> AppBuilder {
    mock_app(id, mock).broker_commit_interval(Duration::from_millis(50))
}

/// An agent over `input` that records every number it sees.
fn recording_agent(app: &App) -> (streams::Topic<String, i64>, Arc<Mutex<Vec<i64>>>) {
    let input = app.topic::<String, i64>("input");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    app.agent(&input, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            s.lock().unwrap().push(*n);
        }
    });
    (input, seen)
}

/// Sends `range` one event at a time, each acknowledged before the next so that each is a
/// batch of its own; event n lands at offset n.
async fn send(app: &App, input: &streams::Topic<String, i64>, range: std::ops::Range<i64>) {
    for n in range {
        input.send("k".to_owned(), n).await.unwrap();
        app.flush().await.unwrap();
    }
}

/// Installs `intercept` for Fetch and waits until a fetch arrived after it, so that the
/// fetch that was waiting before (served clean) is over and every later one is matched.
async fn intercept_fetches(mock: &MockCluster, intercept: Intercept) {
    let fetches = || {
        mock.requests()
            .iter()
            .filter(|r| r.api_key == ApiKey::Fetch)
            .count()
    };
    let before = fetches();
    mock.intercept(ApiKey::Fetch, intercept);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fetches() <= before {
        assert!(Instant::now() < deadline, "the consumer stopped fetching");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_committed(mock: &MockCluster, group: &str, offset: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while mock.committed_offset(group, "input", 0) != Some(offset) {
        assert!(
            Instant::now() < deadline,
            "committed offset stays at {:?}, expected {offset}",
            mock.committed_offset(group, "input", 0)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_batch_that_stays_corrupt_stops_the_worker_without_committing_past_it() {
    let mock = mock().await;
    let app = builder("corrupt-stop", &mock).build().unwrap();
    let (input, seen) = recording_agent(&app);
    app.start().await.unwrap();
    send(&app, &input, 0..5).await;
    wait_committed(&mock, "corrupt-stop", 5).await;
    // From now on every fetch of input/0 that brings records brings a damaged first batch.
    intercept_fetches(
        &mock,
        Intercept::corrupt_records()
            .for_partition("input", 0)
            .always(),
    )
    .await;
    send(&app, &input, 5..10).await;
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        app.stopped().await;
        app.shutdown().await
    })
    .await
    .expect("the worker stops by itself");
    let err = outcome.expect_err("a corrupt batch");
    let text = err.to_string();
    let offset = match &err {
        Error::Group {
            source:
                kafka_client::Error::CorruptRecords {
                    topic,
                    partition,
                    offset,
                    ..
                },
            hint,
            ..
        } => {
            assert_eq!((topic.as_str(), *partition), ("input", 0), "{text}");
            assert!(hint.contains("consumer_skip_corrupt_batches"), "{text}");
            *offset
        }
        other => panic!("{other}"),
    };
    assert_eq!(offset, 5, "{text}");
    assert!(
        text.contains("input/0") && text.contains("offset 5"),
        "{text}"
    );
    // Events before the batch were processed and nothing at or after it was.
    assert_eq!(*seen.lock().unwrap(), (0..5).collect::<Vec<_>>());
    assert_eq!(mock.committed_offset("corrupt-stop", "input", 0), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_consumer_skip_corrupt_batches_the_worker_skips_the_batch_and_goes_on() {
    let mock = mock().await;
    let app = builder("corrupt-skip", &mock)
        .consumer_skip_corrupt_batches(true)
        .build()
        .unwrap();
    let (input, seen) = recording_agent(&app);
    app.start().await.unwrap();
    send(&app, &input, 0..5).await;
    wait_committed(&mock, "corrupt-skip", 5).await;
    // The batch at offset 5 comes back damaged from every fetch: refetched once, then skipped.
    intercept_fetches(
        &mock,
        Intercept::corrupt_records_at(5)
            .for_partition("input", 0)
            .always(),
    )
    .await;
    send(&app, &input, 5..10).await;
    wait_committed(&mock, "corrupt-skip", 10).await;
    assert!(!app.is_stopping());
    app.shutdown().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![0, 1, 2, 3, 4, 6, 7, 8, 9]);
}
