//! The app: the builder, the declarations it collects, and the facade that starts and stops
//! the runtime. All of `App` is here.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use kafka_client::admin::OffsetSpec;
use kafka_client::producer::{ProducerRecord, RecordMetadata};
use serde::de::DeserializeOwned;
use serde::Serialize;
use stores::StoreUrl;
use tokio::sync::watch;

use crate::broker::BrokerUrl;
use crate::codec::{Codec, CodecRegistry};
use crate::declarations::{
    Agent, AgentBuilder, AgentResult, AgentSummary, Declarations, Shared, TableBuilder,
    TableSummary,
};
use crate::error::{BoxError, Error, Result};
use crate::runtime::{Connection, Runtime, StoredPartition, TablePartition};
use crate::settings::Settings;
use crate::stream::{AgentStream, Processor};
use crate::table::Table;
use crate::topic::{Topic, TopicSpec};

/// Builds an [`App`]; see [`App::builder`].
#[derive(Debug)]
pub struct AppBuilder {
    id: String,
    broker: String,
    store: String,
    settings: Settings,
    registry: CodecRegistry,
    errors: Vec<Error>,
}

impl AppBuilder {
    /// Broker URL: `kafka://host:port[,host:port]` (default `kafka://localhost:9092`, as in
    /// Faust), `PLAINTEXT://host:port`, or `mock://` for an embedded mock cluster (with the
    /// `mock` cargo feature).
    pub fn broker(mut self, url: &str) -> Self {
        self.broker = url.to_owned();
        self
    }

    /// Store URL for tables: `memory://` (the default) or `redb://DIR`.
    pub fn store(mut self, url: &str) -> Self {
        self.store = url.to_owned();
        self
    }

    /// Workers that keep a warm copy of each table partition (default 0, as Faust's
    /// `table_standby_replicas`); a table can set its own.
    pub fn table_standby_replicas(mut self, replicas: u32) -> Self {
        self.settings.table_standby_replicas = replicas;
        self
    }

