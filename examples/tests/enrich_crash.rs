//! The enrichment example (a stream-table join) as a worker process with a redb store, killed
//! with SIGKILL while it joins and restarted on the same store: every purchase is in the
//! output, joined with its user's profile (under at-least-once some may be there twice; under
//! exactly-once none). The output is read read_committed. The broker is a mock cluster in
//! this test process, or real Kafka when KAFKA_BOOTSTRAP is set.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use examples::enrich_demo::Enriched;
use kafka_client::consumer::{Consumer, ConsumerConfig, IsolationLevel, Offset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{Admin, ClientConfig, GroupConfig, GroupConsumer, NewTopic, TopicPartition};
use testkit::MockCluster;

mod common;
use common::worker::{self, Stop, Worker};

const WAIT: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 3;
const USERS: usize = 10;
const PURCHASES: usize = 600;

struct Setup {
    bootstrap: String,
    app: String,
    guarantee: &'static str,
    _mock: Option<MockCluster>,
}

impl Setup {
    async fn new(name: &str, guarantee: &'static str) -> Setup {
        let app = testkit::unique_name(name);
        let (bootstrap, mock) = match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(bootstrap) => (bootstrap, None),
            Err(_) => {
                let mock = MockCluster::builder().build().await.unwrap();
                (mock.bootstrap(), Some(mock))
            }
        };
        let s = Setup {
            bootstrap,
            app,
            guarantee,
            _mock: mock,
        };
        let admin = Admin::new(s.client()).await.unwrap();
        let topics = ["profiles", "purchases", "enriched"]
            .map(|t| NewTopic::new(s.topic(t), PARTITIONS, 1))
            .to_vec();
        admin.create_topics(topics).await.unwrap();
        s
    }

    fn client(&self) -> ClientConfig {
        ClientConfig::new(&self.bootstrap).unwrap()
    }

    fn topic(&self, name: &str) -> String {
        format!("{}-{name}", self.app)
    }

    /// Starts an `enrich` worker on `store`; its stdout and stderr lines are gathered.
    fn worker(&self, store: &str) -> Worker {
        let mut command = Command::new(common::example("enrich"));
        command
            .args(["--broker", &format!("kafka://{}", self.bootstrap)])
            .args(["worker", "--no-web"])
            .env("ENRICH_APP", &self.app)
            .env("ENRICH_STORE", store)
            .env("ENRICH_GUARANTEE", self.guarantee)
            .env("RUST_LOG", worker::log_filter());
        Worker::spawn(&format!("enrich worker ({})", self.guarantee), command)
    }

    /// Sends `records` (key, JSON value) to topic `name` and waits for their acks.
    async fn send(&self, name: &str, records: Vec<(String, String)>) {
        let producer = Producer::new(self.client(), ProducerConfig::default())
            .await
            .unwrap();
        let mut acks = Vec::new();
        for (key, value) in records {
            let record = ProducerRecord::new(self.topic(name)).key(key).value(value);
            acks.push(producer.send(record).await.unwrap());
        }
        for ack in acks {
            ack.await.unwrap();
        }
        producer.close().await.unwrap();
    }

    /// Waits until the app committed topic `name` to its end: the table holds the profiles.
    async fn wait_committed(&self, name: &str) {
        let topic = self.topic(name);
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect();
        let admin = Admin::new(self.client()).await.unwrap();
        let ends = admin
            .list_offsets(
                tps.iter()
                    .map(|tp| (tp.clone(), kafka_client::OffsetSpec::Latest))
                    .collect(),
            )
            .await
            .unwrap();
        let group = GroupConsumer::new(
            self.client(),
            ConsumerConfig::default(),
            GroupConfig::new(&self.app),
        )
        .await
        .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let committed = group.committed(&tps).await.unwrap();
            if tps
                .iter()
                .all(|tp| ends[tp].offset == 0 || committed[tp] == Some(ends[tp].offset))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{topic} not committed: {committed:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The output so far, read committed: how many times each purchase id was enriched, and
    /// with which level.
    async fn output(&self) -> BTreeMap<u64, Vec<Option<String>>> {
        let topic = self.topic("enriched");
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect();
        let admin = Admin::new(self.client()).await.unwrap();
        let ends = admin
            .list_offsets(
                tps.iter()
                    .map(|tp| (tp.clone(), kafka_client::OffsetSpec::Latest))
                    .collect(),
            )
            .await
            .unwrap();
        let config = ConsumerConfig::default().with_isolation_level(IsolationLevel::ReadCommitted);
        let mut consumer = Consumer::new(self.client(), config).await.unwrap();
        consumer.assign(tps.clone());
        for tp in &tps {
            consumer.seek(tp, Offset::Earliest).await.unwrap();
        }
        let mut out: BTreeMap<u64, Vec<Option<String>>> = BTreeMap::new();
        let deadline = Instant::now() + WAIT;
        // Up to the last stable offsets: an open transaction's records are not there yet.
        let done = |c: &Consumer| {
            tps.iter().all(|tp| {
                let end = c.last_stable_offset(tp).unwrap_or(ends[tp].offset);
                c.position(tp).unwrap_or(0) >= end.min(ends[tp].offset)
            })
        };
        while !done(&consumer) {
            assert!(Instant::now() < deadline, "{topic} not read to its end");
            let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
            else {
                continue;
            };
            let r = r.unwrap();
            let e: Enriched = serde_json::from_slice(&r.value.unwrap()).unwrap();
            out.entry(e.purchase.id)
                .or_default()
                .push(e.profile.map(|p| p.level));
        }
        out
    }

    /// Waits until the output holds every purchase; returns it.
    async fn wait_output_complete(&self) -> BTreeMap<u64, Vec<Option<String>>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let out = self.output().await;
            if out.len() == PURCHASES {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {PURCHASES} purchases enriched",
                out.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How many of `lines` tell of an enriched purchase.
fn enriched(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.contains("enriched ")).count()
}

fn level(user: usize) -> String {
    format!("L{user}")
}

/// Profiles for every user, then purchases; the worker dies with SIGKILL while it joins them
/// and is restarted on its redb store. Returns the output (per purchase id, the levels it
/// was enriched with).
async fn killed_and_restarted(s: &Setup) -> BTreeMap<u64, Vec<Option<String>>> {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb://{}", dir.path().display());
    let profiles = (0..USERS)
        .map(|u| {
            let value = format!(r#"{{"level":"{}","country":"C{u}"}}"#, level(u));
            (format!("u{u}"), value)
        })
        .collect();
    s.send("profiles", profiles).await;
    let first = s.worker(&store);
    s.wait_committed("profiles").await;
    let purchases = (0..PURCHASES)
        .map(|i| {
            let value = format!(r#"{{"id":{i},"item":"item{i}","amount":1}}"#);
            (format!("u{}", i % USERS), value)
        })
        .collect();
    s.send("purchases", purchases).await;
    let mut first = first;
    first.wait_lines("enriched ", PURCHASES / 10, WAIT);
    let by_first = enriched(&first.stop(Stop::Kill));
    let second = s.worker(&store);
    let out = s.wait_output_complete().await;
    let by_second = enriched(&second.stop(Stop::Interrupt));
    eprintln!(
        "{}: the killed worker joined {by_first} purchases, the restarted one {by_second}",
        s.guarantee
    );
    assert!(
        by_first < PURCHASES,
        "killed after joining every purchase: a weaker test"
    );
    for (id, levels) in &out {
        let want = Some(level(*id as usize % USERS));
        assert!(
            levels.iter().all(|l| *l == want),
            "purchase {id} enriched with {levels:?}, not {want:?}"
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_worker_killed_and_restarted_on_redb_loses_no_join_result() {
    let s = Setup::new("enrich-kill", "at_least_once").await;
    let out = killed_and_restarted(&s).await;
    let twice = out.values().filter(|l| l.len() > 1).count();
    eprintln!("at-least-once: {PURCHASES} purchases enriched, {twice} of them twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_worker_killed_under_exactly_once_enriches_each_purchase_once() {
    let s = Setup::new("enrich-kill-eos", "exactly_once").await;
    let out = killed_and_restarted(&s).await;
    let twice: Vec<&u64> = out
        .iter()
        .filter(|(_, l)| l.len() > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(
        twice.is_empty(),
        "enriched twice under exactly-once: {twice:?}"
    );
}
