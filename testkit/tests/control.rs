//! Fault injection and cluster control: intercepts, stop/restart, leader moves, request log,
//! compaction.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{batch, Raw};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;
use testkit::{Intercept, KafkaCode, MockCluster};

fn produce(topic: &str, partition: i32) -> ProduceRequest {
    produce_records(topic, partition, batch(&[("k", "v")], -1, -1, -1, 0))
}

fn produce_records(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// A fetch of partition 0 of `topic` from offset 0.
fn fetch(topic: &str, current_leader_epoch: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(current_leader_epoch)
                .with_partition_max_bytes(1 << 20)])])
}

/// A one-broker cluster that compacts only when a test calls `compact`.
async fn cluster_compacting_on_demand() -> MockCluster {
    MockCluster::builder()
        .compaction_interval(None)
        .build()
        .await
        .unwrap()
}

fn code(r: &ProduceResponse) -> i16 {
    r.responses[0].partition_responses[0].error_code
}

fn addr_of(cluster: &MockCluster, id: i32) -> String {
    cluster
        .brokers()
        .into_iter()
        .find(|(b, _)| *b == id)
        .unwrap()
        .1
        .to_string()
}

#[tokio::test]
async fn intercept_error_delay_drop_and_swallow() {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster
        .create_topic("t", 2, std::iter::empty::<(String, String)>())
        .unwrap();
    let addr = cluster.bootstrap();
    let mut c = Raw::connect(&addr).await;

    cluster.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::NotLeaderOrFollower)
            .times(2)
            .for_partition("t", 1),
    );
    assert_eq!(
        code(&c.send(9, &produce("t", 0)).await),
        0,
        "other partitions unaffected"
    );
    assert_eq!(
        code(&c.send(9, &produce("t", 1)).await),
        E::NotLeaderOrFollower.code()
    );
    assert_eq!(
        code(&c.send(9, &produce("t", 1)).await),
        E::NotLeaderOrFollower.code()
    );
    assert_eq!(code(&c.send(9, &produce("t", 1)).await), 0, "only twice");
    assert_eq!(
        cluster.high_watermark("t", 1),
        Some(1),
        "errored requests were not executed"
    );

    cluster.intercept(
        ApiKey::Produce,
        Intercept::delay(Duration::from_millis(300)),
    );
    let t = Instant::now();
    assert_eq!(code(&c.send(9, &produce("t", 0)).await), 0);
    assert!(t.elapsed() >= Duration::from_millis(290));

    cluster.intercept(ApiKey::Metadata, Intercept::drop_connection());
    assert!(c.try_send(9, &MetadataRequest::default()).await.is_none());

    cluster.intercept(ApiKey::ApiVersions, Intercept::no_response().on_broker(1));
    let mut d = Raw::connect(&addr).await;
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        d.try_send(3, &ApiVersionsRequest::default()),
    )
    .await;
    assert!(r.is_err(), "swallowed");

    let mut e = Raw::connect(&addr).await;
    assert_eq!(
        e.send(3, &ApiVersionsRequest::default()).await.error_code,
        0
    );

    let log = cluster.requests();
    assert!(log.iter().any(|r| r.api_key == ApiKey::Produce
        && r.version == 9
        && r.client_id.as_deref() == Some("testkit-tests")
        && r.broker == 1));
}

#[tokio::test]
async fn stop_restart_and_move_leader() {
    let cluster = MockCluster::builder().brokers(2).build().await.unwrap();
    cluster
        .create_topic("m", 1, std::iter::empty::<(String, String)>())
        .unwrap();
    let leader = cluster.leader("m", 0).unwrap();
    let other = if leader == 1 { 2 } else { 1 };
    let mut c = Raw::connect(&addr_of(&cluster, leader)).await;
    assert_eq!(code(&c.send(9, &produce("m", 0)).await), 0);

    cluster.stop_broker(leader).await.unwrap();
    assert!(c.closed().await, "connections drop");
    assert!(
        tokio::net::TcpStream::connect(addr_of(&cluster, leader))
            .await
            .is_err(),
        "port closed"
    );
    let mut o = Raw::connect(&addr_of(&cluster, other)).await;
    let meta = o
        .send(9, &MetadataRequest::default().with_topics(None))
        .await;
    assert_eq!(meta.brokers.len(), 1);
    assert_eq!(meta.topics[0].partitions[0].leader_id.0, -1);

    cluster.restart_broker(leader).await.unwrap();
    let mut c = Raw::connect(&addr_of(&cluster, leader)).await;
    assert_eq!(
        c.send(9, &produce("m", 0)).await.responses[0].partition_responses[0].base_offset,
        1,
        "data kept"
    );

    cluster.move_leader("m", 0, other).unwrap();
    assert_eq!(
        code(&c.send(9, &produce("m", 0)).await),
        E::NotLeaderOrFollower.code()
    );
    let r = o.send(9, &produce("m", 0)).await;
    assert_eq!(
        (code(&r), r.responses[0].partition_responses[0].base_offset),
        (0, 2)
    );
    let r = o.send(12, &fetch("m", 0)).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        E::FencedLeaderEpoch.code(),
        "leader epoch was bumped"
    );
    assert_eq!(
        r.responses[0].partitions[0].current_leader.leader_id.0,
        other
    );
}

