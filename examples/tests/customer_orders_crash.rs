//! The customer_orders example (a table-table join and a foreign-key join) as a worker process
//! with a redb store, killed with SIGKILL while it joins a round of updates and deletes of
//! every input (orders moving between customers included) and restarted on the same store
//! under the same `--instance-id` (static membership: it takes its partitions back at once).
//! After another round, both result tables, read from their changelogs read_committed, equal
//! the joins of the final inputs: no result lost, none left stale, under at-least-once and
//! exactly-once. The broker is a mock cluster in this test process, or real Kafka when
//! KAFKA_BOOTSTRAP is set.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use examples::customer_orders_demo::{
    order_with_customer, status, Customer, CustomerStatus, Loyalty, Order, OrderWithCustomer,
};
use kafka_client::consumer::{Consumer, ConsumerConfig, IsolationLevel, Offset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{
    Admin, ClientConfig, GroupConfig, GroupConsumer, NewTopic, OffsetSpec, TopicPartition,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use testkit::MockCluster;

mod common;
use common::worker::{self, Stop, Worker};

const WAIT: Duration = Duration::from_secs(90);
const PARTITIONS: i32 = 3;
const INPUTS: [&str; 3] = ["customers", "loyalty", "orders"];
const CUSTOMERS: u64 = 20;
const ORDERS: u64 = 80;
/// Changes in the round the worker is killed in.
const CHANGES: usize = 800;

struct Setup {
    bootstrap: String,
    app: String,
    guarantee: &'static str,
    _mock: Option<MockCluster>,
}

/// The inputs as the test sent them: what the tables hold once all is processed.
#[derive(Default)]
struct Inputs {
    customers: BTreeMap<String, Customer>,
    loyalty: BTreeMap<String, Loyalty>,
    orders: BTreeMap<String, Order>,
}

/// A round of records, in the order they are sent: (input topic, key, JSON value or a
/// tombstone).
type Round = Vec<(&'static str, String, Option<String>)>;

fn apply<V: Serialize + Clone>(
    round: &mut Round,
    topic: &'static str,
    table: &mut BTreeMap<String, V>,
    key: String,
    value: Option<V>,
) {
    let json = value.as_ref().map(|v| serde_json::to_string(v).unwrap());
    round.push((topic, key.clone(), json));
    match value {
        Some(v) => table.insert(key, v),
        None => table.remove(&key),
    };
}

impl Inputs {
    /// Every customer, loyalty for every other one, and orders (some of customers that do
    /// not exist yet).
    fn first_round(&mut self) -> Round {
        let mut round = Round::new();
        for c in 0..CUSTOMERS {
            let customer = Customer {
                name: format!("n{c}"),
                city: format!("city{c}"),
            };
            apply(
                &mut round,
                "customers",
                &mut self.customers,
                format!("c{c}"),
                Some(customer),
            );
            if c % 2 == 0 {
                let tier = Loyalty {
                    tier: "gold".into(),
                };
                apply(
                    &mut round,
                    "loyalty",
                    &mut self.loyalty,
                    format!("c{c}"),
                    Some(tier),
                );
            }
        }
        for o in 0..ORDERS {
            let order = Order {
                customer: format!("c{}", o % (CUSTOMERS + 4)),
                item: format!("item{o}"),
                amount: o as i64,
            };
            apply(
                &mut round,
                "orders",
                &mut self.orders,
                format!("o{o}"),
                Some(order),
            );
        }
        round
    }

    /// `n` random changes (seeded): updates and deletes of customers, loyalty and orders,
    /// orders moving to other (maybe missing) customers.
    fn changes(&mut self, seed: u64, n: usize) -> Round {
        let mut state = seed;
        let mut next = move |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        let mut round = Round::new();
        for i in 0..n {
            let c = format!("c{}", next(CUSTOMERS + 4));
            let delete = next(5) == 0;
            match next(3) {
                0 => {
                    let v = (!delete).then(|| Customer {
                        name: format!("n{i}"),
                        city: format!("city{}", next(7)),
                    });
                    apply(&mut round, "customers", &mut self.customers, c, v);
                }
                1 => {
                    let v = (!delete).then(|| Loyalty {
                        tier: ["bronze", "silver", "gold"][next(3) as usize].into(),
                    });
                    apply(&mut round, "loyalty", &mut self.loyalty, c, v);
                }
                _ => {
                    let o = format!("o{}", next(ORDERS + 10));
                    let v = (!delete).then(|| Order {
                        customer: c,
                        item: format!("item{i}"),
                        amount: i as i64,
                    });
                    apply(&mut round, "orders", &mut self.orders, o, v);
                }
            }
        }
        round
    }

    /// `customer_status`: every customer with its loyalty tier, if any (a left join).
    fn statuses(&self) -> BTreeMap<String, CustomerStatus> {
        self.customers
            .iter()
            .map(|(id, c)| (id.clone(), status(c, self.loyalty.get(id))))
            .collect()
    }

    /// `order_customers`: every order whose customer exists, with it (an inner join).
    fn order_customers(&self) -> BTreeMap<String, OrderWithCustomer> {
        self.orders
            .iter()
            .filter_map(|(id, o)| {
                let c = self.customers.get(&o.customer)?;
                Some((id.clone(), order_with_customer(o, c)))
            })
            .collect()
    }
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
        let topics = INPUTS
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

    fn partitions(&self, name: &str) -> Vec<TopicPartition> {
        let topic = self.topic(name);
        (0..PARTITIONS)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect()
    }

    /// Starts a `customer_orders` worker on `store`, always as static member `w1`.
    fn worker(&self, store: &str) -> Worker {
        let mut command = Command::new(common::example("customer_orders"));
        command
            .args(["--broker", &format!("kafka://{}", self.bootstrap)])
            .args(["worker", "--no-web", "--instance-id", "w1"])
            .env("CUSTOMER_ORDERS_APP", &self.app)
            .env("CUSTOMER_ORDERS_STORE", store)
            .env("CUSTOMER_ORDERS_GUARANTEE", self.guarantee)
            .env("RUST_LOG", worker::log_filter());
        Worker::spawn(
            &format!("customer_orders worker ({})", self.guarantee),
            command,
        )
    }

    /// Sends a round's records and waits for their acks, `chunk` records at a time, `pause`
    /// apart (a feed that goes on while the worker joins).
    async fn send(&self, round: Round, chunk: usize, pause: Duration) {
        let producer = Producer::new(self.client(), ProducerConfig::default())
            .await
            .unwrap();
        for records in round.chunks(chunk) {
            let mut acks = Vec::new();
            for (name, key, value) in records {
                let mut record = ProducerRecord::new(self.topic(name)).key(key.clone());
                if let Some(value) = value {
                    record = record.value(value.clone());
                }
                acks.push(producer.send(record).await.unwrap());
            }
            for ack in acks {
                ack.await.unwrap();
            }
            tokio::time::sleep(pause).await;
        }
        producer.close().await.unwrap();
    }

    /// The inputs' end offsets, summed.
    async fn input_ends(&self) -> i64 {
        let admin = Admin::new(self.client()).await.unwrap();
        let tps: Vec<TopicPartition> = INPUTS.iter().flat_map(|t| self.partitions(t)).collect();
        let ends = admin
            .list_offsets(
                tps.iter()
                    .map(|tp| (tp.clone(), OffsetSpec::Latest))
                    .collect(),
            )
            .await
            .unwrap();
        ends.values().map(|e| e.offset).sum()
    }

    /// Waits until the inputs' end offsets (summed) reach `offsets`.
    async fn wait_input_ends(&self, offsets: i64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let ends = self.input_ends().await;
            if ends >= offsets {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "inputs end at {ends}, not {offsets}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the app committed more than `offsets` input offsets (summed); returns
    /// how many it committed.
    async fn wait_committed_past(&self, offsets: i64) -> i64 {
        let tps: Vec<TopicPartition> = INPUTS.iter().flat_map(|t| self.partitions(t)).collect();
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
            let sum: i64 = committed.values().map(|o| o.unwrap_or(0)).sum();
            if sum > offsets {
                return sum;
            }
            assert!(
                Instant::now() < deadline,
                "{sum} of more than {offsets} committed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The latest value of each key in table `name`'s changelog, read committed (what
    /// compaction keeps, and what a recovering worker restores).
    async fn changelog<V: DeserializeOwned>(&self, name: &str) -> BTreeMap<String, V> {
        let tps = self.partitions(&format!("{name}-changelog"));
        let admin = Admin::new(self.client()).await.unwrap();
        let deadline = Instant::now() + WAIT;
        // The worker creates the changelog when it starts: on real Kafka the topic is unknown
        // or without a leader for a moment.
        let ends = loop {
            let specs = tps
                .iter()
                .map(|tp| (tp.clone(), OffsetSpec::Latest))
                .collect();
            match admin.list_offsets(specs).await {
                Ok(ends) => break ends,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "{name}'s changelog has no end offsets: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let config = ConsumerConfig::default().with_isolation_level(IsolationLevel::ReadCommitted);
        let mut consumer = Consumer::new(self.client(), config).await.unwrap();
        consumer.assign(tps.clone());
        for tp in &tps {
            consumer.seek(tp, Offset::Earliest).await.unwrap();
        }
        let mut out = BTreeMap::new();
        // Up to the last stable offsets: an open transaction's records are not there yet.
        let done = |c: &Consumer| {
            tps.iter().all(|tp| {
                let end = c.last_stable_offset(tp).unwrap_or(ends[tp].offset);
                c.position(tp).unwrap_or(0) >= end.min(ends[tp].offset)
            })
        };
        while !done(&consumer) {
            assert!(
                Instant::now() < deadline,
                "{name}'s changelog not read to its end"
            );
            let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
            else {
                continue;
            };
            let r = r.unwrap();
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            match r.value {
                Some(v) => out.insert(key, serde_json::from_slice(&v).unwrap()),
                None => out.remove(&key),
            };
        }
        out
    }

    /// The app's committed offsets of input `name`, per partition.
    async fn committed(&self, name: &str) -> BTreeMap<TopicPartition, i64> {
        let tps = self.partitions(name);
        let group = GroupConsumer::new(
            self.client(),
            ConsumerConfig::default(),
            GroupConfig::new(&self.app),
        )
        .await
        .unwrap();
        let committed = group.committed(&tps).await.unwrap();
        tps.into_iter()
            .map(|tp| {
                let offset = committed[&tp].unwrap_or(0);
                (tp, offset)
            })
            .collect()
    }

    /// Input `name` up to the app's committed offsets, as a table: what the app had processed
    /// by its last commit.
    async fn committed_input<V: DeserializeOwned>(&self, name: &str) -> BTreeMap<String, V> {
        let upto = self.committed(name).await;
        let mut consumer = Consumer::new(self.client(), ConsumerConfig::default())
            .await
            .unwrap();
        consumer.assign(upto.keys().cloned().collect());
        for tp in upto.keys() {
            consumer.seek(tp, Offset::Earliest).await.unwrap();
        }
        let mut out = BTreeMap::new();
        let deadline = Instant::now() + WAIT;
        while upto
            .iter()
            .any(|(tp, end)| consumer.position(tp).unwrap_or(0) < *end)
        {
            assert!(Instant::now() < deadline, "{name} not read to its commit");
            let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
            else {
                continue;
            };
            let r = r.unwrap();
            let tp = TopicPartition::new(r.topic.to_string(), r.partition);
            if r.offset >= upto[&tp] {
                continue;
            }
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            match r.value {
                Some(v) => out.insert(key, serde_json::from_slice(&v).unwrap()),
                None => out.remove(&key),
            };
        }
        out
    }

    /// Waits until both result changelogs hold the joins of `inputs`.
    async fn wait_results(&self, inputs: &Inputs) {
        let (statuses, orders) = (inputs.statuses(), inputs.order_customers());
        let deadline = Instant::now() + WAIT;
        loop {
            let held_statuses = self.changelog::<CustomerStatus>("customer_status").await;
            let held_orders = self.changelog::<OrderWithCustomer>("order_customers").await;
            if held_statuses == statuses && held_orders == orders {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "customer_status {}:\n{:?}\n!= {:?}\norder_customers {}:\n{:?}\n!= {:?}",
                self.guarantee,
                diff(&held_statuses, &statuses),
                diff(&statuses, &held_statuses),
                self.guarantee,
                diff(&held_orders, &orders),
                diff(&orders, &held_orders),
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    /// Table `name` as the stopped worker's store holds it, read with the example's CLI
    /// (`tables --table NAME --partition N --json`), every partition.
    fn stored<V: DeserializeOwned>(&self, store: &str, name: &str) -> BTreeMap<String, V> {
        let mut out = BTreeMap::new();
        for p in 0..PARTITIONS {
            let run = Command::new(common::example("customer_orders"))
                .args(["--broker", &format!("kafka://{}", self.bootstrap)])
                .args(["tables", "--table", name, "--partition", &p.to_string()])
                .arg("--json")
                .env("CUSTOMER_ORDERS_APP", &self.app)
                .env("CUSTOMER_ORDERS_STORE", store)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&run.stdout);
            assert!(
                run.status.success(),
                "tables --table {name}: {text}{}",
                String::from_utf8_lossy(&run.stderr)
            );
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            for entry in doc["entries"].as_array().unwrap() {
                let key = entry["key"].as_str().unwrap().to_owned();
                out.insert(key, serde_json::from_value(entry["value"].clone()).unwrap());
            }
        }
        out
    }
}

/// The entries of `a` that `b` does not have.
fn diff<V: PartialEq + Clone>(
    a: &BTreeMap<String, V>,
    b: &BTreeMap<String, V>,
) -> Vec<(String, V)> {
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A first round joined and committed; a second round of changes fed over two seconds, the
/// worker SIGKILLed once a quarter of it is committed and restarted on the same redb store
/// while the feed goes on; then a third round: the results equal the joins of the final
/// inputs.
async fn killed_while_joining_and_restarted(s: &Setup) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb://{}", dir.path().display());
    let mut inputs = Inputs::default();
    let first = s.worker(&store);
    s.send(inputs.first_round(), usize::MAX, Duration::ZERO)
        .await;
    s.wait_results(&inputs).await;
    let before = s.input_ends().await;
    let feed = s.send(inputs.changes(7, CHANGES), 20, Duration::from_millis(50));
    let kill_and_restart = async {
        let committed = s.wait_committed_past(before + CHANGES as i64 / 4).await;
        // Two more chunks fed since that commit: killed halfway through a commit interval,
        // with joins done and not committed.
        s.wait_input_ends(committed + 40).await;
        first.stop(Stop::Kill);
        let mut at_kill = 0;
        for name in INPUTS {
            at_kill += s.committed(name).await.values().sum::<i64>();
        }
        if s.guarantee == "exactly_once" {
            // Each commit is one transaction of source offsets and changelog writes: what the
            // killed worker committed of customer_status is the join of the inputs it
            // committed, neither behind (a result lost) nor ahead (a result of an event that
            // will be replayed).
            let committed = Inputs {
                customers: s.committed_input("customers").await,
                loyalty: s.committed_input("loyalty").await,
                orders: BTreeMap::new(),
            };
            let held = s.changelog::<CustomerStatus>("customer_status").await;
            assert_eq!(
                held,
                committed.statuses(),
                "customer_status as committed by the killed worker"
            );
        }
        (s.worker(&store), at_kill - before)
    };
    let ((), (second, at_kill)) = tokio::join!(feed, kill_and_restart);
    eprintln!(
        "{}: killed with {at_kill} of the second round's {CHANGES} records committed",
        s.guarantee
    );
    assert!(
        at_kill < CHANGES as i64,
        "killed after the whole round was committed: a weaker test"
    );
    s.send(inputs.changes(11, 200), usize::MAX, Duration::ZERO)
        .await;
    s.wait_results(&inputs).await;
    second.stop(Stop::Interrupt);
    // The restarted worker's store holds what its changelogs say.
    assert_eq!(
        s.stored::<CustomerStatus>(&store, "customer_status"),
        inputs.statuses()
    );
    assert_eq!(
        s.stored::<OrderWithCustomer>(&store, "order_customers"),
        inputs.order_customers()
    );
    eprintln!(
        "{}: {} statuses and {} joined orders as the joins of the final inputs",
        s.guarantee,
        inputs.statuses().len(),
        inputs.order_customers().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_joins_killed_and_restarted_on_redb_equal_the_join_of_their_inputs() {
    let s = Setup::new("co-kill", "at_least_once").await;
    killed_while_joining_and_restarted(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_joins_killed_under_exactly_once_equal_the_join_of_their_inputs() {
    let s = Setup::new("co-kill-eos", "exactly_once").await;
    killed_while_joining_and_restarted(&s).await;
}
