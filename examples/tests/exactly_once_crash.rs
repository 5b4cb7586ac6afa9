//! The proof of exactly-once (issue 19): the `exactly_once` example runs as three worker
//! processes while the test feeds the source topic with events of unique ids and SIGKILLs a
//! worker every few seconds (seeded), restarting it under the same instance id (and, with
//! redb, the same store directory). Once a read_committed consumer has read an output for
//! every id, the kills stop, the workers finish and stop gracefully (printing their stores),
//! and the test checks:
//!
//! - the output: every input id exactly once (lost and duplicated ids reported, with counts),
//!   each with its key and its amount doubled;
//! - the table: count and sum per key, read from the changelog (compacted, read_committed,
//!   last value per key) and from the stores the workers printed when they stopped.
//!
//! Under exactly-once all of it must be exact. Under at-least-once the same kills must lose
//! nothing, and the test asserts that it DID see duplicates: the harness can fail.
//!
//! The broker is an in-process mock cluster of 3 brokers, where faults are injected as well
//! (dropped connections, coordinator errors, a broker stopped and restarted, and, once the
//! mock serves transactions, errors on the transactional APIs), or real Kafka when
//! KAFKA_BOOTSTRAP is set (SIGKILLs only).
//!
//! Settings (environment; scripts/exactly-once-proof runs the same code at 1,000,000 events):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `EOS_EVENTS` | 200,000 | events fed (about 30 s a run, on the mock or Kafka, debug build, 2 cores) |
//! | `EOS_KILLS` | 10 | SIGKILLs at least (more while the output is incomplete) |
//! | `EOS_SEED` | 1 | seeds the kill schedule (which worker, when) and the mock's faults |
//! | `EOS_FEED_SECS` | 3 × EOS_KILLS | the feed is spread over this long |
//! | `EOS_STORE_KIND` | `redb` | `redb` (a store directory per worker, kept across restarts) or `memory` |
//! | `EOS_DEADLINE_SECS` | EOS_FEED_SECS + 300 | the whole run's deadline |
//! | `EOS_COMMIT_INTERVAL_MS`, `EOS_TRANSACTION_TIMEOUT_MS` | the example's | passed to the workers |
//! | `EOS_WORKER_LOG` | `warn` | the workers' RUST_LOG |
//!
//! ```text
//! cargo test -p examples --test exactly_once_crash -- --nocapture
//! EOS_EVENTS=200000 EOS_SEED=7 cargo test -p examples --test exactly_once_crash -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_client::admin::{Admin, NewTopic, OffsetSpec};
use kafka_client::consumer::{Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, Offset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};

mod common;

const PARTITIONS: i32 = 6;
const KEYS: u64 = 50;
const WORKERS: usize = 3;
const MOCK_BROKERS: i32 = 3;
const DEFAULT_EVENTS: u64 = 200_000;
const DEFAULT_KILLS: u64 = 10;
/// Time between two SIGKILLs: uniform in this range (so `3 × kills` seconds hold `kills`).
const KILL_EVERY_MS: (u64, u64) = (1_000, 3_000);
/// Time between two injected faults on the mock.
const FAULT_EVERY_MS: (u64, u64) = (1_000, 3_000);
/// Waits after the kills: the workers catching up, a graceful stop, reading a topic's end.
const CATCH_UP: Duration = Duration::from_secs(180);
const STOP: Duration = Duration::from_secs(60);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v:?}"))
        })
        .unwrap_or(default)
}

