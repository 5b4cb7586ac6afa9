//! rskafka's producer and consumer throughput, with the settings of client_perf and
//! ProducerPerformance where rskafka has them (benches/peers/client.sh runs all clients).
//!
//! ```text
//! rskafka-perf produce BOOTSTRAP TOPIC [--records N] [--record-size B] [--compression none|lz4]
//! rskafka-perf consume BOOTSTRAP TOPIC [--records N] [--record-size B]
//! ```
//!
//! Partition 0 only (the harness uses one-partition topics). The producer is rskafka's
//! `BatchProducer` with a 64 KiB `RecordAggregator` and 5 ms linger (batch.size and linger.ms
//! of the others); rskafka always asks for acks=all (the others use acks=1, the same on a
//! one-node broker). Records have no key, values are the same bytes for every record, and up
//! to 200,000 sends are in flight, as in client_perf. The consumer is a `StreamConsumer` from
//! the earliest offset. Prints `rskafka-producer records=.. record_size=.. secs=.. rec_per_s=..
//! mb_per_s=..` (or rskafka-consumer), timed from the first send / first fetch to the last
//! acknowledgement / record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use rskafka::client::consumer::{StartOffset, StreamConsumerBuilder};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::producer::aggregator::RecordAggregator;
use rskafka::client::producer::BatchProducerBuilder;
use rskafka::client::ClientBuilder;
use rskafka::record::Record;

struct Options {
    mode: String,
    bootstrap: String,
    topic: String,
    records: u64,
    record_size: usize,
    compression: Compression,
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
        compression: Compression::NoCompression,
    };
    while let Ok(flag) = next("flag") {
        let value = next(&flag)?;
        match flag.as_str() {
            "--records" => o.records = value.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--record-size" => o.record_size = value.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--compression" => {
                o.compression = match value.as_str() {
                    "none" => Compression::NoCompression,
                    "lz4" => Compression::Lz4,
                    _ => return Err(format!("{flag} {value}: none or lz4")),
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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn produce(o: &Options) -> Result<(), BoxError> {
    let client = ClientBuilder::new(vec![o.bootstrap.clone()])
        .build()
        .await?;
    let partition = Arc::new(
        client
            .partition_client(o.topic.clone(), 0, UnknownTopicHandling::Retry)
            .await?,
    );
    let producer = Arc::new(
        BatchProducerBuilder::new(partition)
            .with_linger(Duration::from_millis(5))
            .with_compression(o.compression)
            .build(RecordAggregator::new(65536)),
    );
    let payload: Vec<u8> = (0..o.record_size).map(|i| b'a' + (i % 26) as u8).collect();
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    for _ in 0..o.records {
        let record = Record {
            key: None,
            value: Some(payload.clone()),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        };
        let producer = producer.clone();
        in_flight.push(async move { producer.produce(record).await });
        if in_flight.len() >= 200_000 {
            in_flight.next().await.expect("not empty")?;
        }
    }
    while let Some(result) = in_flight.next().await {
        result?;
    }
    summary(
        "rskafka-producer",
        o,
        o.records,
        o.records * o.record_size as u64,
        started.elapsed(),
    );
    Ok(())
}

async fn consume(o: &Options) -> Result<(), BoxError> {
    let client = ClientBuilder::new(vec![o.bootstrap.clone()])
        .build()
        .await?;
    let partition = Arc::new(
        client
            .partition_client(o.topic.clone(), 0, UnknownTopicHandling::Retry)
            .await?,
    );
    let mut stream = StreamConsumerBuilder::new(partition, StartOffset::Earliest).build();
    let started = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    while count < o.records {
        let (record, _high_watermark) = stream.next().await.ok_or("the stream ended")??;
        bytes += record.record.value.as_ref().map_or(0, |v| v.len() as u64);
        count += 1;
    }
    summary("rskafka-consumer", o, count, bytes, started.elapsed());
    Ok(())
}

#[tokio::main]
async fn main() {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rskafka-perf: {e}\nusage: rskafka-perf produce|consume BOOTSTRAP TOPIC [--records N] [--record-size B] [--compression none|lz4]");
            std::process::exit(2);
        }
    };
    let result = match options.mode.as_str() {
        "produce" => produce(&options).await,
        "consume" => consume(&options).await,
        other => Err(format!("unknown mode {other:?} (produce|consume)").into()),
    };
    if let Err(e) = result {
        eprintln!("rskafka-perf: {e}");
        std::process::exit(1);
    }
}
