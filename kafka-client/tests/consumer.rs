//! Consumer (assign mode) against the broker named by KAFKA_BOOTSTRAP, else the mock.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kafka_client::consumer::{AutoOffsetReset, ConsumerConfig, Header, IsolationLevel, Offset};
use kafka_client::producer::{ProducerConfig, ProducerRecord};
use kafka_client::protocol::record::Compression;
use kafka_client::{Error, TopicPartition};

fn earliest() -> ConsumerConfig {
    ConsumerConfig::default()
        .with_auto_offset_reset(AutoOffsetReset::Earliest)
        .with_fetch_max_wait(Duration::from_millis(100))
}

fn tps(topic: &str, partitions: i32) -> Vec<TopicPartition> {
    (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_come_back_in_order_per_partition_with_keys_values_and_headers() {
    let bootstrap = common::bootstrap().await;
    let topic = common::topic(&bootstrap, "consumer-order", 3).await;
    let records: Vec<ProducerRecord> = (0..600)
        .map(|i| {
            let mut r = ProducerRecord::new(&topic).key(format!("key-{}", i % 37));
            if i % 50 != 7 {
                r = r.value(format!("value-{i}"));
            }
            r.header("n", i.to_string())
                .header("dup", "a")
                .header("dup", "b")
        })
        .collect();
    let sent = common::produce(&bootstrap, records).await;
    // What each partition should hold, by offset: (i, key, value).
    let mut expected: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    for (i, &(partition, offset)) in sent.iter().enumerate() {
        expected.entry(partition).or_default().push((offset, i));
    }
    assert!(expected.len() > 1, "keys should spread over partitions");

    let mut consumer = common::consumer(&bootstrap, earliest()).await;
    consumer.assign(tps(&topic, 3));
    let got = common::recv_n(&mut consumer, 600).await;
    let mut per_partition: BTreeMap<i32, Vec<_>> = BTreeMap::new();
    for r in got {
        assert_eq!(&*r.topic, topic.as_str());
        per_partition.entry(r.partition).or_default().push(r);
    }
    for (partition, want) in &expected {
        let have = &per_partition[partition];
        assert_eq!(have.len(), want.len(), "partition {partition}");
        for (r, &(offset, i)) in have.iter().zip(want) {
            assert_eq!(r.offset, offset);
            assert_eq!(r.key.as_deref(), Some(format!("key-{}", i % 37).as_bytes()));
            let value = (i % 50 != 7).then(|| Bytes::from(format!("value-{i}")));
            assert_eq!(r.value, value, "offset {offset}");
            assert_eq!(
                r.headers,
                vec![
                    Header::new("n", Some(i.to_string())),
                    Header::new("dup", Some("a")),
                    Header::new("dup", Some("b")),
                ]
            );
            assert!(r.timestamp > 1_600_000_000_000);
        }
        let tp = TopicPartition::new(&topic, *partition);
        let end = want.last().unwrap().0 + 1;
        assert_eq!(consumer.position(&tp), Some(end));
    }
    common::assert_quiet(&mut consumer, Duration::from_millis(300)).await;
    for partition in 0..3 {
        let tp = TopicPartition::new(&topic, partition);
        let end = expected
            .get(&partition)
            .map_or(0, |v| v.last().unwrap().0 + 1);
        assert_eq!(consumer.high_watermark(&tp), Some(end), "{tp}");
        assert_eq!(consumer.position(&tp), Some(end), "{tp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_batches_of_every_codec_are_read() {
    let bootstrap = common::bootstrap().await;
    let topic = common::topic(&bootstrap, "consumer-codecs", 1).await;
    let mut n = 0;
    for codec in Compression::ALL {
        let records = (0..200)
            .map(|i| {
                ProducerRecord::new(&topic)
                    .partition(0)
                    .value(format!("{codec:?}-{i}"))
            })
            .collect();
        let config = ProducerConfig::default().with_compression(codec);
        common::produce_with(&bootstrap, config, records).await;
        n += 200;
    }
    let mut consumer = common::consumer(&bootstrap, earliest()).await;
    consumer.assign(tps(&topic, 1));
    let got = common::recv_n(&mut consumer, n).await;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        let codec = Compression::ALL[i / 200];
        assert_eq!(
            r.value.as_deref(),
            Some(format!("{codec:?}-{}", i % 200).as_bytes())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_to_earliest_latest_offset_and_timestamp() {
    let bootstrap = common::bootstrap().await;
    let topic = common::topic(&bootstrap, "consumer-seek", 2).await;
    let base = 1_650_000_000_000i64;
    let records = (0..10)
        .map(|i| {
            ProducerRecord::new(&topic)
                .partition(0)
                .value(format!("v{i}"))
                .timestamp(base + i * 1000)
        })
        .collect();
    common::produce(&bootstrap, records).await;
    let tp = TopicPartition::new(&topic, 0);

    // Latest (the default reset) starts at the end.
    let mut consumer = common::consumer(&bootstrap, ConsumerConfig::default()).await;
    consumer.assign(tps(&topic, 2));
    assert!(matches!(
        consumer
            .seek(&TopicPartition::new(&topic, 9), Offset::At(0))
            .await,
        Err(Error::NotAssigned { partition: 9, .. })
    ));
    common::assert_quiet(&mut consumer, Duration::from_millis(500)).await;
    assert_eq!(consumer.position(&tp), Some(10));

    consumer.seek(&tp, Offset::Earliest).await.unwrap();
    assert_eq!(consumer.position(&tp), Some(0));
    assert_eq!(common::recv(&mut consumer).await.offset, 0);
    assert_eq!(consumer.position(&tp), Some(1));

    consumer.seek(&tp, Offset::At(5)).await.unwrap();
    let r = common::recv(&mut consumer).await;
    assert_eq!(
        (r.offset, r.timestamp, r.value.as_deref()),
        (5, base + 5000, Some(&b"v5"[..]))
    );

    consumer
        .seek(&tp, Offset::Timestamp(base + 3500))
        .await
        .unwrap();
    assert_eq!(consumer.position(&tp), Some(4));
    assert_eq!(common::recv(&mut consumer).await.offset, 4);

    consumer
        .seek(&tp, Offset::Timestamp(base + 60_000))
        .await
        .unwrap();
    assert_eq!(consumer.position(&tp), Some(10));

    consumer.seek(&tp, Offset::Latest).await.unwrap();
    assert_eq!(consumer.position(&tp), Some(10));
    let more = (0..2).map(|i| {
        ProducerRecord::new(&topic)
            .partition(0)
            .value(format!("w{i}"))
    });
    common::produce(&bootstrap, more.collect()).await;
    let r = common::recv(&mut consumer).await;
    assert_eq!((r.offset, r.value.as_deref()), (10, Some(&b"w0"[..])));
    assert_eq!(common::recv(&mut consumer).await.offset, 11);
    assert_eq!(consumer.high_watermark(&tp), Some(12));

    // Seeking back while records are buffered drops them: the next record is the sought one.
    consumer.seek(&tp, Offset::At(2)).await.unwrap();
    assert_eq!(common::recv(&mut consumer).await.offset, 2);
    consumer.seek(&tp, Offset::At(8)).await.unwrap();
    let offsets: Vec<i64> = consumer
        .stream()
        .take(4)
        .map(|r| r.unwrap().offset)
        .collect()
        .await;
    assert_eq!(offsets, vec![8, 9, 10, 11]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_positions_follow_the_reset_policy() {
    let bootstrap = common::bootstrap().await;
    let topic = common::topic(&bootstrap, "consumer-oor", 1).await;
    let records = (0..5).map(|i| {
        ProducerRecord::new(&topic)
            .partition(0)
            .value(format!("v{i}"))
    });
    common::produce(&bootstrap, records.collect()).await;
    let tp = TopicPartition::new(&topic, 0);

    // No policy: assigning without a position is an error, and so is a position past the end.
    let none = ConsumerConfig::default().with_auto_offset_reset(AutoOffsetReset::None);
    let mut consumer = common::consumer(&bootstrap, none).await;
    consumer.assign(vec![tp.clone()]);
    let err = consumer.recv().await.unwrap_err();
    assert!(
        matches!(&err, Error::NoPosition { partition: 0, .. }),
        "{err}"
    );
    consumer.seek(&tp, Offset::At(1000)).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .unwrap()
        .unwrap_err();
    match &err {
        Error::OffsetOutOfRange {
            topic: t,
            partition: 0,
            offset: 1000,
        } => assert_eq!(t, &topic),
        other => panic!("expected OffsetOutOfRange, got {other}"),
    }
    assert!(err.to_string().contains(&format!("{topic}/0")), "{err}");
    common::assert_quiet(&mut consumer, Duration::from_millis(300)).await;
    consumer.seek(&tp, Offset::At(3)).await.unwrap();
    assert_eq!(common::recv(&mut consumer).await.offset, 3);

    // Earliest policy: a position past the end starts over.
    let mut consumer = common::consumer(&bootstrap, earliest()).await;
    consumer.assign(vec![tp.clone()]);
    consumer.seek(&tp, Offset::At(1000)).await.unwrap();
    assert_eq!(common::recv(&mut consumer).await.offset, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_stays_within_the_byte_budget() {
    let bootstrap = common::bootstrap().await;
    let topic = common::topic(&bootstrap, "consumer-prefetch", 2).await;
    let value = vec![b'x'; 1000];
    let records = (0..4000)
        .map(|i| {
            ProducerRecord::new(&topic)
                .partition(i % 2)
                .value(value.clone())
        })
        .collect();
    common::produce(&bootstrap, records).await; // about 4 MB
    let budget = 64 * 1024;
    let batch_size = 16 * 1024 + 2048; // the producer's batch.size, plus slack for one record
    let config = earliest().with_max_buffered_bytes(budget);
    let mut consumer = common::consumer(&bootstrap, config).await;
    consumer.assign(tps(&topic, 2));
    common::recv(&mut consumer).await;
    // The prefetcher fills its budget while the application reads nothing.
    let mut max_seen = 0;
    common::group::wait_until(
        Duration::from_secs(30),
        "the prefetch fills its budget",
        || {
            max_seen = max_seen.max(consumer.buffered_bytes());
            max_seen >= budget - batch_size
        },
        || format!("buffered {}", consumer.buffered_bytes()),
    )
    .await;
    // One response may overshoot by at most one batch per partition.
    assert!(max_seen <= budget + 2 * batch_size, "buffered {max_seen}");
    let mut count = 1;
    while count < 4000 {
        common::recv(&mut consumer).await;
        count += 1;
        max_seen = max_seen.max(consumer.buffered_bytes());
    }
    assert!(max_seen <= budget + 2 * batch_size, "buffered {max_seen}");
    eprintln!("prefetch: at most {max_seen} bytes buffered for a budget of {budget}");
    common::assert_quiet(&mut consumer, Duration::from_millis(300)).await;
    assert_eq!(consumer.buffered_bytes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_assignment_changes() {
    let bootstrap = common::bootstrap().await;
    let topic = common::topic(&bootstrap, "consumer-pause", 2).await;
    let records = (0..20)
        .map(|i| {
            ProducerRecord::new(&topic)
                .partition(i % 2)
                .value(format!("v{i}"))
        })
        .collect();
    common::produce(&bootstrap, records).await;
    let (p0, p1) = (
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    );

    let mut consumer = common::consumer(&bootstrap, earliest()).await;
    consumer.assign(vec![p0.clone(), p1.clone()]);
    consumer.pause([&p1]).unwrap();
    assert_eq!(consumer.paused(), vec![p1.clone()]);
    let got = common::recv_n(&mut consumer, 10).await;
    assert!(got.iter().all(|r| r.partition == 0));
    common::assert_quiet(&mut consumer, Duration::from_millis(300)).await;

    consumer.resume([&p1]).unwrap();
    let got = common::recv_n(&mut consumer, 10).await;
    assert!(got.iter().all(|r| r.partition == 1));
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );

    // Pausing mid-partition keeps the position.
    consumer.seek(&p0, Offset::At(0)).await.unwrap();
    assert_eq!(common::recv(&mut consumer).await.offset, 0);
    consumer.pause([&p0]).unwrap();
    assert_eq!(consumer.position(&p0), Some(1));
    consumer.resume([&p0]).unwrap();
    assert_eq!(common::recv(&mut consumer).await.offset, 1);

    // Reassigning keeps what stays; new partitions start per policy.
    consumer.assign(vec![p1.clone()]);
    assert_eq!(consumer.assignment(), vec![p1.clone()]);
    assert_eq!(consumer.position(&p1), Some(10));
    assert!(consumer.position(&p0).is_none());
    consumer.incremental_assign(vec![(p0.clone(), Some(Offset::At(7)))]);
    let r = common::recv(&mut consumer).await;
    assert_eq!((r.partition, r.offset), (0, 7));
    consumer.incremental_unassign([&p0]);
    assert_eq!(consumer.assignment(), vec![p1]);
    common::assert_quiet(&mut consumer, Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_reads_non_transactional_records() {
    let bootstrap = common::bootstrap().await;
    let topic = common::topic(&bootstrap, "consumer-committed", 1).await;
    let records = (0..5).map(|i| {
        ProducerRecord::new(&topic)
            .partition(0)
            .value(format!("v{i}"))
    });
    common::produce(&bootstrap, records.collect()).await;
    let config = earliest().with_isolation_level(IsolationLevel::ReadCommitted);
    let mut consumer = common::consumer(&bootstrap, config).await;
    let tp = TopicPartition::new(&topic, 0);
    consumer.assign(vec![tp.clone()]);
    let got = common::recv_n(&mut consumer, 5).await;
    assert_eq!(got.last().unwrap().offset, 4);
    common::assert_quiet(&mut consumer, Duration::from_millis(300)).await;
    assert_eq!(consumer.last_stable_offset(&tp), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_after_assignment_is_picked_up() {
    let bootstrap = common::bootstrap().await;
    let topic = common::unique("consumer-late");
    let tp = TopicPartition::new(&topic, 0);
    let config =
        earliest().with_retry_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let mut consumer = common::consumer(&bootstrap, config).await;
    consumer.assign(vec![tp.clone()]);
    common::assert_quiet(&mut consumer, Duration::from_millis(500)).await;
    let admin = common::admin(&bootstrap).await;
    admin
        .create_topics(vec![kafka_client::NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap();
    common::produce(
        &bootstrap,
        vec![ProducerRecord::new(&topic).partition(0).value("late")],
    )
    .await;
    let r = common::recv(&mut consumer).await;
    assert_eq!((r.offset, r.value.as_deref()), (0, Some(&b"late"[..])));
}

/// The Java producer (Apache Kafka's client, via scripts/java/ProduceKeyed.java) writes keyed
/// records with headers in every codec; our consumer reads exactly those records back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Java and the Kafka jars (scripts/kafka fetch); .ci/run runs it with --include-ignored"]
async fn records_written_by_the_java_producer_are_read() {
    let bootstrap = common::bootstrap().await;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = common::unique(&format!("consumer-java-{codec}"));
        let args = [
            &bootstrap,
            &topic,
            "200",
            "--partitions",
            "3",
            "--compression",
            codec,
        ];
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let java = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            common::java("ProduceKeyed.java", &args, "")
        });
        let java_lines = java.await.unwrap();
        let mut expected: Vec<&str> = java_lines.lines().collect();
        expected.sort_by_key(|l| sort_key(l));
        assert_eq!(expected.len(), 200, "{codec}");

        let mut consumer = common::consumer(&bootstrap, earliest()).await;
        consumer.assign(tps(&topic, 3));
        let mut ours: Vec<String> = common::recv_n(&mut consumer, 200)
            .await
            .iter()
            .map(|r| {
                let text = |b: &Option<Bytes>| match b {
                    Some(b) => String::from_utf8(b.to_vec()).unwrap(),
                    None => "\\N".to_owned(),
                };
                let mut line = format!(
                    "{}\t{}\t{}\t{}",
                    r.partition,
                    r.offset,
                    text(&r.key),
                    text(&r.value)
                );
                for h in &r.headers {
                    line.push_str(&format!("\t{}={}", h.key_str().unwrap(), text(&h.value)));
                }
                line
            })
            .collect();
        ours.sort_by_key(|l| sort_key(l));
        assert_eq!(ours, expected, "{codec}");
        common::assert_quiet(&mut consumer, Duration::from_millis(200)).await;
    }
}

fn sort_key(line: &str) -> (i32, i64) {
    let mut fields = line.split('\t');
    let mut next = || fields.next().unwrap_or_default();
    (next().parse().unwrap_or(-1), next().parse().unwrap_or(-1))
}

/// Seeks back and forth, and to the end with a long poll in flight, while earlier fetches are
/// still out: every seek delivers the sought record next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeks_while_fetches_are_in_flight_deliver_the_sought_record() {
    let bootstrap = common::bootstrap().await;
    let topic = common::topic(&bootstrap, "consumer-seek-often", 2).await;
    let tp = TopicPartition::new(&topic, 0);
    let mut end = 0i64;
    for batch in 0..4 {
        let records = (0..10).map(|i| {
            ProducerRecord::new(&topic)
                .partition(0)
                .value(format!("v{}", batch * 10 + i))
        });
        common::produce(&bootstrap, records.collect()).await;
        end += 10;
    }
    let config = ConsumerConfig::default().with_fetch_max_wait(Duration::from_millis(100));
    let mut consumer = common::consumer(&bootstrap, config).await;
    consumer.assign(tps(&topic, 2));
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..100 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let target = (seed % (end as u64 + 2)) as i64;
        if target >= end {
            consumer.seek(&tp, Offset::Latest).await.unwrap();
            let more = ProducerRecord::new(&topic).partition(0).value("more");
            common::produce(&bootstrap, vec![more]).await;
            assert_eq!(
                common::recv(&mut consumer).await.offset,
                end,
                "round {round}"
            );
            end += 1;
            continue;
        }
        consumer.seek(&tp, Offset::At(target)).await.unwrap();
        assert_eq!(
            common::recv(&mut consumer).await.offset,
            target,
            "round {round}"
        );
        // Sometimes read on, so that the next seek drops buffered records.
        for next in (target + 1..end).take((seed % 3) as usize) {
            assert_eq!(
                common::recv(&mut consumer).await.offset,
                next,
                "round {round}"
            );
        }
    }
}