/// splitmix64: a tiny deterministic PRNG (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `lo..=hi` (the modulo bias does not matter here).
    fn range(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The event with id `id`: its key and amount (1 to 100).
fn event(id: u64) -> (String, i64) {
    (
        format!("k{:02}", id % KEYS),
        1 + (mix(id.wrapping_add(0x5EED)) % 100) as i64,
    )
}

/// What the table must hold: (count, sum) per key.
fn truth(events: u64) -> BTreeMap<String, (u64, i64)> {
    let mut totals = BTreeMap::new();
    for id in 0..events {
        let (key, amount) = event(id);
        let t = totals.entry(key).or_insert((0, 0));
        t.0 += 1;
        t.1 += amount;
    }
    totals
}

#[derive(Debug, Clone)]
struct Config {
    guarantee: &'static str,
    events: u64,
    kills: u64,
    seed: u64,
    feed: Duration,
    redb: bool,
    deadline: Duration,
}

impl Config {
    fn from_env(guarantee: &'static str) -> Config {
        let kills = env_u64("EOS_KILLS", DEFAULT_KILLS);
        let feed = env_u64("EOS_FEED_SECS", 3 * kills);
        let redb = match std::env::var("EOS_STORE_KIND").as_deref() {
            Err(_) | Ok("redb") => true,
            Ok("memory") => false,
            Ok(other) => panic!("EOS_STORE_KIND={other:?}: use redb or memory"),
        };
        Config {
            guarantee,
            events: env_u64("EOS_EVENTS", DEFAULT_EVENTS),
            kills,
            seed: env_u64("EOS_SEED", 1),
            feed: Duration::from_secs(feed),
            redb,
            deadline: Duration::from_secs(env_u64("EOS_DEADLINE_SECS", feed + 300)),
        }
    }
}

/// Where the run happens: names, the broker, the mock if it is one.
struct Setup {
    bootstrap: String,
    app: String,
    source: String,
    output: String,
    dir: tempfile::TempDir,
    mock: Option<Arc<MockCluster>>,
}

impl Setup {
    async fn new(cfg: &Config) -> Setup {
        let app = testkit::unique_name(&format!("eos-{}", cfg.guarantee.replace('_', "-")));
        let (bootstrap, mock) = match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(bootstrap) => (bootstrap, None),
            Err(_) => {
                let mock = MockCluster::builder()
                    .brokers(MOCK_BROKERS as usize)
                    .default_partitions(PARTITIONS)
                    .build()
                    .await
                    .unwrap();
                (mock.bootstrap(), Some(Arc::new(mock)))
            }
        };
        let s = Setup {
            bootstrap,
            source: format!("{app}-events"),
            output: format!("{app}-doubled"),
            app,
            dir: tempfile::tempdir().unwrap(),
            mock,
        };
        let admin = s.admin().await;
        admin
            .create_topics(vec![
                NewTopic::new(&s.source, PARTITIONS, 1),
                NewTopic::new(&s.output, PARTITIONS, 1),
            ])
            .await
            .unwrap();
        s
    }

    async fn admin(&self) -> Admin {
        Admin::new(ClientConfig::new(&self.bootstrap).unwrap())
            .await
            .unwrap()
    }

    fn changelog(&self) -> String {
        format!("{}-totals-changelog", self.app)
    }

    fn broker_name(&self) -> String {
        match &self.mock {
            Some(_) => format!("mock ({MOCK_BROKERS} brokers, faults injected)"),
            None => format!("Kafka at {}", self.bootstrap),
        }
    }
}

