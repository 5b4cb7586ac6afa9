//! Stream-table joins started on a backlog: the joined stream partition waits until the table
//! kept from a topic has caught up with that topic's end at assignment (`JoinBuilder::bootstrap`),
//! so every event joins with the table records written before it, as in Kafka Streams; a
//! table source that cannot be read holds the stream (nothing committed, `/ready` says why)
//! until it can.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{mock, mock_app, wait_until, WAIT};
use futures::StreamExt;
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the joining agent saw: (user, item, level).
type Seen = Arc<Mutex<Vec<(String, String, Option<i64>)>>>;

/// Sends `records` (topic, key, value; `None` a tombstone) in this order, from an app of its
/// own that is stopped before the joining app starts.
async fn fill(
    mock: &MockCluster,
    id: &str,
    partitions: i32,
    records: &[(&str, String, Option<i64>)],
) {
    let filler = mock_app(&format!("{id}-filler"), mock)
        .topic_partitions(partitions)
        .build()
        .unwrap();
    let topics: BTreeMap<&str, streams::Topic<String, Option<i64>>> = records
        .iter()
        .map(|(t, _, _)| (*t, filler.topic::<String, Option<i64>>(t)))
        .collect();
    filler.start().await.unwrap();
    for (topic, key, value) in records {
        topics[topic].send(key.clone(), *value).await.unwrap();
    }
    filler.shutdown().await.unwrap();
}

