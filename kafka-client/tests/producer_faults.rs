//! The producer under faults injected by the mock cluster: leader errors, dropped
//! connections, slow brokers, a broker restart. Records arrive once each, in order.

use std::time::Duration;

use kafka_client::producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordRef};
use kafka_client::ClientConfig;
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};

async fn cluster() -> MockCluster {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster
        .create_topic("t", 1, std::iter::empty::<(String, String)>())
        .unwrap();
    cluster
}

async fn producer(cluster: &MockCluster, request_timeout: Duration) -> Producer {
    let client = ClientConfig::new(&cluster.bootstrap())
        .unwrap()
        .with_request_timeout(request_timeout);
    let config = ProducerConfig::default()
        .with_linger(Duration::from_millis(1))
        .with_batch_size(2048);
    Producer::new(client, config).await.unwrap()
}

/// Sends `n` records numbered 0..n to t/0, returns their offsets in send order.
async fn send_numbered(producer: &Producer, n: usize) -> Vec<i64> {
    let mut deliveries = Vec::new();
    for i in 0..n {
        let record = ProducerRecord::new("t").partition(0).value(i.to_string());
        deliveries.push(producer.send(record).await.unwrap());
    }
    let mut offsets = Vec::new();
    for d in deliveries {
        offsets.push(d.await.unwrap().offset);
    }
    offsets
}

/// The partition holds exactly the values 0..n, in order, once each.
fn assert_log_is_exactly(cluster: &MockCluster, n: usize) {
    let expected: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_log_is_exactly_values(cluster, &expected);
}

