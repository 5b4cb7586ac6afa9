//! Agent declarations: the builder, the handle users send to, sinks, and how an agent's
//! instances are made when the runtime starts.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use super::sink::Sink;
use super::{AgentSpec, JoinUse, Shared};
use crate::error::{AgentFailure, BoxError, Result};
use crate::offsets::Releases;
use crate::replies::{Current, Replies};
use crate::stream::{AgentStream, Delivery, Processor, Step};
use crate::table::{Table, TableSpec};
use crate::topic::{OnDecodeError, Topic};
use crate::window::WindowedTable;

/// What an agent body may return: nothing, or a `Result` whose error stops the agent (its
/// current event is then not committed). The error is kept as the source of
/// [`Error::AgentFailed`](crate::Error::AgentFailed) ([`AgentFailure::Returned`]).
pub trait AgentResult {
    /// The agent's outcome, its error boxed.
    fn into_result(self) -> Result<(), AgentFailure>;
}

impl AgentResult for () {
    fn into_result(self) -> Result<(), AgentFailure> {
        Ok(())
    }
}

impl<E: Into<BoxError>> AgentResult for Result<(), E> {
    fn into_result(self) -> Result<(), AgentFailure> {
        self.map_err(|e| AgentFailure::Returned(e.into()))
    }
}

/// A table an agent can declare that it updates ([`AgentBuilder::table`]): a [`Table`] or a
/// [`WindowedTable`] (so the agent may be declared before or after windowing). Sealed.
pub trait AgentTable: sealed::Sealed {
    /// The table's declaration (its name and partition count).
    fn declaration(&self) -> &TableSpec;
}

mod sealed {
    pub trait Sealed {}
}

impl<K, V> sealed::Sealed for Table<K, V> {}
impl<K, V> AgentTable for Table<K, V>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    fn declaration(&self) -> &TableSpec {
        self.spec()
    }
}

impl<K, V> sealed::Sealed for WindowedTable<K, V> {}
impl<K, V> AgentTable for WindowedTable<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn declaration(&self) -> &TableSpec {
        self.table_spec()
    }
}

impl<K, T, R> From<&Agent<K, T, R>> for Sink<T>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn from(agent: &Agent<K, T, R>) -> Self {
        Sink::from(&agent.topic)
    }
}

/// A registered agent: send it values through its topic (Faust's `agent.send` / `cast`), or,
/// for an agent declared with [`AgentBuilder::process`], ask it and get its results back as
/// replies (`ask`, `map`, `kvmap`, `join`). `R` is the type replies are read as: by default
/// the value type, which is what a `process` body yields (so `Agent<K, V>` names the handle
/// of either form; [`with_reply_type`](Self::with_reply_type) reads replies as another type).
pub struct Agent<K, V, R = V> {
    pub(super) name: String,
    pub(super) topic: Topic<K, V>,
    pub(super) replies: Replies,
    /// Whether its results answer requests (declared with `process`).
    pub(super) answers: bool,
    pub(super) reply_timeout: Duration,
    pub(super) _reply: PhantomData<fn() -> R>,
}

impl<K, V, R> Clone for Agent<K, V, R> {
    fn clone(&self) -> Self {
        Agent {
            name: self.name.clone(),
            topic: self.topic.clone(),
            replies: self.replies.clone(),
            answers: self.answers,
            reply_timeout: self.reply_timeout,
            _reply: PhantomData,
        }
    }
}

impl<K, V, R> fmt::Debug for Agent<K, V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("topic", &self.topic.spec.name)
            .field("answers", &self.answers)
            .finish()
    }
}

