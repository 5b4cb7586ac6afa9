//! Agents end to end on the embedded mock cluster: values, events, decode-error policies,
//! group_by, take, echo, sinks, concurrency, and commits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::{App, Error, OnDecodeError, Sink, Validate};
use testkit::MockCluster;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Purchase {
    username: String,
    currency: String,
    amount: i64,
}

impl Validate for Purchase {
    fn validate(&self) -> Result<(), Error> {
        if self.amount <= 0 {
            return Err(Error::validation("amount", "must be positive"));
        }
        Ok(())
    }
}

fn purchase(user: &str, currency: &str, amount: i64) -> Purchase {
    Purchase {
        username: user.into(),
        currency: currency.into(),
        amount,
    }
}

async fn mock() -> MockCluster {
    MockCluster::builder()
        .default_partitions(3)
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap()
}

fn app(id: &str, mock: &MockCluster) -> App {
    App::builder(id)
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .topic_partitions(3)
        .broker_commit_interval(Duration::from_millis(100))
        .producer_linger(Duration::from_millis(1))
        .broker_session_timeout(Duration::from_millis(1500))
        .broker_heartbeat_interval(Duration::from_millis(300))
        .build()
        .unwrap()
}

const WAIT: Duration = Duration::from_secs(20);

/// Reads `n` records of every partition of `topic` with the plain client.
async fn read_all(
    mock: &MockCluster,
    topic: &str,
    n: usize,
) -> Vec<kafka_client::consumer::ConsumerRecord> {
    use kafka_client::consumer::{Consumer, ConsumerConfig, Offset};
    let client = kafka_client::ClientConfig::new(&mock.bootstrap()).unwrap();
    let mut consumer = Consumer::new(client, ConsumerConfig::default())
        .await
        .unwrap();
    let tps: Vec<_> = (0..3)
        .map(|p| kafka_client::TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone());
    for tp in &tps {
        consumer.seek(tp, Offset::Earliest).await.unwrap();
    }
    let mut out = Vec::new();
    while out.len() < n {
        let record = tokio::time::timeout(WAIT, consumer.recv()).await;
        out.push(record.expect("records in time").unwrap());
    }
    out
}

/// Waits (up to `WAIT`) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_metadata_and_offsets_are_committed_when_done() {
    let mock = mock().await;
    let app = app("meta", &mock);
    let topic = app.topic::<String, Purchase>("purchases");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    app.agent(&topic, move |stream| async move {
        let mut events = stream.events();
        while let Some(e) = events.next().await {
            s.lock()
                .unwrap()
                .push((e.key.clone(), e.partition, e.offset, e.value));
        }
    });
    app.start().await.unwrap();
    for (i, user) in ["ann", "bob", "cat", "ann"].iter().enumerate() {
        topic
            .send(user.to_string(), purchase(user, "EUR", i as i64 + 1))
            .await
            .unwrap();
    }
    app.wait_caught_up(WAIT).await.unwrap();
    app.shutdown().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    let ann: Vec<_> = seen
        .iter()
        .filter(|e| e.0.as_deref() == Some("ann"))
        .collect();
    assert_eq!(ann.len(), 2);
    assert_eq!(ann[0].1, ann[1].1, "one key, one partition");
    assert!(ann[0].2 < ann[1].2);
    // Every partition is committed to its end.
    for p in 0..3 {
        let end = mock.high_watermark("purchases", p).unwrap();
        let committed = mock.committed_offset("meta", "purchases", p).unwrap_or(0);
        assert_eq!(committed, end, "partition {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_skipped_dead_lettered_or_stop_the_agent() {
    decode_error_policies(false).await;
}

/// `items()` takes records apart without building events: the same policies apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_follow_the_policies_under_items_too() {
    decode_error_policies(true).await;
}

