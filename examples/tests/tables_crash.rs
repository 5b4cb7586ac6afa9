//! The tables example as separate worker processes killed with SIGKILL: a survivor recovers
//! the dead worker's table partitions from the changelog and the totals hold every event; a
//! redb worker restarted after SIGKILL replays only the changelog records its store lacks.
//! Under at-least-once the killed worker's uncommitted purchases may be counted twice; under
//! exactly-once (`TABLES_GUARANTEE=exactly_once`) none is. Changelogs are read read_committed.
//! The broker is a mock cluster in this test process, or real Kafka when KAFKA_BOOTSTRAP is set.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_client::consumer::{Consumer, ConsumerConfig, IsolationLevel, Offset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use testkit::MockCluster;

mod common;

use common::worker::{wait_both, Stop, Worker};

const WAIT: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 3;
const CURRENCIES: usize = 20;

struct Setup {
    bootstrap: String,
    app: String,
    topic: String,
    /// `TABLES_GUARANTEE` for the workers.
    guarantee: &'static str,
    _mock: Option<MockCluster>,
}

async fn setup(name: &str) -> Setup {
    setup_with(name, "at_least_once").await
}

async fn setup_with(name: &str, guarantee: &'static str) -> Setup {
    let app = testkit::unique_name(name);
    let topic = format!("{app}-purchases");
    if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") {
        return Setup {
            bootstrap,
            app,
            topic,
            guarantee,
            _mock: None,
        };
    }
    let mock = MockCluster::builder()
        .default_partitions(PARTITIONS)
        .build()
        .await
        .unwrap();
    Setup {
        bootstrap: mock.bootstrap(),
        app,
        topic,
        guarantee,
        _mock: Some(mock),
    }
}

impl Setup {
    fn command(&self, store: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(common::example("tables"));
        cmd.args(["--broker", &format!("kafka://{}", self.bootstrap)])
            .args(args)
            .env("TABLES_APP", &self.app)
            .env("TABLES_TOPIC", &self.topic)
            .env("TABLES_STORE", store)
            .env("TABLES_GUARANTEE", self.guarantee)
            .env("RUST_LOG", "warn,streams::runtime::tables=info");
        cmd
    }

    /// Starts a worker; its stdout and stderr lines are gathered in order.
    fn worker(&self, store: &str) -> Worker {
        Worker::spawn(
            "tables worker",
            self.command(store, &["worker", "--no-web"]),
        )
    }

