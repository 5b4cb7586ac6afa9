//! Tables on the `streams` crate: a stateful count by key (the Rust side of Kafka Streams'
//! `groupByKey().count()` in benches/peers), the recovery rate of a table from its changelog,
//! and the time from a restart to the first processed event.
//!
//! ```text
//! table_bench count [--store URL] BOOTSTRAP INPUT OUTPUT N [--app-id ID]
//!     counts the purchases of INPUT (streams_bench prefill) per key in table `counts` and
//!     sends each new count to OUTPUT, until N events; stops gracefully and prints
//!     `rust-table events=N outputs=K secs=..` (timed from process start). With `--no-send`
//!     the agent only updates the table (OUTPUT gets nothing): the table's own cost.
//! table_bench window-hopping [--store URL] BOOTSTRAP INPUT OUTPUT N [--app-id ID]
//!     the same over a hopping windowed table (5-minute windows advancing by 1 minute, 1 minute
//!     of grace, kept an hour: Kafka Streams' `window-hopping` in benches/peers), time from the
//!     record timestamps (`streams_bench prefill --event-time-step-ms`); sends each event's
//!     current window count to OUTPUT; prints `rust-window events=N outputs=K late=L secs=..`
//!     with `cpu_s`, `ev_per_cpu_s` and `changelog=R` as `count` does.
//! table_bench window-tumbling [--store URL] BOOTSTRAP INPUT OUTPUT N [--app-id ID]
//!     the same over 5-minute tumbling windows (1 minute of grace, kept an hour).
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
//!
//! table_bench join [--store URL] BOOTSTRAP INPUT OUTPUT N --profiles TOPIC --wait-profiles P [--app-id ID]
//!     the stream-table join of benches/peers (Kafka Streams' `stream.join(builder.table(..))`):
//!     table `profiles` is TOPIC's latest values (`TableBuilder::from_topic`), the purchases of
//!     INPUT (streams_bench prefill) are inner-joined with it (`AgentBuilder::inner_join`) and
//!     each match goes to OUTPUT as `{username, currency, amount, level, country}` keyed by
//!     username, until N input events; prints `rust-join events=N outputs=K secs=..`. First
//!     the same app with the table alone runs until the table holds P entries and shuts down
//!     (the profiles were written first: Kafka Streams reads them first by timestamp; our join
//!     reads the table as it is when an event arrives, see `AgentBuilder::join`).
//! table_bench fill-profiles BOOTSTRAP TOPIC --users U
//!     creates TOPIC (3 partitions) and writes the JSON profiles `{username, level, country}`
//!     of users `user-0` .. `user-{U-1}`, keyed by username, but none for every tenth user
//!     (`user-9`, `user-19`, ..: their purchases find no profile); prints `fill-profiles
//!     profiles=P secs=..`.
//! table_bench verify-join BOOTSTRAP PROFILES INPUT OUTPUT
//!     reads all three topics and checks OUTPUT against the join of INPUT with PROFILES: per
//!     username the same count and amount sum as INPUT's purchases of users with a profile,
//!     every record keyed by its username and carrying that user's level and country; prints
//!     `verify-join expected=E output=M users=U`; exits 1 on a mismatch.
//! table_bench fill-keys BOOTSTRAP TOPIC --keys K
//!     creates TOPIC (3 partitions) and writes K records with distinct keys `user-NNNNNNNN`,
//!     value `1` (the input of `first-event --until`: a table of K keys built by its agent).
//! table_bench verify-counts BOOTSTRAP INPUT OUTPUT [--value-format json|long] [--every-update]
//!     counts INPUT's records per key and reads OUTPUT (read_committed) to its end: per key
//!     the counts must rise and end at the input's count; with --every-update they must be
//!     exactly 1, 2, .., n (our `count` sends every new count: under exactly-once, none
//!     repeated or lost). `json` is our i64 codec, `long` Kafka's LongSerializer (8 bytes big
//!     endian). Prints `verify keys=K input=N output=M markers=T` (T: offsets in OUTPUT that
//!     are not records, i.e. transaction markers); exits 1 on a mismatch.
//! ```
//!
//! Options of the modes that run an app: `--guarantee exactly_once|at_least_once`
//! (`processing_guarantee`, default at-least-once), `--commit-interval-ms MS`
//! (`broker_commit_interval`, default 2,800) and `--commit-every EVENTS`
//! (`broker_commit_every`, default 10,000), `--cache-max-bytes BYTES`
//! (`table_cache_max_bytes`, default 10 MiB; 0: the cache off, one changelog record per write;
//! `count` prints `cpu_s`, `ev_per_cpu_s` and `changelog=R`, the offsets it added to the
//! changelog; also `cpu_events_s` and `ev_per_cpu_s_events`, from the first event on), and
//! `--no-send` (`count` only). `first-event` also takes `--until N` (wait for N
//! events, not only the first, before the commit and `ready`: the first run builds the table)
//! and `--no-commit` (print `ready` right after, before any commit: under exactly-once the
//! kill lands in an open transaction, which the restarted worker's producer must abort).
//!
//! Default store `memory://`, default app id `table-bench`. `TABLE_BENCH_LOG=FILTER` (as
//! `RUST_LOG`, e.g. `streams=debug,kafka_client=debug`) logs to stderr with timestamps, to see
//! where a run's time goes.

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

