//! The consumer and admin client under faults injected by the mock cluster.

mod common;

use std::time::Duration;

use common::group::wait_until;

use kafka_client::consumer::{
    AutoOffsetReset, Consumer, ConsumerConfig, CorruptBatchPolicy, Offset,
};
use kafka_client::{Admin, ClientConfig, Error, NewTopic, TopicPartition};
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};

fn cfg() -> ConsumerConfig {
    ConsumerConfig::default()
        .with_auto_offset_reset(AutoOffsetReset::Earliest)
        .with_fetch_max_wait(Duration::from_millis(50))
        .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(100))
}

async fn mock(brokers: usize) -> MockCluster {
    MockCluster::builder()
        .brokers(brokers)
        .build()
        .await
        .unwrap()
}

async fn consumer(cluster: &MockCluster) -> Consumer {
    let client = ClientConfig::new(&cluster.bootstrap())
        .unwrap()
        .with_request_timeout(Duration::from_secs(5));
    Consumer::new(client, cfg()).await.unwrap()
}

fn fill(cluster: &MockCluster, topic: &str, partition: i32, from: usize, n: usize) {
    for i in from..from + n {
        let v = format!("v{i}");
        cluster
            .append(topic, partition, &[(Some("k"), Some(v.as_str()))])
            .unwrap();
    }
}

