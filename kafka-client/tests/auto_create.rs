//! Topics auto-created by their first use, against the broker named by KAFKA_BOOTSTRAP,
//! else the mock. Apache Kafka (KRaft) answers the Metadata request that creates a topic
//! with an error for it (the creation is still under way) and describes it only on a later
//! request; the mock does the same, and our clients ask again until the topic is there.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use kafka_client::consumer::{AutoOffsetReset, ConsumerConfig};
use kafka_client::group::{GroupConfig, GroupConsumer};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::protocol::frame::{decode_response, encode_request, read_frame};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// One Metadata request (v12, auto-creation allowed) for `topic` on its own connection:
/// the topic's error code and partition count.
async fn metadata_once(bootstrap: &str, topic: &str) -> (i16, usize) {
    let address = bootstrap.split(',').next().expect("an address");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_owned())),
        ))]));
    let mut out = BytesMut::new();
    encode_request(&mut out, 1, "auto-create-test", 12, &request).expect("encode");
    stream.write_all(&out).await.expect("send");
    let frame = read_frame(&mut stream, 64 << 20)
        .await
        .expect("read")
        .expect("a response");
    let response = decode_response::<MetadataRequest>(frame.freeze(), 12).expect("decode");
    let t = &response.topics[0];
    (t.error_code, t.partitions.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_metadata_answer_for_an_auto_created_topic_is_an_error() {
    let bootstrap = common::bootstrap().await;
    let topic = common::unique("auto-metadata");
    let (code, partitions) = metadata_once(&bootstrap, &topic).await;
    assert_eq!(
        (code, partitions),
        (ResponseError::UnknownTopicOrPartition.code(), 0),
        "the request that creates the topic gets UNKNOWN_TOPIC_OR_PARTITION"
    );
    // The topic was created all the same: a later request describes it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (code, partitions) = metadata_once(&bootstrap, &topic).await;
        if code == 0 {
            assert!(partitions >= 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the auto-created topic never appeared (last error {code})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_sends_to_a_topic_that_does_not_exist_yet() {
    let bootstrap = common::bootstrap().await;
    let topic = common::unique("auto-producer");
    let producer = Producer::new(common::client(&bootstrap), ProducerConfig::default())
        .await
        .unwrap();
    let delivered = producer
        .send(ProducerRecord::new(&topic).key("k").value("first"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((delivered.partition, delivered.offset), (0, 0));
    producer.close().await.unwrap();
    // The admin client sees it.
    let info = common::admin(&bootstrap)
        .await
        .describe_topic(&topic)
        .await
        .unwrap();
    assert_eq!(info.partitions.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_member_subscribes_to_a_topic_that_does_not_exist_yet() {
    let bootstrap = common::bootstrap().await;
    let topic = common::unique("auto-subscribe");
    let mut member = GroupConsumer::new(
        common::client(&bootstrap),
        ConsumerConfig::default().with_auto_offset_reset(AutoOffsetReset::Earliest),
        GroupConfig::new(common::unique("g-auto")),
    )
    .await
    .unwrap();
    member.subscribe([topic.as_str()]);
    let producer = Producer::new(common::client(&bootstrap), ProducerConfig::default())
        .await
        .unwrap();
    producer
        .send(ProducerRecord::new(&topic).value("hello"))
        .await
        .unwrap()
        .await
        .unwrap();
    producer.close().await.unwrap();
    let record = tokio::time::timeout(Duration::from_secs(60), member.recv())
        .await
        .expect("the member reads the new topic within 60 s")
        .unwrap();
    assert_eq!(
        (record.offset, record.value.as_deref()),
        (0, Some(&b"hello"[..]))
    );
    member.close().await.unwrap();
}
