//! Produce, Fetch (long-poll, topic ids), ListOffsets and Metadata over the wire.

mod common;

use std::time::{Duration, Instant};

use common::{batch, batch_offsets, Raw};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use testkit::MockCluster;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn produce_req(topic: &str, partition: i32, records: bytes::Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

fn fetch_req(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)
                .with_current_leader_epoch(-1)
                .with_log_start_offset(-1)
                .with_last_fetched_epoch(-1)])])
}

#[tokio::test]
async fn api_versions_and_metadata_with_auto_create() {
    let cluster = MockCluster::builder()
        .brokers(3)
        .default_partitions(4)
        .build()
        .await
        .unwrap();
    let bootstrap = cluster.bootstrap();
    assert_eq!(bootstrap.split(',').count(), 3);
    let mut c = Raw::connect(bootstrap.split(',').next().unwrap()).await;
    for v in [0, 3] {
        let r = c
            .send(
                v,
                &ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("t"))
                    .with_client_software_version(StrBytes::from_static_str("1")),
            )
            .await;
        assert_eq!(r.error_code, 0);
        assert!(r
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Fetch as i16 && k.max_version >= 13));
    }
    for v in [1, 4, 9, 12] {
        let topic = format!("auto-{v}");
        let ask = MetadataRequest::default()
            .with_allow_auto_topic_creation(true)
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name(&topic)))
            ]));
        // As on a KRaft broker: the request that creates the topic gets an error for it...
        let first = c.send(v, &ask).await;
        assert_eq!(first.brokers.len(), 3, "v{v}");
        assert_eq!(
            first.topics[0].error_code,
            kafka_protocol::ResponseError::UnknownTopicOrPartition.code(),
            "v{v}: first answer for an auto-created topic"
        );
        assert!(first.topics[0].partitions.is_empty(), "v{v}");
        // ...and the next one describes it.
        let second = c.send(v, &ask).await;
        assert_eq!(second.topics[0].error_code, 0, "v{v}");
        assert_eq!(second.topics[0].partitions.len(), 4, "v{v}");
        assert!(cluster.topics().contains(&topic), "v{v}: topic exists");
    }
    let none = MockCluster::builder()
        .auto_create_topics(false)
        .build()
        .await
        .unwrap();
    let mut c = Raw::connect(&none.bootstrap()).await;
    let r = c
        .send(
            9,
            &MetadataRequest::default()
                .with_allow_auto_topic_creation(true)
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(name("nope")))
                ])),
        )
        .await;
    assert_eq!(
        r.topics[0].error_code,
        kafka_protocol::ResponseError::UnknownTopicOrPartition.code()
    );
}

#[tokio::test]
async fn produce_then_fetch_back_at_old_and_new_versions() {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster
        .create_topic("t", 1, std::iter::empty::<(String, String)>())
        .unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    for (i, v) in [3i16, 7, 9, 12].into_iter().enumerate() {
        let r = c
            .send(
                v,
                &produce_req(
                    "t",
                    0,
                    batch(&[("k", "a"), ("k2", "b")], -1, -1, -1, 1000),
                    -1,
                ),
            )
            .await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            (p.error_code, p.base_offset),
            (0, 2 * i as i64),
            "produce v{v}"
        );
    }
    for v in [4i16, 11, 12] {
        let r = c.send(v, &fetch_req("t", 0, 2, 100, 1)).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        assert_eq!(p.high_watermark, 8);
        let recs = p.records.clone().unwrap();
        assert_eq!(
            batch_offsets(&recs),
            vec![(2, 2), (4, 2), (6, 2)],
            "fetch v{v}"
        );
    }
    // Topic ids: v13+ fetch by id.
    let meta = c
        .send(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("t")))
            ])),
        )
        .await;
    let id = meta.topics[0].topic_id;
    assert!(!id.is_nil());
    let mut req = fetch_req("", 0, 0, 0, 0);
    req.topics[0].topic_id = id;
    let r = c.send(16, &req).await;
    assert_eq!(r.responses[0].topic_id, id);
    assert_eq!(
        batch_offsets(r.responses[0].partitions[0].records.as_ref().unwrap()).len(),
        4
    );
    let mut req = fetch_req("", 0, 0, 0, 0);
    req.topics[0].topic_id = uuid::Uuid::from_u128(7);
    let r = c.send(13, &req).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        kafka_protocol::ResponseError::UnknownTopicId.code()
    );
    // Offset out of range.
    let r = c.send(11, &fetch_req("t", 0, 99, 0, 0)).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        kafka_protocol::ResponseError::OffsetOutOfRange.code()
    );
}

