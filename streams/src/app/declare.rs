//! What an app declares: topics, agents, tables, streams, timers and tasks (the facade over
//! [`Declarations`](crate::declarations)).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::Serializer;
use crate::declarations::{
    Agent, AgentBuilder, AgentResult, AgentSummary, Channel, ChannelAgentBuilder, CrontabBuilder,
    StreamJoinBuilder, TableBuilder, TableSummary, TaskBuilder, TimerBuilder,
};
use crate::error::Result;
use crate::stream::{AgentStream, Processor};
use crate::table::Table;
use crate::topic::{Topic, TopicSpec};

use super::App;

impl App {
    /// An in-memory channel of `T` values (Faust's `app.channel()`), holding up to the app's
    /// `stream_buffer_maxsize` values; `name` is for logs. Not durable: see [`Channel`].
    pub fn channel<T: Send + 'static>(&self, name: &str) -> Channel<T> {
        let capacity = self.inner.decls.settings.stream_buffer_maxsize;
        self.channel_with_capacity(name, capacity)
    }

    /// [`channel`](Self::channel) holding up to `capacity` values (at least 1): a send into a
    /// full channel waits for room.
    pub fn channel_with_capacity<T: Send + 'static>(
        &self,
        name: &str,
        capacity: usize,
    ) -> Channel<T> {
        Channel::new(&self.inner.decls, name, capacity)
    }

    /// Configures an agent named `name` over `channel` (Faust's `@app.agent(channel)`):
    /// finish with [`ChannelAgentBuilder::run`].
    pub fn channel_agent<T: Send + 'static>(
        &self,
        name: &str,
        channel: &Channel<T>,
    ) -> ChannelAgentBuilder<T> {
        ChannelAgentBuilder::new(&self.inner.decls, name, channel)
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

    /// Parses a codec chain (`binary|json`) against the app's codecs (the CLI's overrides).
    pub(crate) fn parse_serializer(&self, spec: &str) -> Result<Serializer> {
        Serializer::parse(spec, self.inner.decls.catalog.registry())
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

    /// Registered agents: those over topics, then those over channels
    /// ([`AgentSummary::channel`]).
    pub fn agents(&self) -> Vec<AgentSummary> {
        self.inner.decls.all_agent_summaries()
    }

    /// Declares a table of `K` to `V` with the app's defaults (Faust's `app.Table(name)`):
    /// `topic_partitions` partitions, the app's store, `raw` keys and `json` values, changelog
    /// `<app>-<name>-changelog`. Give it a default with [`Table::with_default`]; configure it
    /// with [`table_builder`](Self::table_builder). Agents that update it should say so with
    /// [`AgentBuilder::table`] (start-up then checks co-partitioning). Declaring does no I/O:
    /// the store opens when the worker starts; until then the table holds no partition, and
    /// reading or writing a key is [`Error::NotStarted`](crate::Error::NotStarted).
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

    /// Starts configuring a windowed stream-stream join named `name` of `left` and `right`
    /// (two topics keyed alike and co-partitioned): see [`StreamJoinBuilder`].
    pub fn stream_join<K, L, R>(
        &self,
        name: &str,
        left: &Topic<K, L>,
        right: &Topic<K, R>,
    ) -> StreamJoinBuilder<K, L, R>
    where
        K: Serialize + DeserializeOwned + Send + Sync + 'static,
        L: Serialize + DeserializeOwned + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        StreamJoinBuilder::new(&self.inner.decls, name, left, right)
    }

    /// Declares a timer named `name` that runs every `interval` (Faust's
    /// `@app.timer(interval=10.0, on_leader=True)` is
    /// `app.timer("name", Duration::from_secs(10)).on_leader().run(|| async { .. })?`).
    /// The first run is one interval after the worker starts; see [`TimerBuilder`] for missed
    /// ticks, failures and what its sends mean for commits.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streams::App;
    ///
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = testkit::MockCluster::builder().build().await?;
    /// let app = App::builder("timer-demo")
    ///     .broker(&format!("kafka://{}", cluster.bootstrap()))
    ///     .build()?;
    /// let pings = app.topic::<String, String>("pings");
    /// let (fired, mut fires) = tokio::sync::mpsc::unbounded_channel();
    /// app.timer("ping", Duration::from_millis(50))
    ///     .on_leader() // alone in its group, this worker leads it
    ///     .run(move || {
    ///         let (fired, pings) = (fired.clone(), pings.clone());
    ///         async move {
    ///             pings.send_value("ping".to_owned()).await?;
    ///             let _ = fired.send(());
    ///             Ok::<(), streams::Error>(())
    ///         }
    ///     })?;
    /// app.start().await?;
    /// for _ in 0..3 {
    ///     tokio::time::timeout(Duration::from_secs(30), fires.recv()).await?;
    /// }
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn timer(&self, name: &str, interval: Duration) -> TimerBuilder {
        TimerBuilder::new(&self.inner.decls, name, interval)
    }

    /// Declares a timer named `name` that runs at the wall times of a cron expression
    /// (minute hour day-of-month month day-of-week), read in UTC unless
    /// [`CrontabBuilder::timezone`] says otherwise (Faust's
    /// `@app.crontab("0 9 * * *", timezone=pytz.timezone("Europe/Paris"), on_leader=True)` is
    /// `app.crontab("name", "0 9 * * *").timezone("Europe/Paris").on_leader().run(..)?`).
    /// Wall time comes from the app's [`Clock`](crate::Clock).
    ///
    /// ```
    /// # fn main() -> streams::Result<()> {
    /// let app = streams::App::builder("cron-demo").build()?;
    /// app.crontab("morning-report", "0 9 * * mon-fri")
    ///     .timezone("Europe/Paris")
    ///     .on_leader()
    ///     .run(|| async { println!("good morning") })?;
    /// // Bad input is refused at declaration, naming the timer.
    /// let bad = app.crontab("typo", "0 25 * * *").run(|| async {});
    /// assert!(matches!(bad, Err(streams::Error::InvalidCron { .. })));
    /// # Ok(()) }
    /// ```
    pub fn crontab(&self, name: &str, expression: &str) -> CrontabBuilder {
        CrontabBuilder::new(&self.inner.decls, name, expression)
    }

    /// Declares a task named `name` that runs once when the worker starts, beside the agents
    /// (Faust's `@app.task`); see [`TaskBuilder`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use streams::App;
    ///
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = testkit::MockCluster::builder().build().await?;
    /// let app = App::builder("task-demo")
    ///     .broker(&format!("kafka://{}", cluster.bootstrap()))
    ///     .build()?;
    /// let (started, mut starts) = tokio::sync::mpsc::unbounded_channel();
    /// app.task("warm-up").run(move || {
    ///     let started = started.clone();
    ///     async move { let _ = started.send("warmed up"); }
    /// })?;
    /// app.start().await?;
    /// let said = tokio::time::timeout(Duration::from_secs(30), starts.recv()).await?;
    /// assert_eq!(said, Some("warmed up"));
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn task(&self, name: &str) -> TaskBuilder {
        TaskBuilder::new(&self.inner.decls, name)
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
}

/// A declared topic, as `app.topics()` and the CLI list them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicSummary {
    /// The topic's name.
    pub name: String,
    /// Its key serializer chain (`raw`, `json`, `binary|json`...).
    pub key_serializer: String,
    /// Its value serializer chain.
    pub value_serializer: String,
    /// The partition count the app creates it with.
    pub partitions: i32,
    /// Whether the app made it for itself (a repartition topic of `group_by`).
    pub internal: bool,
}