impl<K, V, R> Agent<K, V, R>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic the agent reads.
    pub fn topic(&self) -> &Topic<K, V> {
        &self.topic
    }

    /// Sends a keyed value to the agent.
    pub async fn send(&self, key: K, value: V) -> Result<()> {
        self.topic.send(key, value).await
    }

    /// Sends a value with no key to the agent, expecting no reply (Faust's
    /// `await agent.cast(value)`): even a [`process`](AgentBuilder::process) agent's result
    /// for it goes to its sinks only.
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("cast-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let orders = app.topic::<String, String>("orders");
    /// let (tx, mut shipped) = tokio::sync::mpsc::unbounded_channel();
    /// let ship = app.agent_builder("ship", &orders).run(move |mut orders| {
    ///     let tx = tx.clone();
    ///     async move {
    ///         while let Some(order) = orders.next().await {
    ///             let _ = tx.send(order.into_value());
    ///         }
    ///     }
    /// });
    /// app.start().await?;
    /// // Faust: await ship.cast("book")
    /// ship.cast("book".to_owned()).await?;
    /// assert_eq!(shipped.recv().await.as_deref(), Some("book"));
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn cast(&self, value: V) -> Result<()> {
        self.topic.send_value(value).await
    }
}

/// Makes an agent's instances, given the capacity of their channels (in batches).
/// Starts an agent's instances; called again when the worker restarts.
pub(crate) type Starter = Box<dyn FnMut(usize) -> StartedAgent + Send>;

/// One instance of an agent: where the consumer sends its records, what it released, and
/// its body, for the runtime to spawn.
pub(crate) struct Instance {
    pub sender: mpsc::Sender<Vec<Delivery>>,
    pub releases: Arc<Releases>,
    pub work: BoxFuture<'static, Result<(), AgentFailure>>,
}

/// An agent ready to run.
pub(crate) struct StartedAgent {
    pub name: String,
    pub topic: String,
    pub instances: Vec<Instance>,
    /// Set when the agent stops on its own (an error, a decode-error policy).
    pub stopped: Arc<AtomicBool>,
}

/// Configures an agent; finish with [`run`](Self::run) (a body that loops over its stream) or
/// [`process`](Self::process) (a body that maps its stream to results for the sinks).
///
/// ```
/// # fn main() -> streams::Result<()> {
/// use futures::StreamExt;
/// use streams::App;
/// let app = App::builder("demo-app").build()?;
/// let orders = app.topic::<String, serde_json::Value>("orders");
/// let by_country = app.topic::<String, serde_json::Value>("orders-seen");
/// app.agent_builder("count_orders", &orders)
///     .concurrency(4)
///     .group_by("country", |o: &serde_json::Value| o["country"].as_str().unwrap_or("?").to_owned())
///     .sink(&by_country)
///     .filter(|o| o["amount"].as_i64() > Some(0))
///     .process(|stream| stream.map(streams::Event::into_value));
/// assert_eq!(app.agents().len(), 2); // the group_by stage and the agent
/// # Ok(()) }
/// ```
pub struct AgentBuilder<K, V, T = V> {
    decls: Shared,
    name: String,
    topic: Topic<K, V>,
    concurrency: usize,
    sinks: Vec<Sink<T>>,
    steps: Vec<Step<V>>,
    on_decode_error: Option<OnDecodeError>,
    tables: Vec<String>,
    /// Tables the agent joins its stream with (checked at start).
    joins: Vec<JoinUse>,
    /// Sinks added before [`yields`](Self::yields) changed the result type: start refuses.
    lost_sinks: Vec<String>,
}

