//! The Kafka Streams side of the comparison tests (issue 23's "equal to Kafka Streams"): run a
//! Kafka Streams app from `scripts/java/<Class>.java` (Java's single-file source launcher,
//! with the Kafka Streams jars of the broker's version), feed its input topics, and read its
//! output back as `(key, value, timestamp)` records, the same way for our app.
//!
//! Use it from a test file with `mod common;` and `#[path = "common/kstreams.rs"] mod
//! kstreams;`. Tests that use it need real Kafka: they are `#[ignore]`d and read
//! `KAFKA_BOOTSTRAP` ([`bootstrap`]); .ci/run's kafka_client_tests runs them.
//!
//! The Java apps speak one protocol on stdin/stdout (see scripts/java/JoinsStreamTable.java):
//! they print `RUNNING` once the KafkaStreams instance runs (`FAILED` if it went to ERROR),
//! then answer each command line with one line: `get KEY` → `=VALUE` or `-` (the app's
//! queryable store), `stop` (or the end of stdin) → close, print `CLOSED`, exit (status 1 if
//! the instance failed). Phases make runs deterministic: produce one side, wait until both
//! apps applied it ([`KStreamsApp::wait_for`], [`wait_committed`]), then the next.
#![allow(dead_code)] // each comparison test uses its own part

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kafka_client::consumer::IsolationLevel;
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, GroupConfig, GroupConsumer, NewTopic, Offset,
    OffsetSpec, TopicPartition,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A record as the comparison sees it: key, value (`None`: a tombstone), timestamp (ms).
pub type Record = (Option<String>, Option<String>, i64);

/// How long a Kafka Streams app may take to start (the JVM compiles the source first).
const START: Duration = Duration::from_secs(120);
/// How long any other wait of the comparison may take.
const WAIT: Duration = Duration::from_secs(90);

/// The real broker of the comparison; panics, saying what to do, when `KAFKA_BOOTSTRAP` is
/// unset (the tests are `#[ignore]`d for that).
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
        panic!(
            "this test compares with Kafka Streams on real Kafka: export \
             KAFKA_BOOTSTRAP=$(scripts/kafka start NAME) (.ci/run runs it in kafka_client_tests)"
        )
    })
}

/// A unique name (real Kafka keeps topics and groups between runs).
pub fn unique(prefix: &str) -> String {
    testkit::unique_name(prefix)
}

fn client(bootstrap: &str) -> ClientConfig {
    ClientConfig::new(bootstrap)
        .expect("bootstrap address")
        .with_client_id("kstreams-comparison")
        .with_request_timeout(Duration::from_secs(15))
}

/// Creates `(name, partitions)` topics, replication factor 1, kept without a time limit:
/// the tests' records carry timestamps of 1970, which real Kafka's default retention (7 days
/// by record timestamp) deletes within its next check, before an app started later reads them.
pub async fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    Admin::new(client(bootstrap))
        .await
        .expect("admin client")
        .create_topics(
            topics
                .iter()
                .map(|(name, partitions)| NewTopic {
                    configs: vec![("retention.ms".to_owned(), "-1".to_owned())],
                    ..NewTopic::new(*name, *partitions, 1)
                })
                .collect(),
        )
        .await
        .expect("create topics");
}

/// Produces `records` to `topic` in order, keyed ones to the partition Kafka's default
/// partitioner gives their key (as Java's producer and ours both do), with their timestamps,
/// and waits until every one is acknowledged.
pub async fn produce(bootstrap: &str, topic: &str, records: &[Record]) {
    let producer = Producer::new(client(bootstrap), ProducerConfig::default())
        .await
        .expect("producer");
    let mut deliveries = Vec::new();
    for (key, value, ts) in records {
        let mut record = ProducerRecord::new(topic).timestamp(*ts);
        if let Some(key) = key {
            record = record.key(key.clone());
        }
        if let Some(value) = value {
            record = record.value(value.clone());
        }
        deliveries.push(producer.send(record).await.expect("send"));
    }
    producer.flush().await;
    for d in deliveries {
        d.await.expect("input delivered");
    }
    producer.close().await.expect("close producer");
}

/// The high watermarks of `topic`'s partitions `0..partitions`.
pub async fn ends(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let listed = Admin::new(client(bootstrap))
        .await
        .expect("admin client")
        .list_offsets(
            tps.iter()
                .map(|tp| (tp.clone(), OffsetSpec::Latest))
                .collect(),
        )
        .await
        .expect("list offsets");
    tps.iter().map(|tp| listed[tp].offset).collect()
}

