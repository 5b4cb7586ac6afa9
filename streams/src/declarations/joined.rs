//! Declaring stream-table joins: [`AgentBuilder::join`] and its kin, and the [`JoinBuilder`]
//! they return, whose bodies get a [`JoinedStream`] (see `crate::join`).

use std::future::Future;

use futures::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::agent::{Agent, AgentBuilder, AgentResult};
use super::sink::Sink;
use crate::error::BoxError;
use crate::join::{global_lookup, table_lookup, JoinedStream, Lookup};
use crate::table::Table;

impl<K, V, T> AgentBuilder<K, V, T>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    T: Send + 'static,
{
    /// Joins each event with `table`'s value for the event's key (a left join, Kafka
    /// Streams' `stream.leftJoin(table)`): the body gets events of `(value, Option<table
    /// value>)`, `None` when the table has no value for the key (or the event has no key).
    ///
    /// The table is read as it is when the event is handled, on this worker: the stream and
    /// the table must be co-partitioned (the same partition count, keyed alike), which
    /// [`App::start`](crate::App::start) checks ([`Error::JoinNotCoPartitioned`](crate::Error::JoinNotCoPartitioned)).
    /// A table value that does not decode goes through the decode-error policy
    /// ([`Error::JoinDecode`](crate::Error::JoinDecode)), as an event that does not.
    ///
    /// Unlike Kafka Streams, the table is not bound to one topic: it is whatever the app
    /// keeps in it (an agent's writes, Faust style), or a topic's latest values with
    /// [`TableBuilder::from_topic`](crate::TableBuilder::from_topic), Kafka Streams'
    /// `builder.table(topic)`. Kafka Streams processes a task's table and stream records in
    /// timestamp order; here the table is as its writer left it when the event arrives (an
    /// out-of-order event does not see an older table value). For a table kept from a topic,
    /// a stream partition starts flowing only once the table caught up with its source's end
    /// at the partition's assignment ([`JoinBuilder::bootstrap`]), so an app started on a
    /// backlog joins each event with the table records written before the app started; a
    /// table update written after an event but before the start is seen by that event
    /// (Kafka Streams, by timestamp, would not).
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("join-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let profiles = app.topic::<String, String>("profiles");
    /// let purchases = app.topic::<String, String>("purchases");
    /// let levels = app.table_builder::<String, String>("levels").from_topic(&profiles)?;
    /// let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    /// app.agent_builder("enrich", &purchases)
    ///     .join(&levels)
    ///     .run(move |mut purchases| {
    ///         let tx = tx.clone();
    ///         async move {
    ///             while let Some(purchase) = purchases.next().await {
    ///                 let (item, level) = purchase.into_value();
    ///                 let _ = tx.send(format!("{item}: {}", level.as_deref().unwrap_or("none")));
    ///             }
    ///         }
    ///     });
    /// app.start().await?;
    /// profiles.send("alice".to_owned(), "gold".to_owned()).await?;
    /// app.wait_caught_up(std::time::Duration::from_secs(30)).await?; // the table is current
    /// purchases.send("alice".to_owned(), "book".to_owned()).await?;
    /// purchases.send("bob".to_owned(), "pen".to_owned()).await?;
    /// let mut got = vec![seen.recv().await.unwrap(), seen.recv().await.unwrap()];
    /// got.sort(); // alice and bob may be in different partitions
    /// assert_eq!(got, ["book: gold", "pen: none"]);
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn join<W>(self, table: &Table<K, W>) -> JoinBuilder<K, V, Option<W>, T>
    where
        W: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let agent = self.joins_with(table.spec(), false);
        JoinBuilder::new(agent, table_lookup(table.clone(), Some))
    }

