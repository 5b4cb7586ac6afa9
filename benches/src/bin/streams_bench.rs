//! A stateless pipeline on the `streams` crate — consume JSON purchases, keep those with
//! `amount >= 10`, map them to `{username, currency, amount_cents}`, produce them keyed by
//! username — the Rust half of the streams-vs-Faust comparison (benches/streams-vs-faust,
//! figures in benches/STREAMS.md). The Faust half is benches/streams-vs-faust/faust_pipeline.py.
//!
//! ```text
//! streams_bench prefill BOOTSTRAP INPUT N [--partitions P] [--event-time-step-ms S]
//!     creates INPUT (P partitions, default 3) and writes N purchases (~100 bytes each, keyed
//!     by username, amount 0..=19 so about half pass the filter); prints
//!     `prefill records=N expected_outputs=K secs=..`. With `--event-time-step-ms S` the
//!     records carry explicit timestamps S ms apart, the last one about now (for windows);
//!     without it the producer stamps them with the send time.
//! streams_bench BOOTSTRAP INPUT OUTPUT N [--app-id ID] [--linger-ms MS]
//!     [--commit-interval-ms MS] [--commit-every EVENTS]
//!     runs the pipeline as app ID (its consumer group; default `streams-bench`; the
//!     framework's settings `producer_linger`, `broker_commit_interval`, `broker_commit_every`
//!     where given, else their defaults) from the
//!     earliest offsets until it has consumed N input events, then stops gracefully (in-flight
//!     sends acknowledged, offsets committed, group left) and prints
//!     `rust-streams events=N outputs=K secs=.. ev_per_s=.. first_event_s=.. last_event_s=..`,
//!     all timed from process start (first/last: when the agent saw the first and the Nth
//!     input event).
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use benches::purchases::{purchase, Priced, Purchase};
use bytes::Bytes;
use futures::future::ready;
use futures::StreamExt;
use kafka_client::admin::{Admin, CreateTopicsOptions, NewTopic};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::ClientConfig;
use streams::App;

fn usage() -> ExitCode {
    eprintln!(
        "usage: streams_bench BOOTSTRAP INPUT OUTPUT N [--app-id ID] [--linger-ms MS] \
         [--commit-interval-ms MS] [--commit-every EVENTS]\n       \
         streams_bench prefill BOOTSTRAP INPUT N [--partitions P] [--event-time-step-ms S]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("streams_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("prefill") if args.len() >= 4 => {
            let Ok(n) = args[3].parse::<u64>() else {
                return usage();
            };
            let partitions = match flag(&args[4..], "--partitions").map(|p| p.parse::<i32>()) {
                None => 3,
                Some(Ok(p)) => p,
                Some(Err(_)) => return usage(),
            };
            let step_ms = match flag(&args[4..], "--event-time-step-ms").map(|s| s.parse::<i64>()) {
                None => None,
                Some(Ok(s)) if s > 0 => Some(s),
                Some(_) => return usage(),
            };
            runtime.block_on(prefill(&args[1], &args[2], n, partitions, step_ms))
        }
        Some(_) if args.len() >= 4 => {
            let Ok(n) = args[3].parse::<u64>() else {
                return usage();
            };
            let app_id = flag(&args[4..], "--app-id").unwrap_or("streams-bench");
            let mut tuning = Tuning::default();
            for (name, slot) in [
                ("--linger-ms", &mut tuning.linger_ms),
                ("--commit-interval-ms", &mut tuning.commit_interval_ms),
                ("--commit-every", &mut tuning.commit_every),
            ] {
                match flag(&args[4..], name).map(|s| s.parse::<u64>()) {
                    None => {}
                    Some(Ok(v)) => *slot = Some(v),
                    Some(Err(_)) => return usage(),
                }
            }
            runtime.block_on(pipeline(
                &args[0], &args[1], &args[2], n, app_id, &tuning, started,
            ))
        }
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streams_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn flag<'a>(rest: &'a [String], name: &str) -> Option<&'a str> {
    rest.iter()
        .position(|a| a == name)
        .and_then(|i| rest.get(i + 1))
        .map(String::as_str)
}

/// Framework settings given on the command line (the latency section of benches/peers
/// compares them with the defaults).
#[derive(Default)]
struct Tuning {
    linger_ms: Option<u64>,
    commit_interval_ms: Option<u64>,
    commit_every: Option<u64>,
}

