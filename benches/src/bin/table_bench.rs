//! Tables on the `streams` crate: a stateful count by key (the Rust side of Kafka Streams'
//! `groupByKey().count()` in benches/peers), the recovery rate of a table from its changelog,
//! and the time from a restart to the first processed event.
//!
//! ```text
//! table_bench count [--store URL] BOOTSTRAP INPUT OUTPUT N [--app-id ID]
//!     counts the purchases of INPUT (streams_bench prefill) per key in table `counts` and
//!     sends each new count to OUTPUT, until N events; stops gracefully and prints
//!     `rust-table events=N outputs=K secs=..` (timed from process start).
//! table_bench window-hopping [--store URL] BOOTSTRAP INPUT OUTPUT N [--app-id ID]
//!     the same over a hopping windowed table (5-minute windows advancing by 1 minute, 1 minute
//!     of grace, kept an hour: Kafka Streams' `window-hopping` in benches/peers), time from the
//!     record timestamps (`streams_bench prefill --event-time-step-ms`); sends each event's
//!     current window count to OUTPUT; prints `rust-window events=N outputs=K late=L secs=..`.
//! table_bench recovery [--store URL] BOOTSTRAP --keys K [--app-id ID]
//!     writes K keys to the changelog of table `counts` of app ID (3 partitions), then starts
//!     the app and times it from start until every table partition is active; prints
//!     `recovery keys=K replayed=R secs=.. records_per_s=..`.
//! table_bench first-event [--store URL] BOOTSTRAP [--app-id ID] [--instance-id NAME]
//!     sends one purchase to ID-in, starts the app (a table `counts` updated from ID-in) and
//!     prints `first-event ms=.. replayed=R entries=E`, the milliseconds from process start to
//!     the event being processed; then waits to be killed. With --instance-id the worker is a
//!     static group member (`worker_instance_id`), as a restarted worker must be to get its
//!     partitions back without waiting for its old session to expire.
//! ```
//!
//! Default store `memory://`, default app id `table-bench`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use kafka_client::admin::{Admin, CreateTopicsOptions, NewTopic};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::ClientConfig;
use streams::{App, PartitionStatus};

const PARTITIONS: i32 = 3;

struct Args {
    store: String,
    app_id: String,
    keys: u64,
    instance: Option<String>,
    rest: Vec<String>,
}

