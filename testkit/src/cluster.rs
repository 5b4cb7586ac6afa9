//! [`MockCluster`]: building it, its control surface for tests, and shutting it down.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use kafka_client::protocol::record::{BatchBuilder, BatchHeader, Compression, Record};
use kafka_protocol::messages::ApiKey;
use tokio::task::JoinHandle;

use crate::broker;
use crate::control::{Intercept, InterceptRule, RequestRecord};
use crate::error::{Error, Result};
use crate::memory::{self, MemoryConnector, MemoryNet};
use crate::security::{MockSasl, MockTls};
use crate::state::{lock, BrokerInfo, Settings, Shared, State};

/// Builder for [`MockCluster`]; start with [`MockCluster::builder`].
#[derive(Debug, Clone)]
pub struct MockClusterBuilder {
    brokers: usize,
    default_partitions: i32,
    auto_create_topics: bool,
    listen: Option<SocketAddr>,
    min_session_timeout: Duration,
    max_session_timeout: Duration,
    compaction_interval: Option<Duration>,
    cluster_id: String,
    tls: Option<MockTls>,
    sasl: Option<MockSasl>,
    transaction_version: i16,
    transaction_max_timeout: Duration,
    in_memory: bool,
}

impl MockClusterBuilder {
    /// Binds no sockets: the brokers are `mock-broker-<id>:9092` (as Metadata and
    /// FindCoordinator advertise them), reached only through [`MockCluster::connector`] over
    /// in-memory pipes. [`MockClusterBuilder::listen`] is then ignored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use kafka_client::{Admin, ClientConfig};
    ///
    /// let cluster = testkit::MockCluster::builder().brokers(2).in_memory().build().await?;
    /// assert_eq!(cluster.bootstrap(), "mock-broker-1:9092,mock-broker-2:9092");
    /// let client = ClientConfig::new(&cluster.bootstrap())?.with_connector(cluster.connector());
    /// let admin = Admin::new(client).await?;
    /// assert_eq!(admin.describe_cluster().await?.brokers.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// The finalized `transaction.version` feature ApiVersions advertises: 2 (the default, as
    /// Kafka 4.x) lets clients use KIP-890's protocol (Produce v12+ adds partitions to the
    /// transaction, TxnOffsetCommit v5 adds the group, EndTxn v5 bumps the epoch); 1 (or 0)
    /// makes them use AddPartitionsToTxn and AddOffsetsToTxn. Values above 2 are taken as 2.
    pub fn transaction_version(mut self, version: i16) -> Self {
        self.transaction_version = version.clamp(0, 2);
        self
    }
    /// The longest transaction timeout InitProducerId accepts (Kafka's
    /// `transaction.max.timeout.ms`, 15 minutes by default); longer is
    /// INVALID_TRANSACTION_TIMEOUT.
    pub fn transaction_max_timeout(mut self, max: Duration) -> Self {
        self.transaction_max_timeout = max;
        self
    }
    /// Number of brokers (ids 1..=n); default 1.
    pub fn brokers(mut self, n: usize) -> Self {
        self.brokers = n.max(1);
        self
    }
    /// Partitions of auto-created topics and of CreateTopics with -1; default 1.
    pub fn default_partitions(mut self, p: i32) -> Self {
        self.default_partitions = p.max(1);
        self
    }
    /// Whether Metadata requests create unknown topics; default true (Kafka's default).
    pub fn auto_create_topics(mut self, on: bool) -> Self {
        self.auto_create_topics = on;
        self
    }
    /// Address of the first broker (the others use the same IP with any free port); default
    /// `127.0.0.1:0`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }
    /// Smallest session timeout JoinGroup accepts (Kafka's `group.min.session.timeout.ms`,
    /// 6 s by default). Lower it to test session expiry quickly.
    pub fn group_min_session_timeout(mut self, d: Duration) -> Self {
        self.min_session_timeout = d;
        self
    }
    /// How often compacted topics are compacted in the background; `None` compacts only on
    /// [`MockCluster::compact`]. Default 1 s.
    pub fn compaction_interval(mut self, every: Option<Duration>) -> Self {
        self.compaction_interval = every;
        self
    }
    /// Serves TLS on every broker (clients connect with `ssl://` or `sasl_ssl://`).
    pub fn tls(mut self, tls: MockTls) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Requires SASL/PLAIN authentication on every connection (`sasl_plaintext://`, or
    /// `sasl_ssl://` with [`MockClusterBuilder::tls`]).
    pub fn sasl(mut self, sasl: MockSasl) -> Self {
        self.sasl = Some(sasl);
        self
    }
    /// The cluster id Metadata reports.
    pub fn cluster_id(mut self, id: impl Into<String>) -> Self {
        self.cluster_id = id.into();
        self
    }

    /// Binds every broker (none [`in memory`](MockClusterBuilder::in_memory)) and starts
    /// serving.
    pub async fn build(self) -> Result<MockCluster> {
        if self.in_memory {
            return Ok(self.build_in_memory());
        }
        let first = self
            .listen
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let mut listeners = Vec::with_capacity(self.brokers);
        for i in 0..self.brokers {
            let addr = if i == 0 {
                first
            } else {
                SocketAddr::new(first.ip(), 0)
            };
            listeners.push(broker::bind(addr).await?);
        }
        let mut infos = Vec::new();
        for (i, l) in listeners.iter().enumerate() {
            let port = l
                .local_addr()
                .map_err(|e| Error::io("reading a listener's address", e))?
                .port();
            infos.push(BrokerInfo {
                id: i as i32 + 1,
                host: "127.0.0.1".into(),
                port,
                running: true,
            });
        }
        let host = if first.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            first.ip()
        };
        let shared = self.shared(infos.clone());
        let tasks = listeners
            .into_iter()
            .zip(&infos)
            .map(|(l, b)| BrokerTask {
                id: b.id,
                addr: SocketAddr::new(first.ip(), b.port),
                task: Some(broker::spawn(l, shared.clone(), b.id)),
            })
            .collect();
        let background = tokio::spawn(background(shared.clone(), self.compaction_interval));
        tracing::info!(brokers = infos.len(), "mock cluster started");
        Ok(MockCluster {
            shared,
            host,
            brokers: Mutex::new(tasks),
            memory: None,
            background,
        })
    }