    /// [`join`](Self::join) as an inner join (Kafka Streams' `stream.join(table)`): the body
    /// gets events of `(value, table value)`; an event whose key has no table value (or that
    /// has no key) is dropped, done at once as a filtered one. (An [`Agent::ask`] of such an
    /// event gets no reply and times out.)
    pub fn inner_join<W>(self, table: &Table<K, W>) -> JoinBuilder<K, V, W, T>
    where
        W: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let agent = self.joins_with(table.spec(), false);
        JoinBuilder::new(agent, table_lookup(table.clone(), |found| found))
    }

    /// Joins each event with the global `table`'s value for the key `key` takes from the
    /// event's value (a left join, Kafka Streams' `stream.leftJoin(globalTable, keySelector,
    /// joiner)`): no co-partitioning needed, as every worker holds every partition of a global
    /// table ([`TableBuilder::global`](crate::TableBuilder::global); start refuses another,
    /// [`Error::JoinTableNotGlobal`](crate::Error::JoinTableNotGlobal)).
    ///
    /// `key` returning `None` makes the event a bad one ([`Error::JoinKey`](crate::Error::JoinKey)),
    /// handled by the decode-error policy (skip, dead letter, stop) like an event that does not
    /// decode; Kafka Streams drops such an event (a null key) with a warning, which is the
    /// `Skip` policy here.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize)]
    /// struct Order { user: String, item: String }
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("join-global-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let countries = app.topic::<String, String>("countries");
    /// let orders = app.topic::<String, Order>("orders"); // keyed by order id
    /// let country_of = app
    ///     .table_builder::<String, String>("country-of")
    ///     .global()
    ///     .from_topic(&countries)?;
    /// let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    /// app.agent_builder("ship", &orders)
    ///     .join_global(&country_of, |order: &Order| Some(order.user.clone()))
    ///     .run(move |mut orders| {
    ///         let tx = tx.clone();
    ///         async move {
    ///             while let Some(order) = orders.next().await {
    ///                 let (order, country) = order.into_value();
    ///                 let _ = tx.send((order.item, country));
    ///             }
    ///         }
    ///     });
    /// app.start().await?;
    /// countries.send("alice".to_owned(), "FR".to_owned()).await?;
    /// app.wait_caught_up(std::time::Duration::from_secs(30)).await?; // the table is current
    /// let order = Order { user: "alice".into(), item: "book".into() };
    /// orders.send("order-1".to_owned(), order).await?;
    /// assert_eq!(seen.recv().await, Some(("book".to_owned(), Some("FR".to_owned()))));
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn join_global<Q, W>(
        self,
        table: &Table<Q, W>,
        key: impl Fn(&V) -> Option<Q> + Send + Sync + 'static,
    ) -> JoinBuilder<K, V, Option<W>, T>
    where
        Q: Serialize + DeserializeOwned + 'static,
        W: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let agent = self.joins_with(table.spec(), true);
        JoinBuilder::new(agent, global_lookup(table.clone(), key, Some))
    }

    /// [`join_global`](Self::join_global) as an inner join (Kafka Streams'
    /// `stream.join(globalTable, keySelector, joiner)`): events of `(value, table value)`; an
    /// event whose extracted key has no table value is dropped (done at once).
    pub fn inner_join_global<Q, W>(
        self,
        table: &Table<Q, W>,
        key: impl Fn(&V) -> Option<Q> + Send + Sync + 'static,
    ) -> JoinBuilder<K, V, W, T>
    where
        Q: Serialize + DeserializeOwned + 'static,
        W: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let agent = self.joins_with(table.spec(), true);
        JoinBuilder::new(agent, global_lookup(table.clone(), key, |found| found))
    }
}

/// An agent whose stream is joined with a table ([`AgentBuilder::join`] and its kin); finish
/// with [`run`](Self::run) or [`process`](Self::process) as an [`AgentBuilder`], whose
/// settings (filters, processors, `group_by`, decode-error policy, concurrency) apply before
/// the join. The body gets a [`JoinedStream`] of events of `(value, J)`. The agent's handle
/// still sends and asks with the stream's value type `V`.
pub struct JoinBuilder<K, V, J, T = V> {
    agent: AgentBuilder<K, V, T>,
    lookup: Lookup<K, V, J>,
}