async fn read(consumer: &mut Consumer, n: usize) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("timeout")
            .expect("recv");
        out.push((
            r.partition,
            r.offset,
            String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_errors_and_dropped_connections_are_retried() {
    let cluster = mock(1).await;
    cluster
        .create_topic("t", 1, Vec::<(String, String)>::new())
        .unwrap();
    fill(&cluster, "t", 0, 0, 20);
    cluster.intercept(
        ApiKey::Fetch,
        Intercept::error(KafkaCode::NotLeaderOrFollower).times(3),
    );
    cluster.intercept(ApiKey::Fetch, Intercept::drop_connection().times(2));
    let mut c = consumer(&cluster).await;
    c.assign(vec![TopicPartition::new("t", 0)]);
    let got = read(&mut c, 20).await;
    assert_eq!(
        got.iter().map(|r| r.1).collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    cluster.intercept(ApiKey::Fetch, Intercept::no_response().times(1));
    fill(&cluster, "t", 0, 20, 5);
    let got = read(&mut c, 5).await;
    assert_eq!(got[0].1, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_moves_and_broker_restarts_are_survived() {
    let cluster = mock(3).await;
    cluster
        .create_topic("t", 2, Vec::<(String, String)>::new())
        .unwrap();
    fill(&cluster, "t", 0, 0, 10);
    fill(&cluster, "t", 1, 0, 10);
    let mut c = consumer(&cluster).await;
    c.assign(vec![
        TopicPartition::new("t", 0),
        TopicPartition::new("t", 1),
    ]);
    let mut got = read(&mut c, 20).await;
    let leader = cluster.leader("t", 0).unwrap();
    let other = cluster
        .brokers()
        .iter()
        .map(|b| b.0)
        .find(|&b| b != leader)
        .unwrap();
    cluster.move_leader("t", 0, other).unwrap();
    fill(&cluster, "t", 0, 10, 10);
    got.extend(read(&mut c, 10).await);
    let l1 = cluster.leader("t", 1).unwrap();
    cluster.clear_requests();
    cluster.stop_broker(l1).await.unwrap();
    // The consumer notices: its fetch to the stopped broker fails and it asks another
    // broker for the partition's leader.
    wait_until(
        Duration::from_secs(20),
        "the consumer asks for metadata after losing a leader",
        || {
            cluster
                .requests()
                .iter()
                .any(|r| r.api_key == ApiKey::Metadata)
        },
        || format!("{:?}", cluster.requests()),
    )
    .await;
    cluster.restart_broker(l1).await.unwrap();
    fill(&cluster, "t", 1, 10, 10);
    got.extend(read(&mut c, 10).await);
    for p in 0..2 {
        let offs: Vec<i64> = got.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        assert_eq!(offs, (0..20).collect::<Vec<_>>(), "partition {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_gaps() {
    let cluster = mock(1).await;
    cluster
        .create_topic("c", 1, [("cleanup.policy", "compact")])
        .unwrap();
    for i in 0..30 {
        let k = format!("k{}", i % 5);
        let v = format!("v{i}");
        cluster
            .append("c", 0, &[(Some(k.as_str()), Some(v.as_str()))])
            .unwrap();
    }
    cluster.compact("c").unwrap();
    let survivors = cluster.records("c", 0);
    eprintln!(
        "survivors {:?}",
        survivors.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let mut c = consumer(&cluster).await;
    let tp = TopicPartition::new("c", 0);
    c.assign(vec![tp.clone()]);
    let got = read(&mut c, survivors.len()).await;
    assert_eq!(
        got.iter().map(|r| r.1).collect::<Vec<_>>(),
        survivors.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    wait_until(
        Duration::from_secs(20),
        "position and high watermark at the log end",
        || c.position(&tp) == Some(30) && c.high_watermark(&tp) == Some(30),
        || format!("{:?} {:?}", c.position(&tp), c.high_watermark(&tp)),
    )
    .await;
    // A seek into a gap reads from the next surviving record.
    c.seek(&tp, Offset::At(1)).await.unwrap();
    let r = read(&mut c, 1).await;
    let next_survivor = survivors.iter().map(|s| s.0).find(|&o| o >= 1).unwrap();
    assert_eq!(r[0].1, next_survivor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_from_the_broker_resets() {
    let cluster = mock(1).await;
    cluster
        .create_topic("t", 1, Vec::<(String, String)>::new())
        .unwrap();
    fill(&cluster, "t", 0, 0, 5);
    let mut c = consumer(&cluster).await;
    let tp = TopicPartition::new("t", 0);
    c.assign(vec![tp.clone()]);
    c.seek(&tp, Offset::At(3)).await.unwrap();
    cluster.intercept(
        ApiKey::Fetch,
        Intercept::error(KafkaCode::OffsetOutOfRange).times(1),
    );
    let got = read(&mut c, 1).await;
    assert_eq!(got[0].1, 0, "reset to earliest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_against_the_mock() {
    let cluster = mock(3).await;
    let admin = Admin::new(ClientConfig::new(&cluster.bootstrap()).unwrap())
        .await
        .unwrap();
    admin
        .create_topics(vec![
            NewTopic::new("a", 3, 2).with_config("cleanup.policy", "compact")
        ])
        .await
        .unwrap();
    assert_eq!(admin.describe_topic("a").await.unwrap().partitions.len(), 3);
    cluster.intercept(
        ApiKey::CreatePartitions,
        Intercept::error(KafkaCode::NotController).times(2),
    );
    admin.create_partitions("a", 4).await.unwrap();
    assert_eq!(admin.describe_topic("a").await.unwrap().partitions.len(), 4);
    let err = admin
        .create_topics(vec![NewTopic::new("a", 3, 1)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(KafkaCode::TopicAlreadyExists));
    let info = admin.describe_cluster().await.unwrap();
    assert_eq!(info.brokers.len(), 3);
    cluster.intercept(ApiKey::DeleteTopics, Intercept::drop_connection().times(1));
    admin.delete_topics(vec!["a".into()]).await.unwrap();
    assert!(admin.describe_topic("a").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swallowed_fetch_times_out_and_is_retried() {
    let cluster = mock(1).await;
    cluster
        .create_topic("t", 1, Vec::<(String, String)>::new())
        .unwrap();
    fill(&cluster, "t", 0, 0, 3);
    cluster.intercept(ApiKey::Fetch, Intercept::no_response().times(1));
    let client = ClientConfig::new(&cluster.bootstrap())
        .unwrap()
        .with_request_timeout(Duration::from_secs(1));
    let mut c = Consumer::new(client, cfg()).await.unwrap();
    c.assign(vec![TopicPartition::new("t", 0)]);
    let t = std::time::Instant::now();
    let got = read(&mut c, 3).await;
    assert_eq!(got[0].1, 0);
    eprintln!("recovered after {:?}", t.elapsed());
    assert!(t.elapsed() >= Duration::from_millis(900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_errors_are_retried_by_seek() {
    let cluster = mock(1).await;
    cluster
        .create_topic("t", 1, Vec::<(String, String)>::new())
        .unwrap();
    fill(&cluster, "t", 0, 0, 3);
    let mut c = consumer(&cluster).await;
    let tp = TopicPartition::new("t", 0);
    // Start at an offset: no background lookup to race with the intercepts.
    c.incremental_assign(vec![(tp.clone(), Some(Offset::At(0)))]);
    cluster.intercept(
        ApiKey::ListOffsets,
        Intercept::error(KafkaCode::NotLeaderOrFollower).times(2),
    );
    c.seek(&tp, Offset::Latest).await.unwrap();
    assert_eq!(c.position(&tp), Some(3));
    cluster.intercept(
        ApiKey::ListOffsets,
        Intercept::error(KafkaCode::TopicAuthorizationFailed).times(1),
    );
    let err = c.seek(&tp, Offset::Earliest).await.unwrap_err();
    eprintln!("{err}");
}

/// Fetching starts when records are first asked for (as at Java's first `poll`): a seek right
/// after assign gets its record at once, without first waiting out a long poll at the reset
/// position (the fetch wait here is 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_right_after_assign_does_not_wait_for_a_long_poll() {
    let cluster = mock(1).await;
    cluster
        .create_topic("lazy", 1, std::iter::empty::<(String, String)>())
        .unwrap();
    fill(&cluster, "lazy", 0, 0, 10);
    let client = ClientConfig::new(&cluster.bootstrap())
        .unwrap()
        .with_client_id("lazy-consumer")
        .with_request_timeout(Duration::from_secs(30));
    let fetch_wait = Duration::from_secs(10);
    let config = ConsumerConfig::default().with_fetch_max_wait(fetch_wait);
    let mut consumer = Consumer::new(client.clone(), config).await.unwrap();
    let fetches = || {
        cluster
            .requests()
            .iter()
            .filter(|r| r.api_key == ApiKey::Fetch)
            .filter(|r| r.client_id.as_deref() == Some("lazy-consumer"))
            .count()
    };
    let tp = TopicPartition::new("lazy", 0);
    consumer.assign(vec![tp.clone()]);
    // Round trips at the broker, time enough for a fetcher that starts at once to have
    // looked up the reset position and sent its long poll there.
    let admin = Admin::new(client).await.unwrap();
    for i in 0..3 {
        admin
            .create_topics(vec![NewTopic::new(format!("other-{i}"), 1, 1)])
            .await
            .unwrap();
    }
    assert_eq!(fetches(), 0, "fetched before records were asked for");
    assert_eq!(consumer.position(&tp), None, "nothing looked up yet");
    consumer.seek(&tp, Offset::At(3)).await.unwrap();
    let asked = std::time::Instant::now();
    assert_eq!(read(&mut consumer, 1).await, vec![(0, 3, "v3".to_owned())]);
    assert!(
        asked.elapsed() < fetch_wait / 2,
        "the first record took {:?}: a long poll was waited out",
        asked.elapsed()
    );
}

/// Three batches of three records on t/0: offsets 0..3, 3..6, 6..9.
async fn three_batches() -> MockCluster {
    let cluster = mock(1).await;
    cluster
        .create_topic("t", 1, Vec::<(String, String)>::new())
        .unwrap();
    for batch in 0..3 {
        let values: Vec<String> = (batch * 3..batch * 3 + 3)
            .map(|i| format!("v{i}"))
            .collect();
        let records: Vec<(Option<&str>, Option<&str>)> = values
            .iter()
            .map(|v| (Some("k"), Some(v.as_str())))
            .collect();
        cluster.append("t", 0, &records).unwrap();
    }
    cluster
}

/// A consumer that fetches one batch at a time (the prefetch bound is one byte), so a test
/// knows which fetch an intercept installed between two reads hits.
async fn one_batch_consumer(cluster: &MockCluster, policy: CorruptBatchPolicy) -> Consumer {
    let client = ClientConfig::new(&cluster.bootstrap())
        .unwrap()
        .with_request_timeout(Duration::from_secs(5));
    let config = cfg()
        .with_max_buffered_bytes(1)
        .with_corrupt_batch_policy(policy);
    let mut c = Consumer::new(client, config).await.unwrap();
    c.assign(vec![TopicPartition::new("t", 0)]);
    c
}

fn offsets(records: &[(i32, i64, String)]) -> Vec<i64> {
    records.iter().map(|r| r.1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_corrupted_in_one_response_is_refetched_and_every_record_read_once() {
    let cluster = three_batches().await;
    cluster.intercept(
        ApiKey::Fetch,
        Intercept::corrupt_records().for_partition("t", 0).times(1),
    );
    let mut c = consumer(&cluster).await;
    c.assign(vec![TopicPartition::new("t", 0)]);
    let got = read(&mut c, 9).await;
    assert_eq!(offsets(&got), (0..9).collect::<Vec<_>>());
    assert_eq!(c.corrupt_batches_skipped(), 0);
    let fetches = cluster
        .requests()
        .iter()
        .filter(|r| r.api_key == ApiKey::Fetch)
        .count();
    assert!(
        fetches >= 2,
        "the corrupt response was refetched: {fetches} fetches"
    );
    // Nothing more: no record came twice.
    let more = tokio::time::timeout(Duration::from_millis(300), c.recv()).await;
    assert!(more.is_err(), "{more:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_stays_corrupt_stops_the_partition_before_it() {
    let cluster = three_batches().await;
    let tp = TopicPartition::new("t", 0);
    let mut c = one_batch_consumer(&cluster, CorruptBatchPolicy::Fail).await;
    assert_eq!(offsets(&read(&mut c, 3).await), vec![0, 1, 2]);
    // Every fetch of t/0 from now on (the one at offset 3 and its refetch) is damaged.
    cluster.intercept(
        ApiKey::Fetch,
        Intercept::corrupt_records().for_partition("t", 0).always(),
    );
    for attempt in 0..2 {
        let err = tokio::time::timeout(Duration::from_secs(20), c.recv())
            .await
            .expect("timeout")
            .expect_err("the batch at offset 3 stays corrupt");
        match &err {
            Error::CorruptRecords {
                topic,
                partition,
                offset,
                source,
            } => {
                assert_eq!((topic.as_str(), *partition, *offset), ("t", 0, 3), "{err}");
                assert!(
                    matches!(**source, Error::CorruptBatch { base_offset: 3, .. }),
                    "{err}"
                );
            }
            other => panic!("attempt {attempt}: {other}"),
        }
        assert!(!err.is_retriable());
        let text = err.to_string();
        assert!(text.contains("t/0") && text.contains("offset 3"), "{text}");
        // Nothing past the batch was handed out, so nothing past it can be committed.
        assert_eq!(c.position(&tp), Some(3), "attempt {attempt}");
    }
    assert_eq!(c.corrupt_batches_skipped(), 0);
    // Once the log reads clean, a seek to the batch continues from it.
    cluster.clear_intercepts();
    c.seek(&tp, Offset::At(3)).await.unwrap();
    assert_eq!(offsets(&read(&mut c, 6).await), (3..9).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_skip_policy_moves_past_a_batch_that_stays_corrupt_and_counts_it() {
    let cluster = three_batches().await;
    let tp = TopicPartition::new("t", 0);
    let mut c = one_batch_consumer(&cluster, CorruptBatchPolicy::Skip).await;
    assert_eq!(offsets(&read(&mut c, 3).await), vec![0, 1, 2]);
    // The fetch at offset 3 and its refetch are damaged; later fetches are not.
    cluster.intercept(
        ApiKey::Fetch,
        Intercept::corrupt_records().for_partition("t", 0).times(2),
    );
    // Offsets 3..=5 are skipped: the next record is the first of the following batch.
    assert_eq!(offsets(&read(&mut c, 3).await), vec![6, 7, 8]);
    assert_eq!(c.corrupt_batches_skipped(), 1);
    assert_eq!(c.position(&tp), Some(9));
}