// The stream-table join of benches/peers: its own file, as it has its own records.
#[path = "table_bench/join.rs"]
mod join;

const PARTITIONS: i32 = 3;

struct Args {
    store: String,
    app_id: String,
    keys: u64,
    instance: Option<String>,
    guarantee: Option<String>,
    commit_interval_ms: Option<u64>,
    commit_every: Option<usize>,
    cache_max_bytes: Option<u64>,
    until: u64,
    no_commit: bool,
    value_format: String,
    every_update: bool,
    no_send: bool,
    profiles: Option<String>,
    wait_profiles: u64,
    users: u64,
    rest: Vec<String>,
}

fn parse(args: Vec<String>) -> Option<Args> {
    let mut out = Args {
        store: "memory://".into(),
        app_id: "table-bench".into(),
        keys: 0,
        instance: None,
        guarantee: None,
        commit_interval_ms: None,
        commit_every: None,
        cache_max_bytes: None,
        until: 1,
        no_commit: false,
        value_format: "json".into(),
        every_update: false,
        no_send: false,
        profiles: None,
        wait_profiles: 0,
        users: 0,
        rest: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" => out.store = it.next()?,
            "--app-id" => out.app_id = it.next()?,
            "--keys" => out.keys = it.next()?.parse().ok()?,
            "--instance-id" => out.instance = Some(it.next()?),
            "--guarantee" => out.guarantee = Some(it.next()?),
            "--commit-interval-ms" => out.commit_interval_ms = Some(it.next()?.parse().ok()?),
            "--commit-every" => out.commit_every = Some(it.next()?.parse().ok()?),
            "--cache-max-bytes" => out.cache_max_bytes = Some(it.next()?.parse().ok()?),
            "--until" => out.until = it.next()?.parse().ok().filter(|n| *n > 0)?,
            "--no-commit" => out.no_commit = true,
            "--value-format" => out.value_format = it.next()?,
            "--every-update" => out.every_update = true,
            "--no-send" => out.no_send = true,
            "--profiles" => out.profiles = Some(it.next()?),
            "--wait-profiles" => out.wait_profiles = it.next()?.parse().ok()?,
            "--users" => out.users = it.next()?.parse().ok()?,
            _ => out.rest.push(a),
        }
    }
    Some(out)
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: table_bench count [--store URL] BOOTSTRAP INPUT OUTPUT N [--app-id ID]\n       \
         table_bench recovery [--store URL] BOOTSTRAP --keys K [--app-id ID]\n       \
         table_bench first-event [--store URL] BOOTSTRAP [--app-id ID] [--until N] [--no-commit]\n       \
         table_bench join [--store URL] BOOTSTRAP INPUT OUTPUT N --profiles TOPIC --wait-profiles P [--app-id ID]\n       \
         table_bench fill-profiles BOOTSTRAP TOPIC --users U\n       \
         table_bench verify-join BOOTSTRAP PROFILES INPUT OUTPUT\n       \
         table_bench fill-keys BOOTSTRAP TOPIC --keys K\n       \
         table_bench verify-counts BOOTSTRAP INPUT OUTPUT [--value-format json|long] [--every-update]\n\
         options of count, window-hopping, join, recovery, first-event: [--guarantee exactly_once|at_least_once] \
         [--commit-interval-ms MS] [--commit-every EVENTS] [--instance-id NAME]"
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
    if let Ok(filter) = std::env::var("TABLE_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
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
                window_count(started, &args, bootstrap, input, output, n, true).await
            }
            ("window-tumbling", [bootstrap, input, output, n]) => {
                let n = n.parse().map_err(|e| format!("N: {e}"))?;
                window_count(started, &args, bootstrap, input, output, n, false).await
            }
            ("join", [bootstrap, input, output, n]) => {
                let n = n.parse().map_err(|e| format!("N: {e}"))?;
                join::run(started, &args, bootstrap, input, output, n).await
            }
            ("fill-profiles", [bootstrap, topic]) if args.users > 0 => {
                join::fill_profiles(bootstrap, topic, args.users).await
            }
            ("verify-join", [bootstrap, profiles, input, output]) => {
                join::verify(bootstrap, profiles, input, output).await
            }
            ("recovery", [bootstrap]) if args.keys > 0 => recovery(&args, bootstrap).await,
            ("first-event", [bootstrap]) => first_event(started, &args, bootstrap).await,
            ("fill-keys", [bootstrap, topic]) if args.keys > 0 => {
                fill_keys(bootstrap, topic, args.keys).await
            }
            ("verify-counts", [bootstrap, input, output]) => {
                verify_counts(&args, bootstrap, input, output).await
            }
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
    if let Some(g) = &args.guarantee {
        builder = builder.processing_guarantee(g);
    }
    if let Some(ms) = args.commit_interval_ms {
        builder = builder.broker_commit_interval(Duration::from_millis(ms));
    }
    if let Some(n) = args.commit_every {
        builder = builder.broker_commit_every(n);
    }
    if let Some(bytes) = args.cache_max_bytes {
        builder = builder.table_cache_max_bytes(bytes);
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
    let send = !args.no_send;
    // The process's CPU time at the first event: the rate over the events alone leaves out
    // start-up and the group join.
    let cpu_at_first = Arc::new(std::sync::OnceLock::new());
    let first = cpu_at_first.clone();
    app.agent_builder("count", &purchases)
        .table(&counts)
        .run_once(move |mut stream| async move {
            while let Some(event) = stream.next().await {
                if first.get().is_none() {
                    let _ = first.set(benches::cpu::process_cpu_seconds().unwrap_or(0.0));
                }
                let key = event.key.clone().unwrap_or_default();
                let count = table.update(&key, |c| *c += 1)?;
                if send {
                    out.send(key, count).await?;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                if seen.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    stopper.stop();
                }
            }
            Ok::<(), streams::Error>(())
        });
    let changelog = format!("{}-counts-changelog", args.app_id);
    let before = records_in(bootstrap, &changelog).await;
    app.run().await.map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = benches::cpu::process_cpu_seconds().unwrap_or(0.0);
    let events = events.load(Ordering::Relaxed);
    // Offsets the run added to the changelog (transaction markers included under exactly-once).
    let written = records_in(bootstrap, &changelog).await - before;
    let cpu_events = cpu - cpu_at_first.get().copied().unwrap_or(0.0);
    println!(
        "rust-table events={events} outputs={} secs={secs:.3} ev_per_s={:.1} cpu_s={cpu:.3} \
         ev_per_cpu_s={:.1} cpu_events_s={cpu_events:.3} ev_per_cpu_s_events={:.1} \
         changelog={written}",
        outputs.load(Ordering::Relaxed),
        events as f64 / secs,
        events as f64 / cpu.max(1e-9),
        events as f64 / cpu_events.max(1e-9),
    );
    Ok(())
}

