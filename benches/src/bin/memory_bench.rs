//! Resident memory of state (issue 24, item 4; figures in benches/MEMORY.md): bytes per key of
//! a table on the memory store and on redb, and the memory of a hopping windowed count over a
//! long run, which must stay flat once windows expire.
//!
//! ```text
//! memory_bench keys BOOTSTRAP [--store memory|redb] [--keys 1000000,2000000,4000000]
//!     for each K: writes K records with distinct keys `user-NNNNNNNN` (value 1, 3 partitions)
//!     to a fresh topic, then a worker (`memory_bench worker count ..`, its own process, so
//!     the broker and the records it holds are not measured) counts them by key into table
//!     `counts` through the runtime until it saw K events, commits (`App::commit`: every
//!     changelog record acknowledged, the write cache and flushes in flight applied to the
//!     store) and reports its VmRSS. Prints per K: RSS at the
//!     first event (the running worker, empty table), RSS with K keys, VmHWM, and bytes per key
//!     ((with K keys - at the first event) / K); then bytes per key between the smallest and
//!     largest K (the slope, free of fixed costs). `redb`: a fresh directory under /tmp,
//!     removed at the end; the store's default options (redb's own 1 GiB page cache).
//! memory_bench windows BOOTSTRAP [--events N] [--every E] [--step-ms S] [--store memory|redb]
//!     writes N purchases (default 10,000,000; benches::purchases, 1,000 users) with event
//!     times S ms apart (default 10, ending now) to a fresh topic, then a worker (its own
//!     process) runs the hopping windowed count of `table_bench window-hopping` (5-minute
//!     windows advancing by 1 minute, 1 minute of grace, kept an hour; each event's count sent
//!     to an output topic) and prints its VmRSS and the table's entries every E events (default
//!     1,000,000): flat once the first windows expire (an hour of event time, 360,000 events
//!     at 10 ms).
//! memory_bench windows-inproc [--events N] [--every E]
//!     the same windowed count in this process over a detached table on the memory store
//!     (windows_bench's path: no broker, no changelog; 10 s of grace), VmRSS every E events.
//! memory_bench redb-cache [--keys K] [--cache-mb M] [--every E]
//!     a RedbStore in a fresh directory under /tmp (removed at the end), with redb's page cache
//!     set to M MiB (default: not set, redb's 1 GiB): K keys (13 bytes, 8-byte values) written
//!     in batches of 10,000 with a flush every 500,000, then every key read back in random
//!     order; VmRSS every E keys (default 1,000,000) of each phase.
//! ```
//!
//! BOOTSTRAP is a Kafka address (`scripts/kafka start NAME` prints one) or `mock`: an in-process
//! mock cluster in this process (the measured worker runs in its own process either way).
//! Resident memory is read from /proc/self/status (VmRSS, VmHWM), in MiB (2^20 bytes).

use std::collections::VecDeque;
use std::error::Error;
use std::io::BufRead;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::purchases::purchase;
use bytes::Bytes;
use futures::StreamExt;
use kafka_client::admin::{Admin, CreateTopicsOptions, NewTopic};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::ClientConfig;
use stores::{RedbOptions, RedbStore, Store, WriteBatch};
use streams::{App, Table, TableSpec, Timestamp};

type BoxError = Box<dyn Error + Send + Sync>;
type Outcome = Result<(), BoxError>;

const PARTITIONS: i32 = 3;
const MIB: f64 = 1024.0 * 1024.0;

fn usage() -> ExitCode {
    eprintln!(
        "usage: memory_bench keys BOOTSTRAP [--store memory|redb] [--keys K1,K2,..]\n       \
         memory_bench windows BOOTSTRAP [--events N] [--every E] [--step-ms S] [--store memory|redb]\n       \
         memory_bench windows-inproc [--events N] [--every E]\n       \
         memory_bench redb-cache [--keys K] [--cache-mb M] [--every E]"
    );
    ExitCode::from(2)
}

/// A process's resident memory, from /proc/self/status.
#[derive(Clone, Copy, Debug, Default)]
struct Rss {
    /// VmRSS: resident now, bytes.
    now: u64,
    /// VmHWM: the most ever resident, bytes.
    peak: u64,
}

