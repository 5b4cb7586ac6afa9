//! What the worker's web server and metrics cost (issue 22, item 5; figures in BENCHMARKS.md,
//! "Web server and metrics").
//!
//! ```text
//! web_bench overhead BOOTSTRAP [--events N] [--rounds R] [--scrape-ms MS]
//!     writes N purchases (default 2,000,000, 3 partitions) to a fresh topic, then runs the
//!     stateless pipeline of streams_bench over them R times (default 3) each way, alternating
//!     off, on, off, on, ..: each run is its own process (`web_bench pipeline ..`), in its own
//!     consumer group, from the earliest offsets to the Nth event. "off": no web server.
//!     "on": the web server on a free loopback port, and this process scraping its /metrics
//!     every MS ms (default 1000) over one keep-alive connection, as Prometheus does. Prints
//!     each run, then the medians of events per CPU second (the run's process, user + sys)
//!     and the CPU per event of on over off (target: < 1.05). Metrics are recorded either
//!     way (the runtime always counts); the last line estimates that recording's own cost.
//! web_bench lookups BOOTSTRAP [--secs S] [--connections C] [--rate EV_PER_S] [--keys K]
//!     starts a worker (`web_bench serve ..`, its own process) whose agent counts keys into
//!     table `counts`, writes K keys (default 10,000) and waits until it counted them, then,
//!     while this process feeds it EV_PER_S events a second (default 20,000) over those keys,
//!     asks `GET /table/counts/<key>/` for S seconds (default 10) over C keep-alive HTTP/1.1
//!     connections (default 32, one request in flight on each) and prints requests/s, p50/p99
//!     latency, errors, the worker's CPU over the window (its whole process: consuming,
//!     counting, committing and serving), this process's (load generator and feeder) and the
//!     events the worker counted meanwhile. Target: >= 20,000 requests/s.
//! ```
//!
//! BOOTSTRAP is a Kafka address (`scripts/kafka start NAME` prints one) or `mock`: an in-process
//! mock cluster in this process (the measured worker still runs in its own process).

use std::collections::VecDeque;
use std::error::Error;
use std::net::SocketAddr;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::cpu::process_cpu_seconds;
use benches::median;
use benches::purchases::{purchase, Priced, Purchase};
use bytes::Bytes;
use futures::future::ready;
use futures::StreamExt;
use kafka_client::admin::{Admin, CreateTopicsOptions, NewTopic};
use kafka_client::producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord};
use kafka_client::ClientConfig;
use std::io::{BufRead, Write};
use std::process::{Child, Command};
use streams::{App, Table};

use tokio::sync::{mpsc, watch};

type BoxError = Box<dyn Error + Send + Sync>;
type Outcome = Result<(), BoxError>;

const PARTITIONS: i32 = 3;
/// The table the lookups ask.
const TABLE: &str = "counts";

fn usage() -> ExitCode {
    eprintln!(
        "usage: web_bench overhead BOOTSTRAP [--events N] [--rounds R] [--scrape-ms MS]\n       \
         web_bench lookups BOOTSTRAP [--secs S] [--connections C] [--rate EV_PER_S] [--keys K]"
    );
    ExitCode::from(2)
}

/// The value after `name` in `rest`, parsed; `default` when absent; `Err` when it does not parse.
fn flag<T: std::str::FromStr>(rest: &[String], name: &str, default: T) -> Result<T, ()> {
    match rest.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => rest.get(i + 1).and_then(|v| v.parse().ok()).ok_or(()),
    }
}

