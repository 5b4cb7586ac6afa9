//! What one Kafka transaction costs our client on a broker: the floor under every commit of an
//! exactly-once app (benches/peers `--only eos`; BENCHMARKS.md "Exactly-once").
//!
//! ```text
//! txn_bench BOOTSTRAP TOPIC [--txns N] [--records R] [--group G]
//!     creates TOPIC (3 partitions) if missing; one transactional producer; N transactions
//!     (default 200), each: begin, R records (default 1,000, ~100 bytes, keyed, so spread over
//!     the partitions), send_offsets_to_transaction (one offset, group G, default
//!     `txn-bench`, no generation), flush (every record acknowledged), commit (EndTxn: with
//!     the records flushed, only the coordinator's round trip); prints per step the mean,
//!     p50, p99 in ms and `txn_per_s`, and the CPU of the process.
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_client::admin::{Admin, CreateTopicsOptions, NewTopic};
use kafka_client::group::ConsumerGroupMetadata;
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let (mut txns, mut records, mut group) = (200usize, 1000usize, "txn-bench".to_owned());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let value = |it: &mut std::vec::IntoIter<String>| it.next().unwrap_or_default();
        match a.as_str() {
            "--txns" => txns = value(&mut it).parse().unwrap_or(0),
            "--records" => records = value(&mut it).parse().unwrap_or(0),
            "--group" => group = value(&mut it),
            _ => positional.push(a),
        }
    }
    let [bootstrap, topic] = positional.as_slice() else {
        eprintln!("usage: txn_bench BOOTSTRAP TOPIC [--txns N] [--records R] [--group G]");
        return ExitCode::from(2);
    };
    if txns == 0 {
        eprintln!("txn_bench: --txns must be positive");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(bootstrap, topic, txns, records, &group)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("txn_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn summary(name: &str, mut times: Vec<Duration>) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / times.len() as f64;
    let at =
        |q: f64| ms(times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1]);
    format!(
        "{name}_mean_ms={mean:.2} {name}_p50_ms={:.2} {name}_p99_ms={:.2}",
        at(0.5),
        at(0.99)
    )
}

async fn run(
    bootstrap: &str,
    topic: &str,
    txns: usize,
    records: usize,
    group: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = ClientConfig::new(bootstrap)?;
    Admin::new(client.clone())
        .await?
        .create_topics_with(
            vec![NewTopic::new(topic, 3, 1)],
            CreateTopicsOptions {
                ignore_existing: true,
                ..Default::default()
            },
        )
        .await?;
    let init = Instant::now();
    let producer = Producer::new(
        client,
        ProducerConfig::default()
            .with_transactional_id(format!("txn-bench-{}", std::process::id())),
    )
    .await?;
    let init = init.elapsed();
    let group = ConsumerGroupMetadata::group_only(group);
    let value = Bytes::from(vec![b'x'; 100]);
    let (mut offsets, mut flushes, mut commits, mut totals) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for t in 0..txns {
        let begun = Instant::now();
        producer.begin_transaction()?;
        let mut acks = Vec::with_capacity(records);
        for r in 0..records {
            let record = ProducerRecord::new(topic)
                .key(Bytes::from(format!("key-{}", r % 1000)))
                .value(value.clone());
            acks.push(producer.send(record).await?);
        }
        let at = Instant::now();
        producer
            .send_offsets_to_transaction(vec![(TopicPartition::new(topic, 0), t as i64)], &group)
            .await?;
        offsets.push(at.elapsed());
        let at = Instant::now();
        producer.flush().await;
        for ack in acks {
            ack.await?;
        }
        flushes.push(at.elapsed());
        let at = Instant::now();
        producer.commit_transaction().await?;
        commits.push(at.elapsed());
        totals.push(begun.elapsed());
    }
    let secs = started.elapsed().as_secs_f64();
    producer.close().await?;
    println!(
        "txn_bench txns={txns} records_per_txn={records} init_ms={:.1} txn_per_s={:.1} {} {} {} {}",
        init.as_secs_f64() * 1000.0,
        txns as f64 / secs,
        summary("send_offsets", offsets),
        summary("flush", flushes),
        summary("commit", commits),
        summary("txn", totals)
    );
    Ok(())
}
