//! Asking an agent (Faust's `agent.ask`, `map`, `kvmap`, `join`): a request is a record of the
//! agent's topic with reply headers; the agent's result for it comes back on this worker's
//! reply topic.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::agent::Agent;
use crate::error::{Error, Result};
use crate::replies::Reply;

/// Requests [`Agent::map`], [`Agent::kvmap`] and [`Agent::join`] keep in flight at once.
pub(crate) const MAX_IN_FLIGHT: usize = 256;

impl<K, V, R> Agent<K, V, R>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    R: DeserializeOwned + Send + 'static,
{
    /// Sends `value` to the agent and waits for its reply: the result its body yields for
    /// it, from whichever worker holds the partition (Faust's `await agent.ask(value)`).
    /// Waits at most the app's `reply_timeout` ([`Error::ReplyTimeout`]); the agent failing on
    /// the request gives [`Error::AgentFailedRequest`]; a reply that is not an `R`,
    /// [`Error::ReplyDecode`]. An agent declared with `run` has no results:
    /// [`Error::AgentCannotReply`]; before the app connected, [`Error::NotStarted`].
    ///
    /// The first ask creates this worker's reply topic (`<app id>-reply-<random>`, one
    /// partition, deleted by [`App::shutdown`](crate::App::shutdown)). Requests are sent
    /// outside exactly-once transactions, so an agent may ask another and wait. A request
    /// goes to the topic the agent reads: after a `group_by`, its repartition topic (the
    /// processors and filters declared before the `group_by` do not see it).
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("ask-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let numbers = app.topic::<String, i64>("numbers");
    /// // Faust: @app.agent(numbers)
    /// //        async def double(stream): async for n in stream: yield n * 2
    /// let double = app
    ///     .agent_builder("double", &numbers)
    ///     .process(|stream| stream.map(|n| *n * 2));
    /// app.start().await?;
    /// // Faust: await double.ask(21)
    /// assert_eq!(double.ask(21).await?, 42);
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ask(&self, value: impl Borrow<V>) -> Result<R> {
        self.request(None, value.borrow(), self.reply_timeout).await
    }

    /// [`ask`](Self::ask) with a key: the key picks the partition, so the worker that owns it
    /// answers (Faust's `await agent.ask(value, key=key)`).
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("ask-keyed-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let greetings = app.topic::<String, String>("greetings");
    /// // Faust: async def greet(stream):
    /// //            async for key, name in stream.items(): yield f"{key}, {name}"
    /// let greet = app.agent_builder("greet", &greetings).process(|stream| {
    ///     stream.map(|e| format!("{}, {}", e.key.clone().unwrap_or_default(), e.value))
    /// });
    /// app.start().await?;
    /// // Faust: await greet.ask("Ada", key="Hello")
    /// assert_eq!(greet.ask_keyed("Hello".to_owned(), "Ada".to_owned()).await?, "Hello, Ada");
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ask_keyed(&self, key: impl Borrow<K>, value: impl Borrow<V>) -> Result<R> {
        self.request(Some(key.borrow()), value.borrow(), self.reply_timeout)
            .await
    }

    /// [`ask`](Self::ask) waiting at most `timeout` instead of the app's `reply_timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("ask-timeout-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let numbers = app.topic::<String, i64>("numbers");
    /// // Yields only for even numbers: an odd one is never answered.
    /// let evens = app
    ///     .agent_builder("evens", &numbers)
    ///     .process(|stream| stream.map(|e| e.into_value()).filter(|n| std::future::ready(n % 2 == 0)));
    /// app.start().await?;
    /// // Faust: await evens.ask(3) raises asyncio.TimeoutError after reply_expires... here:
    /// let err = evens.ask_with_timeout(3, Duration::from_millis(300)).await.unwrap_err();
    /// assert!(matches!(err, streams::Error::ReplyTimeout { .. }));
    /// assert_eq!(evens.ask(4).await?, 4);
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ask_with_timeout(&self, value: impl Borrow<V>, timeout: Duration) -> Result<R> {
        self.request(None, value.borrow(), timeout).await
    }

    /// Asks for every value at once (up to 256 in flight) and yields the
    /// replies as they come, in no particular order (Faust's `async for reply in
    /// agent.map(values)`). An error (a timeout, a failure) is one item; the others go on.
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("map-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let numbers = app.topic::<String, i64>("numbers");
    /// let square = app.agent_builder("square", &numbers).process(|s| s.map(|n| *n * *n));
    /// app.start().await?;
    /// // Faust: async for sq in square.map([1, 2, 3]): ...
    /// let mut squares: Vec<i64> = square.map(vec![1, 2, 3]).map(|r| r.unwrap()).collect().await;
    /// squares.sort();
    /// assert_eq!(squares, [1, 4, 9]);
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn map<I>(&self, values: I) -> impl Stream<Item = Result<R>> + Send + 'static
    where
        I: IntoIterator<Item = V>,
        I::IntoIter: Send + 'static,
    {
        let agent = self.clone();
        futures::stream::iter(values)
            .map(move |value| {
                let agent = agent.clone();
                async move { agent.ask(value).await }
            })
            .buffer_unordered(MAX_IN_FLIGHT)
    }

    /// [`map`](Self::map) over `(key, value)` pairs, each sent with its key (so to the worker
    /// owning its partition); yields each key with its reply, as they come (Faust's
    /// `agent.kvmap({key: value})`).
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("kvmap-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let words = app.topic::<String, String>("words");
    /// let upper = app.agent_builder("upper", &words).process(|s| s.map(|w| w.to_uppercase()));
    /// app.start().await?;
    /// // Faust: async for reply in upper.kvmap({"a": "ant", "b": "bee"}): ...
    /// let pairs = vec![("a".to_owned(), "ant".to_owned()), ("b".to_owned(), "bee".to_owned())];
    /// let mut replies: Vec<(String, String)> = upper
    ///     .kvmap(pairs)
    ///     .map(|(key, reply)| (key, reply.unwrap()))
    ///     .collect()
    ///     .await;
    /// replies.sort();
    /// assert_eq!(replies, [("a".to_owned(), "ANT".to_owned()), ("b".to_owned(), "BEE".to_owned())]);
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn kvmap<I>(&self, pairs: I) -> impl Stream<Item = (K, Result<R>)> + Send + 'static
    where
        I: IntoIterator<Item = (K, V)>,
        I::IntoIter: Send + 'static,
    {
        let agent = self.clone();
        futures::stream::iter(pairs)
            .map(move |(key, value)| {
                let agent = agent.clone();
                async move {
                    let reply = agent.ask_keyed(&key, value).await;
                    (key, reply)
                }
            })
            .buffer_unordered(MAX_IN_FLIGHT)
    }

    /// Asks for every value at once (up to 256 in flight) and returns the
    /// replies in the order of `values`, or the first error in that order (Faust's
    /// `await agent.join(values)`).
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("join-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let numbers = app.topic::<String, i64>("numbers");
    /// let negate = app.agent_builder("negate", &numbers).process(|s| s.map(|n| -*n));
    /// app.start().await?;
    /// // Faust: await negate.join([1, 2, 3])
    /// assert_eq!(negate.join(vec![1, 2, 3]).await?, [-1, -2, -3]);
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn join<I>(&self, values: I) -> Result<Vec<R>>
    where
        I: IntoIterator<Item = V>,
        I::IntoIter: Send,
    {
        futures::stream::iter(values)
            .map(|value| self.ask(value))
            .buffered(MAX_IN_FLIGHT)
            .try_collect()
            .await
    }

    /// The same agent, its replies read as `R2` (a type with a subset of the result's
    /// fields, say, or `serde_json::Value`).
    ///
    /// ```
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = testkit::MockCluster::builder().build().await?;
    /// # let app = streams::App::builder("reply-type-demo")
    /// #     .broker(&format!("kafka://{}", cluster.bootstrap()))
    /// #     .build()?;
    /// let numbers = app.topic::<String, i64>("numbers");
    /// let double = app.agent_builder("double", &numbers).process(|s| s.map(|n| *n * 2));
    /// app.start().await?;
    /// let as_json = double.with_reply_type::<serde_json::Value>();
    /// assert_eq!(as_json.ask(2).await?, serde_json::json!(4));
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn with_reply_type<R2>(&self) -> Agent<K, V, R2> {
        Agent {
            name: self.name.clone(),
            topic: self.topic.clone(),
            replies: self.replies.clone(),
            answers: self.answers,
            reply_timeout: self.reply_timeout,
            _reply: PhantomData,
        }
    }

    /// Sends one request and waits for its reply.
    async fn request(&self, key: Option<&K>, value: &V, timeout: Duration) -> Result<R> {
        if !self.answers {
            return Err(Error::AgentCannotReply {
                agent: self.name.clone(),
            });
        }
        let (to, mut waiter) = self.replies.request().await?;
        let record = to.mark(self.topic.record(key, value)?);
        self.topic
            .outbox()
            .send_outside_transactions(record)
            .await?;
        let reply = match tokio::time::timeout(timeout, &mut waiter.reply).await {
            Err(_) => {
                return Err(Error::ReplyTimeout {
                    agent: self.name.clone(),
                    timeout,
                })
            }
            // The app shut down: its reply reader is gone.
            Ok(Err(_)) => return Err(Error::WorkerStopped),
            Ok(Ok(reply)) => reply,
        };
        match reply {
            Reply::Value(json) => serde_json::from_slice(json.as_deref().unwrap_or_default())
                .map_err(|source| Error::ReplyDecode {
                    agent: self.name.clone(),
                    source,
                }),
            Reply::Failed(reason) => Err(Error::AgentFailedRequest {
                agent: self.name.clone(),
                reason,
            }),
        }
    }
}
