//! The app: configuration, declared topics and agents, connections, start and graceful stop.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kafka_client::admin::{Admin, CreateTopicsOptions, NewTopic};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord, RecordMetadata};
use kafka_client::ClientConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;
use stores::StoreUrl;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::agent::{self, AgentSpec};
use crate::broker::BrokerUrl;
use crate::codec::{Codec, CodecRegistry, Serializer};
use crate::error::{Error, Result};
use crate::offsets::{AckToken, Acks};
use crate::settings::Settings;
use crate::topic::{OnDecodeError, Topic, TopicSpec};
use crate::worker;

/// Builds an [`App`]; see [`App::builder`].
#[derive(Debug)]
pub struct AppBuilder {
    id: String,
    broker: String,
    store: String,
    settings: Settings,
    registry: CodecRegistry,
    errors: Vec<String>,
}

impl AppBuilder {
    /// Broker URL: `kafka://host:port[,host:port]`, `PLAINTEXT://host:port`, or `mock://` for
    /// an embedded mock cluster (the default).
    pub fn broker(mut self, url: &str) -> Self {
        self.broker = url.to_owned();
        self
    }

    /// Store URL for tables: `memory://` (the default) or `redb://DIR`.
    pub fn store(mut self, url: &str) -> Self {
        self.store = url.to_owned();
        self
    }

    /// Partitions of topics the app creates (default 8).
    pub fn topic_partitions(mut self, n: i32) -> Self {
        self.settings.topic_partitions = n;
        self
    }

    /// Replicas of topics the app creates (default 1).
    pub fn topic_replication_factor(mut self, n: i16) -> Self {
        self.settings.topic_replication_factor = n;
        self
    }

    /// How often done offsets are committed (default 2.8 s, as Faust).
    pub fn broker_commit_interval(mut self, every: Duration) -> Self {
        self.settings.broker_commit_interval = every;
        self
    }

    /// Commit also after this many events (default 10,000, as Faust).
    pub fn broker_commit_every(mut self, events: usize) -> Self {
        self.settings.broker_commit_every = events;
        self
    }

    /// Events buffered per agent instance (default 4096, as Faust).
    pub fn stream_buffer_maxsize(mut self, n: usize) -> Self {
        self.settings.stream_buffer_maxsize = n;
        self
    }

    /// How long a graceful stop waits for agents (default 30 s).
    pub fn worker_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.worker_shutdown_timeout = timeout;
        self
    }

    /// How long a silent worker keeps its partitions (default 60 s, as Faust); brokers
    /// accept 6 s and more by default.
    pub fn broker_session_timeout(mut self, timeout: Duration) -> Self {
        self.settings.broker_session_timeout = timeout;
        self
    }

    /// Time between heartbeats (default 3 s).
    pub fn broker_heartbeat_interval(mut self, every: Duration) -> Self {
        self.settings.broker_heartbeat_interval = every;
        self
    }

    /// How long a rebalance waits for workers to rejoin (default 60 s).
    pub fn broker_rebalance_timeout(mut self, timeout: Duration) -> Self {
        self.settings.broker_rebalance_timeout = timeout;
        self
    }

    /// How long the producer gathers a batch (default 5 ms).
    pub fn producer_linger(mut self, linger: Duration) -> Self {
        self.settings.producer_linger = linger;
        self
    }

    /// Where the group starts on partitions without a committed offset: `"earliest"` (the
    /// default, as Faust) or `"latest"`.
    pub fn consumer_auto_offset_reset(mut self, reset: &str) -> Self {
        match reset {
            "earliest" => self.settings.consumer_auto_offset_reset_earliest = true,
            "latest" => self.settings.consumer_auto_offset_reset_earliest = false,
            other => self.errors.push(format!(
                "consumer_auto_offset_reset {other:?}: use \"earliest\" or \"latest\""
            )),
        }
        self
    }

    /// Registers a codec under a name usable in serializer chains (`"json|mycodec"`).
    pub fn codec(mut self, name: &str, codec: impl Codec) -> Self {
        if let Err(e) = self.registry.register(name, Arc::new(codec)) {
            self.errors.push(e.to_string());
        }
        self
    }

    /// Checks the URLs and settings and makes the app. Nothing connects until it starts.
    pub fn build(self) -> Result<App> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(Error::Config(e));
        }
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(Error::config(format!(
                "app id {:?}: use letters, digits, '.', '_' and '-' (it names the group and topics)",
                self.id
            )));
        }
        let broker = BrokerUrl::parse(&self.broker)?;
        let store = StoreUrl::parse(&self.store)?;
        let s = &self.settings;
        if s.topic_partitions < 1 || s.stream_buffer_maxsize == 0 || s.broker_commit_every == 0 {
            return Err(Error::config(
                "topic_partitions, stream_buffer_maxsize and broker_commit_every must be positive",
            ));
        }
        Ok(App {
            shared: Arc::new(Shared {
                id: self.id,
                settings: self.settings,
                registry: self.registry,
                broker: Mutex::new(broker),
                store,
                topics: Mutex::default(),
                agents: Mutex::default(),
                conn: OnceLock::new(),
                worker: Mutex::new(None),
                stop: watch::channel(false).0,
                rebalances: watch::channel(0).0,
                aborted: AtomicBool::new(false),
                sends: AtomicUsize::new(0),
                sends_idle: Notify::new(),
            }),
        })
    }
}

