//! Agents: async functions over a stream of a topic's values, run with concurrency N, their
//! results going to sinks; and the done-tracking that ties events to commits.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use kafka_client::consumer::ConsumerRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::{lock, App};
use crate::error::Result;
use crate::offsets::AckToken;
use crate::stream::AgentStream;
use crate::topic::{OnDecodeError, Topic};

/// Tokens of the events an agent instance is handling right now: acked when it asks for the
/// next event, held by whatever it sends meanwhile.
pub(crate) type Slot = Arc<Mutex<Vec<AckToken>>>;

tokio::task_local! {
    static CURRENT: Slot;
}

/// Tokens of the event(s) the calling agent is handling (none outside agents).
pub(crate) fn current_acks() -> Vec<AckToken> {
    CURRENT
        .try_with(|slot| lock(slot).clone())
        .unwrap_or_default()
}

/// A consumed record on its way to an agent. Dropped unprocessed (agent gone, shutdown cut
/// short) it poisons its token, so the offset is not committed and is read again later.
pub(crate) struct Delivery {
    pub record: ConsumerRecord,
    pub ack: Option<AckToken>,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(ack) = self.ack.take() {
            ack.poison();
        }
    }
}

/// What an agent body may return: nothing, or a `Result` whose error stops the agent (its
/// current event is then not committed).
pub trait AgentResult {
    fn into_result(self) -> Result<(), String>;
}

impl AgentResult for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> AgentResult for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// Processors run on each value before the agent sees it (Faust's `processors=[...]`).
pub type Processor<V> = Arc<dyn Fn(V) -> V + Send + Sync>;

/// Where an agent's results go: a topic, another agent, or a function.
pub struct Sink<T> {
    name: String,
    send: Arc<dyn Fn(T) -> BoxFuture<'static, Result<()>> + Send + Sync>,
}

impl<T> Clone for Sink<T> {
    fn clone(&self) -> Self {
        Sink {
            name: self.name.clone(),
            send: self.send.clone(),
        }
    }
}

impl<T: Send + 'static> Sink<T> {
    /// A function called with each result.
    pub fn func(name: &str, f: impl Fn(T) + Send + Sync + 'static) -> Self {
        Sink {
            name: name.to_owned(),
            send: Arc::new(move |v| {
                f(v);
                futures::future::ready(Ok(())).boxed()
            }),
        }
    }
}

impl<K, T> From<&Topic<K, T>> for Sink<T>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn from(topic: &Topic<K, T>) -> Self {
        let topic = topic.clone();
        Sink {
            name: topic.name().to_owned(),
            send: Arc::new(move |v| {
                let topic = topic.clone();
                async move { topic.send_value(v).await }.boxed()
            }),
        }
    }
}

impl<K, T> From<&Agent<K, T>> for Sink<T>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn from(agent: &Agent<K, T>) -> Self {
        Sink::from(&agent.topic)
    }
}

/// A registered agent: send it values through its topic (Faust's `agent.send` / `cast`).
pub struct Agent<K, V> {
    name: String,
    topic: Topic<K, V>,
}

impl<K, V> Clone for Agent<K, V> {
    fn clone(&self) -> Self {
        Agent {
            name: self.name.clone(),
            topic: self.topic.clone(),
        }
    }
}

impl<K, V> fmt::Debug for Agent<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("topic", &self.topic.spec.name)
            .finish()
    }
}

impl<K, V> Agent<K, V>
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

    /// Sends a value with no key to the agent.
    pub async fn cast(&self, value: V) -> Result<()> {
        self.topic.send_value(value).await
    }
}

type Starter = Box<dyn FnOnce(&App) -> Started + Send>;

/// An agent as registered, until the app starts it.
pub(crate) struct AgentSpec {
    pub name: String,
    pub topic: String,
    pub concurrency: usize,
    pub sinks: Vec<String>,
    starter: Option<Starter>,
}