/// The sum of a topic's end offsets (0 when it does not exist yet).
async fn records_in(bootstrap: &str, topic: &str) -> i64 {
    use kafka_client::admin::OffsetSpec;
    let Ok(client) = ClientConfig::new(bootstrap) else {
        return 0;
    };
    let Ok(admin) = Admin::new(client).await else {
        return 0;
    };
    let specs = (0..PARTITIONS)
        .map(|p| {
            (
                kafka_client::TopicPartition::new(topic, p),
                OffsetSpec::Latest,
            )
        })
        .collect();
    match admin.list_offsets(specs).await {
        Ok(ends) => ends.values().map(|o| o.offset).sum(),
        Err(_) => 0,
    }
}

async fn window_count(
    started: Instant,
    args: &Args,
    bootstrap: &str,
    input: &str,
    output: &str,
    n: u64,
    hopping: bool,
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
    let windows = match hopping {
        true => counts.hopping(mins(5), mins(1)),
        false => counts.tumbling(mins(5)),
    };
    let windows = windows
        .grace(mins(1))
        .expires(mins(60))
        .build()
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
        .table(&windows)
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
    let changelog = format!("{}-window-counts-changelog", args.app_id);
    let before = records_in(bootstrap, &changelog).await;
    app.run().await.map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = benches::cpu::process_cpu_seconds().unwrap_or(0.0);
    let events = events.load(Ordering::Relaxed);
    let written = records_in(bootstrap, &changelog).await - before;
    println!(
        "rust-window events={events} outputs={} late={} secs={secs:.3} ev_per_s={:.1} \
         cpu_s={cpu:.3} ev_per_cpu_s={:.1} changelog={written}",
        outputs.load(Ordering::Relaxed),
        windows.late_events(),
        events as f64 / secs,
        events as f64 / cpu.max(1e-9),
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
    // The time of the first event, then of the `until`th (the same one by default).
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let (until_tx, until_rx) = tokio::sync::oneshot::channel();
    let table = counts.clone();
    let until = args.until;
    app.agent_builder("first", &input)
        .table(&counts)
        .run_once(move |mut s| async move {
            let (mut first_tx, mut until_tx) = (Some(first_tx), Some(until_tx));
            let mut seen = 0u64;
            while let Some(e) = s.next().await {
                let key = e.key.clone().unwrap_or_default();
                table.update(&key, |c| *c += e.value)?;
                seen += 1;
                if let Some(tx) = first_tx.take() {
                    let _ = tx.send(started.elapsed());
                }
                if seen == until {
                    if let Some(tx) = until_tx.take() {
                        let _ = tx.send(started.elapsed());
                    }
                }
            }
            Ok::<(), streams::Error>(())
        });
    app.start().await.map_err(|e| e.to_string())?;
    let took = tokio::time::timeout(Duration::from_secs(120), first_rx)
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
    if until > 1 {
        let all = tokio::time::timeout(Duration::from_secs(600), until_rx)
            .await
            .map_err(|_| format!("not {until} events within 600 s"))?
            .map_err(|_| "the agent stopped".to_owned())?;
        println!("built events={until} secs={:.3}", all.as_secs_f64());
    }
    if args.no_commit {
        // Killed from here on, the events above are in an open transaction (exactly-once).
        println!("ready: kill me");
    } else {
        app.commit().await.map_err(|e| e.to_string())?;
        let parts = app.table_partitions().map_err(|e| e.to_string())?;
        println!(
            "committed entries={}",
            parts.iter().map(|p| p.entries).sum::<u64>()
        );
        println!("ready: kill me");
    }
    app.stopped().await;
    app.shutdown().await.map_err(|e| e.to_string())
}

/// Writes `keys` records with distinct keys to `topic` (3 partitions, created if missing).
async fn fill_keys(bootstrap: &str, topic: &str, keys: u64) -> Result<(), String> {
    let client = ClientConfig::new(bootstrap).map_err(|e| e.to_string())?;
    Admin::new(client.clone())
        .await
        .map_err(|e| e.to_string())?
        .create_topics_with(
            vec![NewTopic::new(topic, PARTITIONS, 1)],
            CreateTopicsOptions {
                ignore_existing: true,
                ..Default::default()
            },
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
    let mut acks = std::collections::VecDeque::new();
    for k in 0..keys {
        let record = ProducerRecord::new(topic)
            .key(Bytes::from(format!("user-{k:08}")))
            .value(Bytes::from_static(b"1"));
        acks.push_back(producer.send(record).await.map_err(|e| e.to_string())?);
        if acks.len() > 100_000 {
            let ack = acks.pop_front().expect("not empty");
            ack.await.map_err(|e| e.to_string())?;
        }
    }
    for ack in acks {
        ack.await.map_err(|e| e.to_string())?;
    }
    producer.close().await.map_err(|e| e.to_string())?;
    println!(
        "fill-keys topic={topic} keys={keys} secs={:.3}",
        wrote.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Reads every partition of `topic` (read_committed) up to its end as of now; calls `each`
/// with every record; returns the records read and the end offsets' sum.
async fn read_all(
    bootstrap: &str,
    topic: &str,
    mut each: impl FnMut(&kafka_client::consumer::ConsumerRecord) -> Result<(), String>,
) -> Result<(u64, i64), String> {
    use kafka_client::admin::OffsetSpec;
    use kafka_client::consumer::{Consumer, ConsumerConfig, IsolationLevel, Offset};
    use kafka_client::TopicPartition;
    let client = ClientConfig::new(bootstrap).map_err(|e| e.to_string())?;
    let admin = Admin::new(client.clone())
        .await
        .map_err(|e| e.to_string())?;
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let ends = admin
        .list_offsets(
            tps.iter()
                .map(|tp| (tp.clone(), OffsetSpec::Latest))
                .collect(),
        )
        .await
        .map_err(|e| format!("{topic}: {e}"))?;
    let end_of = |tp: &TopicPartition| -> i64 { ends.get(tp).map(|o| o.offset).unwrap_or(0) };
    let config = ConsumerConfig::default().with_isolation_level(IsolationLevel::ReadCommitted);
    let mut consumer = Consumer::new(client, config)
        .await
        .map_err(|e| e.to_string())?;
    consumer.assign(tps.clone());
    for tp in &tps {
        consumer
            .seek(tp, Offset::Earliest)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut read = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while tps
        .iter()
        .any(|tp| consumer.position(tp).unwrap_or(0) < end_of(tp))
    {
        if Instant::now() > deadline {
            return Err(format!("{topic}: not read to its end within 120 s"));
        }
        match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            Ok(Ok(record)) => {
                read += 1;
                each(&record)?;
            }
            Ok(Err(e)) => return Err(format!("{topic}: {e}")),
            Err(_) => {}
        }
    }
    Ok((read, tps.iter().map(end_of).sum()))
}

async fn verify_counts(
    args: &Args,
    bootstrap: &str,
    input: &str,
    output: &str,
) -> Result<(), String> {
    use std::collections::HashMap;
    let mut expected: HashMap<Bytes, u64> = HashMap::new();
    let (inputs, _) = read_all(bootstrap, input, |r| {
        *expected
            .entry(r.key.clone().unwrap_or_default())
            .or_default() += 1;
        Ok(())
    })
    .await?;
    let long = match args.value_format.as_str() {
        "json" => false,
        "long" => true,
        other => return Err(format!("--value-format {other}: json or long")),
    };
    // Per key: the last count seen; counts must rise (by exactly 1 with --every-update).
    let mut last: HashMap<Bytes, u64> = HashMap::new();
    let mut bad = 0u64;
    let mut first_bad = None;
    let (outputs, ends) = read_all(bootstrap, output, |r| {
        let value = r.value.as_deref().ok_or("a null value in the output")?;
        let count = if long {
            let bytes: [u8; 8] = value.try_into().map_err(|_| "not an 8-byte long")?;
            i64::from_be_bytes(bytes) as u64
        } else {
            std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or("not a JSON integer")?
        };
        let key = r.key.clone().unwrap_or_default();
        let before = last.get(&key).copied().unwrap_or(0);
        let ok = if args.every_update {
            count == before + 1
        } else {
            count > before
        };
        if !ok {
            bad += 1;
            first_bad.get_or_insert_with(|| {
                format!(
                    "key {} went from {before} to {count} at {}:{}",
                    String::from_utf8_lossy(&key),
                    r.partition,
                    r.offset
                )
            });
        }
        last.insert(key, count);
        Ok(())
    })
    .await?;
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(k, n)| last.get(*k) != Some(*n))
        .collect();
    let extra = last.keys().filter(|k| !expected.contains_key(*k)).count();
    println!(
        "verify keys={} input={inputs} output={outputs} markers={} out_of_order={bad} wrong_final={} extra_keys={extra}",
        expected.len(),
        ends - outputs as i64,
        wrong.len()
    );
    if bad > 0 || !wrong.is_empty() || extra > 0 {
        if let Some(first) = first_bad {
            eprintln!("table_bench: {first}");
        }
        if let Some((k, n)) = wrong.first() {
            eprintln!(
                "table_bench: key {} counted {n} times in the input, last output {:?}",
                String::from_utf8_lossy(k),
                last.get(*k)
            );
        }
        return Err("the output's counts are wrong".into());
    }
    Ok(())
}