    /// Names this worker in the group (Kafka's `group.instance.id`, static membership): a
    /// worker that restarts under the same name, after a crash say, gets its partitions back
    /// at once instead of after its old session expires. Give each worker its own name.
    pub fn worker_instance_id(mut self, id: &str) -> Self {
        self.settings.worker_instance_id = Some(id.to_owned());
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

    /// Commit also after this many events (default 10,000, as Faust; at-least-once only:
    /// under exactly-once the interval alone commits, each commit being a transaction).
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

    /// How long the producer gathers a batch (default 0, as Faust: lowest latency; a few
    /// milliseconds save a little CPU under load).
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
            other => self.errors.push(Error::invalid_setting(
                "consumer_auto_offset_reset",
                format!("{other:?}"),
                "use \"earliest\" or \"latest\"",
            )),
        }
        self
    }

    /// Restarts the worker when an agent fails (returns an error or panics), up to
    /// `max_restarts` times in the app's life: every agent starts again from the last
    /// committed offsets (nothing past the failed event was committed) and the restart is
    /// logged. By default (0) the worker stops with `Error::AgentFailed`, as Faust's crashing
    /// supervisor. Agents registered with [`App::agent`] run once and cannot restart: declare
    /// them with [`App::agent_builder`] and `run`.
    pub fn restart_failed_agents(mut self, max_restarts: u32) -> Self {
        self.settings.restart_failed_agents = max_restarts;
        self
    }

    /// Skip source record batches that stay unreadable after a refetch (a CRC mismatch,
    /// records that do not decode) instead of stopping the worker with an error naming
    /// topic, partition and offset (the default, as Kafka's Java consumer). A skipped batch's
    /// events are never processed; each skip is logged as a warning with its offsets.
    pub fn consumer_skip_corrupt_batches(mut self, skip: bool) -> Self {
        self.settings.consumer_skip_corrupt_batches = skip;
        self
    }

    /// TLS settings for `ssl://` and `sasl_ssl://` brokers: a CA file, a client certificate
    /// (mutual TLS), a server name. Without it, TLS brokers are checked against the built-in
    /// web roots.
    pub fn broker_tls(mut self, tls: kafka_client::TlsConfig) -> Self {
        self.settings.broker_tls = Some(tls);
        self
    }

    /// SASL credentials (PLAIN, SCRAM-SHA-256/512) for `sasl_ssl://` and `sasl_plaintext://`
    /// brokers (Faust's `broker_credentials`). A `kafka://` broker with credentials is a
    /// configuration error: SASL over plain TCP takes an explicit `sasl_plaintext://`.
    pub fn broker_credentials(mut self, sasl: kafka_client::SaslConfig) -> Self {
        self.settings.broker_credentials = Some(sasl);
        self
    }

    /// `"at_least_once"` (the default) or `"exactly_once"` (Faust's `processing_guarantee`):
    /// under exactly-once, each commit interval's sends, table changelog writes and source
    /// offsets are one Kafka transaction, so a crash neither loses nor repeats an event's
    /// effects for read_committed readers. Needs a broker with transactions (Kafka 2.5+).
    pub fn processing_guarantee(mut self, guarantee: &str) -> Self {
        match crate::settings::ProcessingGuarantee::parse(guarantee) {
            Some(g) => self.settings.processing_guarantee = g,
            None => self.errors.push(Error::invalid_setting(
                "processing_guarantee",
                format!("{guarantee:?}"),
                "use \"at_least_once\" or \"exactly_once\"",
            )),
        }
        self
    }

    /// How long a transaction may stay open before the broker aborts it, under exactly-once
    /// (default 10 s, as Kafka Streams).
    pub fn transaction_timeout(mut self, timeout: Duration) -> Self {
        self.settings.transaction_timeout = timeout;
        self
    }

    /// Registers a codec under a name usable in serializer chains (`"json|mycodec"`).
    pub fn codec(mut self, name: &str, codec: impl Codec) -> Self {
        if let Err(e) = self.registry.register(name, Arc::new(codec)) {
            self.errors.push(e);
        }
        self
    }

    /// Checks the URLs and settings and makes the app. Nothing connects until it starts.
    pub fn build(self) -> Result<App> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(Error::invalid_setting(
                "id",
                format!("{:?}", self.id),
                "use letters, digits, '.', '_' and '-' (it names the group and topics)",
            ));
        }
        let broker = BrokerUrl::parse(&self.broker)?;
        let store = StoreUrl::parse(&self.store)?;
        let s = &self.settings;
        let positive = [
            ("topic_partitions", s.topic_partitions as i128),
            ("stream_buffer_maxsize", s.stream_buffer_maxsize as i128),
            ("broker_commit_every", s.broker_commit_every as i128),
        ];
        if let Some((name, value)) = positive.into_iter().find(|(_, v)| *v < 1) {
            return Err(Error::invalid_setting(name, value, "must be at least 1"));
        }
        if s.processing_guarantee == crate::settings::ProcessingGuarantee::ExactlyOnce
            && s.transaction_timeout <= s.broker_commit_interval
        {
            return Err(Error::invalid_setting(
                "transaction_timeout",
                format!("{:?}", s.transaction_timeout),
                format!(
                    "must be longer than broker_commit_interval ({:?}) under exactly-once: a \
                     transaction stays open for a commit interval, and the broker aborts it \
                     after transaction_timeout",
                    s.broker_commit_interval
                ),
            ));
        }
        Ok(App {
            inner: Arc::new(Inner {
                decls: Arc::new(Declarations::new(
                    self.id,
                    self.settings,
                    self.registry,
                    store,
                )),
                broker: Mutex::new(broker),
                conn: OnceLock::new(),
                runtime: Mutex::new(None),
                stop: watch::channel(false).0,
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
/// ```no_run
/// use futures::StreamExt;
/// use streams::App;
///
/// #[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
/// struct Purchase { username: String, currency: String, amount: u32 }
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> streams::Result<()> {
/// let app = App::builder("demo-app").broker("kafka://localhost:9092").build()?;
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
    inner: Arc<Inner>,
}

struct Inner {
    decls: Shared,
    broker: Mutex<BrokerUrl>,
    conn: OnceLock<Connection>,
    runtime: Mutex<Option<Arc<Runtime>>>,
    stop: watch::Sender<bool>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("id", &self.inner.decls.id)
            .field("broker", &self.broker().to_string())
            .field("store", &self.inner.decls.store.to_string())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Starts configuring an app; `id` is also its consumer group and the prefix of the topics
    /// it creates for itself.
    pub fn builder(id: &str) -> AppBuilder {
        AppBuilder {
            id: id.to_owned(),
            broker: "kafka://localhost:9092".to_owned(),
            store: "memory://".to_owned(),
            settings: Settings::default(),
            registry: CodecRegistry::default(),
            errors: Vec::new(),
        }
    }

    /// The app id (and consumer group).
    pub fn id(&self) -> &str {
        &self.inner.decls.id
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.decls.settings
    }

    /// The broker URL the app uses (or will use).
    pub fn broker(&self) -> BrokerUrl {
        lock(&self.inner.broker).clone()
    }

    /// The store URL for tables.
    pub fn store_url(&self) -> &StoreUrl {
        &self.inner.decls.store
    }

    /// Changes the broker before the app starts (the CLI's `--broker`).
    pub fn set_broker(&self, url: &str) -> Result<()> {
        if self.inner.conn.get().is_some() {
            return Err(Error::AlreadyRunning {
                action: "change the broker",
            });
        }
        *lock(&self.inner.broker) = BrokerUrl::parse(url)?;
        Ok(())
    }

    /// The bootstrap addresses in use (for `mock://`, the embedded cluster's), once started.
    pub fn bootstrap(&self) -> Option<String> {
        self.inner.conn.get().map(|c| c.client.bootstrap.join(","))
    }

    /// Declares a topic with key type `K` and value type `V` (Faust's
    /// `app.topic(name, key_type=K, value_type=V)`); configure it with the [`Topic`] methods.
    pub fn topic<K, V>(&self, name: &str) -> Topic<K, V>
    where
        K: Serialize + DeserializeOwned + Send + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
    {
        self.inner.decls.topic(name)
    }

    pub(crate) fn topic_spec(&self, name: &str) -> Option<Arc<TopicSpec>> {
        self.inner.decls.catalog.get(name)
    }

    /// Declared topics, by name.
    pub fn topics(&self) -> Vec<TopicSummary> {
        self.inner
            .decls
            .catalog
            .all()
            .iter()
            .map(|s| TopicSummary {
                name: s.name.clone(),
                key_serializer: s.key_ser().map(|s| s.spec().to_owned()).unwrap_or_default(),
                value_serializer: s
                    .value_ser()
                    .map(|s| s.spec().to_owned())
                    .unwrap_or_default(),
                partitions: s.partitions.unwrap_or(self.settings().topic_partitions),
                internal: s.internal,
            })
            .collect()
    }

    /// Registered agents.
    pub fn agents(&self) -> Vec<AgentSummary> {
        self.inner.decls.agent_summaries()
    }

    /// Declares a table of `K` to `V` with the app's defaults (Faust's `app.Table(name)`):
    /// `topic_partitions` partitions, the app's store, `raw` keys and `json` values, changelog
    /// `<app>-<name>-changelog`. Give it a default with [`Table::with_default`]; configure it
    /// with [`table_builder`](Self::table_builder). Agents that update it should say so with
    /// [`AgentBuilder::table`] (start-up then checks co-partitioning).
    ///
    /// ```
    /// # fn main() -> streams::Result<()> {
    /// let app = streams::App::builder("shop").build()?;
    /// let totals = app.table::<String, i64>("currency_total")?.with_default(i64::default);
    /// assert_eq!(totals.spec().partition_count(), 8);
    /// # Ok(()) }
    /// ```
    pub fn table<K, V>(&self, name: &str) -> Result<Table<K, V>>
    where
        K: Serialize + DeserializeOwned + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        self.table_builder(name).build()
    }

    /// Starts configuring a table (partitions, store, codecs, standbys, global).
    pub fn table_builder<K, V>(&self, name: &str) -> TableBuilder<K, V>
    where
        K: Serialize + DeserializeOwned + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        TableBuilder::new(&self.inner.decls, name)
    }

    /// Declared tables.
    pub fn tables(&self) -> Vec<TableSummary> {
        self.inner.decls.table_summaries()
    }

    /// The table partitions this worker holds, with their state (recovering or active), key
    /// counts, applied changelog offsets and the changelog records replayed into them.
    pub fn table_partitions(&self) -> Result<Vec<TablePartition>> {
        match self.runtime() {
            Some(runtime) => runtime.tables.partitions(),
            None => Err(Error::NotStarted),
        }
    }

    /// Every partition of every table as this machine's stores hold it, with the changelog's
    /// end when the broker can be reached (connecting if need be): what a worker starting now
    /// would replay. For a stopped app (the CLI's `tables`).
    pub async fn stored_tables(&self) -> Result<Vec<StoredPartition>> {
        let conn = match self.connect().await {
            Ok(()) => self.conn().ok(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the broker: changelog ends unknown");
                None
            }
        };
        crate::runtime::stored_partitions(&self.inner.decls, conn).await
    }

    /// Starts the app over from its sources: resets the group's committed offsets, deletes
    /// the tables' changelog topics and empties the local stores (the CLI's `reset`). Refused
    /// while a worker of the app runs. Returns what was done, one line each.
    pub async fn reset(&self) -> Result<Vec<String>> {
        if self.runtime().is_some() {
            return Err(Error::AlreadyRunning {
                action: "reset the app",
            });
        }
        self.connect().await?;
        crate::runtime::reset(&self.inner.decls, self.conn()?).await
    }

    /// Registers an agent over `topic` (Faust's `@app.agent(topic)`), named `<topic>-agent`.
    /// The body runs once and may move what it captures. Use
    /// [`agent_builder`](Self::agent_builder) for a name, concurrency, sinks, group_by.
    ///
    /// ```
    /// # fn main() -> streams::Result<()> {
    /// use futures::StreamExt;
    /// let app = streams::App::builder("demo-app").build()?;
    /// let topic = app.topic::<String, String>("greetings");
    /// app.agent(&topic, |mut greetings| async move {
    ///     while let Some(greeting) = greetings.next().await {
    ///         println!("{greeting}");
    ///     }
    /// });
    /// # Ok(()) }
    /// ```
    pub fn agent<K, V, F, Fut>(&self, topic: &Topic<K, V>, body: F) -> Agent<K, V>
    where
        K: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: FnOnce(AgentStream<K, V>) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: AgentResult,
    {
        let name = format!("{}-agent", topic.name());
        AgentBuilder::<K, V, V>::new(&self.inner.decls, &name, topic).run_once(body)
    }

    /// Starts configuring an agent named `name` over `topic`.
    pub fn agent_builder<K, V>(&self, name: &str, topic: &Topic<K, V>) -> AgentBuilder<K, V, V>
    where
        K: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        AgentBuilder::new(&self.inner.decls, name, topic)
    }

    /// A stream over `topic` whose values go through `processors` in order (Faust's
    /// `app.stream(topic, processors=[...])`); give it a body with `run` or `process`.
    pub fn stream<K, V>(
        &self,
        topic: &Topic<K, V>,
        processors: Vec<Processor<V>>,
    ) -> AgentBuilder<K, V, V>
    where
        K: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let name = format!("{}-stream", topic.name());
        AgentBuilder::new(&self.inner.decls, &name, topic).processors(processors)
    }

    /// Connects (starting the embedded cluster for `mock://`) without starting agents: enough
    /// to send. [`start`](Self::start) does this too.
    pub async fn connect(&self) -> Result<()> {
        if self.inner.conn.get().is_some() {
            return Ok(());
        }
        let conn = Connection::open(&self.inner.decls, &self.broker()).await?;
        if self.inner.conn.set(conn).is_err() {
            tracing::debug!("connected twice concurrently; keeping the first connection");
        }
        Ok(())
    }

    fn conn(&self) -> Result<&Connection> {
        self.inner.conn.get().ok_or(Error::NotStarted)
    }

    fn runtime(&self) -> Option<Arc<Runtime>> {
        lock(&self.inner.runtime).clone()
    }

    /// Connects, creates the declared topics, joins the group and starts every agent; returns
    /// once this worker has partitions. Fails when the app cannot work: brokers unreachable,
    /// group settings the broker refuses, a source topic that does not exist and cannot be
    /// created.
    pub async fn start(&self) -> Result<()> {
        self.connect().await?;
        if self.runtime().is_some() {
            return Err(Error::AlreadyRunning {
                action: "start the app again",
            });
        }
        let runtime =
            Runtime::start(&self.inner.decls, self.conn()?, self.inner.stop.subscribe()).await?;
        *lock(&self.inner.runtime) = Some(Arc::new(runtime));
        tracing::info!(app = %self.id(), broker = %self.broker(), "worker started");
        Ok(())
    }

    /// Asks a running app to stop gracefully; returns at once (safe to call from an agent).
    /// Agents finish their in-flight events, which are then committed.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    /// Whether a stop was asked for.
    pub fn is_stopping(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Waits until a stop is asked for, or the worker stopped on an error.
    pub async fn stopped(&self) {
        let mut rx = self.inner.stop.subscribe();
        let asked = rx.wait_for(|stop| *stop);
        match self.runtime() {
            Some(runtime) => {
                tokio::select! {
                    _ = asked => {}
                    _ = runtime.stopped() => {}
                }
            }
            None => {
                let _ = asked.await;
            }
        }
    }

    /// Stops gracefully and waits until done: agents finish in-flight events, sends are
    /// acknowledged, done offsets are committed, the group is left. Each step waits at most
    /// `worker_shutdown_timeout`. Returns the error that stopped the worker, if one did.
    pub async fn shutdown(&self) -> Result<()> {
        self.stop();
        let result = match self.runtime() {
            Some(runtime) => runtime.join().await,
            None => Ok(()),
        };
        if let Ok(producer) = self.inner.decls.outbox.app_producer() {
            // Bounded like the rest of the stop: no event was committed past a record that is
            // still undelivered, so its event is processed again after a restart.
            let timeout = self.settings().worker_shutdown_timeout;
            match tokio::time::timeout(timeout, producer.close()).await {
                Ok(closed) => closed?,
                Err(_) => {
                    return result.and(Err(Error::Timeout {
                        what: "delivering the app's last records at shutdown".into(),
                        after: timeout,
                    }))
                }
            }
        }
        result
    }

    /// Stops like a crash, for tests of recovery: agents are aborted, nothing is committed,
    /// the group is not left (its partitions move after the session timeout).
    #[doc(hidden)]
    pub async fn abort(&self) {
        if let Some(runtime) = self.runtime() {
            runtime.set_aborted();
            self.stop();
            let _ = runtime.join().await;
        }
    }

    /// Commits the done offsets now (they are also committed every
    /// `broker_commit_interval`), after every record sent so far is acknowledged.
    pub async fn commit(&self) -> Result<()> {
        match self.runtime() {
            Some(runtime) => runtime.commit_now().await,
            None => Err(Error::NotStarted),
        }
    }

    /// Starts, runs until Ctrl-C (or [`stop`](Self::stop), or an error that stops the
    /// worker), then shuts down gracefully.
    pub async fn run(&self) -> Result<()> {
        let mut interrupted = ctrl_c_listener();
        self.start().await?;
        tokio::select! {
            _ = &mut interrupted => tracing::info!("interrupted: finishing in-flight events"),
            _ = self.stopped() => {}
        }
        self.shutdown().await
    }

    /// Runs the app while `work` runs (sending demo records, say), then waits until every
    /// event is processed (see [`wait_caught_up`](Self::wait_caught_up)) and shuts down.
    pub async fn run_until<F, E>(&self, work: F, timeout: Duration) -> Result<()>
    where
        F: Future<Output = Result<(), E>>,
        E: Into<BoxError>,
    {
        let mut interrupted = ctrl_c_listener();
        self.start().await?;
        let outcome = tokio::select! {
            r = work => r.map_err(|e| Error::Demo { source: e.into() }),
            _ = &mut interrupted => Ok(()),
            _ = self.stopped() => Ok(()),
        };
        let caught_up = match outcome {
            Ok(()) if !self.is_stopping() => self.wait_caught_up(timeout).await,
            other => other,
        };
        let shut = self.shutdown().await;
        shut.and(caught_up)
    }

    /// Waits until every partition this worker consumes is processed up to its end, and
    /// stays so (records sent by agents to topics that other agents read included). Commits
    /// as it goes.
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<()> {
        let conn = self.conn()?;
        let runtime = self.runtime().ok_or(Error::NotStarted)?;
        let producer = self.inner.decls.outbox.producer()?;
        let work = async {
            let mut quiet_rounds = 0;
            loop {
                producer.flush().await;
                // A commit flushes the tables, which sends what they made (emit-final window
                // results) to topics this worker may read.
                match runtime.commit_now().await {
                    // Exactly-once: a transaction aborted and the worker restarts from the last
                    // committed one; what it redoes is waited for like the rest.
                    Err(e @ (Error::TransactionAborted { .. } | Error::Fenced { .. })) => {
                        tracing::info!(error = %e, "waiting for the restarted worker")
                    }
                    other => other?,
                }
                let assigned = runtime.acks.assigned();
                let specs = assigned
                    .iter()
                    .map(|tp| (tp.clone(), OffsetSpec::Latest))
                    .collect();
                let ends = conn.admin.list_offsets(specs).await?;
                let behind = assigned.iter().any(|tp| {
                    let end = ends.get(tp).map_or(0, |o| o.offset);
                    runtime.acks.position(tp).unwrap_or(0) < end
                });
                quiet_rounds = if behind { 0 } else { quiet_rounds + 1 };
                if quiet_rounds >= 3 || self.is_stopping() {
                    return Ok::<(), Error>(());
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| Error::Timeout {
                what: "waiting for every event to be processed".into(),
                after: timeout,
            })?
    }

    /// Sends a record and waits for its acknowledgement (the CLI's `send`).
    pub(crate) async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.inner.decls.outbox.send_and_wait(record).await
    }

    /// Waits until every record sent so far is acknowledged; an error if any record the app
    /// sent was not delivered (the worker then commits nothing past it and stops).
    pub async fn flush(&self) -> Result<()> {
        self.inner.decls.outbox.flush().await
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A future that completes on Ctrl-C, listening from now on: the handler is installed before
/// the first event flows, so an early Ctrl-C stops the worker gracefully instead of killing it.
fn ctrl_c_listener() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    let mut listener = Box::pin(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C ({e}): stop the worker another way");
            std::future::pending::<()>().await;
        }
    });
    // The first poll registers the signal handler.
    match futures::FutureExt::now_or_never(listener.as_mut()) {
        Some(()) => Box::pin(std::future::ready(())),
        None => listener,
    }
}