    /// Sends `n` purchases of amount 1, numbered from `offset`, over the first `currencies`
    /// currencies; returns the count per currency.
    async fn send(&self, n: usize, offset: usize, currencies: usize) -> BTreeMap<String, i64> {
        let producer = Producer::new(
            ClientConfig::new(&self.bootstrap).unwrap(),
            ProducerConfig::default(),
        )
        .await
        .unwrap();
        let mut acks = Vec::new();
        let mut sent = BTreeMap::new();
        for i in offset..offset + n {
            let currency = format!("C{:02}", i % currencies);
            let value = format!(r#"{{"username":"u{i}","currency":"{currency}","amount":1}}"#);
            let record = ProducerRecord::new(&self.topic)
                .key(format!("u{i}"))
                .value(value);
            acks.push(producer.send(record).await.unwrap());
            *sent.entry(currency).or_insert(0) += 1;
        }
        for ack in acks {
            ack.await.unwrap();
        }
        producer.close().await.unwrap();
        sent
    }

    /// The changelog's latest total per currency (what compaction keeps), read committed.
    async fn changelog_totals(&self) -> BTreeMap<String, i64> {
        let client = ClientConfig::new(&self.bootstrap).unwrap();
        let admin = kafka_client::admin::Admin::new(client.clone())
            .await
            .unwrap();
        let topic = format!("{}-currency_total-changelog", self.app);
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect();
        let Ok(ends) = admin
            .list_offsets(
                tps.iter()
                    .map(|tp| (tp.clone(), kafka_client::admin::OffsetSpec::Latest))
                    .collect(),
            )
            .await
        else {
            return BTreeMap::new();
        };
        let config = ConsumerConfig::default().with_isolation_level(IsolationLevel::ReadCommitted);
        let mut consumer = Consumer::new(client, config).await.unwrap();
        consumer.assign(tps.clone());
        for tp in &tps {
            consumer.seek(tp, Offset::Earliest).await.unwrap();
        }
        // Read up to each partition's end (compaction leaves gaps in the offsets).
        let mut out = BTreeMap::new();
        let deadline = Instant::now() + WAIT;
        while tps
            .iter()
            .any(|tp| consumer.position(tp).unwrap_or(0) < ends[tp].offset)
        {
            assert!(Instant::now() < deadline, "changelog not read to its end");
            let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
            else {
                continue;
            };
            let r = r.unwrap();
            let key = String::from_utf8(r.key.unwrap_or_default().to_vec()).unwrap();
            match r.value {
                Some(v) => out.insert(key, serde_json::from_slice::<i64>(&v).unwrap()),
                None => out.remove(&key),
            };
        }
        out
    }

    /// Waits until the changelog counts at least `expected` purchases of every currency
    /// (more when some were counted twice).
    async fn wait_changelog_holds(
        &self,
        expected: &BTreeMap<String, i64>,
    ) -> BTreeMap<String, i64> {
        let deadline = Instant::now() + WAIT;
        loop {
            let totals = self.changelog_totals().await;
            if expected
                .iter()
                .all(|(c, n)| totals.get(c).copied().unwrap_or(0) >= *n)
            {
                return totals;
            }
            assert!(
                Instant::now() < deadline,
                "the changelog does not count every purchase: {totals:?} vs {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `tables` command's rows: (partition, keys, to replay).
    fn stored(&self, store: &str) -> Vec<(i32, u64, i64)> {
        let out = self.command(store, &["tables"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "tables failed: {text}");
        text.lines()
            .filter(|l| l.starts_with("currency_total "))
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (
                    cols[1].parse().unwrap(),
                    cols[2].parse().unwrap(),
                    cols[5].parse().unwrap_or(-1),
                )
            })
            .collect()
    }
}

/// Waits until the worker printed a total for `n` different currencies.
fn wait_currencies(w: &mut Worker, n: usize) {
    w.wait_until(&format!("totals of {n} currencies"), WAIT, |lines| {
        let currencies: std::collections::BTreeSet<&str> = lines
            .iter()
            .filter_map(|l| l.split_once(" total: ").map(|(c, _)| c))
            .collect();
        currencies.len() >= n
    });
}

/// Changelog records replayed by a worker's recoveries, from its log lines.
fn replayed(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter(|l| l.contains("table partition recovered"))
        .filter_map(|l| l.split("records=").nth(1))
        .filter_map(|n| n.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// What [`kill_one_of_two`] saw.
struct KillOneOfTwo {
    expected: BTreeMap<String, i64>,
    /// The changelog once the survivor stopped gracefully.
    totals: BTreeMap<String, i64>,
    /// Totals the killed worker printed for the second half before SIGKILL.
    second_half_by_a: usize,
    replayed: u64,
}

/// Two workers count 1000 purchases; a second 1000 are sent and one worker dies with SIGKILL
/// as soon as it is counting them; the survivor recovers its partitions from the changelog,
/// counts on, and stops gracefully.
async fn kill_one_of_two(s: &Setup) -> KillOneOfTwo {
    let mut a = s.worker("memory://");
    let mut b = s.worker("memory://");
    // Both joined: each recovered its (empty) partitions.
    wait_both(&mut a, &mut b, "recovery on both", WAIT, |a, b| {
        a.count("table partition recovered") > 0 && b.count("table partition recovered") > 0
    });
    // A first half, processed and committed by both: the changelog holds it.
    let mut expected = s.send(1000, 0, CURRENCIES).await;
    s.wait_changelog_holds(&expected).await;
    wait_both(&mut a, &mut b, "1000 totals", WAIT, |a, b| {
        a.count(" total: ") + b.count(" total: ") >= 1000
    });
    let (a_first, replayed_before) = (a.count(" total: "), replayed(b.lines()));
    assert!(a_first > 0, "a holds no partition");
    // The second half; a dies with SIGKILL as soon as it is processing it.
    for (c, n) in s.send(1000, 1000, CURRENCIES).await {
        *expected.entry(c).or_default() += n;
    }
    wait_both(
        &mut a,
        &mut b,
        "a total of the second half by a",
        WAIT,
        |a, _| a.count(" total: ") > a_first,
    );
    let by_a = a.count(" total: ");
    a.stop(Stop::Kill);
    // b takes a's partitions after the session timeout, recovers them from the changelog and
    // counts on.
    b.wait_until("recovery of a's partitions", WAIT, |lines| {
        replayed(lines) > replayed_before
    });
    s.wait_changelog_holds(&expected).await;
    let replayed = replayed(b.lines()) - replayed_before;
    assert!(
        replayed > 0,
        "the survivor replayed nothing: {:?}",
        b.lines()
    );
    // Everything is counted at least once; the survivor commits what it did and stops.
    b.stop(Stop::Interrupt);
    KillOneOfTwo {
        totals: s.changelog_totals().await,
        expected,
        second_half_by_a: by_a - a_first,
        replayed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_one_killed_the_survivor_recovers_and_no_event_is_lost() {
    let s = setup("tables-kill").await;
    let r = kill_one_of_two(&s).await;
    for (currency, n) in &r.expected {
        assert!(
            r.totals.get(currency).copied().unwrap_or(0) >= *n,
            "{currency}: {:?} vs {:?}",
            r.totals,
            r.expected
        );
    }
    let counted: i64 = r.totals.values().sum();
    eprintln!(
        "at-least-once: a printed {} totals of the second half before SIGKILL; the survivor \
         replayed {} changelog records; 2000 purchases counted {counted} times ({} twice)",
        r.second_half_by_a,
        r.replayed,
        counted - 2000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_one_killed_under_exactly_once_nothing_is_counted_twice() {
    let s = setup_with("tables-kill-eos", "exactly_once").await;
    let r = kill_one_of_two(&s).await;
    let counted: i64 = r.totals.values().sum();
    eprintln!(
        "exactly-once: a printed {} totals of the second half before SIGKILL; the survivor \
         replayed {} changelog records; 2000 purchases counted {counted} times ({} twice)",
        r.second_half_by_a,
        r.replayed,
        counted - 2000
    );
    // The killed worker's open transaction (its changelog writes and source offsets since
    // the last commit) was aborted: the survivor counted those purchases once.
    assert_eq!(
        r.totals, r.expected,
        "totals (left) vs purchases sent (right)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redb_worker_killed_and_restarted_replays_only_the_tail() {
    let s = setup("tables-redb").await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb://{}", dir.path().display());
    let mut w = s.worker(&store);
    let mut sent = s.send(600, 0, CURRENCIES).await;
    w.wait_lines(" total: ", 600, WAIT);
    // Committed: the changelog and the store hold every purchase so far.
    s.wait_changelog_holds(&sent).await;
    // More purchases, for two currencies; SIGKILL once they are processed.
    for (c, n) in s.send(40, 10_000, 2).await {
        *sent.entry(c).or_default() += n;
    }
    w.wait_lines(" total: ", 640, WAIT);
    w.stop(Stop::Kill);
    // Meanwhile another worker (another machine: its own memory store) takes over, counts
    // purchases of five currencies, and stops: the changelog moves past the redb store.
    let mut other = s.worker("memory://");
    for (c, n) in s.send(100, 20_000, 5).await {
        *sent.entry(c).or_default() += n;
    }
    s.wait_changelog_holds(&sent).await;
    other.wait_lines(" total: ", 100, WAIT);
    other.stop(Stop::Interrupt);

    let stored = s.stored(&store);
    let keys: u64 = stored.iter().map(|r| r.1).sum();
    let to_replay: i64 = stored.iter().map(|r| r.2).sum();
    assert_eq!(keys, CURRENCIES as u64, "{stored:?}");
    assert!(
        to_replay > 0 && (to_replay as u64) < keys,
        "the store should lack some records, fewer than it holds: {stored:?}"
    );

    let mut w = s.worker(&store);
    w.wait_lines("table partition recovered", PARTITIONS as usize, WAIT);
    let replayed = replayed(w.lines());
    assert_eq!(replayed as i64, to_replay, "{:?}", w.lines());
    // One more purchase per currency prints every total; the worker's table must equal a
    // rebuild from the changelog.
    for (c, n) in s.send(CURRENCIES, 30_000, CURRENCIES).await {
        *sent.entry(c).or_default() += n;
    }
    wait_currencies(&mut w, CURRENCIES);
    let seen = w.stop(Stop::Interrupt);
    let mut printed = BTreeMap::new();
    for line in seen.iter().filter(|l| l.contains(" total: ")) {
        let (currency, total) = line.split_once(" total: ").unwrap();
        printed.insert(currency.to_owned(), total.parse::<i64>().unwrap());
    }
    let rebuilt = s.changelog_totals().await;
    assert_eq!(printed, rebuilt);
    let counted: i64 = rebuilt.values().sum();
    let total: i64 = sent.values().sum();
    for (c, n) in &sent {
        assert!(rebuilt[c] >= *n, "{c}: {rebuilt:?} vs {sent:?}");
    }
    eprintln!(
        "restart replayed {replayed} changelog records into a store of {keys} keys; {total} \
         purchases counted {counted} times"
    );
}