fn parse(args: Vec<String>) -> Option<Args> {
    let mut out = Args {
        store: "memory://".into(),
        app_id: "table-bench".into(),
        keys: 0,
        instance: None,
        rest: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" => out.store = it.next()?,
            "--app-id" => out.app_id = it.next()?,
            "--keys" => out.keys = it.next()?.parse().ok()?,
            "--instance-id" => out.instance = Some(it.next()?),
            _ => out.rest.push(a),
        }
    }
    Some(out)
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: table_bench count [--store URL] BOOTSTRAP INPUT OUTPUT N [--app-id ID]\n       \
         table_bench recovery [--store URL] BOOTSTRAP --keys K [--app-id ID]\n       \
         table_bench first-event [--store URL] BOOTSTRAP [--app-id ID]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let started = Instant::now();
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        return usage();
    }
    let mode = argv.remove(0);
    let Some(args) = parse(argv) else {
        return usage();
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(async {
        match (mode.as_str(), args.rest.as_slice()) {
            ("count", [bootstrap, input, output, n]) => {
                let n = n.parse().map_err(|e| format!("N: {e}"))?;
                count(started, &args, bootstrap, input, output, n).await
            }
            ("window-hopping", [bootstrap, input, output, n]) => {
                let n = n.parse().map_err(|e| format!("N: {e}"))?;
                window_hopping(started, &args, bootstrap, input, output, n).await
            }
            ("recovery", [bootstrap]) if args.keys > 0 => recovery(&args, bootstrap).await,
            ("first-event", [bootstrap]) => first_event(started, &args, bootstrap).await,
            _ => Err("bad arguments".to_owned()),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e == "bad arguments" => usage(),
        Err(e) => {
            eprintln!("table_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn app(args: &Args, bootstrap: &str) -> Result<App, String> {
    let mut builder = App::builder(&args.app_id)
        .broker(&format!("kafka://{bootstrap}"))
        .store(&args.store)
        .topic_partitions(PARTITIONS);
    if let Some(id) = &args.instance {
        builder = builder.worker_instance_id(id);
    }
    builder.build().map_err(|e| e.to_string())
}

async fn count(
    started: Instant,
    args: &Args,
    bootstrap: &str,
    input: &str,
    output: &str,
    n: u64,
) -> Result<(), String> {
    let app = app(args, bootstrap)?;
    // The input's keys and values as bytes: the count needs the key only.
    let purchases = app
        .topic::<String, serde_json::Value>(input)
        .value_serializer("raw");
    let out = app.topic::<String, i64>(output);
    let counts = app
        .table::<String, i64>("counts")
        .map_err(|e| e.to_string())?
        .with_default(i64::default);
    let events = Arc::new(AtomicU64::new(0));
    let outputs = Arc::new(AtomicU64::new(0));
    let (seen, sent, table, stopper) =
        (events.clone(), outputs.clone(), counts.clone(), app.clone());
    app.agent_builder("count", &purchases)
        .table(&counts)
        .run_once(move |mut stream| async move {
            while let Some(event) = stream.next().await {
                let key = event.key.clone().unwrap_or_default();
                let count = table.update(&key, |c| *c += 1)?;
                out.send(key, count).await?;
                sent.fetch_add(1, Ordering::Relaxed);
                if seen.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    stopper.stop();
                }
            }
            Ok::<(), streams::Error>(())
        });
    app.run().await.map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let events = events.load(Ordering::Relaxed);
    println!(
        "rust-table events={events} outputs={} secs={secs:.3} ev_per_s={:.1}",
        outputs.load(Ordering::Relaxed),
        events as f64 / secs
    );
    Ok(())
}

async fn window_hopping(
    started: Instant,
    args: &Args,
    bootstrap: &str,
    input: &str,
    output: &str,
    n: u64,
) -> Result<(), String> {
    let app = app(args, bootstrap)?;
    let purchases = app
        .topic::<String, serde_json::Value>(input)
        .value_serializer("raw");
    let out = app.topic::<String, i64>(output);
    let counts = app
        .table::<String, i64>("window-counts")
        .map_err(|e| e.to_string())?
        .with_default(i64::default);
    let mins = |m: u64| Duration::from_secs(60 * m);
    let plain = counts.clone();
    let windows = counts
        .hopping(mins(5), mins(1))
        .and_then(|w| w.grace(mins(1)))
        .and_then(|w| w.expires(mins(60)))
        .map_err(|e| e.to_string())?;
    let events = Arc::new(AtomicU64::new(0));
    let outputs = Arc::new(AtomicU64::new(0));
    let (seen, sent, table, stopper) = (
        events.clone(),
        outputs.clone(),
        windows.clone(),
        app.clone(),
    );
    app.agent_builder("window-count", &purchases)
        .table(&plain)
        .run_once(move |mut stream| async move {
            while let Some(event) = stream.next().await {
                let key = event.key.clone().unwrap_or_default();
                if let Some(count) = table.at(&event)?.update(&key, |c| *c += 1)? {
                    out.send(key, count).await?;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                if seen.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    stopper.stop();
                }
            }
            Ok::<(), streams::Error>(())
        });
    app.run().await.map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let events = events.load(Ordering::Relaxed);
    println!(
        "rust-window events={events} outputs={} late={} secs={secs:.3} ev_per_s={:.1}",
        outputs.load(Ordering::Relaxed),
        windows.late_events(),
        events as f64 / secs
    );
    Ok(())
}

async fn recovery(args: &Args, bootstrap: &str) -> Result<(), String> {
    let changelog = format!("{}-counts-changelog", args.app_id);
    let client = ClientConfig::new(bootstrap).map_err(|e| e.to_string())?;
    let admin = Admin::new(client.clone())
        .await
        .map_err(|e| e.to_string())?;
    let options = CreateTopicsOptions {
        ignore_existing: true,
        ..Default::default()
    };
    admin
        .create_topics_with(
            vec![NewTopic::new(&changelog, PARTITIONS, 1).with_config("cleanup.policy", "compact")],
            options,
        )
        .await
        .map_err(|e| e.to_string())?;
    let producer = Producer::new(
        client,
        ProducerConfig::default().with_linger(Duration::from_millis(20)),
    )
    .await
    .map_err(|e| e.to_string())?;
    let wrote = Instant::now();
    let mut acks = Vec::new();
    for k in 0..args.keys {
        let key = format!("user-{k:08}");
        let partition = kafka_client::producer::partitioner::partition_for_key(
            key.as_bytes(),
            PARTITIONS as usize,
        );
        let record = ProducerRecord::new(&changelog)
            .partition(partition)
            .key(Bytes::from(key))
            .value(Bytes::from((k % 1000).to_string()));
        acks.push(producer.send(record).await.map_err(|e| e.to_string())?);
        if acks.len() >= 100_000 {
            for ack in acks.drain(..) {
                ack.await.map_err(|e| e.to_string())?;
            }
        }
    }
    for ack in acks {
        ack.await.map_err(|e| e.to_string())?;
    }
    producer.close().await.map_err(|e| e.to_string())?;
    eprintln!(
        "table_bench: wrote {} changelog records in {:.1}s",
        args.keys,
        wrote.elapsed().as_secs_f64()
    );

    let app = app(args, bootstrap)?;
    let input = app.topic::<String, i64>(&format!("{}-in", args.app_id));
    let counts = app
        .table::<String, i64>("counts")
        .map_err(|e| e.to_string())?;
    app.agent_builder("idle", &input)
        .table(&counts)
        .run(|mut s| async move { while s.next().await.is_some() {} });
    let start = Instant::now();
    app.start().await.map_err(|e| e.to_string())?;
    let parts = loop {
        let parts = app.table_partitions().map_err(|e| e.to_string())?;
        if parts.len() == PARTITIONS as usize
            && parts.iter().all(|p| p.status == PartitionStatus::Active)
        {
            break parts;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let secs = start.elapsed().as_secs_f64();
    let replayed: u64 = parts.iter().map(|p| p.replayed).sum();
    let entries: u64 = parts.iter().map(|p| p.entries).sum();
    app.shutdown().await.map_err(|e| e.to_string())?;
    println!(
        "recovery store={} keys={} entries={entries} replayed={replayed} secs={secs:.3} records_per_s={:.1}",
        args.store,
        args.keys,
        replayed as f64 / secs
    );
    Ok(())
}

async fn first_event(started: Instant, args: &Args, bootstrap: &str) -> Result<(), String> {
    let input_name = format!("{}-in", args.app_id);
    let client = ClientConfig::new(bootstrap).map_err(|e| e.to_string())?;
    let producer = Producer::new(client, ProducerConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let record = ProducerRecord::new(&input_name)
        .key("user-first")
        .value("1");
    producer
        .send(record)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    producer.close().await.map_err(|e| e.to_string())?;

    let app = app(args, bootstrap)?;
    let input = app.topic::<String, i64>(&input_name);
    let counts = app
        .table::<String, i64>("counts")
        .map_err(|e| e.to_string())?
        .with_default(i64::default);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let table = counts.clone();
    app.agent_builder("first", &input)
        .table(&counts)
        .run_once(move |mut s| async move {
            let mut tx = Some(tx);
            while let Some(e) = s.next().await {
                let key = e.key.clone().unwrap_or_default();
                table.update(&key, |c| *c += e.value)?;
                if let Some(tx) = tx.take() {
                    let _ = tx.send(started.elapsed());
                }
            }
            Ok::<(), streams::Error>(())
        });
    app.start().await.map_err(|e| e.to_string())?;
    let took = tokio::time::timeout(Duration::from_secs(120), rx)
        .await
        .map_err(|_| "no event within 120 s".to_owned())?
        .map_err(|_| "the agent stopped".to_owned())?;
    let parts = app.table_partitions().map_err(|e| e.to_string())?;
    println!(
        "first-event ms={:.1} replayed={} entries={}",
        took.as_secs_f64() * 1000.0,
        parts.iter().map(|p| p.replayed).sum::<u64>(),
        parts.iter().map(|p| p.entries).sum::<u64>()
    );
    app.commit().await.map_err(|e| e.to_string())?;
    println!("ready: kill me");
    app.stopped().await;
    app.shutdown().await.map_err(|e| e.to_string())
}