/// A running agent: where the consumer sends its records, and its instance tasks.
pub(crate) struct Started {
    pub name: String,
    pub topic: String,
    pub senders: Vec<mpsc::Sender<Delivery>>,
    pub tasks: Vec<JoinHandle<()>>,
    pub stopped: Arc<AtomicBool>,
}

/// Starts every registered agent (once per app).
pub(crate) fn start_all(app: &App) -> Result<Vec<Started>> {
    let starters: Vec<_> = lock(&app.shared.agents)
        .iter_mut()
        .filter_map(|a| a.starter.take())
        .collect();
    Ok(starters.into_iter().map(|start| start(app)).collect())
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
///     .process(|stream| stream.filter(|o| futures::future::ready(o["amount"].as_i64() > Some(0))));
/// assert_eq!(app.agents().len(), 2); // the group_by stage and the agent
/// # Ok(()) }
/// ```
pub struct AgentBuilder<K, V, T = V> {
    app: App,
    name: String,
    topic: Topic<K, V>,
    concurrency: usize,
    sinks: Vec<Sink<T>>,
    processors: Vec<Processor<V>>,
    on_decode_error: Option<OnDecodeError>,
}

impl<K, V, T> AgentBuilder<K, V, T>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(app: &App, name: &str, topic: &Topic<K, V>) -> Self {
        AgentBuilder {
            app: app.clone(),
            name: name.to_owned(),
            topic: topic.clone(),
            concurrency: 1,
            sinks: Vec::new(),
            processors: Vec::new(),
            on_decode_error: None,
        }
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
        self.processors.push(Arc::new(f));
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
        let topic_name = format!("{}-{}-{}-repartition", self.app.id(), self.name, name);
        let source_partitions = self.topic.spec.partitions;
        let mut repartition = self.app.topic::<K2, V>(&topic_name);
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
        let mut spec = (*repartition.spec).clone();
        spec.internal = true;
        repartition.spec = self.app.register_topic(spec);
        let stage = format!("{}.group_by({name})", self.name);
        let key = Arc::new(key);
        self.forward_to(stage, repartition, move |stream, out| {
            let key = key.clone();
            async move {
                let mut events = stream.events();
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
            let mut events = stream.events();
            while let Some(event) = events.next().await {
                match &event.key {
                    Some(k) => out.send(k, &event.value).await?,
                    None => out.send_value(&event.value).await?,
                }
            }
            Ok(())
        })
    }

    /// Registers the agent `stage`, which reads this builder's topic (with its processors and
    /// decode policy) and whose body `forward` sends the events on to `out`; returns a builder
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
        AgentBuilder::<K, V, ()>::new(&self.app, &stage, &self.topic)
            .on_decode_error_opt(self.on_decode_error.clone())
            .processors(self.processors)
            .run(move |stream| forward(stream, to.clone()));
        AgentBuilder {
            app: self.app,
            name: self.name,
            topic: out,
            concurrency: self.concurrency,
            sinks: self.sinks,
            processors: Vec::new(),
            on_decode_error: self.on_decode_error,
        }
    }

    fn on_decode_error_opt(mut self, policy: Option<OnDecodeError>) -> Self {
        self.on_decode_error = policy;
        self
    }

    fn processors(mut self, processors: Vec<Processor<V>>) -> Self {
        self.processors = processors;
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
        self.register(move |stream, _sinks| body(stream).map(AgentResult::into_result))
    }

    /// Registers the agent with a body that turns its stream into results; each result goes
    /// to every [`sink`](Self::sink) (Faust's agents that `yield`).
    pub fn process<F, S>(self, body: F) -> Agent<K, V>
    where
        F: Fn(AgentStream<K, V>) -> S + Send + Sync + 'static,
        S: Stream<Item = T> + Send + 'static,
        T: Clone,
    {
        let body = Arc::new(body);
        self.register(move |stream, sinks: Arc<[Sink<T>]>| {
            let results = body(stream);
            async move {
                let mut results = std::pin::pin!(results);
                while let Some(result) = results.next().await {
                    for sink in sinks.iter() {
                        (sink.send)(result.clone())
                            .await
                            .map_err(|e| format!("sink {}: {e}", sink.name))?;
                    }
                }
                Ok(())
            }
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
        self.register(move |stream, _sinks| {
            let work = body.take().map(|body| body(stream));
            async move {
                match work {
                    Some(work) => work.await.into_result(),
                    None => Err("a run_once body cannot run twice".to_owned()),
                }
            }
        })
    }

    fn register<B, Fut>(self, mut body: B) -> Agent<K, V>
    where
        B: FnMut(AgentStream<K, V>, Arc<[Sink<T>]>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let AgentBuilder {
            app,
            name,
            topic,
            concurrency,
            sinks,
            processors,
            on_decode_error,
        } = self;
        let sink_names = sinks.iter().map(|s| s.name.clone()).collect();
        let sinks: Arc<[Sink<T>]> = sinks.into();
        let processors: Arc<[Processor<V>]> = processors.into();
        let handle = Agent {
            name: name.clone(),
            topic: topic.clone(),
        };
        let agent_name = name.clone();
        let starter = move |app: &App| {
            let stopped = Arc::new(AtomicBool::new(false));
            let capacity = app.settings().stream_buffer_maxsize;
            let policy = on_decode_error.unwrap_or_else(|| topic.spec.on_decode_error.clone());
            let mut senders = Vec::new();
            let mut tasks = Vec::new();
            for instance in 0..concurrency {
                let (tx, rx) = mpsc::channel(capacity);
                senders.push(tx);
                let slot = Slot::default();
                let stream = AgentStream::new(
                    rx,
                    topic.clone(),
                    policy.clone(),
                    processors.clone(),
                    slot.clone(),
                    agent_name.as_str().into(),
                    stopped.clone(),
                );
                let work = body(stream, sinks.clone());
                let name = agent_name.clone();
                let stopped = stopped.clone();
                tasks.push(tokio::spawn(CURRENT.scope(slot.clone(), async move {
                    // Poisons the current events if the body panics or is aborted.
                    let guard = PoisonOnDrop(Some(slot));
                    let outcome = work.await;
                    let slot = guard.disarm();
                    match outcome {
                        Ok(()) => {
                            lock(&slot).clear();
                            tracing::debug!(agent = %name, instance, "agent finished");
                        }
                        Err(e) => {
                            lock(&slot).drain(..).for_each(|t| t.poison());
                            stopped.store(true, Ordering::Release);
                            tracing::error!(agent = %name, instance, error = %e,
                                "agent stopped with an error; its current event will not be committed");
                        }
                    }
                })));
            }
            Started {
                name: agent_name,
                topic: topic.name().to_owned(),
                senders,
                tasks,
                stopped,
            }
        };
        lock(&app.shared.agents).push(AgentSpec {
            name,
            topic: handle.topic.name().to_owned(),
            concurrency,
            sinks: sink_names,
            starter: Some(Box::new(starter)),
        });
        handle
    }
}

struct PoisonOnDrop(Option<Slot>);

impl PoisonOnDrop {
    fn disarm(mut self) -> Slot {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for PoisonOnDrop {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            lock(&slot).drain(..).for_each(|t| t.poison());
        }
    }
}

impl App {
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
        AgentBuilder::<K, V, V>::new(self, &name, topic).run_once(body)
    }

    /// Starts configuring an agent named `name` over `topic`.
    pub fn agent_builder<K, V>(&self, name: &str, topic: &Topic<K, V>) -> AgentBuilder<K, V, V>
    where
        K: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        AgentBuilder::new(self, name, topic)
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
        AgentBuilder::new(self, &name, topic).processors(processors)
    }
}
