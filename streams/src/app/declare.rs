//! What an app declares: topics, agents, tables and streams (the facade over
//! [`Declarations`](crate::declarations)).

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::declarations::{
    Agent, AgentBuilder, AgentResult, AgentSummary, Channel, ChannelAgentBuilder, TableBuilder,
    TableSummary,
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