    /// The cluster without listeners, its brokers on a [`MemoryNet`].
    fn build_in_memory(self) -> MockCluster {
        let infos: Vec<BrokerInfo> = (1..=self.brokers as i32)
            .map(|id| BrokerInfo {
                id,
                host: memory::host(id),
                port: memory::PORT,
                running: true,
            })
            .collect();
        let shared = self.shared(infos.clone());
        let net = MemoryNet::new(shared.clone(), infos.iter().map(|b| b.id));
        let background = tokio::spawn(background(shared.clone(), self.compaction_interval));
        tracing::info!(brokers = infos.len(), "in-memory mock cluster started");
        MockCluster {
            shared,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            brokers: Mutex::new(Vec::new()),
            memory: Some(net),
            background,
        }
    }

    /// The cluster's state with these settings and brokers.
    fn shared(&self, brokers: Vec<BrokerInfo>) -> Shared {
        let settings = Settings {
            default_partitions: self.default_partitions,
            auto_create_topics: self.auto_create_topics,
            cluster_id: self.cluster_id.clone(),
            min_session_timeout: self.min_session_timeout,
            max_session_timeout: self.max_session_timeout,
            tls: self.tls.clone(),
            sasl: self.sasl.clone(),
            transaction_version: self.transaction_version,
            transaction_max_timeout_ms: i32::try_from(self.transaction_max_timeout.as_millis())
                .unwrap_or(i32::MAX),
        };
        Arc::new(Mutex::new(State::new(settings, brokers)))
    }
}