/// The partition holds exactly `expected`, in order, once each.
fn assert_log_is_exactly_values(cluster: &MockCluster, expected: &[&str]) {
    let values: Vec<String> = cluster
        .records("t", 0)
        .into_iter()
        .map(|(_, _, v)| String::from_utf8(v.unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(
        values.len(),
        expected.len(),
        "duplicates or losses in the log"
    );
    assert_eq!(values, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_leader_errors_are_retried_in_order() {
    let cluster = cluster().await;
    let producer = producer(&cluster, Duration::from_secs(5)).await;
    assert_eq!(producer.retries(), 0);
    cluster.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::NotLeaderOrFollower).times(3),
    );
    let offsets = send_numbered(&producer, 2000).await;
    // Three refused requests, each of at least one record, were sent again.
    assert!(producer.retries() >= 3, "retries: {}", producer.retries());
    assert_eq!(producer.delivery_failures().records, 0);
    assert_eq!(
        offsets,
        (0..2000).collect::<Vec<i64>>(),
        "offsets in send order"
    );
    producer.close().await.unwrap();
    assert_log_is_exactly(&cluster, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_reopened_and_nothing_is_duplicated() {
    let cluster = cluster().await;
    let producer = producer(&cluster, Duration::from_secs(5)).await;
    cluster.intercept(ApiKey::Produce, Intercept::drop_connection().times(2));
    send_numbered(&producer, 2000).await;
    producer.close().await.unwrap();
    assert_log_is_exactly(&cluster, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_request_that_did_arrive_is_not_written_twice() {
    let cluster = cluster().await;
    let producer = producer(&cluster, Duration::from_millis(500)).await;
    // The broker writes the batch only after the client gave up waiting: the retry is a
    // duplicate that idempotence must absorb.
    cluster.intercept(
        ApiKey::Produce,
        Intercept::delay(Duration::from_millis(1500)).times(1),
    );
    send_numbered(&producer, 500).await;
    producer.close().await.unwrap();
    assert_log_is_exactly(&cluster, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_recovers_after_its_broker_restarts() {
    let cluster = cluster().await;
    let producer = producer(&cluster, Duration::from_secs(2)).await;
    send_numbered(&producer, 100).await;
    cluster.stop_broker(1).await.unwrap();
    // Records queued while the only broker is down wait for it; none is delivered.
    let mut deliveries = Vec::new();
    for i in 100..200 {
        let record = ProducerRecord::new("t").partition(0).value(i.to_string());
        deliveries.push(producer.send(record).await.unwrap());
    }
    assert_eq!(cluster.high_watermark("t", 0), Some(100));
    cluster.restart_broker(1).await.unwrap();
    let mut offsets = Vec::new();
    for d in deliveries {
        offsets.push(d.await.unwrap().offset);
    }
    assert_eq!(offsets, (100..200).collect::<Vec<i64>>());
    producer.close().await.unwrap();
    assert_log_is_exactly(&cluster, 200);
}

/// Hands one record for `topic`/0 to the producer; the future completes on its delivery.
async fn send_to(producer: &Producer, topic: &str, value: &str) -> DeliveryFuture {
    let record = ProducerRecord::new(topic)
        .partition(0)
        .value(value.to_owned());
    producer.send(record).await.unwrap()
}

/// With other brokers up, the metadata of a partition whose leader stopped answers (with no
/// leader): the producer keeps looking until the leader is back, then delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_for_a_stopped_leader_are_delivered_once_it_is_back() {
    let cluster = MockCluster::builder().brokers(2).build().await.unwrap();
    for topic in ["t", "u"] {
        cluster
            .create_topic(topic, 1, std::iter::empty::<(String, String)>())
            .unwrap();
    }
    let leader = cluster.leader("u", 0).unwrap();
    let producer = producer(&cluster, Duration::from_secs(2)).await;
    send_to(&producer, "u", "before").await.await.unwrap();
    cluster.stop_broker(leader).await.unwrap();
    let waiting = send_to(&producer, "u", "after").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cluster.high_watermark("u", 0), Some(1));
    cluster.restart_broker(leader).await.unwrap();
    let written = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("delivered once the leader is back");
    assert_eq!(written.unwrap().offset, 1);
    producer.close().await.unwrap();
}

/// A partition's cached leader that a fresher metadata answer no longer lists among the
/// brokers (it stopped, and another topic's lookup refreshed the broker list): its records
/// wait for the leader to come back instead of failing as a configuration error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_for_a_stopped_leader_wait_for_it_even_when_the_broker_list_forgot_it() {
    let cluster = MockCluster::builder().brokers(2).build().await.unwrap();
    for topic in ["t", "u", "v"] {
        cluster
            .create_topic(topic, 1, std::iter::empty::<(String, String)>())
            .unwrap();
    }
    let leader = cluster.leader("u", 0).unwrap();
    let other = cluster.leader("v", 0).unwrap();
    assert_ne!(leader, other, "the mock spreads leaders round-robin");
    let producer = producer(&cluster, Duration::from_secs(2)).await;
    send_to(&producer, "u", "before").await.await.unwrap();
    cluster.stop_broker(leader).await.unwrap();
    // The first lookup of v refreshes the broker list: the stopped leader is not in it.
    send_to(&producer, "v", "refresh").await.await.unwrap();
    let waiting = send_to(&producer, "u", "after").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.restart_broker(leader).await.unwrap();
    let written = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("delivered once the leader is back");
    assert_eq!(written.unwrap().offset, 1);
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retriable_error_fails_only_the_affected_records() {
    let cluster = cluster().await;
    let producer = producer(&cluster, Duration::from_secs(5)).await;
    cluster.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::InvalidRecord).times(1),
    );
    let first = producer
        .send(ProducerRecord::new("t").partition(0).value("doomed"))
        .await
        .unwrap();
    let err = first.await.unwrap_err();
    assert_eq!(err.code(), Some(KafkaCode::InvalidRecord), "{err}");
    assert!(err.to_string().contains("t/0"), "{err}");
    // The producer takes a new producer id and goes on.
    let later = producer
        .send(ProducerRecord::new("t").partition(0).value("fine"))
        .await
        .unwrap();
    // The doomed record was not written: the next one takes offset 0.
    assert_eq!(later.await.unwrap().offset, 0);
    assert_log_is_exactly_values(&cluster, &["fine"]);
    producer.close().await.unwrap();
}

/// A record sent without a delivery future still reports its failure: `flush` returns once
/// its batch is given up on and `delivery_failures` counts it (what the streams committer
/// checks before committing), while the records after it are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_record_that_fails_shows_in_delivery_failures() {
    let cluster = cluster().await;
    let producer = producer(&cluster, Duration::from_secs(5)).await;
    producer.partitions("t").await.unwrap(); // metadata first: try_send_detached never waits
    cluster.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::InvalidRecord).times(1),
    );
    let doomed = RecordRef {
        partition: Some(0),
        value: Some(b"doomed"),
        ..RecordRef::new("t")
    };
    assert!(producer.try_send_detached(doomed).unwrap());
    producer.flush().await;
    let failures = producer.delivery_failures();
    assert_eq!(failures.records, 1, "{failures:?}");
    let last = failures.last.expect("the failure's reason");
    assert_eq!(last.error.code(), Some(KafkaCode::InvalidRecord), "{last}");
    let fine = RecordRef {
        partition: Some(0),
        value: Some(b"fine"),
        ..RecordRef::new("t")
    };
    assert!(producer.try_send_detached(fine).unwrap());
    producer.flush().await;
    assert_eq!(producer.delivery_failures().records, 1);
    assert_log_is_exactly_values(&cluster, &["fine"]);
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_produce_request_per_broker_carries_all_its_partitions() {
    let cluster = MockCluster::builder().brokers(3).build().await.unwrap();
    cluster
        .create_topic("spread", 12, std::iter::empty::<(String, String)>())
        .unwrap();
    let client = ClientConfig::new(&cluster.bootstrap()).unwrap();
    let linger = Duration::from_secs(3);
    let config = ProducerConfig::default().with_linger(linger);
    let producer = Producer::new(client, config).await.unwrap();
    producer.partitions("spread").await.unwrap(); // metadata before the clock starts
    cluster.clear_requests();
    // Partition 0 starts lingering well before the others (the pause staggers the batches;
    // the assertions below check that the others really were still lingering).
    let mut deliveries = Vec::new();
    let mut others_queued = None;
    for p in 0..12 {
        let record = ProducerRecord::new("spread").partition(p).value("v");
        deliveries.push(producer.send(record).await.unwrap());
        if p == 0 {
            tokio::time::sleep(linger / 3).await;
            others_queued = Some(std::time::Instant::now());
            let produced = cluster
                .requests()
                .iter()
                .any(|r| r.api_key == ApiKey::Produce);
            assert!(
                !produced,
                "partition 0 went out before the others were queued"
            );
        }
    }
    // Partition 0's broker's other partitions are delivered before their own linger ends.
    let leader_of_0 = cluster.leader("spread", 0).unwrap();
    let (with_0, rest): (Vec<_>, Vec<_>) = deliveries
        .into_iter()
        .enumerate()
        .partition(|(p, _)| cluster.leader("spread", *p as i32) == Some(leader_of_0));
    assert!(with_0.len() > 1, "partition 0's broker leads others too");
    for (_, d) in with_0 {
        d.await.unwrap();
    }
    let waited = others_queued.unwrap().elapsed();
    assert!(
        waited < linger,
        "partition 0's broker's other partitions went out after their own linger \
         ({waited:?}), not with partition 0's"
    );
    for (_, d) in rest {
        d.await.unwrap();
    }
    let produce: Vec<i32> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.api_key == ApiKey::Produce)
        .map(|r| r.broker)
        .collect();
    // When partition 0 is ready, its broker's request takes that broker's other partitions
    // along although they still linger: each broker gets exactly one request.
    let mut brokers = produce.clone();
    brokers.sort();
    brokers.dedup();
    assert_eq!((produce.len(), brokers.len()), (3, 3), "{produce:?}");
    producer.close().await.unwrap();
}