/// A stream-processing application: the Rust form of `faust.App`.
///
/// Declare topics and agents, then run it with [`main`](App::main) (a CLI), [`run`](App::run)
/// (until Ctrl-C or [`stop`](App::stop)), or [`start`](App::start) and
/// [`shutdown`](App::shutdown). The app is consumer group `<id>`. Cheap to clone.
///
/// ```
/// use futures::StreamExt;
/// use streams::App;
///
/// #[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
/// struct Purchase { username: String, currency: String, amount: u32 }
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> streams::Result<()> {
/// let app = App::builder("demo-app").broker("mock://").topic_partitions(2).build()?;
/// let purchases = app.topic::<String, Purchase>("purchases");
/// let total = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
/// let sum = total.clone();
/// app.agent(&purchases, move |mut stream| async move {
///     while let Some(purchase) = stream.next().await {
///         sum.fetch_add(purchase.amount, std::sync::atomic::Ordering::Relaxed);
///     }
/// });
/// app.start().await?;
/// for (user, amount) in [("ann", 3), ("bob", 4)] {
///     let p = Purchase { username: user.into(), currency: "EUR".into(), amount };
///     purchases.send(p.username.clone(), p).await?;
/// }
/// app.wait_caught_up(std::time::Duration::from_secs(10)).await?;
/// app.shutdown().await?;
/// assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), 7);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct App {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub id: String,
    pub settings: Settings,
    registry: CodecRegistry,
    broker: Mutex<BrokerUrl>,
    store: StoreUrl,
    topics: Mutex<BTreeMap<String, Arc<TopicSpec>>>,
    pub agents: Mutex<Vec<AgentSpec>>,
    conn: OnceLock<Connection>,
    worker: Mutex<Option<JoinHandle<Result<()>>>>,
    pub stop: watch::Sender<bool>,
    /// Completed rebalances of this worker.
    pub rebalances: watch::Sender<u64>,
    /// Set by [`App::abort`]: stop like a crash.
    pub aborted: AtomicBool,
    /// Sends whose acknowledgement is awaited by a background watcher.
    sends: AtomicUsize,
    sends_idle: Notify,
}

/// Connections made when the app starts.
pub(crate) struct Connection {
    pub client: ClientConfig,
    pub producer: Producer,
    pub admin: Admin,
    pub acks: Arc<Acks>,
    /// Keeps a `mock://` cluster alive as long as the app.
    pub _mock: Option<testkit::MockCluster>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("id", &self.shared.id)
            .field("broker", &self.broker().to_string())
            .field("store", &self.shared.store.to_string())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Starts configuring an app; `id` is also its consumer group and the prefix of the topics
    /// it creates for itself.
    pub fn builder(id: &str) -> AppBuilder {
        AppBuilder {
            id: id.to_owned(),
            broker: "mock://".to_owned(),
            store: "memory://".to_owned(),
            settings: Settings::default(),
            registry: CodecRegistry::default(),
            errors: Vec::new(),
        }
    }