fn rss() -> Rss {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Rss {
        now: field("VmRSS:"),
        peak: field("VmHWM:"),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB)
}

/// A `key=value` figure of a line.
fn figure(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))?
        .parse()
        .ok()
}

struct Args {
    store: String,
    keys: Vec<u64>,
    events: u64,
    every: u64,
    step_ms: i64,
    cache_mb: Option<usize>,
    rest: Vec<String>,
}

fn parse(args: Vec<String>) -> Option<Args> {
    let mut out = Args {
        store: "memory".into(),
        keys: vec![1_000_000, 2_000_000, 4_000_000],
        events: 10_000_000,
        every: 1_000_000,
        step_ms: 10,
        cache_mb: None,
        rest: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" => out.store = it.next()?,
            "--keys" => {
                out.keys = it
                    .next()?
                    .split(',')
                    .map(|k| k.parse().ok().filter(|k| *k > 0))
                    .collect::<Option<_>>()?
            }
            "--events" => out.events = it.next()?.parse().ok().filter(|n| *n > 0)?,
            "--every" => out.every = it.next()?.parse().ok().filter(|n| *n > 0)?,
            "--step-ms" => out.step_ms = it.next()?.parse().ok().filter(|n| *n > 0)?,
            "--cache-mb" => out.cache_mb = Some(it.next()?.parse().ok()?),
            _ => out.rest.push(a),
        }
    }
    Some(out)
}