struct BrokerTask {
    id: i32,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

/// Group session expiry, rebalance timeouts, transaction timeouts and background compaction.
async fn background(shared: Shared, compaction: Option<Duration>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_compaction = Instant::now();
    loop {
        tick.tick().await;
        let mut st = lock(&shared);
        st.groups.tick(Instant::now());
        crate::txn::abort_timed_out(&mut st, Instant::now());
        if compaction.is_some_and(|every| last_compaction.elapsed() >= every) {
            last_compaction = Instant::now();
            compact_all(&mut st, None);
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A refused topic operation.
fn topic_error(topic: &str, reason: impl Into<String>) -> Error {
    Error::Topic {
        topic: topic.into(),
        reason: reason.into(),
    }
}

/// The error for a partition `State::partition_mut` did not find.
fn no_partition(topic: &str, partition: i32) -> Error {
    topic_error(
        topic,
        format!(
            "no partition {partition}: the topic does not exist or has fewer partitions \
             (create it with create_topic first)"
        ),
    )
}

/// Compacts the compacted topics: `only` one of them, every partition (an explicit request),
/// or with `None` (the background cleaner) the partitions that need it.
fn compact_all(st: &mut State, only: Option<&str>) {
    let now = now_ms();
    for (name, topic) in st.topics.iter_mut() {
        if !topic.is_compacted() || only.is_some_and(|o| o != name) {
            continue;
        }
        let retention = topic.delete_retention_ms();
        let ratio = topic.min_cleanable_dirty_ratio();
        for p in &mut topic.partitions {
            if only.is_some() || p.needs_cleaning(now, ratio) {
                p.compact(now, retention);
            }
        }
    }
}

/// An in-process Kafka cluster serving the real wire protocol on `127.0.0.1`, or
/// [in memory](MockClusterBuilder::in_memory).
///
/// Dropping it stops every broker: listeners and connections are closed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), testkit::Error> {
/// use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};
///
/// let cluster = MockCluster::builder().brokers(3).default_partitions(4).build().await?;
/// cluster.create_topic("orders", 6, [("cleanup.policy", "compact")])?;
/// assert_eq!(cluster.bootstrap().split(',').count(), 3);
///
/// // The next Produce request that names orders/0 fails once with NOT_LEADER_OR_FOLLOWER.
/// cluster.intercept(ApiKey::Produce, Intercept::error(KafkaCode::NotLeaderOrFollower).for_partition("orders", 0));
///
/// // Records can also be appended and read back directly, without a client.
/// let offset = cluster.append("orders", 1, &[(Some("k"), Some("v"))])?;
/// assert_eq!(offset, 0);
/// assert_eq!(cluster.high_watermark("orders", 1), Some(1));
/// # Ok(())
/// # }
/// ```
pub struct MockCluster {
    shared: Shared,
    host: IpAddr,
    /// The TCP brokers' listeners (none in memory).
    brokers: Mutex<Vec<BrokerTask>>,
    /// The in-memory brokers, when the cluster has no listeners.
    memory: Option<MemoryNet>,
    background: JoinHandle<()>,
}

impl std::fmt::Debug for MockCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockCluster")
            .field("bootstrap", &self.bootstrap())
            .finish()
    }
}

impl MockCluster {
    /// A builder with Kafka-like defaults: 1 broker, 1 partition, auto-create on.
    pub fn builder() -> MockClusterBuilder {
        MockClusterBuilder {
            brokers: 1,
            default_partitions: 1,
            auto_create_topics: true,
            listen: None,
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(1800),
            compaction_interval: Some(Duration::from_secs(1)),
            cluster_id: "testkit-mock-cluster".into(),
            tls: None,
            sasl: None,
            transaction_version: 2,
            transaction_max_timeout: Duration::from_secs(900),
            in_memory: false,
        }
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<BrokerTask>> {
        self.brokers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bootstrap list, `"127.0.0.1:a,127.0.0.1:b"` (in memory
    /// `"mock-broker-1:9092,mock-broker-2:9092"`), every broker (running or stopped).
    pub fn bootstrap(&self) -> String {
        if self.memory.is_some() {
            return self
                .broker_addresses()
                .into_iter()
                .map(|(_, addr)| addr)
                .collect::<Vec<_>>()
                .join(",");
        }
        self.tasks()
            .iter()
            .map(|b| SocketAddr::new(self.host, b.addr.port()).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Broker ids and `host:port` addresses, TCP or [in memory](MockClusterBuilder::in_memory).
    pub fn broker_addresses(&self) -> Vec<(i32, String)> {
        match &self.memory {
            Some(net) => net.addresses(),
            None => self
                .brokers()
                .into_iter()
                .map(|(id, addr)| (id, addr.to_string()))
                .collect(),
        }
    }

    /// The connector that reaches this cluster's brokers, for
    /// [`kafka_client::ClientConfig::with_connector`]: in memory, it opens a pipe to the
    /// broker at a `mock-broker-<id>:9092` address; an unknown address, a stopped broker or a
    /// dropped cluster is [`ConnectionRefused`](std::io::ErrorKind::ConnectionRefused). For a
    /// cluster on TCP it connects over TCP, as a client without a connector does.
    pub fn connector(&self) -> Arc<dyn kafka_client::Connector> {
        Arc::new(MemoryConnector(self.memory.clone()))
    }

    /// Broker ids and socket addresses; empty [in memory](MockClusterBuilder::in_memory) (see
    /// [`MockCluster::broker_addresses`]).
    pub fn brokers(&self) -> Vec<(i32, SocketAddr)> {
        self.tasks()
            .iter()
            .map(|b| (b.id, SocketAddr::new(self.host, b.addr.port())))
            .collect()
    }

    /// Creates a topic with configs (e.g. `("cleanup.policy", "compact")`).
    pub fn create_topic<K: Into<String>, V: Into<String>>(
        &self,
        name: &str,
        partitions: i32,
        configs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        let configs: BTreeMap<String, String> = configs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        lock(&self.shared)
            .create_topic(name, partitions, configs)
            .map(|_| ())
            .map_err(|(_, reason)| topic_error(name, reason))
    }

    /// Deletes a topic and its records, as DeleteTopics does; unknown topics are an error.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        lock(&self.shared)
            .delete_topic(name)
            .map(|_| ())
            .ok_or_else(|| topic_error(name, "no such topic"))
    }

    /// The names of every topic, created by a test or a client or auto-created.
    pub fn topics(&self) -> Vec<String> {
        lock(&self.shared).topics.keys().cloned().collect()
    }

    /// Installs a fault-injection rule for requests of `api`. Rules are tried in the order
    /// they were added; the first that matches a request applies.
    pub fn intercept(&self, api: ApiKey, intercept: Intercept) {
        lock(&self.shared)
            .intercepts
            .push(InterceptRule::new(api, intercept));
    }

    /// Removes every intercept rule.
    pub fn clear_intercepts(&self) {
        lock(&self.shared).intercepts.clear();
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared).requests.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared).requests.clear();
    }

    /// Stops a broker: its port closes (in memory: connects are refused) and its connections
    /// drop. Data is kept; partitions it
    /// leads report no leader (LEADER_NOT_AVAILABLE) and groups it coordinates move to the
    /// next running broker.
    pub async fn stop_broker(&self, id: i32) -> Result<()> {
        if let Some(net) = &self.memory {
            net.set_running(id, false)?;
            self.set_running(id, false);
            tracing::info!(broker = id, "in-memory broker stopped");
            return Ok(());
        }
        let task = {
            let mut tasks = self.tasks();
            let b = tasks
                .iter_mut()
                .find(|b| b.id == id)
                .ok_or(Error::UnknownBroker(id))?;
            b.task.take()
        };
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.set_running(id, false);
        tracing::info!(broker = id, "broker stopped");
        Ok(())
    }

    /// Restarts a stopped broker on the same port (in memory: accepts connects again); a no-op
    /// for a running broker.
    pub async fn restart_broker(&self, id: i32) -> Result<()> {
        if let Some(net) = &self.memory {
            net.set_running(id, true)?;
            self.set_running(id, true);
            tracing::info!(broker = id, "in-memory broker restarted");
            return Ok(());
        }
        let addr = {
            let tasks = self.tasks();
            let b = tasks
                .iter()
                .find(|b| b.id == id)
                .ok_or(Error::UnknownBroker(id))?;
            if b.task.is_some() {
                return Ok(());
            }
            b.addr
        };
        let listener = broker::bind(addr).await?;
        let task = broker::spawn(listener, self.shared.clone(), id);
        if let Some(b) = self.tasks().iter_mut().find(|b| b.id == id) {
            b.task = Some(task);
        }
        self.set_running(id, true);
        tracing::info!(broker = id, %addr, "broker restarted");
        Ok(())
    }

    /// Marks a broker as serving or not, for Metadata and leader lookups.
    fn set_running(&self, id: i32, running: bool) {
        if let Some(b) = lock(&self.shared).brokers.iter_mut().find(|b| b.id == id) {
            b.running = running;
        }
    }

    /// Makes `to` the leader of a partition and bumps its leader epoch; the old leader answers
    /// NOT_LEADER_OR_FOLLOWER from now on.
    pub fn move_leader(&self, topic: &str, partition: i32, to: i32) -> Result<()> {
        let mut st = lock(&self.shared);
        if st.broker(to).is_none() {
            return Err(Error::UnknownBroker(to));
        }
        let log = st
            .partition_mut(topic, partition)
            .ok_or_else(|| no_partition(topic, partition))?;
        log.leader = to;
        log.leader_epoch += 1;
        log.notify.notify_waiters();
        Ok(())
    }

    /// The broker id leading a partition; `None` when the partition does not exist.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        lock(&self.shared)
            .partition(topic, partition)
            .map(|p| p.leader)
    }

    /// Compacts a compacted topic now (latest record per key kept; tombstones older than the
    /// topic's `delete.retention.ms` dropped).
    pub fn compact(&self, topic: &str) -> Result<()> {
        let mut st = lock(&self.shared);
        match st.topics.get(topic) {
            None => return Err(topic_error(topic, "no such topic")),
            Some(t) if !t.is_compacted() => {
                return Err(topic_error(
                    topic,
                    "cleanup.policy is not compact: create the topic with \
                     (\"cleanup.policy\", \"compact\") to compact it",
                ))
            }
            Some(_) => {}
        }
        compact_all(&mut st, Some(topic));
        Ok(())
    }

    /// Deletes a partition's records below `offset` (Kafka's DeleteRecords, or retention
    /// passing): its log start moves there (at most to the high watermark), and fetches below
    /// it answer OFFSET_OUT_OF_RANGE. Returns the new log start.
    pub fn delete_records(&self, topic: &str, partition: i32, offset: i64) -> Result<i64> {
        lock(&self.shared)
            .partition_mut(topic, partition)
            .map(|log| log.delete_before(offset))
            .ok_or_else(|| topic_error(topic, "no such topic or partition"))
    }

    /// The first offset still in a partition's log.
    pub fn log_start_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        lock(&self.shared)
            .partition(topic, partition)
            .map(|p| p.log_start_offset)
    }

    /// The next offset to be written to a partition.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        lock(&self.shared)
            .partition(topic, partition)
            .map(|p| p.high_watermark)
    }

    /// A group's committed offset for a partition.
    pub fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        lock(&self.shared)
            .groups
            .groups
            .get(group)?
            .offsets
            .get(&(topic.to_owned(), partition))
            .map(|c| c.offset)
    }

