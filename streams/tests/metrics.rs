//! `App::metrics_text`: the Prometheus exposition of a worker, parsed with a text-format
//! parser, moves with what the worker does (events, sends, commits, failures, lag, dead
//! letters, tables). On the mock cluster.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{mock, mock_app, wait_until};
use futures::StreamExt;
use prometheus_parse::{Scrape, Value};
use streams::{App, Error, OnDecodeError};
use testkit::{ApiKey, Intercept, KafkaCode};

/// The value of the sample `name` whose labels are exactly `labels` (`None` if absent).
fn sample(app: &App, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = app.metrics_text();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition");
    let want: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && s.labels.len() == want.len()
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(k) == Some(v.as_str()))
        })
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is not a single value: {other:?}"),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sends_latency_commits_and_lag_follow_the_work() {
    let mock = mock().await;
    let app = mock_app("metrics-flow", &mock).build().unwrap();
    let orders = app.topic::<String, i64>("orders");
    let doubled = app.topic::<String, i64>("doubled");
    let processed = Arc::new(AtomicUsize::new(0));
    let (out, count) = (doubled.clone(), processed.clone());
    app.agent_builder("double", &orders).run(move |mut events| {
        let (out, count) = (out.clone(), count.clone());
        async move {
            while let Some(e) = events.next().await {
                out.send(e.key.clone().unwrap_or_default(), e.value * 2)
                    .await?;
                count.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<(), Error>(())
        }
    });
    app.start().await.unwrap();
    let events_in = [("topic", "orders"), ("agent", "double")];
    // Resolved when the agent starts: shown at 0 before any event.
    assert_eq!(
        sample(&app, "streams_events_in_total", &events_in),
        Some(0.0)
    );
    let commits_before = sample(&app, "streams_commits_total", &[]).unwrap();
    for i in 0..5 {
        orders.send(format!("k{i}"), i).await.unwrap();
    }
    wait_until("five events processed", || {
        processed.load(Ordering::SeqCst) == 5
    })
    .await;
    // An event's latency is measured when its agent lets go of it, after the count above.
    wait_until("five latencies measured", || {
        sample(
            &app,
            "streams_processing_seconds_count",
            &[("agent", "double")],
        ) == Some(5.0)
    })
    .await;
    app.commit().await.unwrap();

    assert_eq!(
        sample(&app, "streams_events_in_total", &events_in),
        Some(5.0)
    );
    let sent = |topic| sample(&app, "streams_records_sent_total", &[("topic", topic)]);
    assert_eq!(
        sent("orders"),
        Some(5.0),
        "sent by the test through the app"
    );
    assert_eq!(sent("doubled"), Some(5.0), "sent by the agent");
    let commits = sample(&app, "streams_commits_total", &[]).unwrap();
    assert!(commits > commits_before, "{commits} > {commits_before}");
    assert!(sample(&app, "streams_commit_seconds_count", &[]).unwrap() >= commits);
    assert_eq!(
        sample(&app, "streams_commit_failures_total", &[]),
        Some(0.0)
    );
    assert!(sample(&app, "streams_rebalances_total", &[]).unwrap() >= 1.0);
    // Caught up: the high watermark of the last fetch is the position.
    let lag = [("topic", "orders"), ("partition", "0")];
    wait_until("no lag", || {
        sample(&app, "streams_consumer_lag", &lag) == Some(0.0)
    })
    .await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_commit_moves_the_failure_counter() {
    let mock = mock().await;
    let app = mock_app("metrics-commit-fails", &mock).build().unwrap();
    let numbers = app.topic::<String, i64>("numbers");
    let processed = Arc::new(AtomicUsize::new(0));
    let count = processed.clone();
    app.agent(&numbers, move |mut events| {
        let count = count.clone();
        async move {
            while events.next().await.is_some() {
                count.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    app.start().await.unwrap();
    numbers.send("a".to_owned(), 1).await.unwrap();
    wait_until("the event processed", || {
        processed.load(Ordering::SeqCst) == 1
    })
    .await;
    // The group is moving: this commit is refused, the worker runs on.
    mock.intercept(
        ApiKey::OffsetCommit,
        Intercept::error(KafkaCode::RebalanceInProgress),
    );
    let before = sample(&app, "streams_commit_failures_total", &[]).unwrap();
    app.commit().await.expect_err("the group is moving");
    assert_eq!(
        sample(&app, "streams_commit_failures_total", &[]),
        Some(before + 1.0)
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_record_is_counted() {
    let mock = mock().await;
    let app = mock_app("metrics-dead", &mock).build().unwrap();
    let amounts = app
        .topic::<String, i64>("amounts")
        .on_decode_error(OnDecodeError::DeadLetter("amounts-dead".into()));
    app.agent(&amounts, |mut events| async move {
        while events.next().await.is_some() {}
    });
    app.start().await.unwrap();
    mock.append("amounts", 0, &[(Some("k"), Some("not a number"))])
        .unwrap();
    mock.append("amounts", 0, &[(Some("k"), Some("7"))])
        .unwrap();
    wait_until("the bad record dead-lettered", || {
        sample(&app, "streams_dead_letters_total", &[("topic", "amounts")]) == Some(1.0)
    })
    .await;
    wait_until("both records delivered", || {
        sample(
            &app,
            "streams_events_in_total",
            &[("topic", "amounts"), ("agent", "amounts-agent")],
        ) == Some(2.0)
    })
    .await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tables_size_gauge_shows_its_keys_and_recovery_ends_at_zero() {
    let mock = mock().await;
    let app = mock_app("metrics-table", &mock).build().unwrap();
    let words = app.topic::<String, i64>("words");
    let counts = app
        .table::<String, i64>("word-counts")
        .unwrap()
        .with_default(i64::default);
    let processed = Arc::new(AtomicUsize::new(0));
    let (table, count) = (counts.clone(), processed.clone());
    app.agent_builder("count", &words)
        .table(&counts)
        .run(move |mut events| {
            let (table, count) = (table.clone(), count.clone());
            async move {
                while let Some(e) = events.next().await {
                    table.update(&e.key.clone().unwrap_or_default(), |n| *n += 1)?;
                    count.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), Error>(())
            }
        });
    app.start().await.unwrap();
    for word in ["a", "b", "a", "c"] {
        words.send(word.to_owned(), 1).await.unwrap();
    }
    wait_until("four words counted", || {
        processed.load(Ordering::SeqCst) == 4
    })
    .await;
    app.commit().await.unwrap();
    let partition = [("table", "word-counts"), ("partition", "0")];
    assert_eq!(sample(&app, "streams_table_keys", &partition), Some(3.0));
    assert_eq!(
        sample(&app, "streams_recovery_remaining_records", &partition),
        Some(0.0),
        "recovered"
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_produce_moves_the_retry_counter_and_delivers_once() {
    let mock = mock().await;
    let app = mock_app("metrics-retries", &mock).build().unwrap();
    let orders = app.topic::<String, i64>("orders");
    let processed = Arc::new(AtomicUsize::new(0));
    let count = processed.clone();
    app.agent(&orders, move |mut events| {
        let count = count.clone();
        async move {
            while events.next().await.is_some() {
                count.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    app.start().await.unwrap();
    assert_eq!(
        sample(&app, "streams_producer_retries_total", &[]),
        Some(0.0)
    );
    // The leader moved: the first Produce to orders is refused, the producer sends it again.
    mock.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::NotLeaderOrFollower)
            .for_partition("orders", 0)
            .times(1),
    );
    orders.send("k".to_owned(), 7).await.unwrap();
    wait_until("the event processed", || {
        processed.load(Ordering::SeqCst) == 1
    })
    .await;
    let retries = sample(&app, "streams_producer_retries_total", &[]).unwrap();
    assert!(retries >= 1.0, "retries: {retries}");
    assert_eq!(
        sample(&app, "streams_producer_errors_total", &[]),
        Some(0.0),
        "retried, not failed"
    );
    app.commit().await.unwrap();
    assert_eq!(mock.records("orders", 0).len(), 1, "delivered once");
    assert_eq!(processed.load(Ordering::SeqCst), 1);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_produce_in_a_transaction_is_counted_at_its_commit() {
    let mock = mock().await;
    let app = mock_app("metrics-txn-retries", &mock)
        .processing_guarantee("exactly_once")
        .broker_commit_interval(std::time::Duration::from_millis(100))
        .build()
        .unwrap();
    let orders = app.topic::<String, i64>("orders");
    let doubled = app.topic::<String, i64>("doubled");
    let out = doubled.clone();
    app.agent_builder("double", &orders).run(move |mut events| {
        let out = out.clone();
        async move {
            while let Some(e) = events.next().await {
                out.send(e.key.clone().unwrap_or_default(), e.value * 2)
                    .await?;
            }
            Ok::<(), Error>(())
        }
    });
    app.start().await.unwrap();
    // The worker's transactional producer meets a moved leader once, on the agent's send.
    mock.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::NotLeaderOrFollower)
            .for_partition("doubled", 0)
            .times(1),
    );
    orders.send("k".to_owned(), 7).await.unwrap();
    wait_until("the retry counted when the transaction commits", || {
        sample(&app, "streams_producer_retries_total", &[]).unwrap() >= 1.0
    })
    .await;
    let fourteen = mock
        .records("doubled", 0)
        .into_iter()
        .filter(|(_, _, v)| v.as_deref() == Some(b"14".as_slice()))
        .count();
    assert_eq!(fourteen, 1, "delivered once");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_of_a_windowed_table_are_exported() {
    let mock = mock().await;
    let app = mock_app("metrics-late", &mock).build().unwrap();
    let orders = app.topic::<String, serde_json::Value>("late-orders");
    let totals = app
        .table::<String, i64>("late-totals")
        .unwrap()
        .with_default(i64::default)
        .tumbling(std::time::Duration::from_secs(60))
        .relative_to_field("at")
        .build()
        .unwrap();
    let windows = totals.clone();
    let processed = Arc::new(AtomicUsize::new(0));
    let count = processed.clone();
    app.agent_builder("late-totals", &orders)
        .table(&totals)
        .run(move |mut events| {
            let (windows, count) = (windows.clone(), count.clone());
            async move {
                while let Some(event) = events.next().await {
                    let key = event.key.clone().unwrap_or_default();
                    // A late event is dropped (and counted) by the default policy.
                    windows.at(&event)?.update(&key, |t| *t += 1)?;
                    count.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), Error>(())
            }
        });
    app.start().await.unwrap();
    let late = [("table", "late-totals")];
    // Read at each scrape: shown at 0 before any late event.
    assert_eq!(sample(&app, "streams_late_events_total", &late), Some(0.0));
    for at in [0, 120_000, 30_000] {
        orders
            .send("k".to_owned(), serde_json::json!({ "at": at }))
            .await
            .unwrap();
    }
    wait_until("three events processed", || {
        processed.load(Ordering::SeqCst) == 3
    })
    .await;
    assert_eq!(totals.late_events(), 1);
    assert_eq!(sample(&app, "streams_late_events_total", &late), Some(1.0));
    app.shutdown().await.unwrap();
}
