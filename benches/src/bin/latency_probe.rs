//! End-to-end latency through a stateless agent (benches/peers/run.sh, section `latency`):
//! produce purchases at fixed rates into INPUT, read the agent's outputs from OUTPUT, and
//! report percentiles of send → receipt per rate, plus one event sent after an idle pause.
//!
//! ```text
//! latency_probe plan --rates 1000,10000 --secs S [--warmup W]
//!     prints the number of input events `run` will send with these settings (the agent's N)
//! latency_probe run BOOTSTRAP INPUT OUTPUT --rates 1000,10000 --secs S [--idle-secs I]
//!     [--warmup W] [--drain-secs D]
//! ```
//!
//! The records are benches/streams-vs-faust's purchases (JSON, ~100 bytes) with `amount >= 10`,
//! so every one passes the pipeline's filter. The send time travels in the key,
//! `PHASE:MICROS` (microseconds since the probe started, one monotonic clock for sending and
//! receiving); the agents copy the key to their output. First `W` warm-up events (default
//! 2,000 at 1,000/s) must all come back (the agent has started and joined its group) and are
//! not counted. Then per rate: S seconds of sends paced to the rate, then up to D seconds
//! (default 30) for the stragglers; a phase whose events do not all come back within that is
//! reported and the later phases are skipped (the agent cannot keep up). Last, after I seconds
//! (default 10) with no traffic, a single event. Prints per phase
//! `latency phase=P sent=.. received=.. send_rate=.. p50_ms=.. p99_ms=.. p999_ms=.. max_ms=..`.
//! The probe's own producer sends with linger 0, so its batching adds as little as it can;
//! the percentiles include the probe's produce and fetch.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_client::consumer::{Consumer, ConsumerConfig, Offset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use serde::Serialize;

#[derive(Serialize)]
struct Purchase<'a> {
    username: String,
    currency: &'a str,
    amount: u32,
    note: &'a str,
}

