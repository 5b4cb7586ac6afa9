//! Helpers shared by the integration suites (`mod common;` in each test file); the
//! consumer-group suites use [`group`] as well.
//!
//! Every suite runs against the broker named by the `KAFKA_BOOTSTRAP` environment variable
//! (`scripts/kafka start` prints one), or else against an in-process mock cluster. Topic names
//! get a unique suffix so that suites can run in parallel against one broker.
#![allow(dead_code)]

pub mod group;

use std::sync::OnceLock;
use std::time::Duration;

use kafka_client::admin::{Admin, NewTopic};
use kafka_client::consumer::{Consumer, ConsumerConfig, ConsumerRecord};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::ClientConfig;

/// The bootstrap address to test against: the broker named by `KAFKA_BOOTSTRAP` (real
/// Kafka in CI), else an in-process mock cluster shared by the tests of this binary.
pub async fn bootstrap() -> String {
    if let Ok(address) = std::env::var("KAFKA_BOOTSTRAP") {
        return address;
    }
    shared_mock().to_owned()
}

/// A mock cluster on its own runtime thread, so that it outlives each test's runtime.
fn shared_mock() -> &'static str {
    static MOCK: OnceLock<String> = OnceLock::new();
    MOCK.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("mock runtime");
            runtime.block_on(async {
                let cluster = testkit::MockCluster::builder()
                    .build()
                    .await
                    .expect("mock cluster");
                tx.send(cluster.bootstrap()).expect("test thread waits");
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("mock cluster started")
    })
}

/// A topic name no other test uses: `prefix-<time>-<pid>-<counter>`.
pub fn unique(prefix: &str) -> String {
    testkit::unique_name(prefix)
}

pub fn client(bootstrap: &str) -> ClientConfig {
    ClientConfig::new(bootstrap)
        .expect("bootstrap address")
        .with_client_id("kafka-client-tests")
}

pub async fn admin(bootstrap: &str) -> Admin {
    Admin::new(client(bootstrap)).await.expect("admin client")
}

/// Creates a fresh topic and returns its name.
pub async fn topic(bootstrap: &str, prefix: &str, partitions: i32) -> String {
    let name = unique(prefix);
    admin(bootstrap)
        .await
        .create_topics(vec![NewTopic::new(&name, partitions, 1)])
        .await
        .expect("create topic");
    name
}

/// Produces `records` (acks=all) and returns their (partition, offset) in order.
pub async fn produce(bootstrap: &str, records: Vec<ProducerRecord>) -> Vec<(i32, i64)> {
    produce_with(bootstrap, ProducerConfig::default(), records).await
}

pub async fn produce_with(
    bootstrap: &str,
    config: ProducerConfig,
    records: Vec<ProducerRecord>,
) -> Vec<(i32, i64)> {
    let producer = Producer::new(client(bootstrap), config)
        .await
        .expect("producer");
    let mut deliveries = Vec::with_capacity(records.len());
    for record in records {
        deliveries.push(producer.send(record).await.expect("send"));
    }
    producer.flush().await;
    let mut out = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let meta = d.await.expect("delivery");
        out.push((meta.partition, meta.offset));
    }
    producer.close().await.expect("close producer");
    out
}

pub async fn consumer(bootstrap: &str, config: ConsumerConfig) -> Consumer {
    Consumer::new(client(bootstrap), config)
        .await
        .expect("consumer")
}

/// The next record, failing the test after 30 s.
pub async fn recv(consumer: &mut Consumer) -> ConsumerRecord {
    match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
        Ok(Ok(record)) => record,
        Ok(Err(e)) => panic!("recv failed: {e}"),
        Err(_) => {
            // Where each partition stands, to tell a stalled fetcher from a missing record.
            let at: Vec<String> = consumer
                .assignment()
                .iter()
                .map(|tp| {
                    format!(
                        "{tp}: position {:?}, high watermark {:?}",
                        consumer.position(tp),
                        consumer.high_watermark(tp)
                    )
                })
                .collect();
            panic!("no record within 30 s; {at:?}")
        }
    }
}

/// The next `n` records.
pub async fn recv_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(recv(consumer).await);
    }
    out
}

/// Asserts that nothing arrives within `wait`.
pub async fn assert_quiet(consumer: &mut Consumer, wait: Duration) {
    if let Ok(item) = tokio::time::timeout(wait, consumer.recv()).await {
        panic!("expected nothing, got {item:?}");
    }
}

// Tests that need real Kafka, Java or a reference tool are `#[ignore = "..."]`, so a plain
// `cargo test` lists them as ignored. Run with `-- --include-ignored` (as .ci/run does), a
// missing prerequisite fails them with what to do; they never pass without checking.

/// The real Kafka broker named by `KAFKA_BOOTSTRAP`; panics (with what to do) when unset.
pub fn real_kafka() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
        panic!(
            "this test needs real Kafka: export KAFKA_BOOTSTRAP=$(scripts/kafka start NAME) \
             (it is #[ignore]d unless run with --include-ignored)"
        )
    })
}

/// A `java` command running one of `scripts/java/*.java` (Java's single-file launcher) with
/// the Kafka jars on the classpath; panics (with what to do) when Java or the jars are missing.
pub fn java_command(program: &str) -> std::process::Command {
    use std::process::Command;
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Err(e) = Command::new("java").arg("-version").output() {
        panic!("this test needs Java on PATH (apt-get install openjdk-17-jdk-headless): {e}");
    }
    let out = Command::new(repo.join("scripts/kafka"))
        .arg("classpath")
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/kafka: {e}"));
    assert!(
        out.status.success(),
        "this test needs the Kafka jars: run scripts/kafka fetch ({})",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let classpath = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut command = Command::new("java");
    command
        .arg("-cp")
        .arg(classpath)
        .arg(repo.join("scripts/java").join(program));
    command
}

/// Runs one of `scripts/java/*.java` (see [`java_command`]) with `stdin` as its input and
/// returns its output; panics when it fails.
pub fn java(program: &str, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = java_command(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start java: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
    let out = child.wait_with_output().expect("java runs");
    writer
        .join()
        .expect("stdin writer")
        .expect("write java's stdin");
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}