#[tokio::test]
async fn partition_max_bytes_still_returns_one_whole_batch() {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster
        .create_topic("big", 1, std::iter::empty::<(String, String)>())
        .unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    for _ in 0..3 {
        c.send(
            9,
            &produce_req(
                "big",
                0,
                batch(&[("k", &"x".repeat(500))], -1, -1, -1, 0),
                1,
            ),
        )
        .await;
    }
    let mut req = fetch_req("big", 0, 0, 0, 0);
    req.topics[0].partitions[0].partition_max_bytes = 10;
    let r = c.send(11, &req).await;
    assert_eq!(
        batch_offsets(r.responses[0].partitions[0].records.as_ref().unwrap()),
        vec![(0, 1)]
    );
}

#[tokio::test]
async fn long_poll_fetch_wakes_on_produce() {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster
        .create_topic("lp", 1, std::iter::empty::<(String, String)>())
        .unwrap();
    let addr = cluster.bootstrap();
    let mut fetcher = Raw::connect(&addr).await;
    let started = Instant::now();
    let fetch =
        tokio::spawn(async move { fetcher.send(12, &fetch_req("lp", 0, 0, 10_000, 1)).await });
    common::wait_until("the broker has the fetch", || {
        let n = common::received(&cluster, ApiKey::Fetch);
        async move { n >= 1 }
    })
    .await;
    assert!(
        !fetch.is_finished(),
        "an empty log must not answer the fetch"
    );
    let mut producer = Raw::connect(&addr).await;
    producer
        .send(
            9,
            &produce_req("lp", 0, batch(&[("k", "v")], -1, -1, -1, 0), 1),
        )
        .await;
    let r = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .expect("fetch woke up")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        batch_offsets(r.responses[0].partitions[0].records.as_ref().unwrap()),
        vec![(0, 1)]
    );
    // With nothing to read, the fetch waits max_wait.
    let mut c = Raw::connect(&addr).await;
    let t = Instant::now();
    let r = c.send(12, &fetch_req("lp", 0, 1, 300, 1)).await;
    assert!(t.elapsed() >= Duration::from_millis(290));
    assert!(r.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_timestamp() {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster
        .create_topic("lo", 1, std::iter::empty::<(String, String)>())
        .unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let r = c
        .send(
            9,
            &produce_req("missing", 0, batch(&[("a", "1")], -1, -1, -1, 0), 1),
        )
        .await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        kafka_protocol::ResponseError::UnknownTopicOrPartition.code()
    );
    c.send(
        9,
        &produce_req(
            "lo",
            0,
            batch(&[("a", "1"), ("b", "2")], -1, -1, -1, 1000),
            1,
        ),
    )
    .await;
    c.send(
        9,
        &produce_req("lo", 0, batch(&[("c", "3")], -1, -1, -1, 2000), 1),
    )
    .await;
    let ask = |ts: i64| {
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("lo"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_timestamp(ts)
                    .with_current_leader_epoch(-1)])])
    };
    for v in [1i16, 4, 7] {
        let get = |r: ListOffsetsResponse| {
            (
                r.topics[0].partitions[0].error_code,
                r.topics[0].partitions[0].offset,
                r.topics[0].partitions[0].timestamp,
            )
        };
        assert_eq!(get(c.send(v, &ask(-2)).await).1, 0);
        assert_eq!(get(c.send(v, &ask(-1)).await).1, 3);
        assert_eq!(get(c.send(v, &ask(1001)).await), (0, 1, 1001));
        assert_eq!(get(c.send(v, &ask(1500)).await), (0, 2, 2000));
        assert_eq!(get(c.send(v, &ask(5000)).await).1, -1);
    }
    assert_eq!(c.send(7, &ask(-3)).await.topics[0].partitions[0].offset, 2);
}