fn main() -> ExitCode {
    if let Ok(filter) = std::env::var("WEB_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("web_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mode, rest) = match args.split_first() {
        Some((mode, rest)) if !rest.is_empty() => (mode.as_str(), rest),
        _ => return usage(),
    };
    let flags = &rest[1..];
    let result = match mode {
        "overhead" => {
            let (Ok(events), Ok(rounds), Ok(scrape_ms)) = (
                flag(flags, "--events", 2_000_000u64),
                flag(flags, "--rounds", 3u32),
                flag(flags, "--scrape-ms", 1000u64),
            ) else {
                return usage();
            };
            runtime.block_on(overhead(&rest[0], events, rounds, scrape_ms))
        }
        "lookups" => {
            let (Ok(secs), Ok(connections), Ok(rate), Ok(keys)) = (
                flag(flags, "--secs", 10u64),
                flag(flags, "--connections", 32usize),
                flag(flags, "--rate", 20_000u64),
                flag(flags, "--keys", 10_000u64),
            ) else {
                return usage();
            };
            if keys == 0 || connections == 0 {
                return usage();
            }
            runtime.block_on(lookups(&rest[0], secs, connections, rate, keys))
        }
        // The measured processes, started by the two above.
        "pipeline" if rest.len() >= 4 => {
            let Ok(n) = rest[3].parse::<u64>() else {
                return usage();
            };
            let web = flags.iter().any(|a| a == "--web");
            let id = flags
                .iter()
                .position(|a| a == "--app-id")
                .and_then(|i| flags.get(i + 1))
                .map_or("web-bench", String::as_str);
            runtime.block_on(pipeline(&rest[0], &rest[1], &rest[2], n, id, web))
        }
        "serve" if rest.len() >= 3 => {
            let Ok(keys) = rest[2].parse::<u64>() else {
                return usage();
            };
            runtime.block_on(serve(&rest[0], &rest[1], keys))
        }
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("web_bench {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}

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

async fn create_topics(bootstrap: &str, names: &[&str]) -> Outcome {
    let topics = names
        .iter()
        .map(|n| NewTopic::new(*n, PARTITIONS, 1))
        .collect();
    Admin::new(ClientConfig::new(bootstrap)?)
        .await?
        .create_topics_with(
            topics,
            CreateTopicsOptions {
                ignore_existing: true,
                ..Default::default()
            },
        )
        .await?;
    Ok(())
}

/// Sends `records` (key, value) and waits until all are acknowledged.
async fn send_all(
    producer: &Producer,
    topic: &str,
    records: impl Iterator<Item = (Vec<u8>, Vec<u8>)>,
) -> Outcome {
    let mut pending = VecDeque::new();
    for (key, value) in records {
        pending.push_back(producer.send(record(topic, key, value)).await?);
        if pending.len() > 100_000 {
            pending.pop_front().expect("not empty").await?;
        }
    }
    for delivery in pending {
        delivery.await?;
    }
    Ok(())
}

fn record(topic: &str, key: Vec<u8>, value: Vec<u8>) -> ProducerRecord {
    ProducerRecord {
        topic: topic.to_owned(),
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        ..Default::default()
    }
}

/// Starts `web_bench ARGS..` (this program) with piped stdin, and its stdout's lines.
fn spawn_self(args: &[&str]) -> Result<(Child, mpsc::UnboundedReceiver<String>), BoxError> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    Ok((child, lines_of(stdout)))
}

/// The lines of `input`, read on a thread of their own (tokio's process and stdin support
/// stay off: turning them on would rebuild tokio and every crate above it).
fn lines_of(input: impl std::io::Read + Send + 'static) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(input).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The address in a child's `web_address=ADDR` line.
fn web_address(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("web_address=")?.parse().ok()
}

/// A `key=value` figure of a result line.
fn figure(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// Overhead: the pipeline with the web server and scraping off and on.

async fn overhead(arg: &str, events: u64, rounds: u32, scrape_ms: u64) -> Outcome {
    let (bootstrap, _mock) = broker(arg).await?;
    let tag = std::process::id();
    let (input, output) = (format!("webbench-in-{tag}"), format!("webbench-out-{tag}"));
    create_topics(&bootstrap, &[&input, &output]).await?;
    let started = Instant::now();
    let producer = Producer::new(ClientConfig::new(&bootstrap)?, ProducerConfig::default()).await?;
    let purchases = (0..events).map(|i| {
        let p = purchase(i);
        let value = serde_json::to_vec(&p).expect("a purchase serializes");
        (p.username.into_bytes(), value)
    });
    send_all(&producer, &input, purchases).await?;
    producer.close().await?;
    println!(
        "prefill topic={input} records={events} secs={:.3}",
        started.elapsed().as_secs_f64()
    );
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let (mut off_whole, mut on_whole) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for web in [false, true] {
            let id = format!("webbench-{tag}-{round}-{}", if web { "on" } else { "off" });
            let line =
                run_pipeline(&bootstrap, &input, &output, events, &id, web, scrape_ms).await?;
            println!("{line}");
            let window = figure(&line, "window_ev_per_cpu_s").ok_or("no window figure")?;
            let whole = figure(&line, "ev_per_cpu_s").ok_or("no whole-process figure")?;
            if web {
                on.push(window);
                on_whole.push(whole);
            } else {
                off.push(window);
                off_whole.push(whole);
            }
        }
    }
    let (off_m, on_m) = (median(&off), median(&on));
    // CPU per event on over off is the inverse ratio of events per CPU second.
    let ratio = off_m / on_m;
    println!(
        "overhead median_window_ev_per_cpu_s off={off_m:.0} on={on_m:.0} \
         median_whole_ev_per_cpu_s off={:.0} on={:.0} cpu_per_event_on_over_off={ratio:.4} \
         whole_process={:.4} target<1.05 {}",
        median(&off_whole),
        median(&on_whole),
        median(&off_whole) / median(&on_whole),
        if ratio < 1.05 { "met" } else { "missed" }
    );
    let (ns, clock_ns) = recording_ns_per_event();
    println!(
        "recording cpu_ns_per_event={ns:.1} of_which_clock_read={clock_ns:.1} \
         share_of_cpu_per_event={:.4} (one thread, uncontended: an estimate)",
        ns * off_m / 1e9
    );
    Ok(())
}

/// Runs one pipeline process and returns its result line; with `web`, scrapes its /metrics
/// every `scrape_ms` while it runs.
async fn run_pipeline(
    bootstrap: &str,
    input: &str,
    output: &str,
    events: u64,
    id: &str,
    web: bool,
    scrape_ms: u64,
) -> Result<String, BoxError> {
    let n = events.to_string();
    let mut args = vec!["pipeline", bootstrap, input, output, &n, "--app-id", id];
    if web {
        args.push("--web");
    }
    let (mut child, mut lines) = spawn_self(&args)?;
    let (stop, stopped) = watch::channel(false);
    let mut scraper = None;
    let mut result = None;
    while let Some(line) = lines.recv().await {
        if let Some(address) = web_address(&line) {
            let every = Duration::from_millis(scrape_ms);
            scraper = Some(tokio::spawn(scrape(address, every, stopped.clone())));
        } else if line.starts_with("pipeline ") {
            result = Some(line);
        }
    }
    // Its stdout is closed: it is exiting.
    let status = child.wait()?;
    stop.send_replace(true);
    let scrapes = match scraper {
        Some(task) => task.await?,
        None => Scrapes::default(),
    };
    match result {
        Some(line) if status.success() => Ok(format!(
            "{line} scrapes={} scrape_errors={} metrics_bytes={}",
            scrapes.ok, scrapes.errors, scrapes.bytes
        )),
        _ => Err(format!("pipeline {id} failed: {status}").into()),
    }
}

#[derive(Default)]
struct Scrapes {
    ok: u64,
    errors: u64,
    /// The size of the last exposition.
    bytes: usize,
}

/// GET /metrics every `every` over one keep-alive connection (reopened after an error), as
/// Prometheus does, until stopped.
async fn scrape(
    address: SocketAddr,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) -> Scrapes {
    const REQUEST: &[u8] =
        b"GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept: application/openmetrics-text\r\n\r\n";
    let mut scrapes = Scrapes::default();
    let mut conn: Option<http::Conn> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => return scrapes,
            _ = tick.tick() => {}
        }
        if conn.is_none() {
            conn = http::Conn::connect(address).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            scrapes.errors += 1;
            continue;
        };
        match c.exchange(REQUEST).await {
            Ok(200) => {
                scrapes.ok += 1;
                scrapes.bytes = c.body().len();
            }
            _ => {
                scrapes.errors += 1;
                conn = None;
            }
        }
    }
}

/// The pipeline process: streams_bench's pipeline, from the earliest offsets to the Nth
/// event, then a graceful stop; prints `web_address=..` once started (with `web`) and its
/// result line at the end.
async fn pipeline(
    bootstrap: &str,
    input: &str,
    output: &str,
    n: u64,
    app_id: &str,
    web: bool,
) -> Outcome {
    let started = Instant::now();
    let app = App::builder(app_id)
        .broker(&format!("kafka://{bootstrap}"))
        .topic_partitions(PARTITIONS)
        .consumer_auto_offset_reset("earliest")
        .web_enabled(web)
        .web_port(0)
        .build()?;
    let purchases = app.topic::<String, Purchase>(input);
    let priced = app.topic::<String, Priced>(output);
    let consumed = Arc::new(AtomicU64::new(0));
    let produced = Arc::new(AtomicU64::new(0));
    // Wall time (µs since start) and process CPU (µs) at the first and the Nth event.
    let marks: Arc<[AtomicU64; 4]> = Arc::new(Default::default());

    let (stopper, seen, sent, at) = (
        app.clone(),
        consumed.clone(),
        produced.clone(),
        marks.clone(),
    );
    app.agent(&purchases, move |stream| async move {
        let mut out = stream
            .items()
            .inspect(move |_| {
                let count = seen.fetch_add(1, Ordering::Relaxed) + 1;
                if count == 1 || count == n {
                    let i = if count == 1 { 0 } else { 2 };
                    let cpu = process_cpu_seconds().unwrap_or(f64::NAN);
                    at[i].store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    at[i + 1].store((cpu * 1e6) as u64, Ordering::Relaxed);
                }
                if count == n {
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

    app.start().await?;
    if let Some(address) = app.web_address() {
        println!("web_address={address}");
    }
    app.stopped().await;
    app.shutdown().await?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds()?;
    let events = consumed.load(Ordering::Relaxed);
    if events < n {
        return Err(format!("stopped after {events} of {n} input events").into());
    }
    let mark = |i: usize| marks[i].load(Ordering::Relaxed) as f64 / 1e6;
    let (window_s, window_cpu_s) = (mark(2) - mark(0), mark(3) - mark(1));
    println!(
        "pipeline web={} events={events} outputs={} secs={secs:.3} cpu_s={cpu:.2} \
         ev_per_cpu_s={:.0} window_s={window_s:.3} window_cpu_s={window_cpu_s:.2} \
         window_ev_per_cpu_s={:.0}",
        if web { "on" } else { "off" },
        produced.load(Ordering::Relaxed),
        events as f64 / cpu,
        // The window runs from the first event to the Nth: N - 1 events.
        (n - 1) as f64 / window_cpu_s,
    );
    Ok(())
}

/// What the runtime records per event, always (streams/src/metrics.rs): the agent's
/// events-in counter, the processing-latency histogram (one clock read and an observation),
/// and, for the half of the events the pipeline keeps, the records-sent counter. CPU
/// nanoseconds per event on one thread (this process is otherwise idle now), no other thread
/// touching the same atomics: `(all of it, the clock read alone)`.
fn recording_ns_per_event() -> (f64, f64) {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
    const N: u64 = 20_000_000;
    let per_event = |work: &dyn Fn(u64)| {
        let cpu = process_cpu_seconds().unwrap_or(f64::NAN);
        for i in 0..N {
            work(i);
        }
        (process_cpu_seconds().unwrap_or(f64::NAN) - cpu) * 1e9 / N as f64
    };
    let events_in = Counter::<u64>::default();
    let sent = Counter::<u64>::default();
    let latency = Histogram::new(exponential_buckets(0.0001, 4.0, 11));
    let delivered = Instant::now();
    let all = per_event(&|i| {
        std::hint::black_box(&events_in).inc();
        latency.observe(delivered.elapsed().as_secs_f64());
        if i % 2 == 0 {
            std::hint::black_box(&sent).inc();
        }
    });
    let clock = per_event(&|_| {
        std::hint::black_box(delivered.elapsed());
    });
    (all, clock)
}

// ---------------------------------------------------------------------------------------------
// Lookups: GET /table/counts/<key>/ while events flow.

async fn lookups(arg: &str, secs: u64, connections: usize, rate: u64, keys: u64) -> Outcome {
    let (bootstrap, _mock) = broker(arg).await?;
    let topic = format!("webbench-words-{}", std::process::id());
    create_topics(&bootstrap, &[&topic]).await?;
    let key = |i: u64| format!("key-{}", i % keys);
    let producer = Producer::new(ClientConfig::new(&bootstrap)?, ProducerConfig::default()).await?;
    // Values are the key again, in the topic's default value codec (JSON).
    let first = (0..keys).map(|i| (key(i).into_bytes(), json_string(&key(i))));
    send_all(&producer, &topic, first).await?;

    let (mut worker, mut lines) = spawn_self(&["serve", &bootstrap, &topic, &keys.to_string()])?;
    let mut stdin = worker.stdin.take().ok_or("no stdin")?;
    let mut address = None;
    loop {
        let line = lines.recv().await.ok_or("the worker exited")?;
        if let Some(a) = web_address(&line) {
            address = Some(a);
        } else if line == "ready" {
            break;
        }
    }
    let address = address.ok_or("the worker has no web server")?;
    // One answer shown, so that the log says what is served.
    let mut probe = http::Conn::connect(address).await?;
    let status = probe.exchange(&lookup_request(&key(0))).await?;
    println!(
        "probe GET /table/{TABLE}/{}/ -> {status} {}",
        key(0),
        String::from_utf8_lossy(probe.body())
    );
    drop(probe);

    let requests: Arc<Vec<Vec<u8>>> =
        Arc::new((0..keys).map(|i| lookup_request(&key(i))).collect());
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(http::Conn::connect(address).await?);
    }
    let (stop, stopped) = watch::channel(false);
    let feeder = tokio::spawn(feed(producer, topic, rate, keys, stopped));

    stdin.write_all(b"start\n")?;
    let cpu0 = process_cpu_seconds()?;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let loads: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| tokio::spawn(load(conn, requests.clone(), i as u64, deadline)))
        .collect();
    let mut latencies = Vec::new();
    let (mut ok, mut errors) = (0u64, 0u64);
    for task in loads {
        let done = task.await?;
        latencies.extend(done.latencies_us);
        ok += done.ok;
        errors += done.errors;
    }
    let wall = started.elapsed().as_secs_f64();
    stdin.write_all(b"stop\n")?;
    stdin.flush()?;
    let client_cpu = process_cpu_seconds()? - cpu0;
    stop.send_replace(true);
    let fed = feeder.await??;
    let mut server = None;
    while let Some(line) = lines.recv().await {
        if line.starts_with("serve ") {
            server = Some(line);
        }
    }
    drop(stdin);
    let status = worker.wait()?;
    let server = match server {
        Some(line) if status.success() => line,
        _ => return Err(format!("the worker failed: {status}").into()),
    };
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let per_s = ok as f64 / wall;
    println!("{server}");
    println!(
        "lookups connections={connections} secs={wall:.2} ok={ok} errors={errors} \
         req_per_s={per_s:.0} p50_us={} p99_us={} max_us={} client_cpu_s={client_cpu:.2} \
         fed_events={fed} target>=20000 {}",
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or(0),
        if per_s >= 20_000.0 && errors == 0 {
            "met"
        } else {
            "missed"
        }
    );
    Ok(())
}

/// `text` as a JSON string.
fn json_string(text: &str) -> Vec<u8> {
    serde_json::to_vec(text).expect("a string serializes")
}

fn lookup_request(key: &str) -> Vec<u8> {
    format!("GET /table/{TABLE}/{key}/ HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes()
}

struct Load {
    latencies_us: Vec<u32>,
    ok: u64,
    errors: u64,
}

/// One connection's requests until `deadline`, one in flight, over keys spread by `seed`.
async fn load(
    mut conn: http::Conn,
    requests: Arc<Vec<Vec<u8>>>,
    seed: u64,
    deadline: tokio::time::Instant,
) -> Load {
    let mut done = Load {
        latencies_us: Vec::with_capacity(1 << 16),
        ok: 0,
        errors: 0,
    };
    let mut i = seed.wrapping_mul(7919);
    while tokio::time::Instant::now() < deadline {
        i = i.wrapping_add(104_729);
        let request = &requests[(i % requests.len() as u64) as usize];
        let sent = Instant::now();
        match conn.exchange(request).await {
            Ok(200) => done.ok += 1,
            Ok(_) => done.errors += 1,
            Err(_) => {
                done.errors += 1;
                match http::Conn::connect(conn.address()).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => break,
                }
            }
        }
        let us = sent.elapsed().as_micros();
        done.latencies_us
            .push(u32::try_from(us).unwrap_or(u32::MAX));
    }
    done
}

/// Sends `rate` events a second (in 10 ms slices) over `keys` keys until stopped; returns
/// how many it sent (all acknowledged).
async fn feed(
    producer: Producer,
    topic: String,
    rate: u64,
    keys: u64,
    mut stopped: watch::Receiver<bool>,
) -> Result<u64, BoxError> {
    let per_slice = rate.div_ceil(100);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut sent = 0u64;
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tick.tick() => {}
        }
        for _ in 0..per_slice {
            let key = format!("key-{}", sent % keys);
            let value = json_string(&key);
            pending.push_back(
                producer
                    .send(record(&topic, key.into_bytes(), value))
                    .await?,
            );
            sent += 1;
        }
        while pending.len() > 50_000 {
            pending.pop_front().expect("not empty").await?;
        }
    }
    for delivery in pending {
        delivery.await?;
    }
    producer.close().await?;
    Ok(sent)
}

/// The worker process of the lookups: counts each event's key into table `counts`; prints
/// `web_address=..`, then `ready` once it counted `keys` events; between the `start` and
/// `stop` lines on its stdin it measures its CPU and the events it counted, then stops.
async fn serve(bootstrap: &str, topic: &str, keys: u64) -> Outcome {
    let app = App::builder(&format!("webbench-serve-{}", std::process::id()))
        .broker(&format!("kafka://{bootstrap}"))
        .topic_partitions(PARTITIONS)
        .consumer_auto_offset_reset("earliest")
        .web_enabled(true)
        .web_port(0)
        .build()?;
    let words = app.topic::<String, String>(topic);
    let counts: Table<String, u64> = app.table(TABLE)?.with_default(u64::default);
    let counted = Arc::new(AtomicU64::new(0));
    let (table, seen) = (counts.clone(), counted.clone());
    app.agent_builder("count", &words)
        .table(&counts)
        .run(move |mut words| {
            let (table, seen) = (table.clone(), seen.clone());
            async move {
                while let Some(word) = words.next().await {
                    table.update(&*word, |n| *n += 1)?;
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), streams::Error>(())
            }
        });
    app.start().await?;
    let address = app.web_address().ok_or("no web server")?;
    println!("web_address={address}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while counted.load(Ordering::Relaxed) < keys {
        if Instant::now() > deadline {
            return Err("the first keys were not counted within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("ready");
    let mut commands = lines_of(std::io::stdin());
    let mut window = None;
    let mut figures = None;
    while let Some(line) = commands.recv().await {
        let now = (
            Instant::now(),
            process_cpu_seconds()?,
            counted.load(Ordering::Relaxed),
        );
        match (line.as_str(), window) {
            ("start", _) => window = Some(now),
            ("stop", Some((t0, cpu0, events0))) => {
                figures = Some((
                    now.0.duration_since(t0).as_secs_f64(),
                    now.1 - cpu0,
                    now.2 - events0,
                ));
                break;
            }
            _ => {}
        }
    }
    app.shutdown().await?;
    let (secs, cpu, events) = figures.ok_or("no start and stop")?;
    println!(
        "serve window_s={secs:.2} server_cpu_s={cpu:.2} server_cores={:.2} events_counted={events} \
         events_per_s={:.0}",
        cpu / secs,
        events as f64 / secs
    );
    Ok(())
}

/// A minimal HTTP/1.1 client: keep-alive, one request in flight, `Content-Length` bodies only
/// (what the worker's server sends for these routes).
mod http {
    use std::io;
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// The largest response head read.
    const MAX_HEAD: usize = 64 * 1024;

    pub struct Conn {
        stream: TcpStream,
        address: SocketAddr,
        buf: Vec<u8>,
        body: std::ops::Range<usize>,
    }

    impl Conn {
        pub async fn connect(address: SocketAddr) -> io::Result<Conn> {
            let stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            Ok(Conn {
                stream,
                address,
                buf: Vec::with_capacity(16 * 1024),
                body: 0..0,
            })
        }

        pub fn address(&self) -> SocketAddr {
            self.address
        }

        /// The body of the last response.
        pub fn body(&self) -> &[u8] {
            &self.buf[self.body.clone()]
        }

        /// Writes `request` and reads its response; returns the status.
        pub async fn exchange(&mut self, request: &[u8]) -> io::Result<u16> {
            // Nothing arrives unasked: what is left is the last body.
            self.buf.clear();
            self.stream.write_all(request).await?;
            let head = loop {
                if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(io::Error::other("response head too large"));
                }
                self.read_more().await?;
            };
            let text = std::str::from_utf8(&self.buf[..head]).map_err(io::Error::other)?;
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other("no status"))?;
            let length = text
                .split("\r\n")
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .ok_or_else(|| io::Error::other("no content-length"))?;
            while self.buf.len() < head + length {
                self.read_more().await?;
            }
            self.body = head..head + length;
            Ok(status)
        }

        async fn read_more(&mut self) -> io::Result<()> {
            self.buf.reserve(8 * 1024);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            Ok(())
        }
    }
}