    /// The app id (and consumer group).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// The broker URL the app uses (or will use).
    pub fn broker(&self) -> BrokerUrl {
        lock(&self.shared.broker).clone()
    }

    /// The store URL for tables.
    pub fn store_url(&self) -> &StoreUrl {
        &self.shared.store
    }

    /// Changes the broker before the app starts (the CLI's `--broker`).
    pub fn set_broker(&self, url: &str) -> Result<()> {
        if self.shared.conn.get().is_some() {
            return Err(Error::config("the broker cannot change once the app runs"));
        }
        *lock(&self.shared.broker) = BrokerUrl::parse(url)?;
        Ok(())
    }

    /// The bootstrap addresses in use (for `mock://`, the embedded cluster's), once started.
    pub fn bootstrap(&self) -> Option<String> {
        self.shared.conn.get().map(|c| c.client.bootstrap.join(","))
    }

    /// Declares a topic with key type `K` and value type `V` (Faust's
    /// `app.topic(name, key_type=K, value_type=V)`); configure it with the [`Topic`] methods.
    pub fn topic<K, V>(&self, name: &str) -> Topic<K, V>
    where
        K: Serialize + DeserializeOwned + Send + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
    {
        let existing = lock(&self.shared.topics).get(name).cloned();
        if let Some(spec) = existing {
            // Declared before (perhaps with other types): keep its settings.
            return Topic::declare(self, (*spec).clone());
        }
        Topic::declare(
            self,
            TopicSpec {
                name: name.to_owned(),
                partitions: None,
                configs: Vec::new(),
                key_serializer: self.parse_serializer("raw"),
                value_serializer: self.parse_serializer("json"),
                on_decode_error: OnDecodeError::default(),
                internal: false,
            },
        )
    }

    pub(crate) fn parse_serializer(&self, spec: &str) -> Result<Serializer, String> {
        Serializer::parse(spec, &self.shared.registry).map_err(|e| e.to_string())
    }

    pub(crate) fn register_topic(&self, spec: TopicSpec) -> Arc<TopicSpec> {
        let spec = Arc::new(spec);
        lock(&self.shared.topics).insert(spec.name.clone(), spec.clone());
        spec
    }

    pub(crate) fn topic_spec(&self, name: &str) -> Option<Arc<TopicSpec>> {
        lock(&self.shared.topics).get(name).cloned()
    }

    /// Declared topics: `(name, key serializer, value serializer, internal)`, by name.
    pub fn topics(&self) -> Vec<TopicSummary> {
        lock(&self.shared.topics)
            .values()
            .map(|s| TopicSummary {
                name: s.name.clone(),
                key_serializer: s.key_ser().map(|s| s.spec().to_owned()).unwrap_or_default(),
                value_serializer: s
                    .value_ser()
                    .map(|s| s.spec().to_owned())
                    .unwrap_or_default(),
                partitions: s
                    .partitions
                    .unwrap_or(self.shared.settings.topic_partitions),
                internal: s.internal,
            })
            .collect()
    }

    /// Registered agents: `(name, topics, concurrency)`.
    pub fn agents(&self) -> Vec<AgentSummary> {
        lock(&self.shared.agents)
            .iter()
            .map(|a| AgentSummary {
                name: a.name.clone(),
                topic: a.topic.clone(),
                concurrency: a.concurrency,
                sinks: a.sinks.clone(),
            })
            .collect()
    }

    /// Connects (starting the embedded cluster for `mock://`) without starting agents: enough
    /// to send. [`start`](Self::start) does this too.
    pub async fn connect(&self) -> Result<()> {
        if self.shared.conn.get().is_some() {
            return Ok(());
        }
        let broker = self.broker();
        let (bootstrap, mock) = match &broker {
            BrokerUrl::Kafka(hosts) => (hosts.join(","), None),
            BrokerUrl::Mock => {
                let mock = testkit::MockCluster::builder()
                    .default_partitions(self.shared.settings.topic_partitions)
                    .build()
                    .await?;
                tracing::info!(bootstrap = %mock.bootstrap(), "started an embedded mock Kafka cluster");
                (mock.bootstrap(), Some(mock))
            }
        };
        let client = ClientConfig::new(&bootstrap)?.with_client_id(self.shared.id.clone());
        let producer = Producer::new(
            client.clone(),
            ProducerConfig::default().with_linger(self.shared.settings.producer_linger),
        )
        .await
        .map_err(|e| {
            Error::config(format!(
                "cannot reach the brokers at {broker}: {e}; is Kafka running? (mock:// needs none)"
            ))
        })?;
        let admin = Admin::new(client.clone()).await?;
        let conn = Connection {
            client,
            producer,
            admin,
            acks: Arc::new(Acks::default()),
            _mock: mock,
        };
        if self.shared.conn.set(conn).is_err() {
            tracing::debug!("connected twice concurrently; keeping the first connection");
        }
        Ok(())
    }

