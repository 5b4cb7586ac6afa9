//! Producer behaviour against real Kafka (KAFKA_BOOTSTRAP) or the mock cluster.

use std::collections::HashMap;

use kafka_client::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use kafka_client::ClientConfig;

mod common;
use common::{bootstrap, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_contiguous_and_in_send_order() {
    let Some(bootstrap) = bootstrap().await else {
        return;
    };
    let topic = unique("producer-order");
    for config in [
        ProducerConfig::default(),
        ProducerConfig::default().with_acks(Acks::Leader),
    ] {
        let producer = Producer::new(ClientConfig::new(&bootstrap).unwrap(), config)
            .await
            .unwrap();
        let mut futures = Vec::new();
        for i in 0..5000 {
            let record = ProducerRecord::new(&topic)
                .partition(0)
                .key(format!("k{i}"))
                .value(vec![b'x'; 100]);
            futures.push(producer.send(record).await.unwrap());
        }
        producer.flush().await;
        let mut offsets = Vec::new();
        for f in futures {
            offsets.push(f.await.unwrap().offset);
        }
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "offsets not contiguous: {:?}",
            &offsets[..10]
        );
        producer.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_go_to_the_java_partition() {
    let Some(bootstrap) = bootstrap().await else {
        return;
    };
    let topic = unique("producer-keys");
    let producer = Producer::new(
        ClientConfig::new(&bootstrap).unwrap(),
        ProducerConfig::default(),
    )
    .await
    .unwrap();
    let partitions = producer.partitions(&topic).await.unwrap();
    let mut seen = HashMap::new();
    for i in 0..200 {
        let key = format!("key-{i}");
        let written = producer
            .send(ProducerRecord::new(&topic).key(key.clone()).value("v"))
            .await
            .unwrap()
            .await
            .unwrap();
        let expected =
            kafka_client::producer::partitioner::partition_for_key(key.as_bytes(), partitions);
        assert_eq!(written.partition, expected);
        seen.insert(written.partition, ());
    }
    producer.close().await.unwrap();
}