/// Three agents whose topics skip, dead-letter and stop on bad records, reading events
/// (`next()`) or keys and values (`items()`).
async fn decode_error_policies(items: bool) {
    let mock = mock().await;
    let app = app("policies", &mock);
    let skip = app.topic::<String, Purchase>("skip").validated();
    let dead = app
        .topic::<String, Purchase>("dead")
        .validated()
        .on_decode_error(OnDecodeError::DeadLetter("dead-letters".into()));
    let stop = app
        .topic::<String, Purchase>("stop")
        .on_decode_error(OnDecodeError::Stop);
    let got = Arc::new(Mutex::new(Vec::new()));
    for topic in [&skip, &dead, &stop] {
        let got = got.clone();
        let name = topic.name().to_owned();
        app.agent(topic, move |mut stream| async move {
            if items {
                let mut items = stream.items();
                while let Some((_, p)) = items.next().await {
                    got.lock().unwrap().push((name.clone(), p.amount));
                }
                return;
            }
            while let Some(p) = stream.next().await {
                got.lock().unwrap().push((name.clone(), p.amount));
            }
        });
    }
    let letters = app.topic::<String, serde_json::Value>("dead-letters");
    app.start().await.unwrap();
    let raw = |topic: &str, value: &str| mock.append(topic, 0, &[(Some("k"), Some(value))]);
    for topic in ["skip", "dead", "stop"] {
        raw(topic, r#"{"username":"a","currency":"EUR","amount":1}"#).unwrap();
        raw(topic, r#"{"username":"a","currency":"EUR","amount":"x"}"#).unwrap();
        raw(topic, r#"{"username":"a","currency":"EUR","amount":-5}"#).unwrap();
        raw(topic, r#"{"username":"a","currency":"EUR","amount":2}"#).unwrap();
    }
    // `stop` never catches up: wait for what each policy must reach.
    wait_until("every policy handled its records", || {
        let n = got.lock().unwrap().len();
        let letters: usize = (0..3).map(|p| mock.records("dead-letters", p).len()).sum();
        n == 5 && letters == 2
    })
    .await;
    app.commit().await.unwrap();
    app.shutdown().await.unwrap();
    let got = got.lock().unwrap().clone();
    let of = |t: &str| -> Vec<i64> {
        got.iter()
            .filter(|(n, _)| n == t)
            .map(|(_, a)| *a)
            .collect()
    };
    assert_eq!(of("skip"), vec![1, 2]);
    assert_eq!(of("dead"), vec![1, 2]);
    assert_eq!(of("stop"), vec![1], "stops at the bad record");
    // skip: everything committed.
    assert_eq!(mock.committed_offset("policies", "skip", 0), Some(4));
    // stop: committed up to the bad record only, so a restart reads it again.
    assert_eq!(mock.committed_offset("policies", "stop", 0), Some(1));
    // dead letters: both bad records, as written, with where they came from and why.
    let all = read_all(&mock, letters.name(), 2).await;
    let header = |r: &kafka_client::consumer::ConsumerRecord, name: &str| {
        r.headers
            .iter()
            .find(|h| h.key.as_ref() == name.as_bytes())
            .and_then(|h| h.value.clone())
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    };
    let mut offsets: Vec<String> = all
        .iter()
        .map(|r| header(r, "x-error-offset").unwrap())
        .collect();
    offsets.sort();
    assert_eq!(offsets, vec!["1", "2"]);
    for r in &all {
        assert_eq!(header(r, "x-error-topic").as_deref(), Some("dead"));
        assert_eq!(header(r, "x-error-partition").as_deref(), Some("0"));
        let reason = header(r, "x-error-reason").unwrap();
        assert!(reason.contains("amount"), "{reason}");
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]), "the key is kept");
    }
    assert!(all.iter().any(|r| r
        .value
        .as_deref()
        .unwrap_or_default()
        .ends_with(br#""amount":"x"}"#)));
    assert_eq!(mock.committed_offset("policies", "dead", 0), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_by_repartitions_by_the_new_key_and_take_batches() {
    let mock = mock().await;
    let app = app("ops", &mock);
    let purchases = app.topic::<String, Purchase>("purchases");
    let totals = Arc::new(Mutex::new(
        std::collections::BTreeMap::<String, (i32, i64)>::new(),
    ));
    let t = totals.clone();
    app.agent_builder("by_currency", &purchases)
        .group_by("currency", |p: &Purchase| p.currency.clone())
        .run(move |stream| {
            let t = t.clone();
            async move {
                let mut events = stream.events();
                while let Some(e) = events.next().await {
                    let mut t = t.lock().unwrap();
                    let entry = t.entry(e.key.clone().unwrap()).or_insert((e.partition, 0));
                    assert_eq!(entry.0, e.partition, "one currency, one partition");
                    entry.1 += e.value.amount;
                }
            }
        });
    let batches = Arc::new(Mutex::new(Vec::new()));
    let b = batches.clone();
    let small = app.topic::<String, Purchase>("small");
    app.agent(&small, move |stream| async move {
        let mut batches = stream.take(3, Duration::from_millis(200));
        while let Some(batch) = batches.next().await {
            b.lock().unwrap().push(batch.len());
        }
    });
    app.start().await.unwrap();
    assert!(mock
        .topics()
        .contains(&"ops-by_currency-currency-repartition".to_owned()));
    for (i, (user, cur)) in [
        ("a", "EUR"),
        ("b", "USD"),
        ("c", "EUR"),
        ("d", "GBP"),
        ("e", "USD"),
    ]
    .iter()
    .enumerate()
    {
        purchases
            .send(user.to_string(), purchase(user, cur, i as i64 + 1))
            .await
            .unwrap();
    }
    for i in 0..4 {
        small.send_value(purchase("x", "EUR", i + 1)).await.unwrap();
    }
    app.wait_caught_up(WAIT).await.unwrap();
    app.shutdown().await.unwrap();
    let totals = totals.lock().unwrap();
    let sums: Vec<(&str, i64)> = totals.iter().map(|(k, v)| (k.as_str(), v.1)).collect();
    assert_eq!(sums, vec![("EUR", 4), ("GBP", 4), ("USD", 7)]);
    let mut sizes = batches.lock().unwrap().clone();
    sizes.sort();
    assert_eq!(sizes.iter().sum::<usize>(), 4, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 3), "{sizes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_echo_and_concurrency_deliver_everything_once() {
    let mock = mock().await;
    let app = app("sinks", &mock);
    let numbers = app.topic::<String, i64>("numbers");
    let doubled = app.topic::<String, i64>("doubled");
    let copies = app.topic::<String, i64>("copies");
    let out = Arc::new(Mutex::new(Vec::new()));
    let o = out.clone();
    app.agent_builder("double", &numbers)
        .concurrency(3)
        .sink(&doubled)
        .sink(Sink::func("log", |v: i64| assert!(v % 2 == 0)))
        .process(|stream| stream.map(|n| *n * 2));
    let c = copies.clone();
    app.agent(&doubled, move |stream| async move {
        let mut echoed = Box::pin(stream.echo(vec![c]));
        while let Some(n) = echoed.next().await {
            o.lock().unwrap().push(*n);
        }
    });
    app.start().await.unwrap();
    for n in 1..=50 {
        numbers.send_value(n).await.unwrap();
    }
    app.wait_caught_up(WAIT).await.unwrap();
    app.shutdown().await.unwrap();
    let mut got = out.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, (1..=50).map(|n| n * 2).collect::<Vec<_>>());
    let echoed: usize = (0..3).map(|p| mock.records("copies", p).len()).sum();
    assert_eq!(echoed, 50);
    let summary = app.agents();
    assert_eq!(summary[0].concurrency, 3);
    assert_eq!(
        summary[0].sinks,
        vec!["doubled".to_owned(), "log".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_redelivers_only_what_was_not_committed() {
    let mock = mock().await;
    let first = app("crashy", &mock);
    let topic = first.topic::<String, i64>("work");
    let seen1 = Arc::new(Mutex::new(Vec::new()));
    let s = seen1.clone();
    first.agent(&topic, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            s.lock().unwrap().push(*n);
        }
    });
    first.start().await.unwrap();
    for n in 0..30 {
        topic.send(format!("k{n}"), n).await.unwrap();
    }
    first.wait_caught_up(WAIT).await.unwrap();
    first.commit().await.unwrap();
    first.abort().await; // crash: no final commit, no LeaveGroup
    let committed: i64 = (0..3)
        .map(|p| mock.committed_offset("crashy", "work", p).unwrap_or(0))
        .sum();
    assert_eq!(committed, 30, "done events were committed by the interval");

    // More work arrives while nobody runs; a new worker picks up only that.
    let producer = app("producer", &mock);
    let t = producer.topic::<String, i64>("work");
    producer.connect().await.unwrap();
    for n in 30..40 {
        t.send(format!("k{n}"), n).await.unwrap();
    }
    producer.flush().await.unwrap();

    let second = App::builder("crashy")
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .broker_commit_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let topic2 = second.topic::<String, i64>("work");
    let seen2 = Arc::new(Mutex::new(Vec::new()));
    let s = seen2.clone();
    second.agent(&topic2, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            s.lock().unwrap().push(*n);
        }
    });
    second.start().await.unwrap();
    second.wait_caught_up(WAIT).await.unwrap();
    second.shutdown().await.unwrap();
    let mut seen2 = seen2.lock().unwrap().clone();
    seen2.sort();
    assert_eq!(seen2, (30..40).collect::<Vec<_>>());
    assert_eq!(seen1.lock().unwrap().len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_async_processors_and_filters_run_in_declaration_order() {
    let mock = mock().await;
    let app = app("steps", &mock);
    let numbers = app.topic::<String, i64>("numbers");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    app.agent_builder("steps", &numbers)
        .processor(|n| n + 1)
        .async_processor(|n| async move {
            tokio::task::yield_now().await;
            n * 10
        })
        .filter(|n| n % 20 == 0)
        .run(move |mut stream| {
            let s = s.clone();
            async move {
                while let Some(n) = stream.next().await {
                    s.lock().unwrap().push(*n);
                }
            }
        });
    app.start().await.unwrap();
    for n in 0..6 {
        numbers.send("k".to_owned(), n).await.unwrap();
    }
    app.wait_caught_up(WAIT).await.unwrap();
    app.shutdown().await.unwrap();
    // (n + 1) * 10, kept when a multiple of 20: n = 1, 3, 5.
    assert_eq!(*seen.lock().unwrap(), vec![20, 40, 60]);
    // Filtered-out events are done too.
    assert_eq!(
        mock.committed_offset("steps", "numbers", 0).unwrap_or(0)
            + mock.committed_offset("steps", "numbers", 1).unwrap_or(0)
            + mock.committed_offset("steps", "numbers", 2).unwrap_or(0),
        6
    );
}