    pub(crate) fn conn(&self) -> Result<&Connection> {
        self.shared.conn.get().ok_or(Error::NotStarted)
    }

    /// Creates every declared topic that does not exist yet.
    pub async fn create_topics(&self) -> Result<()> {
        let conn = self.conn()?;
        let settings = &self.shared.settings;
        let topics: Vec<NewTopic> = lock(&self.shared.topics)
            .values()
            .map(|s| {
                let mut t = NewTopic::new(
                    s.name.clone(),
                    s.partitions.unwrap_or(settings.topic_partitions),
                    settings.topic_replication_factor,
                );
                for (k, v) in &s.configs {
                    t = t.with_config(k.clone(), v.clone());
                }
                t
            })
            .collect();
        if topics.is_empty() {
            return Ok(());
        }
        for spec in lock(&self.shared.topics).values() {
            spec.key_ser()?;
            spec.value_ser()?;
        }
        let options = CreateTopicsOptions {
            ignore_existing: true,
            ..Default::default()
        };
        conn.admin.create_topics_with(topics, options).await?;
        Ok(())
    }

    /// Connects, creates topics, joins the group and starts every agent; returns once running.
    pub async fn start(&self) -> Result<()> {
        self.connect().await?;
        if lock(&self.shared.worker).is_some() {
            return Err(Error::config("the app is already started"));
        }
        self.create_topics().await?;
        let agents = agent::start_all(self)?;
        let ready = worker::Worker::start(self.clone(), agents).await?;
        *lock(&self.shared.worker) = Some(ready);
        // Return once the group gave this worker its partitions, so callers see it working.
        let mut rebalances = self.shared.rebalances.subscribe();
        let joined = rebalances.wait_for(|n| *n > 0);
        let limit = self.shared.settings.broker_rebalance_timeout + Duration::from_secs(10);
        if tokio::time::timeout(limit, joined).await.is_err() {
            tracing::warn!(
                ?limit,
                "no partitions assigned yet; the worker keeps trying"
            );
        }
        tracing::info!(app = %self.shared.id, broker = %self.broker(), "worker started");
        Ok(())
    }

    /// Asks a running app to stop gracefully; returns at once (safe to call from an agent).
    /// Agents finish their in-flight events, which are then committed.
    pub fn stop(&self) {
        self.shared.stop.send_replace(true);
    }

    /// Whether a stop was asked for.
    pub fn is_stopping(&self) -> bool {
        *self.shared.stop.borrow()
    }

    /// Waits until a stop is asked for.
    pub async fn stopped(&self) {
        let mut rx = self.shared.stop.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Stops gracefully and waits until done: agents finish in-flight events, sends are
    /// acknowledged, done offsets are committed, the group is left.
    pub async fn shutdown(&self) -> Result<()> {
        self.stop();
        let worker = lock(&self.shared.worker).take();
        let result = match worker {
            Some(handle) => match handle.await {
                Ok(r) => r,
                Err(e) => Err(Error::config(format!("the worker task failed: {e}"))),
            },
            None => Ok(()),
        };
        if let Ok(conn) = self.conn() {
            conn.producer.close().await?;
        }
        result
    }

    /// Stops like a crash, for tests of recovery: agents are aborted, nothing is committed,
    /// the group is not left (its partitions move after the session timeout).
    #[doc(hidden)]
    pub async fn abort(&self) {
        self.shared.aborted.store(true, Ordering::Release);
        self.stop();
        let worker = lock(&self.shared.worker).take();
        if let Some(handle) = worker {
            let _ = handle.await;
        }
    }

    /// Starts, runs until Ctrl-C (or [`stop`](Self::stop)), then shuts down gracefully.
    pub async fn run(&self) -> Result<()> {
        self.start().await?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: finishing in-flight events"),
            _ = self.stopped() => {}
        }
        self.shutdown().await
    }

