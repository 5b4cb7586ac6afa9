//! Idempotent producers: duplicates answer with the original offset; gaps are refused.

mod common;

use common::{batch, Raw};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;
use testkit::MockCluster;

fn produce(records: bytes::Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("idem")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

#[tokio::test]
async fn duplicate_and_out_of_order_sequences() {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster
        .create_topic("idem", 1, std::iter::empty::<(String, String)>())
        .unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let pid = c
        .send(
            4,
            // No transactional id (the generated default is an empty one, which Kafka and
            // the mock refuse with INVALID_REQUEST).
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(pid.error_code, 0);
    let (id, epoch) = (pid.producer_id.0, pid.producer_epoch);
    let send = |seq: i32, n: usize| produce(batch(&vec![("k", "v"); n], id, epoch, seq, 0));
    let result = |r: ProduceResponse| {
        (
            r.responses[0].partition_responses[0].error_code,
            r.responses[0].partition_responses[0].base_offset,
        )
    };

    assert_eq!(result(c.send(9, &send(0, 2)).await), (0, 0));
    assert_eq!(result(c.send(9, &send(2, 3)).await), (0, 2));
    // A retry of the first batch: success with its original offset, nothing appended.
    assert_eq!(result(c.send(9, &send(0, 2)).await), (0, 0));
    assert_eq!(result(c.send(9, &send(2, 3)).await), (0, 2));
    assert_eq!(cluster.high_watermark("idem", 0), Some(5));
    // A gap.
    assert_eq!(
        result(c.send(9, &send(7, 1)).await).0,
        E::OutOfOrderSequenceNumber.code()
    );
    // A producer the partition does not know may start at any sequence, as on Kafka (its
    // state may have expired), and must go on in order from there.
    let stranger = |seq| produce(batch(&[("k", "v")], id + 100, 0, seq, 0));
    assert_eq!(result(c.send(9, &stranger(5)).await), (0, 5));
    assert_eq!(
        result(c.send(9, &stranger(7)).await).0,
        E::OutOfOrderSequenceNumber.code()
    );
    // The next in order of the first producer still works.
    assert_eq!(result(c.send(9, &send(5, 1)).await), (0, 6));
    // A stale epoch is fenced.
    let old = produce(batch(&[("k", "v")], id, epoch - 1, 6, 0));
    assert_eq!(
        result(c.send(9, &old).await).0,
        E::InvalidProducerEpoch.code()
    );
}

#[tokio::test]
async fn corrupt_batches_are_refused() {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster
        .create_topic("idem", 1, std::iter::empty::<(String, String)>())
        .unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let good = batch(&[("k", "v")], -1, -1, -1, 0);
    let mut bad = good.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let r = c.send(9, &produce(bad.into())).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        E::CorruptMessage.code()
    );
    let r = c.send(9, &produce(good.slice(..30))).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        E::CorruptMessage.code()
    );
    assert_eq!(cluster.high_watermark("idem", 0), Some(0));
}
