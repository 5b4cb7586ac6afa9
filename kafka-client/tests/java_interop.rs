//! Cross-checks with Apache Kafka's own Java client, run from the jars `scripts/kafka`
//! fetches. They need Java and (but for the partitioner's) the broker named by
//! KAFKA_BOOTSTRAP, so they are `#[ignore]`d; .ci/run starts Kafka and runs them with
//! `--include-ignored`, where a missing prerequisite fails them.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{java, real_kafka, unique};

use kafka_client::consumer::{Consumer, ConsumerConfig, Offset};
use kafka_client::producer::partitioner::partition_for_key;
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::protocol::record::Compression;
use kafka_client::{ClientConfig, TopicPartition};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn create_topic(bootstrap: &str, topic: &str, partitions: u32) {
    let out = Command::new(repo().join("scripts/kafka"))
        .args([
            "tool",
            "topics",
            "--bootstrap-server",
            bootstrap,
            "--create",
            "--topic",
            topic,
        ])
        .args([
            "--partitions",
            &partitions.to_string(),
            "--replication-factor",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "create topic: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs Java and the Kafka jars (scripts/kafka fetch); .ci/run runs it with --include-ignored"]
fn partitioner_agrees_with_java_for_1000_keys() {
    let keys: Vec<String> = (0..1000)
        .map(|i| match i % 4 {
            0 => format!("user-{i}"),
            1 => format!("{i}"),
            2 => format!("ключ-{i}-é"),
            _ => "x".repeat(i % 37),
        })
        .collect();
    for partitions in [1usize, 3, 7, 12, 100] {
        let java_out = java(
            "Partitions.java",
            &[&partitions.to_string()],
            &(keys.join("\n") + "\n"),
        );
        let java_parts: Vec<i32> = java_out
            .lines()
            .map(|l| l.rsplit('\t').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(java_parts.len(), keys.len());
        for (key, java_part) in keys.iter().zip(java_parts) {
            assert_eq!(
                partition_for_key(key.as_bytes(), partitions),
                java_part,
                "key {key:?} of {partitions}"
            );
        }
    }
}

/// Produces 300 keyed records with duplicate headers and some tombstones to a fresh
/// 4-partition topic with `config`, and checks that Java's consumer reads exactly them.
async fn java_reads_our_records(bootstrap: String, config: ProducerConfig) {
    let topic = unique("interop-ours-to-java");
    create_topic(&bootstrap, &topic, 4);
    let producer = Producer::new(ClientConfig::new(&bootstrap).unwrap(), config)
        .await
        .unwrap();
    let mut sent = Vec::new();
    for i in 0..300 {
        let mut record = ProducerRecord::new(&topic)
            .key(format!("key-{i}"))
            .value(format!("value {i}"))
            .header("seq", i.to_string())
            .header("dup", "first")
            .header("dup", "second");
        if i % 10 == 0 {
            record.value = None; // a tombstone
        }
        // Not awaited one by one, so batches hold many records (and compress as batches).
        let delivery = producer.send(record.clone()).await.unwrap();
        sent.push((i, record, delivery));
    }
    let mut expected = Vec::new();
    for (i, record, delivery) in sent {
        let written = delivery.await.unwrap();
        let value = record
            .value
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .unwrap_or_else(|| "\\N".into());
        expected.push(format!(
            "{}\t{}\tkey-{i}\t{value}\tseq={i}\tdup=first\tdup=second",
            written.partition, written.offset
        ));
    }
    producer.close().await.unwrap();
    expected.sort_by_key(|l| {
        let mut f = l.split('\t');
        (
            f.next().unwrap().parse::<i32>().unwrap(),
            f.next().unwrap().parse::<i64>().unwrap(),
        )
    });
    let dumped = tokio::task::spawn_blocking(move || {
        java("DumpTopic.java", &[&bootstrap, &topic, "300"], "")
    })
    .await
    .unwrap();
    let dumped: Vec<&str> = dumped.lines().collect();
    assert_eq!(dumped, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP) and Java; .ci/run runs it with --include-ignored"]
async fn java_consumer_reads_what_we_produce() {
    let bootstrap = real_kafka();
    java_reads_our_records(bootstrap, ProducerConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP) and Java; .ci/run runs it with --include-ignored"]
async fn java_consumer_reads_our_compressed_batches_in_every_codec() {
    let bootstrap = real_kafka();
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let config = ProducerConfig::default()
            .with_compression(codec)
            .with_linger(Duration::from_millis(20));
        java_reads_our_records(bootstrap.clone(), config).await;
    }
}

/// DumpTopic.java's text form of a byte string (only what these tests' data needs).
fn escaped(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "\\N".to_owned(),
        Some(b) => String::from_utf8(b.to_vec()).unwrap().replace('\\', "\\\\"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP) and Java; .ci/run runs it with --include-ignored"]
async fn we_read_what_the_java_producer_writes() {
    let bootstrap = real_kafka();
    let topic = unique("interop-java-to-ours");
    let b = bootstrap.clone();
    let t = topic.clone();
    let written = tokio::task::spawn_blocking(move || {
        java(
            "ProduceKeyed.java",
            &[&b, &t, "300", "--partitions", "3"],
            "",
        )
    })
    .await
    .unwrap();
    let mut expected: Vec<&str> = written.lines().collect();
    expected.sort_by_key(|l| {
        let mut f = l.split('\t');
        (
            f.next().unwrap().parse::<i32>().unwrap(),
            f.next().unwrap().parse::<i64>().unwrap(),
        )
    });
    assert_eq!(expected.len(), 300);

    let mut consumer = Consumer::new(
        ClientConfig::new(&bootstrap).unwrap(),
        ConsumerConfig::default(),
    )
    .await
    .unwrap();
    let partitions: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(&topic, p)).collect();
    consumer.assign(partitions.clone());
    for tp in &partitions {
        consumer.seek(tp, Offset::Earliest).await.unwrap();
    }
    let mut read = Vec::new();
    for _ in 0..300 {
        let r = tokio::time::timeout(std::time::Duration::from_secs(30), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        let key = r.key.as_deref().unwrap();
        // Java put the key where its partitioner says; ours agrees.
        assert_eq!(r.partition, partition_for_key(key, 3));
        let mut line = format!(
            "{}\t{}\t{}\t{}",
            r.partition,
            r.offset,
            escaped(Some(key)),
            escaped(r.value.as_deref())
        );
        for h in &r.headers {
            line.push_str(&format!(
                "\t{}={}",
                escaped(Some(&h.key)),
                escaped(h.value.as_deref())
            ));
        }
        read.push(line);
    }
    read.sort_by_key(|l| {
        let mut f = l.split('\t');
        (
            f.next().unwrap().parse::<i32>().unwrap(),
            f.next().unwrap().parse::<i64>().unwrap(),
        )
    });
    assert_eq!(read, expected);
}
