//! Windowed tables in a running app: an async `on_window_close` that sends to a topic, and
//! listing a windowed table's items from the worker that owns its partitions. On the mock
//! cluster (or real Kafka with KAFKA_BOOTSTRAP).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{broker, wait_until, WAIT};
use futures::StreamExt;
use streams::{Error, Timestamp, Window};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_window_reaches_the_topic_its_async_callback_sends_to() {
    let broker = broker().await;
    let id = &testkit::unique_name("close-cb");
    // Declared windowed first, then the agent that updates it.
    let (app, input, windows, processed) = alerting_app(&broker, id, &[]);
    app.start().await.unwrap();
    for (key, at) in [("a", 1), ("b", 2), ("a", 5)] {
        input
            .send_at(key.to_owned(), 1, Timestamp::from_millis(at))
            .await
            .unwrap();
    }
    wait_until("three events processed", || {
        processed.load(Ordering::SeqCst) == 3
    })
    .await;
    assert!(
        broker.records(&format!("{id}-alerts"), 0).await.is_empty(),
        "no window closed yet"
    );
    // The worker lists what it holds.
    let mut items = windows.items().unwrap();
    items.sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
    let w =
        |from: i64, to: i64| Window::new(Timestamp::from_millis(from), Timestamp::from_millis(to));
    assert_eq!(
        items,
        vec![("a".to_owned(), w(0, 10), 2), ("b".to_owned(), w(0, 10), 1),]
    );
    assert_eq!(windows.keys().unwrap().len(), 2);
    // 12 closes 0..10 (a and b), 25 closes 10..20 (a).
    for (key, at) in [("a", 12), ("c", 25)] {
        input
            .send_at(key.to_owned(), 1, Timestamp::from_millis(at))
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut got: Vec<(String, String)> = broker
            .records(&format!("{id}-alerts"), 0)
            .await
            .into_iter()
            .map(|(k, v)| {
                let text =
                    |b: Option<bytes::Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
                (text(k), text(v))
            })
            .collect();
        got.sort();
        let want = [("a@0", "2"), ("a@10", "1"), ("b@0", "1")];
        if got.iter().map(|(k, v)| (k.as_str(), v.as_str())).eq(want) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the callback's records did not arrive: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.shutdown().await.unwrap();
}

/// A windowed app whose close callback sends "key@start" = count to `alerts`, failing for the
/// keys in `refuse`; counts processed events.
fn alerting_app(
    broker: &common::Broker,
    id: &str,
    refuse: &'static [&'static str],
) -> (
    streams::App,
    streams::Topic<String, i64>,
    streams::WindowedTable<String, i64>,
    Arc<AtomicUsize>,
) {
    let app = broker
        .app(id)
        .broker_commit_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let input = app.topic::<String, i64>(&format!("{id}-clicks"));
    let to = app.topic::<String, i64>(&format!("{id}-alerts"));
    let windows = app
        .table::<String, i64>("clicks")
        .unwrap()
        .with_default(i64::default)
        .tumbling(Duration::from_millis(10))
        .on_window_close_async(move |key, window, count| {
            let to = to.clone();
            async move {
                if refuse.contains(&key.as_str()) {
                    return Err(Error::validation(
                        "key",
                        format!("cannot alert about {key}"),
                    ));
                }
                to.send(format!("{key}@{}", window.start().as_millis()), count)
                    .await
            }
        })
        .build()
        .unwrap();
    let processed = Arc::new(AtomicUsize::new(0));
    let (table, count) = (windows.clone(), processed.clone());
    app.agent_builder("count", &input)
        .table(&windows)
        .run(move |mut events| {
            let (table, count) = (table.clone(), count.clone());
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    table.at(&e)?.update_async(&key, |n| *n += 1).await?;
                    count.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), Error>(())
            }
        });
    (app, input, windows, processed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_close_callback_stops_the_worker_uncommitted_and_a_restart_runs_it_again() {
    let broker = common::on_mock(common::mock().await);
    let id = &testkit::unique_name("close-fails");
    let (app, input, _, processed) = alerting_app(&broker, id, &["b"]);
    app.start().await.unwrap();
    for (key, at) in [("a", 1), ("b", 2)] {
        input
            .send_at(key.to_owned(), 1, Timestamp::from_millis(at))
            .await
            .unwrap();
    }
    wait_until("two events processed", || {
        processed.load(Ordering::SeqCst) == 2
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while broker
        .mock()
        .committed_offset(id, &format!("{id}-clicks"), 0)
        != Some(2)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "offset 2 not committed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Closes a's and b's first windows: b's callback fails, the worker stops.
    input
        .send_at("a".to_owned(), 1, Timestamp::from_millis(12))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(WAIT, async {
        app.stopped().await;
        app.shutdown().await
    })
    .await
    .expect("the worker stops by itself");
    let err = outcome.expect_err("the callback's failure");
    assert!(
        matches!(
            err,
            Error::AgentFailed { .. } | Error::CloseCallbackFailed { .. }
        ),
        "{err}"
    );
    assert_eq!(
        broker
            .mock()
            .committed_offset(id, &format!("{id}-clicks"), 0),
        Some(2),
        "nothing past the closing event committed"
    );

    // A fixed worker recovers the table from its changelog, where the close is not: the
    // closing event is processed again and both callbacks run.
    let (app, ..) = alerting_app(&broker, id, &[]);
    app.start().await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut got: Vec<String> = broker
            .records(&format!("{id}-alerts"), 0)
            .await
            .into_iter()
            .map(|(k, _)| String::from_utf8(k.unwrap().to_vec()).unwrap())
            .collect();
        got.sort();
        got.dedup(); // a's alert may have been sent before b's callback failed
        if got == ["a@0", "b@0"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closes did not run again: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.shutdown().await.unwrap();
}
