//! Events a windowed table cannot take go to the topic's decode-error policy through
//! `AgentStream::reject`: one whose time field is missing, and one later than the grace period
//! (`LatePolicy::Fail`), both copied to the dead-letter topic with headers saying why, and every
//! event committed. On the mock cluster, or on real Kafka when KAFKA_BOOTSTRAP is set.

use std::time::Duration;

use futures::StreamExt;
use kafka_client::consumer::{Consumer, ConsumerConfig, Offset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use serde_json::{json, Value};
use streams::{App, Error, LatePolicy, OnDecodeError, Timestamp};
use testkit::MockCluster;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_times_and_late_events_go_to_the_dead_letter_topic() {
    let (bootstrap, _mock) = match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) => (b, None),
        Err(_) => {
            let mock = MockCluster::builder()
                .default_partitions(1)
                .build()
                .await
                .unwrap();
            (mock.bootstrap(), Some(mock))
        }
    };
    let id = testkit::unique_name("window-rejects");
    let (input, dead) = (format!("{id}-orders"), format!("{id}-dead"));
    let app = App::builder(&id)
        .broker(&format!("kafka://{bootstrap}"))
        .topic_partitions(1)
        .build()
        .unwrap();
    let orders = app
        .topic::<String, Value>(&input)
        .on_decode_error(OnDecodeError::DeadLetter(dead.clone()));
    let table = app
        .table::<String, i64>("totals")
        .unwrap()
        .with_default(i64::default);
    let totals = table
        .tumbling(Duration::from_secs(60))
        .relative_to_field("at")
        .on_late(LatePolicy::Fail)
        .build()
        .unwrap();
    let windows = totals.clone();
    app.agent_builder("totals", &orders)
        .table(&totals)
        .run_once(move |mut events| async move {
            while let Some(event) = events.next().await {
                let key = event.key.clone().unwrap_or_default();
                let amount = event.value["amount"].as_i64().unwrap_or(0);
                match windows
                    .at(&event)
                    .and_then(|at| at.update(&key, |t| *t += amount))
                {
                    Err(e @ (Error::Decode { .. } | Error::LateEvent { .. })) => {
                        events.reject(event, &e)
                    }
                    other => drop(other?),
                }
            }
            Ok::<(), Error>(())
        });
    app.start().await.unwrap();

    let producer = Producer::new(
        ClientConfig::new(&bootstrap).unwrap(),
        ProducerConfig::default(),
    )
    .await
    .unwrap();
    for value in [
        json!({"at": 0, "amount": 1}),
        json!({"at": 120_000, "amount": 2}), // stream time 120 s: the window 0..60 s closes
        json!({"amount": 5}),                // no time
        json!({"at": 30_000, "amount": 7}),  // too late for 0..60 s
        json!({"at": 125_000, "amount": 3}),
    ] {
        let record = ProducerRecord::new(&input)
            .key("k")
            .value(value.to_string());
        producer.send(record).await.unwrap().await.unwrap();
    }
    app.wait_caught_up(WAIT).await.unwrap();
    app.commit().await.unwrap();

    // The two rejected events, in the dead-letter topic with why.
    let mut consumer = Consumer::new(
        ClientConfig::new(&bootstrap).unwrap(),
        ConsumerConfig::default(),
    )
    .await
    .unwrap();
    let tp = TopicPartition::new(&dead, 0);
    consumer.assign(vec![tp.clone()]);
    consumer.seek(&tp, Offset::Earliest).await.unwrap();
    let mut rejected = Vec::new();
    for _ in 0..2 {
        let r = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .expect("a dead letter")
            .unwrap();
        let value: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        let header = |name: &str| {
            r.headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value.clone())
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default()
        };
        rejected.push((
            value["amount"].as_i64(),
            header("x-error-offset"),
            header("x-error-reason"),
        ));
    }
    // (Each copy is sent by its own task: they may arrive in either order.)
    rejected.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        (rejected[0].0, rejected[0].1.as_str()),
        (Some(5), "2"),
        "{rejected:?}"
    );
    assert!(rejected[0].2.contains("`at`"), "{rejected:?}");
    assert_eq!(
        (rejected[1].0, rejected[1].1.as_str()),
        (Some(7), "3"),
        "{rejected:?}"
    );
    assert!(rejected[1].2.contains("too late"), "{rejected:?}");
    // The rest was counted; every event is done and committed.
    assert_eq!(
        totals
            .windows("k", Timestamp::UNIX_EPOCH, Timestamp::MAX)
            .unwrap()
            .iter()
            .map(|(_, v)| v)
            .sum::<i64>(),
        6
    );
    assert_eq!(totals.late_events(), 1);
    let group = kafka_client::group::GroupConsumer::new(
        ClientConfig::new(&bootstrap).unwrap(),
        ConsumerConfig::default(),
        kafka_client::group::GroupConfig::new(&id),
    )
    .await
    .unwrap();
    let source = TopicPartition::new(&input, 0);
    let committed = group
        .committed(std::slice::from_ref(&source))
        .await
        .unwrap();
    assert_eq!(committed.get(&source).copied().flatten(), Some(5));
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_event_with_the_stop_policy_stops_the_agent_uncommitted() {
    let mock = MockCluster::builder()
        .default_partitions(1)
        .build()
        .await
        .unwrap();
    let app = App::builder("reject-stop")
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .topic_partitions(1)
        .build()
        .unwrap();
    let input = app
        .topic::<String, i64>("numbers")
        .on_decode_error(OnDecodeError::Stop);
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    app.agent_builder("check", &input)
        .run_once(move |mut events| async move {
            while let Some(event) = events.next().await {
                let _ = seen_tx.send(event.value);
                if event.value < 0 {
                    let error = Error::validation("value", "negative");
                    events.reject(event, &error);
                }
            }
        });
    app.start().await.unwrap();
    for v in [1i64, 2, -3, 4] {
        input.send("k".to_string(), v).await.unwrap();
    }
    app.flush().await.unwrap();
    let mut got = Vec::new();
    while got.last() != Some(&-3) {
        got.push(
            tokio::time::timeout(WAIT, seen.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    // The stream ends after the rejected event: 4 never reaches the agent.
    assert!(tokio::time::timeout(WAIT, seen.recv())
        .await
        .unwrap()
        .is_none());
    assert_eq!(got, vec![1, 2, -3]);
    app.commit().await.unwrap();
    let group = kafka_client::group::GroupConsumer::new(
        ClientConfig::new(&mock.bootstrap()).unwrap(),
        ConsumerConfig::default(),
        kafka_client::group::GroupConfig::new("reject-stop"),
    )
    .await
    .unwrap();
    let source = TopicPartition::new("numbers", 0);
    let committed = group
        .committed(std::slice::from_ref(&source))
        .await
        .unwrap();
    assert_eq!(committed.get(&source).copied().flatten(), Some(2));
    app.abort().await;
}