impl<K, V, J, T> JoinBuilder<K, V, J, T>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    J: Send + 'static,
    T: Send + 'static,
{
    fn new(agent: AgentBuilder<K, V, T>, lookup: Lookup<K, V, J>) -> Self {
        JoinBuilder { agent, lookup }
    }

    /// Instances of the body run at once (see [`AgentBuilder::concurrency`]).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.agent = self.agent.concurrency(n);
        self
    }

    /// Whether the stream's partitions wait for the table to catch up with its source before
    /// their events flow (default `true`). It matters for a table kept from a topic
    /// ([`TableBuilder::from_topic`](crate::TableBuilder::from_topic)): when partition `p`
    /// of the stream is assigned to a worker, it stays paused (nothing read, nothing
    /// committed) until the table's agent has handled every record of the source topic's
    /// partition `p` up to that partition's end offset at the assignment. So an app started
    /// on a backlog joins each event with the table as its source held when the app (or the
    /// partition's new owner) started, not with whatever the table's agent had reached by
    /// then. Other partitions flow meanwhile; a wait that lasts (the source cannot be read)
    /// is logged every 10 s and `/ready` answers 503 naming the table partition and why.
    ///
    /// For a global table kept from a topic ([`join_global`](AgentBuilder::join_global)),
    /// the stream's partitions wait for every partition of the table's source topic that
    /// this worker reads (all of them on a single worker). With several workers, source
    /// partitions another worker reads reach this worker's copy through the table's
    /// changelog, which is recovered before any partition flows, but are not waited for up
    /// to their source's end: Kafka Streams reads a `GlobalKTable`'s whole source on every
    /// instance instead.
    ///
    /// A table an agent keeps (Faust style) needs no bootstrap: its partition recovers from
    /// its changelog before any event of its number flows, join or not.
    ///
    /// Kafka Streams bootstraps a `GlobalKTable` the same way; for a `KTable` it instead
    /// reads the table's and the stream's records in timestamp order, idling up to
    /// `max.task.idle.ms` when one side has nothing buffered. The bootstrap gives the same
    /// joins on a backlog whose table records were written before the events that need them,
    /// without timestamp synchronisation on every record. `false` lets the stream flow at
    /// once (the table as its agent left it when each event arrives): for a stream that must
    /// not wait behind a large table topic, accepting that early events miss table records.
    pub fn bootstrap(mut self, on: bool) -> Self {
        self.agent = self.agent.join_bootstrap(on);
        self
    }

    /// Makes the results of the [`process`](Self::process) body of type `U` (see
    /// [`AgentBuilder::yields`]): what a joined event becomes, such as an enriched record.
    pub fn yields<U: Send + 'static>(self) -> JoinBuilder<K, V, J, U> {
        JoinBuilder {
            agent: self.agent.yields(),
            lookup: self.lookup,
        }
    }

    /// Adds a sink for the results of a [`process`](Self::process) body.
    pub fn sink(mut self, sink: impl Into<Sink<T>>) -> Self {
        self.agent = self.agent.sink(sink);
        self
    }

    /// Registers the agent with a body that loops over its joined stream (see
    /// [`AgentBuilder::run`]).
    pub fn run<F, Fut>(self, body: F) -> Agent<K, V>
    where
        F: Fn(JoinedStream<K, V, J>) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: AgentResult,
    {
        let lookup = self.lookup;
        self.agent
            .run(move |events| body(JoinedStream::new(events, lookup.clone())))
    }

    /// Registers the agent with a body that turns its joined stream into results for the
    /// sinks and askers (see [`AgentBuilder::process`]): an event's offset commits only after
    /// its results are acknowledged.
    pub fn process<F, S>(self, body: F) -> Agent<K, V, T>
    where
        F: Fn(JoinedStream<K, V, J>) -> S + Send + Sync + 'static,
        S: Stream<Item = T> + Send + 'static,
        T: Serialize + Clone,
    {
        let lookup = self.lookup;
        self.agent
            .process(move |events| body(JoinedStream::new(events, lookup.clone())))
    }

    /// [`process`](Self::process) for results that may fail (see
    /// [`AgentBuilder::try_process`]).
    pub fn try_process<F, S, E>(self, body: F) -> Agent<K, V, T>
    where
        F: Fn(JoinedStream<K, V, J>) -> S + Send + Sync + 'static,
        S: Stream<Item = Result<T, E>> + Send + 'static,
        E: Into<BoxError>,
        T: Serialize + Clone,
    {
        let lookup = self.lookup;
        self.agent
            .try_process(move |events| body(JoinedStream::new(events, lookup.clone())))
    }
}
