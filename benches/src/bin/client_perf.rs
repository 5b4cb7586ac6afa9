//! Producer and consumer throughput of our client, the counterpart of Kafka's
//! ProducerPerformance / ConsumerPerformance (see scripts/perf-compare, which runs both on
//! the same broker and reports the ratio).
//!
//! ```text
//! cargo run --release -p benches --bin client_perf -- produce BOOTSTRAP TOPIC [--records N]
//!     [--record-size B] [--acks 0|1|all] [--linger-ms MS] [--batch-size B] [--compression C]
//! cargo run --release -p benches --bin client_perf -- consume BOOTSTRAP TOPIC [--records N]
//! ```
//! Prints one summary line, `rust-producer records=... secs=... rec_per_s=... mb_per_s=...`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_client::consumer::{Consumer, ConsumerConfig, Offset};
use kafka_client::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use kafka_client::protocol::record::Compression;
use kafka_client::{ClientConfig, TopicPartition};

struct Options {
    mode: String,
    bootstrap: String,
    topic: String,
    records: u64,
    record_size: usize,
    acks: Acks,
    linger: Duration,
    batch_size: usize,
    compression: Compression,
    /// `--ca-file`: connect over TLS, trusting this CA (PEM).
    ca_file: Option<String>,
}

impl Options {
    fn client(&self) -> kafka_client::Result<ClientConfig> {
        let client = ClientConfig::new(&self.bootstrap)?;
        Ok(match &self.ca_file {
            Some(ca) => client.with_tls(kafka_client::TlsConfig::new().with_ca_file(ca)),
            None => client,
        })
    }
}

fn parse() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut next = |what: &str| args.next().ok_or(format!("missing {what}"));
    let mut o = Options {
        mode: next("mode (produce|consume)")?,
        bootstrap: next("BOOTSTRAP")?,
        topic: next("TOPIC")?,
        records: 2_000_000,
        record_size: 100,
        acks: Acks::Leader,
        linger: Duration::from_millis(5),
        batch_size: 65536,
        compression: Compression::None,
        ca_file: None,
    };
    while let Ok(flag) = next("flag") {
        let value = next(&flag)?;
        let bad = |e: String| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--records" => o.records = value.parse().map_err(|e| bad(format!("{e}")))?,
            "--record-size" => o.record_size = value.parse().map_err(|e| bad(format!("{e}")))?,
            "--linger-ms" => {
                o.linger = Duration::from_millis(value.parse().map_err(|e| bad(format!("{e}")))?)
            }
            "--ca-file" => o.ca_file = Some(value),
            "--batch-size" => o.batch_size = value.parse().map_err(|e| bad(format!("{e}")))?,
            "--compression" => o.compression = value.parse().map_err(|e| bad(format!("{e:?}")))?,
            "--acks" => {
                o.acks = match value.as_str() {
                    "0" => Acks::None,
                    "1" => Acks::Leader,
                    "all" | "-1" => Acks::All,
                    _ => return Err(bad("acks is 0, 1 or all".into())),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(o)
}

fn summary(kind: &str, o: &Options, records: u64, bytes: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{kind} records={records} record_size={} secs={secs:.3} rec_per_s={:.1} mb_per_s={:.2}",
        o.record_size,
        records as f64 / secs,
        bytes as f64 / secs / (1024.0 * 1024.0)
    );
}

async fn produce(o: &Options) -> kafka_client::Result<()> {
    let config = ProducerConfig::default()
        .with_acks(o.acks)
        .with_linger(o.linger)
        .with_batch_size(o.batch_size)
        .with_compression(o.compression);
    let producer = Producer::new(o.client()?, config).await?;
    // Same payload for every record, like ProducerPerformance's random payload pool of one.
    let payload = Bytes::from(
        (0..o.record_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let started = Instant::now();
    let mut pending = VecDeque::new();
    for _ in 0..o.records {
        let record = ProducerRecord {
            topic: o.topic.clone(),
            value: Some(payload.clone()),
            ..Default::default()
        };
        pending.push_back(producer.send(record).await?);
        if pending.len() > 200_000 {
            pending.pop_front().expect("not empty").await?;
        }
    }
    for delivery in pending {
        delivery.await?;
    }
    let elapsed = started.elapsed();
    producer.close().await?;
    summary(
        "rust-producer",
        o,
        o.records,
        o.records * o.record_size as u64,
        elapsed,
    );
    Ok(())
}

/// Reads `records` records from the start of every partition of the topic.
async fn consume(o: &Options) -> kafka_client::Result<()> {
    let client = o.client()?;
    let partitions = kafka_client::admin::Admin::new(client.clone())
        .await?
        .describe_topic(&o.topic)
        .await?
        .partitions
        .len() as i32;
    let mut consumer = Consumer::new(client, ConsumerConfig::default()).await?;
    let assignment: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(o.topic.clone(), p))
        .collect();
    consumer.assign(assignment.clone());
    for tp in &assignment {
        consumer.seek(tp, Offset::Earliest).await?;
    }
    let started = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    while count < o.records {
        let record = consumer.recv().await?;
        bytes += record.value.as_ref().map_or(0, |v| v.len() as u64);
        count += 1;
    }
    summary("rust-consumer", o, count, bytes, started.elapsed());
    Ok(())
}

#[tokio::main]
async fn main() {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("client_perf: {e}\nusage: client_perf produce|consume BOOTSTRAP TOPIC [--records N] [--record-size B] [--acks A] [--linger-ms MS] [--batch-size B] [--compression C] [--ca-file PEM]");
            std::process::exit(2);
        }
    };
    let result = match options.mode.as_str() {
        "produce" => produce(&options).await,
        "consume" => consume(&options).await,
        other => {
            eprintln!("client_perf: unknown mode {other:?} (produce|consume)");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("client_perf: {e}");
        std::process::exit(1);
    }
}