async fn prefill(
    bootstrap: &str,
    topic: &str,
    n: u64,
    partitions: i32,
    event_time_step_ms: Option<i64>,
) -> Result<(), Box<dyn std::error::Error>> {
    // Explicit event times end about now: older than the broker's retention (7 days) they
    // would be deleted, over an hour ahead they would be rejected.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let first_ms = event_time_step_ms.map(|step| {
        let first = now_ms - step.saturating_mul(n as i64);
        first - first.rem_euclid(60_000)
    });
    let client = ClientConfig::new(bootstrap)?;
    Admin::new(client.clone())
        .await?
        .create_topics_with(
            vec![NewTopic::new(topic, partitions, 1)],
            CreateTopicsOptions {
                ignore_existing: true,
                ..Default::default()
            },
        )
        .await?;
    let producer = Producer::new(client, ProducerConfig::default()).await?;
    let started = Instant::now();
    let (mut expected, mut bytes) = (0u64, 0u64);
    let mut pending = std::collections::VecDeque::new();
    for i in 0..n {
        let p = purchase(i);
        if p.amount >= 10 {
            expected += 1;
        }
        let value = serde_json::to_vec(&p)?;
        bytes += value.len() as u64;
        let record = ProducerRecord {
            topic: topic.to_owned(),
            key: Some(Bytes::from(p.username.into_bytes())),
            value: Some(Bytes::from(value)),
            timestamp: first_ms
                .zip(event_time_step_ms)
                .map(|(t, s)| t + s * i as i64),
            ..Default::default()
        };
        pending.push_back(producer.send(record).await?);
        if pending.len() > 100_000 {
            pending.pop_front().expect("not empty").await?;
        }
    }
    for delivery in pending {
        delivery.await?;
    }
    producer.close().await?;
    println!(
        "prefill records={n} expected_outputs={expected} avg_value_bytes={:.1} secs={:.3}",
        bytes as f64 / n.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn pipeline(
    bootstrap: &str,
    input: &str,
    output: &str,
    n: u64,
    app_id: &str,
    tuning: &Tuning,
    started: Instant,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = App::builder(app_id)
        .broker(&format!("kafka://{bootstrap}"))
        .topic_partitions(3)
        .consumer_auto_offset_reset("earliest");
    if let Some(ms) = tuning.linger_ms {
        builder = builder.producer_linger(std::time::Duration::from_millis(ms));
    }
    if let Some(ms) = tuning.commit_interval_ms {
        builder = builder.broker_commit_interval(std::time::Duration::from_millis(ms));
    }
    if let Some(events) = tuning.commit_every {
        builder = builder.broker_commit_every(events as usize);
    }
    let app = builder.build()?;
    let purchases = app.topic::<String, Purchase>(input);
    let priced = app.topic::<String, Priced>(output);
    let consumed = Arc::new(AtomicU64::new(0));
    let produced = Arc::new(AtomicU64::new(0));
    // Microseconds since process start when the agent saw the first and the Nth input event.
    let first_us = Arc::new(AtomicU64::new(0));
    let last_us = Arc::new(AtomicU64::new(0));

    let (stopper, seen, sent) = (app.clone(), consumed.clone(), produced.clone());
    let (first, last) = (first_us.clone(), last_us.clone());
    app.agent(&purchases, move |stream| async move {
        let mut out = stream
            .items()
            .inspect(move |_| {
                // Every input event counts, kept or not; the Nth one asks for a graceful
                // stop, which still lets this event (and its send) finish.
                let count = seen.fetch_add(1, Ordering::Relaxed) + 1;
                if count == 1 {
                    first.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                if count == n {
                    last.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    stopper.stop();
                }
            })
            .filter(|(_, p)| ready(p.amount >= 10))
            .map(|(key, p)| {
                let value = Priced {
                    username: p.username,
                    currency: p.currency,
                    amount_cents: u64::from(p.amount) * 100,
                };
                (key, value)
            });
        while let Some((key, value)) = out.next().await {
            match key {
                Some(key) => priced.send(key, value).await?,
                None => priced.send_value(value).await?,
            }
            sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok::<(), streams::Error>(())
    });

    app.run().await?;
    let secs = started.elapsed().as_secs_f64();
    let events = consumed.load(Ordering::Relaxed);
    if events < n {
        return Err(format!("stopped after {events} of {n} input events").into());
    }
    println!(
        "rust-streams events={events} outputs={} secs={secs:.3} ev_per_s={:.1} \
         first_event_s={:.3} last_event_s={:.3}",
        produced.load(Ordering::Relaxed),
        events as f64 / secs,
        first_us.load(Ordering::Relaxed) as f64 / 1e6,
        last_us.load(Ordering::Relaxed) as f64 / 1e6,
    );
    Ok(())
}