    /// Every offset the group committed, in the order the coordinator accepted them.
    pub fn commit_history(&self, group: &str) -> Vec<crate::CommitRecord> {
        lock(&self.shared)
            .groups
            .groups
            .get(group)
            .map(|g| g.history.clone())
            .unwrap_or_default()
    }

    /// The commits that moved a partition's committed offset backwards, each with the higher
    /// offset committed before it: empty when the group's offsets only ever went forward (the
    /// invariant of an at-least-once consumer that never re-reads what it committed).
    pub fn commit_regressions(&self, group: &str) -> Vec<(crate::CommitRecord, i64)> {
        let mut highest: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut regressions = Vec::new();
        for commit in self.commit_history(group) {
            let key = (commit.topic.clone(), commit.partition);
            match highest.get(&key) {
                Some(&before) if commit.offset < before => regressions.push((commit, before)),
                _ => {
                    highest.insert(key, commit.offset);
                }
            }
        }
        regressions
    }

    /// Appends records (key, value; `None` is null) as one uncompressed batch, as a producer
    /// would; returns the base offset.
    pub fn append(
        &self,
        topic: &str,
        partition: i32,
        records: &[(Option<&str>, Option<&str>)],
    ) -> Result<i64> {
        let invalid = |reason: String| topic_error(topic, reason);
        if records.is_empty() {
            return Err(invalid("no records to append".into()));
        }
        let ts = now_ms();
        let mut builder = BatchBuilder::new(Compression::None);
        for (k, v) in records {
            builder
                .append(ts, k.map(str::as_bytes), v.map(str::as_bytes), &[])
                .map_err(|e| invalid(e.to_string()))?;
        }
        let raw = builder.build().map_err(|e| invalid(e.to_string()))?;
        let header = BatchHeader::parse(&raw).map_err(|e| invalid(e.to_string()))?;
        let mut st = lock(&self.shared);
        let log = st
            .partition_mut(topic, partition)
            .ok_or_else(|| no_partition(topic, partition))?;
        log.append(&header, &raw)
            .map_err(|e| invalid(e.to_string()))
    }

