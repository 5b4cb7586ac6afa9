//! Producer behaviour against real Kafka (KAFKA_BOOTSTRAP) or the mock cluster.

use kafka_client::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use kafka_client::ClientConfig;

mod common;
use common::bootstrap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_contiguous_and_in_send_order() {
    let bootstrap = bootstrap().await;
    let topic = common::topic(&bootstrap, "producer-order", 1).await;
    let mut next = 0;
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
        // A fresh topic: the first round starts at 0, the second where the first ended.
        let expected: Vec<i64> = (next..next + 5000).collect();
        assert!(
            offsets == expected,
            "offsets not contiguous from {next} in send order: first {:?}",
            &offsets[..10]
        );
        next += 5000;
        producer.close().await.unwrap();
    }
}

/// `key<TAB>partition` lines computed once by Kafka's Java producer code
/// (scripts/java/Partitions.java; the file's header says how to regenerate it).
fn java_partitions() -> Vec<(String, i32)> {
    include_str!("data/java-partitions-6.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (key, p) = l.split_once('\t').expect("key<TAB>partition");
            (key.to_owned(), p.parse().expect("partition"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_go_to_the_java_partition() {
    let bootstrap = bootstrap().await;
    let expected = java_partitions();
    assert_eq!(expected.len(), 200);
    let topic = common::topic(&bootstrap, "producer-keys", 6).await;
    let producer = Producer::new(
        ClientConfig::new(&bootstrap).unwrap(),
        ProducerConfig::default(),
    )
    .await
    .unwrap();
    let mut deliveries = Vec::new();
    for (key, _) in &expected {
        let record = ProducerRecord::new(&topic).key(key.clone()).value("v");
        deliveries.push(producer.send(record).await.unwrap());
    }
    for ((key, java), delivery) in expected.iter().zip(deliveries) {
        let written = delivery.await.unwrap();
        assert_eq!(
            written.partition, *java,
            "key {key}: Kafka's Java producer picks partition {java}"
        );
    }
    producer.close().await.unwrap();
}