    /// Runs the app while `work` runs (sending demo records, say), then waits until every
    /// event is processed (see [`wait_caught_up`](Self::wait_caught_up)) and shuts down.
    pub async fn run_until<F, E>(&self, work: F, timeout: Duration) -> Result<()>
    where
        F: Future<Output = Result<(), E>>,
        E: fmt::Display,
    {
        self.start().await?;
        let outcome = tokio::select! {
            r = work => r.map_err(|e| Error::config(format!("demo failed: {e}"))),
            _ = tokio::signal::ctrl_c() => Ok(()),
        };
        let caught_up = match outcome {
            Ok(()) if !self.is_stopping() => self.wait_caught_up(timeout).await,
            other => other,
        };
        let shut = self.shutdown().await;
        caught_up.and(shut)
    }

    /// Waits until every partition this worker consumes is processed up to its end, and
    /// stays so (records sent by agents to topics that other agents read included).
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<()> {
        let conn = self.conn()?;
        let work = async {
            let mut quiet_rounds = 0;
            loop {
                let assigned = conn.acks.assigned();
                let specs = assigned
                    .iter()
                    .map(|tp| (tp.clone(), kafka_client::admin::OffsetSpec::Latest))
                    .collect();
                let ends = conn.admin.list_offsets(specs).await?;
                let behind = assigned.iter().any(|tp| {
                    let end = ends.get(tp).map_or(0, |o| o.offset);
                    conn.acks.position(tp).unwrap_or(0) < end
                });
                let busy = behind || self.shared.sends.load(Ordering::Acquire) > 0;
                quiet_rounds = if busy { 0 } else { quiet_rounds + 1 };
                if quiet_rounds >= 3 || self.is_stopping() {
                    return Ok::<(), Error>(());
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            Error::config(format!(
                "events were still in flight after {timeout:?}: see the warnings above"
            ))
        })?
    }

    /// Sends a record; inside an agent, the current event stays undone until it is
    /// acknowledged, and a failed send keeps it from ever being committed.
    pub(crate) async fn produce(&self, record: ProducerRecord) -> Result<()> {
        self.produce_holding(record, agent::current_acks()).await
    }

    /// Sends a record; `holds` stay undone until it is acknowledged (poisoned if it fails).
    pub(crate) async fn produce_holding(
        &self,
        record: ProducerRecord,
        holds: Vec<AckToken>,
    ) -> Result<()> {
        let conn = self.conn()?;
        let delivery = match conn.producer.send(record).await {
            Ok(d) => d,
            Err(e) => {
                holds.iter().for_each(AckToken::poison);
                return Err(e.into());
            }
        };
        self.shared.sends.fetch_add(1, Ordering::AcqRel);
        let app = self.clone();
        tokio::spawn(async move {
            if let Err(e) = delivery.await {
                tracing::error!(error = %e, "a record sent by the app was not delivered; the event that sent it will not be committed");
                holds.iter().for_each(AckToken::poison);
            }
            drop(holds);
            if app.shared.sends.fetch_sub(1, Ordering::AcqRel) == 1 {
                app.shared.sends_idle.notify_waiters();
            }
        });
        Ok(())
    }

    pub(crate) async fn produce_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let conn = self.conn()?;
        Ok(conn.producer.send(record).await?.await?)
    }

    /// Waits until every record sent so far is acknowledged (or failed).
    pub async fn flush(&self) -> Result<()> {
        let conn = self.conn()?;
        conn.producer.flush().await;
        loop {
            let idle = self.shared.sends_idle.notified();
            if self.shared.sends.load(Ordering::Acquire) == 0 {
                return Ok(());
            }
            idle.await;
        }
    }
}

/// A declared topic, as `app.topics()` and the CLI list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    pub name: String,
    pub key_serializer: String,
    pub value_serializer: String,
    pub partitions: i32,
    pub internal: bool,
}

/// A registered agent, as `app.agents()` and the CLI list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    pub name: String,
    pub topic: String,
    pub concurrency: usize,
    pub sinks: Vec<String>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