struct Options {
    rates: Vec<u64>,
    secs: u64,
    idle_secs: u64,
    warmup: u64,
    drain_secs: u64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn usage() -> ExitCode {
    eprintln!(
        "usage: latency_probe plan --rates R1,R2.. --secs S [--warmup W]\n       \
         latency_probe run BOOTSTRAP INPUT OUTPUT --rates R1,R2.. --secs S [--idle-secs I] \
         [--warmup W] [--drain-secs D]"
    );
    ExitCode::from(2)
}

fn parse_options(rest: &[String]) -> Result<Options, String> {
    let mut o = Options {
        rates: vec![1000, 10_000],
        secs: 5,
        idle_secs: 10,
        warmup: 2000,
        drain_secs: 30,
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--rates" => {
                o.rates = value.split(',').map(num).collect::<Result<_, _>>()?;
                if o.rates.contains(&0) {
                    return Err("--rates must be > 0".into());
                }
            }
            "--secs" => o.secs = num(value)?,
            "--idle-secs" => o.idle_secs = num(value)?,
            "--warmup" => o.warmup = num(value)?,
            "--drain-secs" => o.drain_secs = num(value)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(o)
}

impl Options {
    /// Every input event `run` sends: warm-up, the phases, the idle probe.
    fn total_events(&self) -> u64 {
        self.warmup + self.rates.iter().map(|r| r * self.secs).sum::<u64>() + 1
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plan") => match parse_options(&args[1..]) {
            Ok(o) => {
                println!("{}", o.total_events());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("latency_probe: {e}");
                usage()
            }
        },
        Some("run") if args.len() >= 4 => {
            let o = match parse_options(&args[4..]) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("latency_probe: {e}");
                    return usage();
                }
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("latency_probe: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(&args[1], &args[2], &args[3], &o)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("latency_probe: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => usage(),
    }
}

/// What the receiving task saw: latencies in microseconds per phase, and a count per phase.
#[derive(Default)]
struct Received {
    latencies_us: Vec<Vec<u64>>,
}

impl Received {
    fn count(&self, phase: usize) -> usize {
        self.latencies_us.get(phase).map_or(0, Vec::len)
    }
}

async fn run(bootstrap: &str, input: &str, output: &str, o: &Options) -> Result<(), BoxError> {
    let epoch = Instant::now();
    let client = ClientConfig::new(bootstrap)?;
    let partitions = kafka_client::admin::Admin::new(client.clone())
        .await?
        .describe_topic(output)
        .await?
        .partitions
        .len() as i32;
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default()).await?;
    let assignment: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(output, p))
        .collect();
    consumer.assign(assignment.clone());
    for tp in &assignment {
        consumer.seek(tp, Offset::Latest).await?;
    }
    // Phase 0 is the warm-up, 1..=rates.len() the rates, the last the idle probe.
    let phases = o.rates.len() + 2;
    let received = Arc::new(Mutex::new(Received {
        latencies_us: vec![Vec::new(); phases],
    }));
    let sink = received.clone();
    let receiver = tokio::spawn(async move {
        loop {
            let record = consumer.recv().await?;
            let now_us = epoch.elapsed().as_micros() as u64;
            let key = record.key.as_deref().unwrap_or_default();
            let parsed = std::str::from_utf8(key).ok().and_then(|k| {
                let (phase, sent) = k.split_once(':')?;
                Some((phase.parse::<usize>().ok()?, sent.parse::<u64>().ok()?))
            });
            let Some((phase, sent_us)) = parsed else {
                return Err::<(), BoxError>(
                    format!("output record with a key not sent by the probe: {key:?}").into(),
                );
            };
            let mut seen = sink.lock().expect("receiver state");
            if let Some(list) = seen.latencies_us.get_mut(phase) {
                list.push(now_us.saturating_sub(sent_us));
            }
        }
    });

    let producer = Producer::new(
        client,
        ProducerConfig::default().with_linger(Duration::ZERO),
    )
    .await?;
    let mut sender = Sender {
        producer,
        input: input.to_owned(),
        epoch,
        pending: VecDeque::new(),
        seq: 0,
    };
    let wait_all = |phase: usize, want: u64, within: Duration| {
        let received = received.clone();
        async move {
            let deadline = Instant::now() + within;
            while Instant::now() < deadline {
                if received.lock().expect("state").count(phase) as u64 >= want {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            false
        }
    };

    sender.paced(0, 1000, o.warmup).await?;
    if !wait_all(0, o.warmup, Duration::from_secs(120)).await {
        return Err(format!(
            "the agent returned {} of {} warm-up events within 120 s after they were sent",
            received.lock().expect("state").count(0),
            o.warmup
        )
        .into());
    }
    let mut saturated = false;
    for (i, &rate) in o.rates.iter().enumerate() {
        let phase = i + 1;
        if saturated {
            println!("latency phase={rate} skipped=1");
            continue;
        }
        let n = rate * o.secs;
        let started = Instant::now();
        sender.paced(phase, rate, n).await?;
        let send_rate = n as f64 / started.elapsed().as_secs_f64();
        let complete = wait_all(phase, n, Duration::from_secs(o.drain_secs)).await;
        report(&rate.to_string(), n, send_rate, &received, phase);
        saturated = !complete;
    }
    if !saturated {
        tokio::time::sleep(Duration::from_secs(o.idle_secs)).await;
        let phase = phases - 1;
        sender.paced(phase, 1, 1).await?;
        wait_all(phase, 1, Duration::from_secs(o.drain_secs)).await;
        report(&format!("idle{}s", o.idle_secs), 1, 0.0, &received, phase);
    } else {
        println!("latency phase=idle{}s skipped=1", o.idle_secs);
    }
    sender.finish().await?;
    if receiver.is_finished() {
        return match receiver.await {
            Ok(Err(e)) => Err(e),
            _ => Err("the receiving task stopped".into()),
        };
    }
    receiver.abort();
    Ok(())
}

struct Sender {
    producer: Producer,
    input: String,
    epoch: Instant,
    pending: VecDeque<kafka_client::producer::DeliveryFuture>,
    seq: u64,
}

impl Sender {
    /// Sends `n` events of `phase` at `rate` per second, each at its scheduled time (sends
    /// that fall behind go out at once, so the average rate holds).
    async fn paced(&mut self, phase: usize, rate: u64, n: u64) -> Result<(), BoxError> {
        let start = Instant::now();
        for i in 0..n {
            let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
            self.send(phase).await?;
        }
        Ok(())
    }

    async fn send(&mut self, phase: usize) -> Result<(), BoxError> {
        let seq = self.seq;
        self.seq += 1;
        let value = serde_json::to_vec(&Purchase {
            username: format!("user-{}", seq % 1000),
            currency: "EUR",
            amount: 15,
            note: "gift card, paid online, delivered by mail",
        })?;
        let sent_us = self.epoch.elapsed().as_micros() as u64;
        let record = ProducerRecord {
            topic: self.input.clone(),
            key: Some(Bytes::from(format!("{phase}:{sent_us}"))),
            value: Some(Bytes::from(value)),
            ..Default::default()
        };
        self.pending.push_back(self.producer.send(record).await?);
        // Keep the queue of unacknowledged sends short without waiting on the newest.
        while self.pending.len() > 10_000 {
            self.pending.pop_front().expect("not empty").await?;
        }
        Ok(())
    }

    async fn finish(self) -> Result<(), BoxError> {
        for delivery in self.pending {
            delivery.await?;
        }
        self.producer.close().await?;
        Ok(())
    }
}

fn report(name: &str, sent: u64, send_rate: f64, received: &Mutex<Received>, phase: usize) {
    let mut latencies = received.lock().expect("state").latencies_us[phase].clone();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1] as f64 / 1000.0
    };
    println!(
        "latency phase={name} sent={sent} received={} send_rate={send_rate:.1} p50_ms={:.3} \
         p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        pct(0.999),
        pct(1.0),
    );
}