impl<K, V, T> AgentBuilder<K, V, T>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(decls: &Shared, name: &str, topic: &Topic<K, V>) -> Self {
        AgentBuilder {
            decls: decls.clone(),
            name: name.to_owned(),
            topic: topic.clone(),
            concurrency: 1,
            sinks: Vec::new(),
            steps: Vec::new(),
            on_decode_error: None,
            tables: Vec::new(),
            joins: Vec::new(),
            lost_sinks: Vec::new(),
        }
    }

    /// Declares that the agent updates `table` (a [`Table`] or a [`WindowedTable`]):
    /// start-up then checks that the topic the agent reads (after any
    /// [`group_by`](Self::group_by)) has the table's partition count, so that each event
    /// finds its key's table partition on the same worker (co-partitioning).
    pub fn table(mut self, table: &impl AgentTable) -> Self {
        self.tables.push(table.declaration().name().to_owned());
        self
    }

    /// Records that the agent joins its stream with `table` (`global`: through a key
    /// extractor), for the checks at start.
    pub(super) fn joins_with(mut self, table: &TableSpec, global: bool) -> Self {
        self.joins.push(JoinUse {
            table: table.name().to_owned(),
            global,
            bootstrap: true,
        });
        self
    }

    /// Sets whether the stream's partitions wait for the last joined table to catch up with
    /// its source (see `JoinBuilder::bootstrap`).
    pub(super) fn join_bootstrap(mut self, on: bool) -> Self {
        if let Some(join) = self.joins.last_mut() {
            join.bootstrap = on;
        }
        self
    }

    /// Instances of the body run at once, each over its share of the events (default 1).
    /// With more than one, events of a partition may be handled out of order, as in Faust.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Adds a sink for the results of a [`process`](Self::process) body.
    pub fn sink(mut self, sink: impl Into<Sink<T>>) -> Self {
        self.sinks.push(sink.into());
        self
    }

    /// Adds a processor applied to each value before the body sees it.
    pub fn processor(mut self, f: impl Fn(V) -> V + Send + Sync + 'static) -> Self {
        self.steps.push(Step::Map(Arc::new(f)));
        self
    }

    /// Adds an asynchronous processor (Faust's `async def` processors), run in turn with the
    /// others on each value.
    pub fn async_processor<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(V) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.steps
            .push(Step::Async(Arc::new(move |v| f(v).boxed())));
        self
    }

    /// Keeps only the values for which `keep` is true, before anything that follows: a
    /// [`group_by`](Self::group_by) after it re-partitions only what passed, as the talk's
    /// `purchases.filter(...).group_by(...)`.
    pub fn filter(mut self, keep: impl Fn(&V) -> bool + Send + Sync + 'static) -> Self {
        self.steps.push(Step::Filter(Arc::new(keep)));
        self
    }

    /// Overrides the topic's [`OnDecodeError`] policy for this agent.
    pub fn on_decode_error(mut self, policy: OnDecodeError) -> Self {
        self.on_decode_error = Some(policy);
        self
    }

    /// Re-partitions the stream by a new key through the internal topic
    /// `<app>-<agent>-<name>-repartition`, created at start: a stage forwards each event
    /// there keyed by `key`, and this agent reads that topic, so all events with one key go
    /// to one partition (and one worker). Faust's `stream.group_by(key, name=...)`.
    pub fn group_by<K2>(
        self,
        name: &str,
        key: impl Fn(&V) -> K2 + Send + Sync + 'static,
    ) -> AgentBuilder<K2, V, T>
    where
        K2: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Clone,
    {
        let topic_name = format!("{}-{}-{}-repartition", self.decls.id, self.name, name);
        let source_partitions = self.topic.spec.partitions;
        let mut repartition = self.decls.topic::<K2, V>(&topic_name);
        if let Some(n) = source_partitions {
            repartition = repartition.partitions(n);
        }
        repartition = repartition.value_serializer(
            self.topic
                .spec
                .value_ser()
                .map(|s| s.spec().to_owned())
                .unwrap_or_else(|_| "json".into())
                .as_str(),
        );
        let repartition = repartition.redeclare(|s| s.internal = true);
        let stage = format!("{}.group_by({name})", self.name);
        let key = Arc::new(key);
        self.forward_to(stage, repartition, move |stream, out| {
            let key = key.clone();
            async move {
                let mut events = stream;
                while let Some(event) = events.next().await {
                    out.send(key(&event.value), &event.value).await?;
                }
                Ok(())
            }
        })
    }

    /// Forwards every event (key kept) to `topic` and reads on from there (Faust's
    /// `stream.through(topic)`): a checkpoint other apps can read, and a place to change
    /// partitioning or codecs.
    pub fn through(self, topic: &Topic<K, V>) -> AgentBuilder<K, V, T>
    where
        K: Clone,
        V: Clone,
    {
        let stage = format!("{}.through({})", self.name, topic.name());
        self.forward_to(stage, topic.clone(), |stream, out| async move {
            let mut events = stream;
            while let Some(event) = events.next().await {
                match &event.key {
                    Some(k) => out.send(k, &event.value).await?,
                    None => out.send_value(&event.value).await?,
                }
            }
            Ok(())
        })
    }

    /// Registers the agent `stage`, which reads this builder's topic (with its processors,
    /// filters and decode policy) and whose body `forward` sends the events on to `out`; returns a builder
    /// that reads `out` instead, with the rest of this one's settings.
    fn forward_to<K2, F, Fut>(
        self,
        stage: String,
        out: Topic<K2, V>,
        forward: F,
    ) -> AgentBuilder<K2, V, T>
    where
        K2: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(AgentStream<K, V>, Topic<K2, V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let to = out.clone();
        let mut stage = AgentBuilder::<K, V, ()>::new(&self.decls, &stage, &self.topic);
        stage.on_decode_error = self.on_decode_error.clone();
        stage.steps = self.steps;
        stage.run(move |stream| forward(stream, to.clone()));
        AgentBuilder {
            decls: self.decls,
            name: self.name,
            topic: out,
            concurrency: self.concurrency,
            sinks: self.sinks,
            steps: Vec::new(),
            on_decode_error: self.on_decode_error,
            tables: self.tables,
            joins: self.joins,
            lost_sinks: self.lost_sinks,
        }
    }

    /// Makes the results of the [`process`](Self::process) body (and so the agent's replies)
    /// of type `U` instead of the value type: an agent asked with orders that answers with
    /// receipts. Call it before adding [`sink`](Self::sink)s, which take results: sinks added
    /// before it would be lost, so [`App::start`](crate::App::start) refuses them
    /// ([`Error::SinksBeforeYields`](crate::Error::SinksBeforeYields)).
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("yields-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let words = app.topic::<String, String>("words");
    /// let lengths = app.topic::<String, usize>("lengths");
    /// // Faust: async for word in stream: yield len(word)
    /// let length = app
    ///     .agent_builder("length", &words)
    ///     .yields::<usize>()
    ///     .sink(&lengths)
    ///     .process(|stream| stream.map(|w| w.len()));
    /// app.start().await?;
    /// assert_eq!(length.ask("four".to_owned()).await?, 4);
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn yields<U: Send + 'static>(self) -> AgentBuilder<K, V, U> {
        let mut lost_sinks = self.lost_sinks;
        lost_sinks.extend(self.sinks.into_iter().map(|s| s.name));
        AgentBuilder {
            decls: self.decls,
            name: self.name,
            topic: self.topic,
            concurrency: self.concurrency,
            sinks: Vec::new(),
            steps: self.steps,
            on_decode_error: self.on_decode_error,
            tables: self.tables,
            joins: self.joins,
            lost_sinks,
        }
    }

    /// Adds processors, in order (what `app.stream(topic, processors)` takes).
    pub(crate) fn processors(mut self, processors: Vec<Processor<V>>) -> Self {
        self.steps.extend(processors.into_iter().map(Step::Map));
        self
    }

    /// Registers the agent with a body that loops over its stream (Faust's
    /// `async for value in stream`). The body is called once per concurrency instance, so
    /// clone what it captures inside it (or use [`run_once`](Self::run_once)).
    pub fn run<F, Fut>(self, body: F) -> Agent<K, V>
    where
        F: Fn(AgentStream<K, V>) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: AgentResult,
    {
        let body = Arc::new(body);
        self.register(false, move |stream, _sinks| {
            body(stream).map(AgentResult::into_result)
        })
    }

    /// Registers the agent with a body that turns its stream into results (Faust's agents
    /// that `yield`): each result goes to every [`sink`](Self::sink) and, when the event the
    /// instance took most recently was a request ([`Agent::ask`]), back to the asker as its
    /// reply (JSON), before the instance reads on: the event commits only after both are
    /// acknowledged. The handle asks with the result type `T`.
    pub fn process<F, S>(self, body: F) -> Agent<K, V, T>
    where
        F: Fn(AgentStream<K, V>) -> S + Send + Sync + 'static,
        S: Stream<Item = T> + Send + 'static,
        T: Serialize + Clone,
    {
        self.try_process(move |stream| body(stream).map(Ok::<T, std::convert::Infallible>))
    }

    /// [`process`](Self::process) for a body whose results may fail: an error stops the
    /// agent as a `run` body's error does (its current event is not committed), and, when
    /// that event was a request, its asker gets [`Error::AgentFailedRequest`](crate::Error::AgentFailedRequest)
    /// at once. A panic does the same in either form.
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("try-process-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let numbers = app.topic::<String, i64>("numbers");
    /// // Faust: async for n in stream:
    /// //            if n < 0: raise ValueError(f"{n} is negative")
    /// //            yield n
    /// let checked = app.agent_builder("checked", &numbers).try_process(|stream| {
    ///     stream.map(|n| if *n < 0 { Err(format!("{} is negative", *n)) } else { Ok(*n) })
    /// });
    /// app.start().await?;
    /// assert_eq!(checked.ask(5).await?, 5);
    /// let err = checked.ask(-1).await.unwrap_err();
    /// assert!(matches!(err, streams::Error::AgentFailedRequest { .. }), "{err}");
    /// assert!(app.shutdown().await.is_err()); // the worker stopped on the failure
    /// # Ok(()) }
    /// ```
    pub fn try_process<F, S, E>(self, body: F) -> Agent<K, V, T>
    where
        F: Fn(AgentStream<K, V>) -> S + Send + Sync + 'static,
        S: Stream<Item = Result<T, E>> + Send + 'static,
        E: Into<BoxError>,
        T: Serialize + Clone,
    {
        let body = Arc::new(body);
        let outbox = self.topic.outbox().clone();
        let agent: Arc<str> = self.name.as_str().into();
        self.register(true, move |mut stream, sinks: Arc<[Sink<T>]>| {
            let current = Current::default();
            stream.track_requests(current.clone());
            let results = body(stream).map(|r| r.map_err(|e| AgentFailure::Returned(e.into())));
            super::respond::respond(results, sinks, current, outbox.clone(), agent.clone())
        })
    }

    /// Registers the agent with a body that runs once (so it may move what it captures);
    /// concurrency is 1.
    pub fn run_once<F, Fut>(mut self, body: F) -> Agent<K, V>
    where
        F: FnOnce(AgentStream<K, V>) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: AgentResult,
    {
        self.concurrency = 1;
        let mut body = Some(body);
        self.register(false, move |stream, _sinks| {
            let work = body.take().map(|body| body(stream));
            async move {
                match work {
                    Some(work) => work.await.into_result(),
                    None => Err(AgentFailure::CannotRestart),
                }
            }
        })
    }

    /// Registers the agent; `answers`: its results reply to requests.
    fn register<R, B, Fut>(self, answers: bool, mut body: B) -> Agent<K, V, R>
    where
        B: FnMut(AgentStream<K, V>, Arc<[Sink<T>]>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), AgentFailure>> + Send + 'static,
    {
        let AgentBuilder {
            decls,
            name,
            topic,
            concurrency,
            sinks,
            steps,
            on_decode_error,
            tables,
            joins,
            lost_sinks,
        } = self;
        let sink_names = sinks.iter().map(|s| s.name.clone()).collect();
        let sinks: Arc<[Sink<T>]> = sinks.into();
        let steps: Arc<[Step<V>]> = steps.into();
        let handle = Agent {
            name: name.clone(),
            topic: topic.clone(),
            replies: decls.replies.clone(),
            answers,
            reply_timeout: decls.settings.reply_timeout,
            _reply: PhantomData,
        };
        let agent_name = name.clone();
        let starter = move |capacity: usize| {
            let stopped = Arc::new(AtomicBool::new(false));
            let policy = on_decode_error
                .clone()
                .unwrap_or_else(|| topic.spec.on_decode_error.clone());
            let instances = (0..concurrency)
                .map(|_| {
                    let (sender, rx) = mpsc::channel(capacity);
                    let releases = Arc::new(Releases::default());
                    let stream = AgentStream::new(
                        rx,
                        topic.clone(),
                        policy.clone(),
                        steps.clone(),
                        releases.clone(),
                        agent_name.as_str().into(),
                        stopped.clone(),
                    );
                    Instance {
                        sender,
                        releases,
                        work: body(stream, sinks.clone()).boxed(),
                    }
                })
                .collect();
            StartedAgent {
                name: agent_name.clone(),
                topic: topic.name().to_owned(),
                instances,
                stopped,
            }
        };
        decls.add_agent(AgentSpec {
            name,
            topic: handle.topic.name().to_owned(),
            concurrency,
            sinks: sink_names,
            tables,
            joins,
            lost_sinks,
            starter: Some(Box::new(starter)),
        });
        handle
    }
}