    /// The records of a partition as (offset, key, value), compressed batches decoded (malformed
    /// batches are skipped).
    #[allow(clippy::type_complexity)]
    pub fn records(&self, topic: &str, partition: i32) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
        let st = lock(&self.shared);
        let Some(log) = st.partition(topic, partition) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for b in &log.batches {
            if let Some((h, recs)) = b.records() {
                if !h.is_control() {
                    out.extend(recs.into_iter().map(|r| (r.offset, r.key, r.value)));
                }
            }
        }
        out
    }

    /// Every transactional id the coordinator knows, with its state.
    pub fn transactions(&self) -> Vec<crate::TransactionInfo> {
        lock(&self.shared)
            .txns
            .ids
            .iter()
            .map(|(id, m)| crate::TransactionInfo::of(id, m))
            .collect()
    }

    /// The transactions still open (state `Ongoing`): empty when nothing is left hanging.
    pub fn open_transactions(&self) -> Vec<crate::TransactionInfo> {
        self.transactions()
            .into_iter()
            .filter(|t| t.state == "Ongoing")
            .collect()
    }

    /// A partition's last stable offset: the first offset of its earliest open transaction,
    /// else its high watermark (what `read_committed` consumers can read up to).
    pub fn last_stable_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        lock(&self.shared)
            .partition(topic, partition)
            .map(|p| p.last_stable_offset())
    }

    /// A partition's aborted transactions as (producer id, first offset, marker offset), in
    /// the order they were aborted.
    pub fn aborted_transactions(&self, topic: &str, partition: i32) -> Vec<(i64, i64, i64)> {
        lock(&self.shared)
            .partition(topic, partition)
            .map(|p| {
                p.aborted
                    .iter()
                    .map(|a| (a.producer_id, a.first_offset, a.last_offset))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The records a `read_committed` consumer sees in a partition, as (offset, key, value):
    /// below the last stable offset, without aborted transactions and markers.
    #[allow(clippy::type_complexity)]
    pub fn committed_records(
        &self,
        topic: &str,
        partition: i32,
    ) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
        self.committed_log(topic, partition)
            .into_iter()
            .map(|r| (r.offset, r.key, r.value))
            .collect()
    }

    /// The records a `read_committed` consumer sees in a partition, whole (offset, timestamp,
    /// key, value, headers): what [`committed_records`](Self::committed_records) lists, for a
    /// test that checks timestamps or headers too.
    pub fn committed_log(&self, topic: &str, partition: i32) -> Vec<Record> {
        let st = lock(&self.shared);
        let Some(log) = st.partition(topic, partition) else {
            return Vec::new();
        };
        let stable = log.last_stable_offset();
        let mut out = Vec::new();
        for b in &log.batches {
            let Some((h, recs)) = b.records() else {
                continue;
            };
            if h.is_control() || b.base_offset >= stable {
                continue;
            }
            let aborted = |offset: i64| {
                h.is_transactional()
                    && log.aborted.iter().any(|a| {
                        a.producer_id == h.producer_id
                            && a.first_offset <= offset
                            && offset <= a.last_offset
                    })
            };
            out.extend(recs.into_iter().filter(|r| !aborted(r.offset)));
        }
        out
    }

    /// Bytes of record batches stored across all partitions.
    pub fn stored_bytes(&self) -> usize {
        lock(&self.shared)
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .flat_map(|p| p.batches.iter())
            .map(|b| b.bytes.len())
            .sum()
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        self.background.abort();
        if let Some(net) = &self.memory {
            net.close();
        }
        for b in self.tasks().iter_mut() {
            if let Some(t) = b.task.take() {
                t.abort();
            }
        }
    }
}

/// Tests hold the cluster across tasks and threads: a compile-time check.
const _: fn() = || {
    fn is<T: Send + Sync>() {}
    is::<MockCluster>();
};