/// Everything in `topic`'s partitions `0..partitions` up to their high watermarks (read
/// committed), partition by partition in offset order.
pub async fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<Record> {
    let ends = ends(bootstrap, topic, partitions).await;
    let mut consumer = Consumer::new(
        client(bootstrap),
        ConsumerConfig::default()
            .with_isolation_level(IsolationLevel::ReadCommitted)
            .with_fetch_max_wait(Duration::from_millis(100)),
    )
    .await
    .expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone());
    for tp in &tps {
        consumer.seek(tp, Offset::Earliest).await.expect("seek");
    }
    let mut per_partition = vec![Vec::new(); partitions as usize];
    let deadline = Instant::now() + WAIT;
    loop {
        let behind = tps
            .iter()
            .zip(&ends)
            .any(|(tp, end)| consumer.position(tp).is_none_or(|p| p < *end));
        if !behind {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} at {bootstrap}: not read to its ends {ends:?} in {WAIT:?}"
        );
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            let r = r.expect("consumer");
            let text = |b: &Option<bytes::Bytes>| {
                b.as_deref()
                    .map(|b| String::from_utf8(b.to_vec()).expect("UTF-8"))
            };
            per_partition[r.partition as usize].push((text(&r.key), text(&r.value), r.timestamp));
        }
    }
    per_partition.into_iter().flatten().collect()
}

/// Waits until `group` committed every partition of `topic` up to its current high
/// watermark: the app (ours or Kafka Streams) has done everything it read so far.
pub async fn wait_committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) {
    let ends = ends(bootstrap, topic, partitions).await;
    let reader = GroupConsumer::new(
        client(bootstrap),
        ConsumerConfig::default(),
        GroupConfig::new(group),
    )
    .await
    .expect("group client");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let committed = reader.committed(&tps).await.expect("committed offsets");
        let now: Vec<Option<i64>> = tps.iter().map(|tp| committed[tp]).collect();
        // An empty partition needs no commit.
        let done = now
            .iter()
            .zip(&ends)
            .all(|(c, e)| *e == 0 || *c == Some(*e));
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} did not commit {topic} up to {ends:?} in {WAIT:?} (committed: {now:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running Kafka Streams app (`scripts/java/<class>.java`); stop it with [`stop`](Self::stop)
/// (dropping it kills the JVM).
pub struct KStreamsApp {
    class: String,
    child: Option<Child>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl KStreamsApp {
    /// Starts `scripts/java/<class>.java` with `args` and waits until it prints `RUNNING`.
    pub async fn start(class: &str, args: &[&str]) -> KStreamsApp {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let cp = Command::new(repo.join("scripts/kafka"))
            .arg("classpath-of")
            .arg(repo.join("benches/peers/kstreams/pom.xml"))
            .output()
            .expect("scripts/kafka runs");
        assert!(
            cp.status.success(),
            "scripts/kafka classpath-of: {}",
            String::from_utf8_lossy(&cp.stderr)
        );
        let mut child = Command::new("java")
            .arg("-cp")
            .arg(String::from_utf8_lossy(&cp.stdout).trim())
            .arg(repo.join(format!("scripts/java/{class}.java")))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("this test needs Java 17+ on PATH");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut app = KStreamsApp {
            class: class.to_owned(),
            child: Some(child),
            lines,
        };
        let first = app.line(START).await;
        assert_eq!(first, "RUNNING", "{class} {args:?} did not start");
        app
    }

    /// The next line the app prints, within `within`.
    async fn line(&mut self, within: Duration) -> String {
        match tokio::time::timeout(within, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("{} exited (see its stderr above)", self.class),
            Err(_) => panic!("{} printed nothing in {within:?}", self.class),
        }
    }

    /// Sends one command line and returns the app's one-line answer.
    pub async fn command(&mut self, line: &str) -> String {
        let child = self.child.as_mut().expect("running");
        let stdin = child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{line}").expect("write to the app's stdin");
        stdin.flush().expect("flush the app's stdin");
        self.line(WAIT).await
    }

    /// The app's store value of `key` (`get KEY`): `None` when it holds none.
    pub async fn get(&mut self, key: &str) -> Option<String> {
        let answer = self.command(&format!("get {key}")).await;
        match answer.strip_prefix('=') {
            Some(value) => Some(value.to_owned()),
            None if answer == "-" => None,
            None => panic!("{}: unexpected answer to get {key}: {answer}", self.class),
        }
    }

    /// Waits until the app's store holds `want` for `key` (`None`: no value): a phase's
    /// table records are applied.
    pub async fn wait_for(&mut self, key: &str, want: Option<&str>) {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.get(key).await;
            if got.as_deref() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: store value of {key} is {got:?}, not {want:?}, after {WAIT:?}",
                self.class
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Closes the app gracefully and checks it exited cleanly.
    pub async fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        drop(child.stdin.take()); // end of stdin: close
        let class = self.class.clone();
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("wait task")
            .expect("wait for the JVM");
        assert!(status.success(), "{class} exited with {status}");
    }
}

impl Drop for KStreamsApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