/// The joining app: table `levels` kept from topic `levels-in`, agent `enrich` left-joining
/// topic `purchases` (value: the item) with it.
fn joining_app(mock: &MockCluster, id: &str, partitions: i32, web: bool) -> (streams::App, Seen) {
    let app = mock_app(id, mock)
        .topic_partitions(partitions)
        .broker_commit_interval(Duration::from_millis(50))
        .web_enabled(web)
        .web_port(0)
        .build()
        .unwrap();
    let levels_in = app.topic::<String, i64>("levels-in");
    let purchases = app.topic::<String, String>("purchases");
    let levels = app
        .table_builder::<String, i64>("levels")
        .from_topic(&levels_in)
        .unwrap();
    let seen = Seen::default();
    let s = seen.clone();
    app.agent_builder("enrich", &purchases)
        .join(&levels)
        .run(move |mut events| {
            let s = s.clone();
            async move {
                while let Some(e) = events.next().await {
                    let user = e.key.clone().unwrap_or_default();
                    let (item, level) = e.into_value();
                    s.lock().unwrap().push((user, item, level));
                }
            }
        });
    (app, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_backlog_every_event_joins_with_the_table_records_written_before_it() {
    let mock = mock().await;
    let id = testkit::unique_name("join-backlog");
    // The table's topic first (each user's level updated five times, every fifth user then
    // deleted), then the purchases: all of it before the joining app starts.
    let users: Vec<String> = (0..100).map(|u| format!("user-{u}")).collect();
    let mut records = Vec::new();
    let mut expected: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for round in 0..5 {
        for (u, user) in users.iter().enumerate() {
            let level = (round * 1000 + u) as i64;
            records.push(("levels-in", user.clone(), Some(level)));
            expected.insert(user.clone(), Some(level));
        }
    }
    for user in users.iter().step_by(5) {
        records.push(("levels-in", user.clone(), None));
        expected.insert(user.clone(), None);
    }
    let purchases: Vec<_> = (0..users.len())
        .map(|i| ("purchases", users[i].clone(), Some(i as i64)))
        .collect();
    fill(&mock, &id, 4, &records).await;
    fill_purchases(&mock, &id, 4, &purchases).await;

    let (app, seen) = joining_app(&mock, &id, 4, false);
    app.start().await.unwrap();
    wait_until("every purchase joined", || {
        seen.lock().unwrap().len() == users.len()
    })
    .await;
    app.shutdown().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let wrong: Vec<_> = seen
        .iter()
        .filter(|(user, _, level)| expected[user] != *level)
        .map(|(user, item, level)| {
            format!("{user}/{item}: {level:?} instead of {:?}", expected[user])
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} events joined with a table that had not caught up: {wrong:?}",
        wrong.len(),
        seen.len()
    );
}

/// Sends one purchase per `(_, user, n)`: item `item-n`, keyed by the user.
async fn fill_purchases(
    mock: &MockCluster,
    id: &str,
    partitions: i32,
    records: &[(&str, String, Option<i64>)],
) {
    let filler = mock_app(&format!("{id}-purchases"), mock)
        .topic_partitions(partitions)
        .build()
        .unwrap();
    let purchases = filler.topic::<String, String>("purchases");
    filler.start().await.unwrap();
    for (_, user, n) in records {
        let item = format!("item-{}", n.unwrap_or_default());
        purchases.send(user.clone(), item).await.unwrap();
    }
    filler.shutdown().await.unwrap();
}

/// GET `path` on the worker's web server: (status, body).
async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut bytes))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_source_that_cannot_be_read_holds_the_stream_uncommitted_until_it_can() {
    // Two brokers: the table's source and the stream lead on different ones, so that failing
    // the source's fetches leaves the stream's fetches working.
    let mock = MockCluster::builder()
        .brokers(2)
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let id = testkit::unique_name("join-held");
    mock.create_topic("levels-in", 1, [("cleanup.policy", "delete")])
        .unwrap();
    mock.create_topic("purchases", 1, [("cleanup.policy", "delete")])
        .unwrap();
    let source_leader = mock.leader("levels-in", 0).unwrap();
    let other = mock
        .brokers()
        .into_iter()
        .map(|(b, _)| b)
        .find(|b| *b != source_leader)
        .unwrap();
    mock.move_leader("purchases", 0, other).unwrap();
    fill(&mock, &id, 1, &[("levels-in", "ann".into(), Some(10))]).await;
    fill_purchases(&mock, &id, 1, &[("purchases", "ann".into(), Some(1))]).await;

    mock.intercept(
        ApiKey::Fetch,
        Intercept::error(KafkaCode::NotLeaderOrFollower)
            .for_partition("levels-in", 0)
            .always(),
    );
    let (app, seen) = joining_app(&mock, &id, 1, true);
    app.start().await.unwrap();
    let address = app.web_address().expect("the web server runs");
    // /ready names the table partition and why it waits.
    let deadline = tokio::time::Instant::now() + WAIT;
    let body = loop {
        let (status, body) = get(address, "/ready").await;
        // Once the source's end offset is known (its lookup runs beside the wait).
        let target_known = serde_json::from_str::<serde_json::Value>(&body)
            .is_ok_and(|ready| !ready["bootstrapping"][0]["target"].is_null());
        if status == 503 && target_known {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/ready: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        ready["recovering"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"table": "levels", "partition": 0})),
        "{ready}"
    );
    let waiting = &ready["bootstrapping"][0];
    assert_eq!(waiting["stream"], "purchases", "{ready}");
    assert_eq!(waiting["source"], "levels-in", "{ready}");
    assert_eq!(waiting["target"], 1, "{ready}");
    // The stream's fetches work, but its partition is held: for a while (many commit
    // intervals), nothing is joined and nothing is committed for it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    app.commit().await.unwrap();
    assert_eq!(mock.committed_offset(&id, "purchases", 0), None);

    // The fault clears: the table catches up, then the purchase joins with its level.
    mock.clear_intercepts();
    wait_until("the purchase joined", || !seen.lock().unwrap().is_empty()).await;
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![("ann".to_owned(), "item-1".to_owned(), Some(10))]
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while mock.committed_offset(&id, "purchases", 0) != Some(1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the purchase is committed"
        );
        app.commit().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = get(address, "/ready").await;
    assert_eq!(status, 200, "{body}");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_backlog_a_global_join_waits_for_the_global_tables_source() {
    let mock = mock().await;
    let id = testkit::unique_name("join-global-backlog");
    let users: Vec<String> = (0..100).map(|u| format!("user-{u}")).collect();
    let mut records = Vec::new();
    for round in 0..5 {
        for (u, user) in users.iter().enumerate() {
            records.push(("levels-in", user.clone(), Some((round * 1000 + u) as i64)));
        }
    }
    fill(&mock, &id, 4, &records).await;
    // Orders keyed by order number, their value the user: any partition, not the user's.
    let orders: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| ("orders", format!("order-{i}"), user.clone()))
        .collect();
    let filler = mock_app(&format!("{id}-orders"), &mock)
        .topic_partitions(4)
        .build()
        .unwrap();
    let topic = filler.topic::<String, String>("orders");
    filler.start().await.unwrap();
    for (_, key, user) in &orders {
        topic.send(key.clone(), user.clone()).await.unwrap();
    }
    filler.shutdown().await.unwrap();

    let app = mock_app(&id, &mock).topic_partitions(4).build().unwrap();
    let levels_in = app.topic::<String, i64>("levels-in");
    let orders_topic = app.topic::<String, String>("orders");
    let levels = app
        .table_builder::<String, i64>("levels")
        .global()
        .from_topic(&levels_in)
        .unwrap();
    let seen = Seen::default();
    let s = seen.clone();
    app.agent_builder("ship", &orders_topic)
        .join_global(&levels, |user: &String| Some(user.clone()))
        .run(move |mut events| {
            let s = s.clone();
            async move {
                while let Some(e) = events.next().await {
                    let order = e.key.clone().unwrap_or_default();
                    let (user, level) = e.into_value();
                    s.lock().unwrap().push((user, order, level));
                }
            }
        });
    app.start().await.unwrap();
    wait_until("every order joined", || {
        seen.lock().unwrap().len() == users.len()
    })
    .await;
    app.shutdown().await.unwrap();
    let wrong: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(user, _, level)| {
            let u: i64 = user.trim_start_matches("user-").parse().unwrap();
            *level != Some(4000 + u)
        })
        .cloned()
        .collect();
    assert!(
        wrong.is_empty(),
        "joined before the global table caught up: {wrong:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_while_the_stream_waits_for_its_table_loses_and_repeats_nothing() {
    let mock = mock().await;
    let id = testkit::unique_name("join-rebalance");
    let users: Vec<String> = (0..20).map(|u| format!("user-{u}")).collect();
    let levels: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(u, user)| ("levels-in", user.clone(), Some(u as i64)))
        .collect();
    fill(&mock, &id, 2, &levels).await;
    let purchases: Vec<_> = (0..users.len())
        .map(|i| ("purchases", users[i].clone(), Some(i as i64)))
        .collect();
    fill_purchases(&mock, &id, 2, &purchases).await;
    // The table's source cannot be read: the first worker's stream partitions wait.
    for p in 0..2 {
        mock.intercept(
            ApiKey::Fetch,
            Intercept::error(KafkaCode::NotLeaderOrFollower)
                .for_partition("levels-in", p)
                .always(),
        );
    }
    let (first, seen_first) = joining_app(&mock, &id, 2, false);
    first.start().await.unwrap();
    // A second worker joins while they wait: partitions move.
    let (second, seen_second) = joining_app(&mock, &id, 2, false);
    second.start().await.unwrap();
    let held = |app: &streams::App| app.table_partitions().map_or(0, |p| p.len());
    wait_until("each worker holds one partition", || {
        held(&first) == 1 && held(&second) == 1
    })
    .await;
    assert!(seen_first.lock().unwrap().is_empty());
    assert!(seen_second.lock().unwrap().is_empty());
    mock.clear_intercepts();
    wait_until("every purchase joined", || {
        seen_first.lock().unwrap().len() + seen_second.lock().unwrap().len() >= users.len()
    })
    .await;
    first.commit().await.unwrap();
    second.commit().await.unwrap();
    let mut seen: Vec<_> = seen_first.lock().unwrap().clone();
    seen.extend(seen_second.lock().unwrap().iter().cloned());
    seen.sort();
    let mut expected: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| (user.clone(), format!("item-{i}"), Some(i as i64)))
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "each purchase joined once, with its level");
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
}
