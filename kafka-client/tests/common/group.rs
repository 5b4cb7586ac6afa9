//! For the consumer-group suites: a cluster to test against (real Kafka when
//! `KAFKA_BOOTSTRAP` is set, else an in-process mock owned by the test, not the shared one of
//! [`super::bootstrap`]: these tests inject faults, stop brokers and need several brokers and
//! short session timeouts), and group members running in tasks that record what they
//! receive, commit and are told by the group.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use kafka_client::admin::{Admin, NewTopic};
use kafka_client::consumer::{AutoOffsetReset, ConsumerConfig};
use kafka_client::group::{GroupConfig, GroupConsumer, RebalanceContext, RebalanceListener};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::unique;

/// Where the test runs.
pub struct Env {
    pub bootstrap: String,
    /// The mock, when not against real Kafka.
    pub mock: Option<testkit::MockCluster>,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
}

impl Env {
    /// Real Kafka if `KAFKA_BOOTSTRAP` is set, else a fresh mock with `brokers` brokers.
    pub async fn new(brokers: usize) -> Env {
        if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") {
            return Env {
                bootstrap,
                mock: None,
                // Kafka's group.min.session.timeout.ms default.
                session_timeout: Duration::from_secs(6),
                heartbeat_interval: Duration::from_millis(300),
            };
        }
        Env::mock(brokers).await
    }

    /// A fresh mock with `brokers` brokers whatever `KAFKA_BOOTSTRAP` says, for the tests
    /// that inject faults through the mock's control API.
    pub async fn mock(brokers: usize) -> Env {
        let mock = testkit::MockCluster::builder()
            .brokers(brokers)
            .group_min_session_timeout(Duration::from_millis(500))
            .build()
            .await
            .expect("mock cluster");
        Env {
            bootstrap: mock.bootstrap(),
            mock: Some(mock),
            session_timeout: Duration::from_secs(2),
            heartbeat_interval: Duration::from_millis(100),
        }
    }

    pub fn client(&self) -> ClientConfig {
        ClientConfig::new(&self.bootstrap)
            .expect("bootstrap")
            .with_client_id("group-tests")
            .with_request_timeout(Duration::from_secs(10))
    }

    /// A group config with short timeouts, manual commits.
    pub fn group(&self, group: &str) -> GroupConfig {
        GroupConfig::new(group)
            .with_session_timeout(self.session_timeout)
            .with_heartbeat_interval(self.heartbeat_interval)
            .with_rebalance_timeout(Duration::from_secs(10))
            .with_auto_commit(false)
    }

    pub async fn topic(&self, prefix: &str, partitions: i32) -> String {
        let name = unique(prefix);
        Admin::new(self.client())
            .await
            .expect("admin")
            .create_topics(vec![NewTopic::new(&name, partitions, 1)])
            .await
            .expect("create topic");
        name
    }

    /// Produces `per_partition` records to each partition.
    pub async fn produce(&self, topic: &str, partitions: i32, per_partition: usize) {
        let producer = Producer::new(self.client(), ProducerConfig::default())
            .await
            .expect("producer");
        let mut deliveries = Vec::new();
        for p in 0..partitions {
            for i in 0..per_partition {
                let record = ProducerRecord::new(topic)
                    .partition(p)
                    .key(format!("k{i}"))
                    .value(format!("v{p}-{i}"));
                deliveries.push(producer.send(record).await.expect("send"));
            }
        }
        producer.flush().await;
        for d in deliveries {
            d.await.expect("delivered");
        }
        producer.close().await.expect("close producer");
    }

    /// A member of `group` subscribed to `topic`, running in a task.
    pub async fn member(
        &self,
        name: &str,
        config: GroupConfig,
        topic: &str,
        commit_each: bool,
    ) -> Member {
        let consumer = GroupConsumer::new(self.client(), consumer_config(), config)
            .await
            .expect("group consumer");
        Member::spawn(name, consumer, topic, commit_each)
    }
}

pub fn consumer_config() -> ConsumerConfig {
    ConsumerConfig::default()
        .with_auto_offset_reset(AutoOffsetReset::Earliest)
        .with_fetch_max_wait(Duration::from_millis(100))
}

/// What a member saw.
#[derive(Debug, Default, Clone)]
pub struct View {
    pub owned: BTreeSet<i32>,
    pub generation: i32,
    pub member_id: String,
    /// (partition, offset) of every record received, in order.
    pub records: Vec<(i32, i64)>,
    /// Offsets this member committed successfully, per partition.
    pub committed: BTreeMap<i32, i64>,
    /// `assigned g=N [..]`, `revoked [..]`, `lost [..]`.
    pub events: Vec<String>,
    pub commit_errors: Vec<String>,
    pub recv_errors: Vec<String>,
}

impl View {
    pub fn revocations(&self) -> usize {
        self.events
            .iter()
            .filter(|e| e.starts_with("revoked") || e.starts_with("lost"))
            .count()
    }
}