/// One worker slot: its identity and store survive restarts. A slot dropped while its worker
/// runs (the test failed) SIGKILLs and reaps it, so no worker outlives its test.
struct Worker {
    index: usize,
    instance: String,
    store: String,
    child: Option<Child>,
    /// Incarnations started; logs are `w<index>-<incarnation>.{out,err}`.
    started: u32,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Worker {
    fn new(s: &Setup, cfg: &Config, index: usize) -> Worker {
        let store = if cfg.redb {
            let dir = s.dir.path().join(format!("w{index}-store"));
            std::fs::create_dir_all(&dir).unwrap();
            format!("redb://{}", dir.display())
        } else {
            "memory://".to_owned()
        };
        Worker {
            index,
            instance: format!("{}-w{index}", s.app),
            store,
            child: None,
            started: 0,
        }
    }

    fn log(&self, dir: &Path, incarnation: u32, ext: &str) -> PathBuf {
        dir.join(format!("w{}-{incarnation}.{ext}", self.index))
    }

    fn start(&mut self, s: &Setup, cfg: &Config) {
        self.started += 1;
        let out = File::create(self.log(s.dir.path(), self.started, "out")).unwrap();
        let err = File::create(self.log(s.dir.path(), self.started, "err")).unwrap();
        let mut cmd = Command::new(common::example("exactly_once"));
        cmd.args([
            "--broker",
            &format!("kafka://{}", s.bootstrap),
            "worker",
            "--no-web",
        ])
        .env("EOS_APP", &s.app)
        .env("EOS_SOURCE", &s.source)
        .env("EOS_OUTPUT", &s.output)
        .env("EOS_STORE", &self.store)
        .env("EOS_GUARANTEE", cfg.guarantee)
        .env("EOS_INSTANCE", &self.instance)
        .env("EOS_PARTITIONS", PARTITIONS.to_string())
        .env(
            "RUST_LOG",
            std::env::var("EOS_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
        self.child = Some(cmd.spawn().unwrap());
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// The exit status if the worker ended by itself.
    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().unwrap()?;
        self.child = None;
        Some(status)
    }

    fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
        }
    }

    fn sigint(&self) {
        let pid = self.pid().to_string();
        assert!(Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
    }

    async fn wait_exit(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "worker {} did not stop within {STOP:?} of Ctrl-C",
                self.index
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn tail(&self, dir: &Path, incarnation: u32, lines: usize) -> String {
        let mut text = String::new();
        for ext in ["out", "err"] {
            let all = std::fs::read_to_string(self.log(dir, incarnation, ext)).unwrap_or_default();
            let all: Vec<&str> = all.lines().filter(|l| !l.starts_with("final ")).collect();
            let from = all.len().saturating_sub(lines);
            for l in &all[from..] {
                text.push_str(&format!("    [w{} #{incarnation} {ext}] {l}\n", self.index));
            }
        }
        text
    }

    /// The `final <key> count=<n> sum=<s>` lines of the last incarnation.
    fn dump(&self, dir: &Path) -> BTreeMap<String, (u64, i64)> {
        let out = std::fs::read_to_string(self.log(dir, self.started, "out")).unwrap();
        out.lines()
            .filter_map(|l| l.strip_prefix("final "))
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                let num = |c: &str, name: &str| c.strip_prefix(name).unwrap().to_owned();
                (
                    cols[0].to_owned(),
                    (
                        num(cols[1], "count=").parse().unwrap(),
                        num(cols[2], "sum=").parse().unwrap(),
                    ),
                )
            })
            .collect()
    }
}

/// A read_committed reader of a whole topic, in a task, from the start: hands every record to
/// `apply` and publishes its positions.
struct Tail {
    topic: String,
    positions: Arc<Mutex<BTreeMap<i32, i64>>>,
    error: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tail {
    async fn start(
        bootstrap: &str,
        topic: &str,
        mut apply: impl FnMut(&ConsumerRecord) + Send + 'static,
    ) -> Tail {
        let config = ConsumerConfig::default().with_isolation_level(IsolationLevel::ReadCommitted);
        let mut consumer = Consumer::new(ClientConfig::new(bootstrap).unwrap(), config)
            .await
            .unwrap();
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(topic, p))
            .collect();
        consumer.assign(tps.clone());
        for tp in &tps {
            consumer.seek(tp, Offset::Earliest).await.unwrap();
        }
        let positions = Arc::new(Mutex::new(BTreeMap::new()));
        let error = Arc::new(Mutex::new(None));
        let (pos, err) = (positions.clone(), error.clone());
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                let idle =
                    match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
                        Ok(Ok(record)) => {
                            apply(&record);
                            n += 1;
                            false
                        }
                        Ok(Err(e)) => {
                            *err.lock().unwrap() = Some(e.to_string());
                            true
                        }
                        Err(_) => true,
                    };
                if idle || n.is_multiple_of(1024) {
                    let mut pos = pos.lock().unwrap();
                    for tp in &tps {
                        if let Some(p) = consumer.position(tp) {
                            pos.insert(tp.partition, p);
                        }
                    }
                }
            }
        });
        Tail {
            topic: topic.to_owned(),
            positions,
            error,
            task,
        }
    }

    /// Waits until every partition is read up to the end it has now (the last stable offset
    /// once open transactions end).
    async fn read_to_end(&self, admin: &Admin) {
        let tps: Vec<(TopicPartition, OffsetSpec)> = (0..PARTITIONS)
            .map(|p| (TopicPartition::new(&self.topic, p), OffsetSpec::Latest))
            .collect();
        let ends = admin.list_offsets(tps).await.unwrap();
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let behind: Vec<String> = {
                let pos = self.positions.lock().unwrap();
                ends.iter()
                    .filter(|(tp, end)| pos.get(&tp.partition).copied().unwrap_or(0) < end.offset)
                    .map(|(tp, end)| {
                        format!("{tp}: {:?} of {}", pos.get(&tp.partition), end.offset)
                    })
                    .collect()
            };
            if behind.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not read to its end within {CATCH_UP:?}: {behind:?}; last error {:?}",
                self.topic,
                self.error.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the output reader saw, by id.
#[derive(Default)]
struct Output {
    counts: Vec<u32>,
    distinct: u64,
    records: u64,
    /// Records that are not an input event doubled (or not an event at all).
    wrong: Vec<String>,
}

impl Output {
    fn apply(&mut self, r: &ConsumerRecord) {
        self.records += 1;
        #[derive(serde::Deserialize)]
        struct Doubled {
            id: u64,
            key: String,
            amount: i64,
        }
        let value = r.value.as_deref().unwrap_or_default();
        let Ok(d) = serde_json::from_slice::<Doubled>(value) else {
            self.wrong
                .push(format!("{}: {}", r.offset, String::from_utf8_lossy(value)));
            return;
        };
        let Some(count) = self.counts.get_mut(d.id as usize) else {
            self.wrong.push(format!("unknown id {}", d.id));
            return;
        };
        let (key, amount) = event(d.id);
        if d.key != key || d.amount != 2 * amount || r.key.as_deref() != Some(key.as_bytes()) {
            self.wrong.push(format!(
                "id {}: {} {} (fed {key} {amount})",
                d.id, d.key, d.amount
            ));
        }
        if *count == 0 {
            self.distinct += 1;
        }
        *count += 1;
    }
}

/// Feeds `events` events over `over`, in chunks every 100 ms, each chunk acknowledged before
/// the next.
async fn feed(bootstrap: String, topic: String, events: u64, over: Duration) {
    let producer = Producer::new(
        ClientConfig::new(&bootstrap).unwrap(),
        ProducerConfig::default(),
    )
    .await
    .unwrap();
    let ticks = (over.as_millis() / 100).max(1) as u64;
    let chunk = events.div_ceil(ticks);
    let start = tokio::time::Instant::now();
    let mut id = 0;
    for tick in 0.. {
        if id >= events {
            break;
        }
        tokio::time::sleep_until(start + Duration::from_millis(100 * tick)).await;
        let mut acks = Vec::new();
        for id in id..(id + chunk).min(events) {
            let (key, amount) = event(id);
            let value = format!(r#"{{"id":{id},"key":"{key}","amount":{amount}}}"#);
            let record = ProducerRecord::new(&topic).key(key).value(value);
            acks.push(producer.send(record).await.unwrap());
        }
        id = (id + chunk).min(events);
        for ack in acks {
            ack.await.unwrap();
        }
    }
    producer.close().await.unwrap();
}

/// A fault the mock injects: what it is, and a broker to stop (it restarts at the next
/// fault). The `nth` fault of a run (from 0) is a broker stop when `nth` is 2, and one in
/// eight after that.
fn inject(
    cluster: &MockCluster,
    rng: &mut Rng,
    nth: usize,
    transactions: bool,
) -> (String, Option<i32>) {
    let mut faults: Vec<(ApiKey, Intercept)> = vec![
        (
            ApiKey::Produce,
            Intercept::drop_connection().times(1 + rng.below(2) as usize),
        ),
        (ApiKey::Fetch, Intercept::drop_connection()),
        (
            ApiKey::Fetch,
            Intercept::delay(Duration::from_millis(300)).times(3),
        ),
        (
            ApiKey::OffsetCommit,
            Intercept::error(KafkaCode::NotCoordinator).times(1 + rng.below(3) as usize),
        ),
        (
            ApiKey::OffsetCommit,
            Intercept::error(KafkaCode::CoordinatorLoadInProgress).times(2),
        ),
        (
            ApiKey::FindCoordinator,
            Intercept::error(KafkaCode::CoordinatorNotAvailable).times(2),
        ),
        (ApiKey::Heartbeat, Intercept::drop_connection()),
    ];
    if transactions {
        // Served by the mock once its transaction coordinator lands; retriable for a
        // transactional producer (Java retries each of them).
        faults.extend([
            (
                ApiKey::FindCoordinator,
                Intercept::error(KafkaCode::NotCoordinator).times(2),
            ),
            (
                ApiKey::AddPartitionsToTxn,
                Intercept::error(KafkaCode::NotCoordinator),
            ),
            (
                ApiKey::AddPartitionsToTxn,
                Intercept::error(KafkaCode::ConcurrentTransactions).times(2),
            ),
            (
                ApiKey::AddOffsetsToTxn,
                Intercept::error(KafkaCode::ConcurrentTransactions),
            ),
            (
                ApiKey::TxnOffsetCommit,
                Intercept::error(KafkaCode::CoordinatorLoadInProgress),
            ),
            (ApiKey::EndTxn, Intercept::error(KafkaCode::NotCoordinator)),
            (ApiKey::EndTxn, Intercept::drop_connection()),
            (
                ApiKey::InitProducerId,
                Intercept::error(KafkaCode::ConcurrentTransactions),
            ),
        ]);
    }
    if nth == 2 || rng.below(8) == 0 {
        let broker = 1 + rng.below(MOCK_BROKERS as u64) as i32;
        return (format!("broker {broker} stopped"), Some(broker));
    }
    let (api, intercept) = faults.swap_remove(rng.below(faults.len() as u64) as usize);
    let text = format!("{api:?}: {:?}", intercept.action());
    cluster.intercept(api, intercept);
    (text, None)
}

/// A key's (count, sum).
type Totals = (u64, i64);

/// What a run found.
struct Summary {
    lost: Vec<u64>,
    /// Id -> times it was read, for ids read more than once.
    duplicated: BTreeMap<u64, u32>,
    extra_records: u64,
    wrong_output: Vec<String>,
    /// Key -> (truth, changelog) for keys whose changelog total is not the truth.
    changelog_off: BTreeMap<String, (Totals, Option<Totals>)>,
    /// Key -> (truth, store) for printed store totals that are not the truth.
    store_off: BTreeMap<String, (Totals, Totals)>,
    /// Keys printed by more than one worker with different totals, or that differ from the
    /// changelog.
    store_changelog_mismatch: Vec<String>,
    store_keys: usize,
    /// Events counted more than once by the changelog totals.
    over_counted: i64,
    under_counted: i64,
    kills: u64,
    self_exits: Vec<String>,
}

fn list(ids: &[u64]) -> String {
    let shown: Vec<String> = ids.iter().take(20).map(|i| i.to_string()).collect();
    let more = if ids.len() > 20 { " ..." } else { "" };
    format!("[{}{more}]", shown.join(", "))
}

/// One run at a time: each runs 3 worker processes and the test binary runs tests in
/// parallel.
static ONE_RUN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run(cfg: Config) -> Summary {
    let _one = ONE_RUN.lock().await;
    let t0 = Instant::now();
    let s = Setup::new(&cfg).await;
    let store_kind = if cfg.redb { "redb" } else { "memory" };
    eprintln!(
        "exactly-once proof [{}] on {}: {} events, {KEYS} keys, {PARTITIONS} partitions, \
         {WORKERS} workers ({store_kind} stores), >= {} SIGKILLs, seed {}, fed over {:?}",
        cfg.guarantee,
        s.broker_name(),
        cfg.events,
        cfg.kills,
        cfg.seed,
        cfg.feed
    );
    let output = Arc::new(Mutex::new(Output {
        counts: vec![0; cfg.events as usize],
        ..Output::default()
    }));
    let seen = output.clone();
    let out_tail = Tail::start(&s.bootstrap, &s.output, move |r| {
        seen.lock().unwrap().apply(r)
    })
    .await;

    let mut workers: Vec<Worker> = (0..WORKERS).map(|i| Worker::new(&s, &cfg, i)).collect();
    for w in &mut workers {
        w.start(&s, &cfg);
    }
    let feeder = tokio::spawn(feed(
        s.bootstrap.clone(),
        s.source.clone(),
        cfg.events,
        cfg.feed,
    ));

    let mut rng = Rng(cfg.seed);
    let mut fault_rng = Rng(cfg.seed ^ 0xFA17_5EED);
    let transactions = testkit::supported_apis()
        .iter()
        .any(|(api, _, _)| *api == ApiKey::EndTxn);
    let mut kills = 0u64;
    let mut faults = Vec::new();
    let mut self_exits = Vec::new();
    let mut broker_down: Option<i32> = None;
    let mut next_kill = Instant::now() + Duration::from_millis(rng.range(KILL_EVERY_MS));
    let mut next_fault = Instant::now() + Duration::from_millis(fault_rng.range(FAULT_EVERY_MS));
    let deadline = t0 + cfg.deadline;
    let (mut fed_at, mut complete_at) = (None, None);
    loop {
        let now = Instant::now();
        if fed_at.is_none() && feeder.is_finished() {
            fed_at = Some(t0.elapsed());
        }
        let distinct = output.lock().unwrap().distinct;
        if complete_at.is_none() && distinct == cfg.events {
            complete_at = Some(t0.elapsed());
        }
        // A worker that stopped by itself (an error it could not get past) is restarted, as
        // a supervisor would.
        for w in &mut workers {
            if let Some(status) = w.exited() {
                let text = format!(
                    "w{} #{} exited by itself ({status}) at {:.1?}:\n{}",
                    w.index,
                    w.started,
                    t0.elapsed(),
                    w.tail(s.dir.path(), w.started, 5)
                );
                eprintln!("  {text}");
                self_exits.push(text);
                w.start(&s, &cfg);
            }
        }
        if complete_at.is_some() && fed_at.is_some() && kills >= cfg.kills {
            break;
        }
        assert!(
            now < deadline,
            "[{}] no complete output within {:?}: {distinct} of {} ids read, {kills} kills; \
             worker logs:\n{}",
            cfg.guarantee,
            cfg.deadline,
            cfg.events,
            workers
                .iter()
                .map(|w| w.tail(s.dir.path(), w.started, 10))
                .collect::<String>()
        );
        if now >= next_kill {
            let w = &mut workers[rng.below(WORKERS as u64) as usize];
            let pid = w.pid();
            w.sigkill();
            kills += 1;
            w.start(&s, &cfg);
            eprintln!(
                "  {:>6.1?}: SIGKILL w{} (pid {pid}), restarted as pid {}; {distinct} ids read",
                t0.elapsed(),
                w.index,
                w.pid()
            );
            next_kill = now + Duration::from_millis(rng.range(KILL_EVERY_MS));
        }
        if let Some(mock) = &s.mock {
            if now >= next_fault {
                if let Some(broker) = broker_down.take() {
                    mock.restart_broker(broker).await.unwrap();
                    faults.push(format!("broker {broker} restarted"));
                } else {
                    let (text, down) = inject(mock, &mut fault_rng, faults.len(), transactions);
                    if let Some(broker) = down {
                        mock.stop_broker(broker).await.unwrap();
                        broker_down = Some(broker);
                    }
                    faults.push(text);
                }
                eprintln!(
                    "  {:>6.1?}: fault: {}",
                    t0.elapsed(),
                    faults.last().unwrap()
                );
                next_fault = now + Duration::from_millis(fault_rng.range(FAULT_EVERY_MS));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    feeder.await.unwrap();
    let killing_done = t0.elapsed();

    // No more faults. The workers finish what is left (the table counts every event at least
    // once), then stop gracefully: they commit and print their stores.
    if let Some(mock) = &s.mock {
        mock.clear_intercepts();
        if let Some(broker) = broker_down.take() {
            mock.restart_broker(broker).await.unwrap();
        }
    }
    let truth = truth(cfg.events);
    let changelog = Arc::new(Mutex::new(BTreeMap::<String, (u64, i64)>::new()));
    let table = changelog.clone();
    let log_tail = Tail::start(&s.bootstrap, &s.changelog(), move |r| {
        let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
        let mut table = table.lock().unwrap();
        match &r.value {
            None => table.remove(&key),
            Some(v) => {
                #[derive(serde::Deserialize)]
                struct Totals {
                    count: u64,
                    sum: i64,
                }
                let t: Totals = serde_json::from_slice(v).unwrap();
                table.insert(key, (t.count, t.sum))
            }
        };
    })
    .await;
    let caught_up = Instant::now() + CATCH_UP;
    loop {
        for w in &mut workers {
            if let Some(status) = w.exited() {
                self_exits.push(format!(
                    "w{} #{} exited by itself ({status})",
                    w.index, w.started
                ));
                w.start(&s, &cfg);
            }
        }
        let behind: Vec<String> = {
            let table = changelog.lock().unwrap();
            truth
                .iter()
                .filter(|(k, t)| table.get(*k).is_none_or(|c| c.0 < t.0))
                .map(|(k, t)| format!("{k}: {:?} of {}", table.get(k), t.0))
                .collect()
        };
        if behind.is_empty() {
            break;
        }
        assert!(
            Instant::now() < caught_up,
            "[{}] the changelog does not count every event within {CATCH_UP:?}: {behind:?}",
            cfg.guarantee
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in &workers {
        w.sigint();
    }
    let stopped = Instant::now() + STOP;
    for w in &mut workers {
        let status = w.wait_exit(stopped).await;
        assert!(
            status.success(),
            "w{} stopped with {status}:\n{}",
            w.index,
            w.tail(s.dir.path(), w.started, 20)
        );
    }
    let admin = s.admin().await;
    out_tail.read_to_end(&admin).await;
    log_tail.read_to_end(&admin).await;

    // The checks.
    let output = output.lock().unwrap();
    let lost: Vec<u64> = (0..cfg.events)
        .filter(|id| output.counts[*id as usize] == 0)
        .collect();
    let duplicated: BTreeMap<u64, u32> = (0..cfg.events)
        .filter(|id| output.counts[*id as usize] > 1)
        .map(|id| (id, output.counts[id as usize]))
        .collect();
    let changelog = changelog.lock().unwrap().clone();
    let changelog_off = truth
        .iter()
        .filter(|(k, t)| changelog.get(*k) != Some(t))
        .map(|(k, t)| (k.clone(), (*t, changelog.get(k).copied())))
        .collect();
    let counted: i64 = changelog.values().map(|c| c.0 as i64).sum();
    let over_counted = truth
        .iter()
        .map(|(k, t)| {
            changelog
                .get(k)
                .map_or(0, |c| c.0 as i64 - t.0 as i64)
                .max(0)
        })
        .sum();
    let under_counted = truth
        .iter()
        .map(|(k, t)| (t.0 as i64 - changelog.get(k).map_or(0, |c| c.0 as i64)).max(0))
        .sum();
    let mut stores: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut store_changelog_mismatch = Vec::new();
    for w in &workers {
        for (key, t) in w.dump(s.dir.path()) {
            if stores
                .insert(key.clone(), t)
                .is_some_and(|other| other != t)
            {
                store_changelog_mismatch
                    .push(format!("{key}: two workers printed it, differently"));
            }
            if changelog.get(&key) != Some(&t) {
                store_changelog_mismatch.push(format!(
                    "{key}: w{} store {t:?}, changelog {:?}",
                    w.index,
                    changelog.get(&key)
                ));
            }
        }
    }
    let store_off = truth
        .iter()
        .filter_map(|(k, t)| {
            let stored = stores.get(k)?;
            (stored != t).then(|| (k.clone(), (*t, *stored)))
        })
        .collect();
    let summary = Summary {
        extra_records: output.records - output.distinct,
        lost,
        duplicated,
        wrong_output: output.wrong.clone(),
        changelog_off,
        store_off,
        store_changelog_mismatch,
        store_keys: stores.len(),
        over_counted,
        under_counted,
        kills,
        self_exits,
    };
    let dup_ids: Vec<u64> = summary.duplicated.keys().copied().collect();
    eprintln!(
        "exactly-once proof [{}] on {}: {} events, {} SIGKILLs, {} faults, {} self-exits; fed \
         in {:.1?}, output complete at {:.1?}, kills over at {killing_done:.1?}, done in {:.1?}\n  \
         output (read_committed): {} records; {} lost {}; {} duplicated ({} extra records) {}; \
         {} wrong\n  \
         table (changelog, read_committed): {counted} events counted for {}: {} keys off, {} \
         over-counted, {} under-counted\n  \
         stores (printed at the graceful stop): {} of {} keys, {} off the truth, {} off the \
         changelog",
        cfg.guarantee,
        s.broker_name(),
        cfg.events,
        summary.kills,
        faults.len(),
        summary.self_exits.len(),
        fed_at.unwrap_or_default(),
        complete_at.unwrap_or_default(),
        t0.elapsed(),
        output.records,
        summary.lost.len(),
        list(&summary.lost),
        summary.duplicated.len(),
        summary.extra_records,
        list(&dup_ids),
        summary.wrong_output.len(),
        cfg.events,
        summary.changelog_off.len(),
        summary.over_counted,
        summary.under_counted,
        summary.store_keys,
        truth.len(),
        summary.store_off.len(),
        summary.store_changelog_mismatch.len(),
    );
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_survives_repeated_sigkills() {
    let cfg = Config::from_env("exactly_once");
    let s = run(cfg.clone()).await;
    assert!(s.kills >= cfg.kills, "only {} kills", s.kills);
    assert!(
        s.wrong_output.is_empty(),
        "wrong output: {:?}",
        s.wrong_output
    );
    assert!(
        s.lost.is_empty(),
        "{} ids lost: {}",
        s.lost.len(),
        list(&s.lost)
    );
    assert!(
        s.duplicated.is_empty(),
        "{} ids duplicated (id: times): {:?}",
        s.duplicated.len(),
        s.duplicated.iter().take(20).collect::<Vec<_>>()
    );
    assert!(
        s.changelog_off.is_empty(),
        "changelog totals off (truth, changelog): {:?}",
        s.changelog_off
    );
    assert_eq!(
        s.store_keys as u64, KEYS,
        "the stores printed {} keys",
        s.store_keys
    );
    assert!(
        s.store_off.is_empty(),
        "store totals off: {:?}",
        s.store_off
    );
    assert!(
        s.store_changelog_mismatch.is_empty(),
        "{:?}",
        s.store_changelog_mismatch
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_repeats_events_under_the_same_kills() {
    let cfg = Config::from_env("at_least_once");
    let s = run(cfg.clone()).await;
    assert!(s.kills >= cfg.kills, "only {} kills", s.kills);
    assert!(
        s.wrong_output.is_empty(),
        "wrong output: {:?}",
        s.wrong_output
    );
    assert!(
        s.lost.is_empty(),
        "{} ids lost: {}",
        s.lost.len(),
        list(&s.lost)
    );
    assert_eq!(s.under_counted, 0, "events missing from the table");
    assert!(
        s.changelog_off
            .values()
            .all(|(t, c)| c.is_some_and(|c| c.0 >= t.0 && c.1 >= t.1)),
        "a changelog total below the truth: {:?}",
        s.changelog_off
    );
    assert!(
        s.store_changelog_mismatch.is_empty(),
        "{:?}",
        s.store_changelog_mismatch
    );
    // The point: the same kills repeat events under at-least-once, so the exactly-once
    // test's assertions can fail. (The table is over-counted only when a kill falls between
    // a changelog flush and the offset commit after it, so that is reported, not required.)
    assert!(
        !s.duplicated.is_empty(),
        "at-least-once saw no duplicate output under {} kills: the harness would not catch a \
         broken exactly-once",
        s.kills
    );
    eprintln!(
        "at-least-once, as expected: {} ids duplicated ({} extra output records), {} events \
         over-counted in the table",
        s.duplicated.len(),
        s.extra_records,
        s.over_counted
    );
}
