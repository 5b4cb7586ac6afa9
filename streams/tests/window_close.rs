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
    let app = broker
        .app(id)
        .broker_commit_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let input = app.topic::<String, i64>(&format!("{id}-clicks"));
    let alerts = app.topic::<String, i64>(&format!("{id}-alerts"));
    let to = alerts.clone();
    // Declared windowed first, then the agent that updates it.
    let windows = app
        .table::<String, i64>("clicks")
        .unwrap()
        .with_default(i64::default)
        .tumbling(Duration::from_millis(10))
        .on_window_close_async(move |key, window, count| {
            let to = to.clone();
            async move {
                let key = format!("{key}@{}", window.start().as_millis());
                to.send(key, count).await
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