/// A rebalance listener recording into a [`View`].
pub struct Tracker(Arc<Mutex<View>>);

impl Tracker {
    /// A listener and the view it records into.
    pub fn new() -> (Tracker, Arc<Mutex<View>>) {
        let view = Arc::new(Mutex::new(View {
            generation: -1,
            ..View::default()
        }));
        (Tracker(view.clone()), view)
    }

    /// Revoked and lost partitions alike leave the view; only the event's name differs.
    fn give_up(&self, event: &str, partitions: &[TopicPartition]) {
        let mut v = self.0.lock().unwrap();
        for p in parts(partitions) {
            v.owned.remove(&p);
        }
        v.events.push(format!("{event} {:?}", parts(partitions)));
    }
}

fn parts(tps: &[TopicPartition]) -> Vec<i32> {
    tps.iter().map(|tp| tp.partition).collect()
}

impl RebalanceListener for Tracker {
    fn on_partitions_assigned<'a>(
        &'a mut self,
        ctx: &'a RebalanceContext<'_>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut v = self.0.lock().unwrap();
            v.owned.extend(parts(partitions));
            v.generation = ctx.generation();
            v.member_id = ctx.member_id();
            let event = format!("assigned g={} {:?}", v.generation, parts(partitions));
            v.events.push(event);
        })
    }

    fn on_partitions_revoked<'a>(
        &'a mut self,
        _ctx: &'a RebalanceContext<'_>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.give_up("revoked", partitions) })
    }

    fn on_partitions_lost<'a>(
        &'a mut self,
        _ctx: &'a RebalanceContext<'_>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.give_up("lost", partitions) })
    }
}

/// A group member consuming in a task.
pub struct Member {
    pub name: String,
    pub view: Arc<Mutex<View>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Member {
    /// Runs `consumer` subscribed to `topic`; with `commit_each` every record's offset is
    /// committed (sync) before the next `recv`.
    pub fn spawn(
        name: &str,
        mut consumer: GroupConsumer,
        topic: &str,
        commit_each: bool,
    ) -> Member {
        let view = Arc::new(Mutex::new(View {
            generation: -1,
            ..View::default()
        }));
        consumer.set_listener(Tracker(view.clone()));
        consumer.subscribe([topic]);
        let (stop, mut stopped) = oneshot::channel();
        let v = view.clone();
        let label = name.to_owned();
        let task = tokio::spawn(async move {
            loop {
                let record = tokio::select! {
                    _ = &mut stopped => break,
                    r = consumer.recv() => r,
                };
                match record {
                    Ok(r) => {
                        v.lock().unwrap().records.push((r.partition, r.offset));
                        if commit_each {
                            let tp = r.topic_partition();
                            match consumer.commit_offsets([(tp, r.offset + 1)]).await {
                                Ok(()) => {
                                    v.lock()
                                        .unwrap()
                                        .committed
                                        .insert(r.partition, r.offset + 1);
                                }
                                Err(e) => v.lock().unwrap().commit_errors.push(e.to_string()),
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(member = %label, error = %e, "recv failed");
                        v.lock().unwrap().recv_errors.push(e.to_string());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            consumer.close().await.expect("close");
        });
        Member {
            name: name.to_owned(),
            view,
            stop: Some(stop),
            task,
        }
    }

    pub fn view(&self) -> View {
        self.view.lock().unwrap().clone()
    }

    /// Dies without LeaveGroup: the task and the consumer are dropped.
    pub async fn kill(mut self) -> View {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.view()
    }

    /// Closes cleanly (commit/revoke/LeaveGroup as configured).
    pub async fn close(mut self) -> View {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .unwrap_or_else(|_| panic!("member {} did not close within 30 s", self.name))
            .unwrap_or_else(|e| panic!("member {} failed: {e}", self.name));
        self.view()
    }
}

/// Polls `check` every 50 ms until it holds; panics with `what` (and the last state
/// `describe` gives) after `timeout`.
pub async fn wait_until(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> bool,
    describe: impl Fn() -> String,
) -> Duration {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > timeout {
            panic!(
                "timed out after {timeout:?} waiting for {what}: {}",
                describe()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

/// Whether the members own disjoint sets of partitions covering `0..partitions`.
pub fn covers(views: &[View], partitions: i32) -> bool {
    let mut all: Vec<i32> = views.iter().flat_map(|v| v.owned.iter().copied()).collect();
    all.sort_unstable();
    all == (0..partitions).collect::<Vec<_>>()
}

pub fn describe(members: &[&Member]) -> String {
    members
        .iter()
        .map(|m| {
            let v = m.view();
            format!(
                "\n  {}: gen {} owned {:?} records {} events {:?} commit errors {:?} recv errors {:?}",
                m.name,
                v.generation,
                v.owned,
                v.records.len(),
                v.events,
                v.commit_errors.iter().take(3).collect::<Vec<_>>(),
                v.recv_errors.iter().take(3).collect::<Vec<_>>()
            )
        })
        .collect()
}