#[tokio::test]
async fn compaction_keeps_the_latest_per_key_and_leaves_offset_gaps() {
    let cluster = cluster_compacting_on_demand().await;
    cluster
        .create_topic(
            "c",
            1,
            [("cleanup.policy", "compact"), ("delete.retention.ms", "0")],
        )
        .unwrap();
    cluster
        .append("c", 0, &[(Some("a"), Some("1")), (Some("b"), Some("1"))])
        .unwrap();
    cluster
        .append("c", 0, &[(Some("a"), Some("2")), (Some("c"), Some("1"))])
        .unwrap();
    cluster
        .append("c", 0, &[(Some("c"), None), (Some("d"), Some("1"))])
        .unwrap();
    cluster.compact("c").unwrap();
    let got: Vec<(i64, String)> = cluster
        .records("c", 0)
        .into_iter()
        .map(|(o, k, v)| {
            (
                o,
                format!(
                    "{}={}",
                    String::from_utf8_lossy(&k.unwrap()),
                    v.map(|v| String::from_utf8_lossy(&v).into_owned())
                        .unwrap_or_default()
                ),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(1, "b=1".into()), (2, "a=2".into()), (5, "d=1".into())]
    );
    assert_eq!(cluster.high_watermark("c", 0), Some(6));
    // A consumer reading from 0 sees the gaps.
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let r = c.send(11, &fetch("c", -1)).await;
    let batches = common::batch_offsets(r.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(batches, vec![(1, 1), (2, 1), (5, 1)]);
    // Creating an existing topic fails.
    assert!(cluster
        .create_topic("c", 1, std::iter::empty::<(String, String)>())
        .is_err());
}

#[tokio::test]
async fn dropping_the_cluster_closes_its_ports() {
    let cluster = MockCluster::builder().brokers(2).build().await.unwrap();
    let addrs: Vec<String> = cluster
        .brokers()
        .iter()
        .map(|(_, a)| a.to_string())
        .collect();
    let mut c = Raw::connect(&addrs[0]).await;
    drop(cluster);
    assert!(c.closed().await);
    for a in addrs {
        common::wait_until(&format!("{a} refuses connections"), || {
            let a = a.clone();
            async move { tokio::net::TcpStream::connect(&a).await.is_err() }
        })
        .await;
    }
}

#[tokio::test]
async fn compressed_batches_are_compacted_and_searchable_by_timestamp() {
    use kafka_client::protocol::record::{BatchBuilder, Compression};
    let cluster = cluster_compacting_on_demand().await;
    cluster
        .create_topic("z", 1, [("cleanup.policy", "compact")])
        .unwrap();
    let mut b = BatchBuilder::new(Compression::Gzip);
    for (i, k) in ["a", "b", "a"].iter().enumerate() {
        b.append(
            1000 + i as i64,
            Some(k.as_bytes()),
            Some(b"v".as_slice()),
            &[],
        )
        .unwrap();
    }
    let gz = b.build().unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    assert_eq!(code(&c.send(9, &produce_records("z", 0, gz)).await), 0);
    cluster.compact("z").unwrap();
    let offsets: Vec<i64> = cluster.records("z", 0).into_iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![1, 2]);
    assert_eq!(cluster.high_watermark("z", 0), Some(3));
}

#[tokio::test]
async fn deleted_records_move_the_log_start_and_reads_below_it_are_out_of_range() {
    use kafka_client::admin::{Admin, OffsetSpec};
    use kafka_client::consumer::{AutoOffsetReset, Consumer, ConsumerConfig, Offset};
    use kafka_client::{ClientConfig, TopicPartition};
    let cluster = cluster_compacting_on_demand().await;
    cluster
        .create_topic("trimmed", 1, [("cleanup.policy", "delete")])
        .unwrap();
    for i in 0..10 {
        let key = format!("k{i}");
        cluster
            .append("trimmed", 0, &[(Some(key.as_str()), Some("v"))])
            .unwrap();
    }
    assert_eq!(cluster.delete_records("trimmed", 0, 4).unwrap(), 4);
    assert_eq!(cluster.log_start_offset("trimmed", 0), Some(4));
    // Never backwards, never past the end.
    assert_eq!(cluster.delete_records("trimmed", 0, 2).unwrap(), 4);
    let client = ClientConfig::new(&cluster.bootstrap()).unwrap();
    let tp = TopicPartition::new("trimmed", 0);
    let admin = Admin::new(client.clone()).await.unwrap();
    let earliest = admin
        .list_offsets(vec![(tp.clone(), OffsetSpec::Earliest)])
        .await
        .unwrap();
    assert_eq!(earliest[&tp].offset, 4);
    let config = ConsumerConfig::default().with_auto_offset_reset(AutoOffsetReset::None);
    let mut consumer = Consumer::new(client, config).await.unwrap();
    consumer.assign(vec![tp.clone()]);
    consumer.seek(&tp, Offset::At(1)).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .expect("an answer")
        .expect_err("offset 1 was deleted");
    assert!(
        matches!(err, kafka_client::Error::OffsetOutOfRange { offset: 1, .. }),
        "{err}"
    );
    consumer.seek(&tp, Offset::Earliest).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .expect("a record")
        .unwrap();
    assert_eq!(first.offset, 4);
}