fn main() -> ExitCode {
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
    let result = runtime.block_on(async {
        match (mode.as_str(), args.rest.as_slice()) {
            ("keys", [bootstrap]) => keys(bootstrap, &args).await,
            ("windows", [bootstrap]) => windows(bootstrap, &args).await,
            ("windows-inproc", []) => windows_inproc(&args),
            ("redb-cache", []) => redb_cache(&args),
            ("worker", [kind, bootstrap, input, n, store]) => {
                let n = n.parse()?;
                worker(kind, bootstrap, input, n, store, args.every).await
            }
            _ => Err("bad arguments".into()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.to_string() == "bad arguments" => usage(),
        Err(e) => {
            eprintln!("memory_bench {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The broker, the input, and the measured worker.

/// The broker to use: the address given, or a mock cluster started here (kept alive by the
/// returned handle).
async fn broker(arg: &str) -> Result<(String, Option<testkit::MockCluster>), BoxError> {
    if arg == "mock" {
        let cluster = testkit::MockCluster::builder()
            .default_partitions(PARTITIONS)
            .build()
            .await?;
        Ok((cluster.bootstrap(), Some(cluster)))
    } else {
        Ok((arg.to_owned(), None))
    }
}

/// Creates `topic` and writes `records` (key, value, timestamp) to it, all acknowledged.
async fn fill(
    bootstrap: &str,
    topic: &str,
    records: impl Iterator<Item = (Vec<u8>, Vec<u8>, Option<i64>)>,
) -> Outcome {
    let client = ClientConfig::new(bootstrap)?;
    Admin::new(client.clone())
        .await?
        .create_topics_with(
            vec![NewTopic::new(topic, PARTITIONS, 1)],
            CreateTopicsOptions {
                ignore_existing: true,
                ..Default::default()
            },
        )
        .await?;
    let producer = Producer::new(client, ProducerConfig::default()).await?;
    let mut pending = VecDeque::new();
    for (key, value, timestamp) in records {
        let record = ProducerRecord {
            topic: topic.to_owned(),
            key: Some(Bytes::from(key)),
            value: Some(Bytes::from(value)),
            timestamp,
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
    Ok(())
}

/// A fresh store URL for `store` (`memory` or `redb`), and the directory to remove after.
fn store_url(store: &str, tag: &str) -> Result<(String, Option<std::path::PathBuf>), BoxError> {
    match store {
        "memory" => Ok(("memory://".into(), None)),
        "redb" => {
            let dir = std::env::temp_dir().join(format!("memory-bench-{tag}"));
            std::fs::create_dir_all(&dir)?;
            Ok((format!("redb://{}", dir.display()), Some(dir)))
        }
        other => Err(format!("unknown store {other:?} (memory or redb)").into()),
    }
}

/// Runs `memory_bench worker KIND ..` (this program) to its end; its stdout's lines.
fn run_worker(args: &[&str]) -> Result<Vec<String>, BoxError> {
    let mut child: Child = Command::new(std::env::current_exe()?)
        .arg("worker")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        println!("  worker: {line}");
        lines.push(line);
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("worker failed: {status}").into());
    }
    Ok(lines)
}

/// The measured worker: counts INPUT by key (`count`) or in hopping windows (`hopping`) until
/// N events, printing `sample events=.. rss=.. hwm=..` lines (bytes).
async fn worker(
    kind: &str,
    bootstrap: &str,
    input: &str,
    n: u64,
    store: &str,
    every: u64,
) -> Outcome {
    // Its own app id per input: a table recovered from an earlier run's changelog would hold
    // that run's keys too.
    let app = App::builder(&format!("{input}-app"))
        .broker(&format!("kafka://{bootstrap}"))
        .store(store)
        .topic_partitions(PARTITIONS)
        .consumer_auto_offset_reset("earliest")
        .build()?;
    let events = Arc::new(AtomicU64::new(0));
    let seen = events.clone();
    let sample = move |label: &str, events: u64, entries: Option<u64>| {
        let r = rss();
        let entries = entries.map_or_else(String::new, |e| format!(" entries={e}"));
        println!(
            "sample at={label} events={events} rss={} hwm={}{entries}",
            r.now, r.peak
        );
    };
    match kind {
        "count" => {
            let input = app.topic::<String, i64>(input);
            let counts = app
                .table::<String, i64>("counts")?
                .with_default(i64::default);
            let table = counts.clone();
            app.agent_builder("count", &input).table(&counts).run_once(
                move |mut stream| async move {
                    while let Some(event) = stream.next().await {
                        let key = event.key.clone().unwrap_or_default();
                        table.update(&key, |c| *c += 1)?;
                        if seen.fetch_add(1, Ordering::Relaxed) == 0 {
                            sample("first", 1, None);
                        }
                    }
                    Ok::<(), streams::Error>(())
                },
            );
        }
        "hopping" => {
            let purchases = app
                .topic::<String, serde_json::Value>(input)
                .value_serializer("raw");
            let out = app.topic::<String, i64>(&format!("{input}-out"));
            let mins = |m: u64| Duration::from_secs(60 * m);
            let windows = app
                .table::<String, i64>("window-counts")?
                .with_default(i64::default)
                .hopping(mins(5), mins(1))
                .grace(mins(1))
                .expires(mins(60))
                .build()?;
            let table = windows.clone();
            app.agent_builder("window-count", &purchases)
                .table(&windows)
                .run_once(move |mut stream| async move {
                    while let Some(event) = stream.next().await {
                        let key = event.key.clone().unwrap_or_default();
                        if let Some(count) = table.at(&event)?.update(&key, |c| *c += 1)? {
                            out.send(key, count).await?;
                        }
                        let i = seen.fetch_add(1, Ordering::Relaxed) + 1;
                        if i == 1 || i.is_multiple_of(every) {
                            sample("every", i, Some(table.stored_entries()?));
                        }
                    }
                    Ok::<(), streams::Error>(())
                });
        }
        _ => return Err("bad arguments".into()),
    }
    app.start().await?;
    let started = Instant::now();
    let all_seen = async {
        while events.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = all_seen => {}
        _ = app.stopped() => {
            let _ = app.shutdown().await;
            return Err("the worker stopped before the last event".into());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = benches::cpu::process_cpu_seconds().unwrap_or(0.0);
    // A commit: every changelog record acknowledged, so the write cache and the flushes in
    // flight are in the store, and nothing but the table is held for these events.
    app.commit().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let entries: u64 = app.table_partitions()?.iter().map(|p| p.entries).sum();
    sample("end", events.load(Ordering::Relaxed), Some(entries));
    println!(
        "done events={} secs={secs:.2} cpu_s={cpu:.2}",
        events.load(Ordering::Relaxed)
    );
    // A graceful shutdown, bounded: on a loaded machine with the mock broker its last
    // deliveries can time out, which says nothing about memory.
    if let Err(e) = app.shutdown().await {
        eprintln!("shutdown: {e}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bytes per key.

async fn keys(arg: &str, args: &Args) -> Outcome {
    let (bootstrap, _mock) = broker(arg).await?;
    let tag = std::process::id();
    println!(
        "count by key through the runtime, store {}, broker {}",
        args.store,
        if arg == "mock" {
            "mock (this process)"
        } else {
            arg
        }
    );
    let mut rows = Vec::new();
    for (run, &k) in args.keys.iter().enumerate() {
        let input = format!("membench-keys-{tag}-{run}");
        let wrote = Instant::now();
        let records = (0..k).map(|i| (format!("user-{i:08}").into_bytes(), b"1".to_vec(), None));
        fill(&bootstrap, &input, records).await?;
        println!(
            "{k} keys written to {input} in {:.1} s",
            wrote.elapsed().as_secs_f64()
        );
        let (url, dir) = store_url(&args.store, &format!("{tag}-{run}"))?;
        let lines = run_worker(&["count", &bootstrap, &input, &k.to_string(), &url])?;
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        let at = |label: &str| {
            lines
                .iter()
                .find(|l| l.contains(&format!("at={label} ")))
                .cloned()
                .ok_or_else(|| format!("no {label} sample"))
        };
        let (first, end) = (at("first")?, at("end")?);
        let get = |line: &str, name| figure(line, name).unwrap_or(f64::NAN);
        rows.push((
            k,
            get(&first, "rss"),
            get(&end, "rss"),
            get(&end, "hwm"),
            get(&end, "entries"),
        ));
    }
    println!("\n| keys | entries | RSS at first event (MiB) | RSS with the keys (MiB) | VmHWM (MiB) | bytes per key |");
    println!("|---|---|---|---|---|---|");
    for (k, first, end, hwm, entries) in &rows {
        println!(
            "| {k} | {entries} | {:.1} | {:.1} | {:.1} | {:.0} |",
            first / MIB,
            end / MIB,
            hwm / MIB,
            (end - first) / *k as f64
        );
    }
    if let (Some(a), Some(b)) = (rows.first(), rows.last()) {
        if b.0 > a.0 {
            println!(
                "\nslope {} -> {} keys: {:.0} bytes per key",
                a.0,
                b.0,
                (b.2 - a.2) / (b.0 - a.0) as f64
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The windowed count over a long run.

async fn windows(arg: &str, args: &Args) -> Outcome {
    let (bootstrap, _mock) = broker(arg).await?;
    let tag = std::process::id();
    let input = format!("membench-windows-{tag}");
    let n = args.events;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let first_ms = {
        let first = now_ms - args.step_ms.saturating_mul(n as i64);
        first - first.rem_euclid(60_000)
    };
    let wrote = Instant::now();
    let step = args.step_ms;
    let records = (0..n).map(|i| {
        let p = purchase(i);
        let value = serde_json::to_vec(&p).expect("a purchase serializes");
        (
            p.username.into_bytes(),
            value,
            Some(first_ms + step * i as i64),
        )
    });
    fill(&bootstrap, &input, records).await?;
    println!(
        "{n} purchases written to {input} in {:.1} s, event times {} ms apart ({:.1} h)",
        wrote.elapsed().as_secs_f64(),
        args.step_ms,
        (args.step_ms * n as i64) as f64 / 3.6e6
    );
    let (url, dir) = store_url(&args.store, &tag.to_string())?;
    let lines = run_worker(&[
        "hopping",
        &bootstrap,
        &input,
        &n.to_string(),
        &url,
        "--every",
        &args.every.to_string(),
    ])?;
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    println!("\n| events | RSS (MiB) | VmHWM (MiB) | table entries |");
    println!("|---|---|---|---|");
    for line in lines.iter().filter(|l| l.starts_with("sample")) {
        let get = |name| figure(line, name).unwrap_or(f64::NAN);
        println!(
            "| {} | {:.1} | {:.1} | {} |",
            get("events"),
            get("rss") / MIB,
            get("hwm") / MIB,
            get("entries")
        );
    }
    Ok(())
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// windows_bench's loop (same keys, times and disorder) with VmRSS every `every` events.
fn windows_inproc(args: &Args) -> Outcome {
    let events = args.events;
    let mins = |m: u64| Duration::from_secs(60 * m);
    let counts = Table::<String, u64>::detached(TableSpec::new("bench", "counts").partitions(8))?
        .with_default(u64::default)
        .hopping(mins(5), mins(1))
        .grace(Duration::from_secs(10))
        .expires(mins(60))
        .on_window_close(|_, _, _| {})
        .build()?;
    let keys: Vec<String> = (0..1_000).map(|k| format!("user-{k}")).collect();
    let start = rss();
    println!(
        "windowed count in process, {events} events; RSS before: {} MiB",
        mib(start.now)
    );
    println!("\n| events | event time (h) | RSS (MiB) | VmHWM (MiB) | table entries |");
    println!("|---|---|---|---|---|");
    let started = Instant::now();
    for i in 0..events {
        let r = splitmix(i);
        let time = 1_700_000_000_000 + i as i64 * 10 - (r % 5_000) as i64 * ((r >> 20) % 2) as i64;
        let key = &keys[(r >> 32) as usize % keys.len()];
        counts
            .at_time(Timestamp::from_millis(time))
            .update(key.as_str(), |n| *n += 1)?;
        if (i + 1) % args.every == 0 {
            let r = rss();
            println!(
                "| {} | {:.1} | {} | {} | {} |",
                i + 1,
                (i + 1) as f64 * 10.0 / 3.6e6,
                mib(r.now),
                mib(r.peak),
                counts.stored_entries()?
            );
        }
    }
    println!(
        "\n{:.1} s, late events {}",
        started.elapsed().as_secs_f64(),
        counts.late_events()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// redb's page cache.

fn redb_cache(args: &Args) -> Outcome {
    let keys = *args.keys.last().ok_or("no keys")?;
    let dir = std::env::temp_dir().join(format!("memory-bench-redb-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut options = RedbOptions::new();
    if let Some(mb) = args.cache_mb {
        options = options.cache_size(mb << 20);
    }
    let result = redb_phases(&dir, options, keys, args);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn redb_phases(dir: &std::path::Path, options: RedbOptions, keys: u64, args: &Args) -> Outcome {
    let store = RedbStore::open_with(dir, "counts", options)?;
    let key = |i: u64| format!("user-{i:08}").into_bytes();
    let file = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    println!(
        "RedbStore, cache {}, {keys} keys; RSS before: {} MiB",
        args.cache_mb
            .map_or("redb's default (1 GiB)".into(), |m| format!("{m} MiB")),
        mib(rss().now)
    );
    println!("\n| phase | keys | RSS (MiB) | VmHWM (MiB) | file (MiB) |");
    println!("|---|---|---|---|---|");
    let mut batch = WriteBatch::with_capacity(10_000);
    let mut since_flush = 0;
    for i in 0..keys {
        batch.put(
            (i % PARTITIONS as u64) as i32,
            key(i),
            (i % 1000).to_le_bytes().to_vec(),
        );
        if batch.len() == 10_000 || i + 1 == keys {
            for p in 0..PARTITIONS {
                batch.set_offset(p, i as i64);
            }
            since_flush += batch.len();
            store.apply(std::mem::replace(
                &mut batch,
                WriteBatch::with_capacity(10_000),
            ))?;
            if since_flush >= 500_000 {
                store.flush()?;
                since_flush = 0;
            }
        }
        if (i + 1) % args.every == 0 || i + 1 == keys {
            if i + 1 == keys {
                store.flush()?;
            }
            let r = rss();
            println!(
                "| write | {} | {} | {} | {} |",
                i + 1,
                mib(r.now),
                mib(r.peak),
                mib(file(dir))
            );
        }
    }
    for j in 0..keys {
        let i = splitmix(j ^ 0x5555) % keys;
        let got = store.get((i % PARTITIONS as u64) as i32, &key(i))?;
        if got.is_none() {
            return Err(format!("key {i} missing").into());
        }
        if (j + 1) % args.every == 0 || j + 1 == keys {
            let r = rss();
            println!(
                "| read | {} | {} | {} | {} |",
                j + 1,
                mib(r.now),
                mib(r.peak),
                mib(file(dir))
            );
        }
    }
    Ok(())
}
