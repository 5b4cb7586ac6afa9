//! In-memory channels (Faust's `app.channel()`): a bounded queue of values that agents send
//! into (as a [`Sink`]) and that channel agents read as a stream. Nothing in it is durable.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, Stream};
use tokio::sync::{watch, Notify, Semaphore};

use super::agent::AgentResult;
use super::sink::Sink;
use super::Shared;
use crate::error::{AgentFailure, Error, Result};

/// The queue behind a channel and its clones.
struct Queue<T> {
    name: String,
    capacity: usize,
    items: Mutex<VecDeque<T>>,
    /// Free places: a send takes one, a receive gives it back. Closed with the channel.
    space: Semaphore,
    /// Signalled when a value comes in.
    ready: Notify,
    closed: AtomicBool,
}

impl<T> Queue<T> {
    fn items(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pop(&self) -> Option<T> {
        let value = self.items().pop_front();
        if value.is_some() {
            self.space.add_permits(1);
        }
        value
    }
}

/// Closes a channel when the app stops (kept by the declarations for every channel).
pub(crate) trait Closer: Send + Sync {
    fn close(&self);
}

impl<T: Send> Closer for Queue<T> {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.space.close();
        self.ready.notify_waiters();
    }
}

/// An in-memory channel of `T` values (Faust's `app.channel()`), made by
/// [`App::channel`](crate::App::channel): agents send into it ([`send`](Self::send), or as a
/// sink: `agent_builder(..).sink(&channel)`), and channel agents
/// ([`App::channel_agent`](crate::App::channel_agent)) read it as a stream, each value going
/// to one of their instances, in the order sent. Cheap to clone; every clone is the same
/// channel.
///
/// **Not durable.** Values live only in this process's memory: those not yet read are lost
/// when the app stops, crashes or restarts, as in Faust. A topic event whose agent sent a
/// value into a channel counts as done (and is committed) once the channel *accepted* the
/// value, not once a channel agent handled it. Use a topic when values must survive.
///
/// The channel holds `capacity` values (the app's `stream_buffer_maxsize` unless given): a
/// send into a full channel waits for room (backpressure on the sender). Values sent before
/// the app starts wait for it. Once the app stopped, the channel is closed: a send fails with
/// [`Error::ChannelClosed`], also a send waiting for room.
///
/// ```
/// # fn main() -> streams::Result<()> {
/// use futures::StreamExt;
/// let app = streams::App::builder("shop").build()?;
/// let orders = app.topic::<String, i64>("orders");
/// let big = app.channel::<i64>("big-orders");
/// app.agent_builder("find-big", &orders)
///     .sink(&big)
///     .process(|stream| stream.map(|e| e.value).filter(|v| futures::future::ready(*v > 100)));
/// app.channel_agent("alert", &big).run(|mut amounts| async move {
///     while let Some(amount) = amounts.next().await {
///         println!("big order: {amount}");
///     }
/// });
/// # Ok(()) }
/// ```
pub struct Channel<T> {
    queue: Arc<Queue<T>>,
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel {
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.queue.name)
            .field("capacity", &self.queue.capacity)
            .field("len", &self.queue.items().len())
            .finish()
    }
}

impl<T: Send + 'static> Channel<T> {
    /// A channel of `capacity` values (at least 1), registered to be closed when the app
    /// stops.
    pub(crate) fn new(decls: &Shared, name: &str, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let queue = Arc::new(Queue {
            name: name.to_owned(),
            capacity,
            items: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            space: Semaphore::new(capacity),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        });
        decls.add_channel(queue.clone());
        Channel { queue }
    }

    /// The channel's name (for logs).
    pub fn name(&self) -> &str {
        &self.queue.name
    }

    /// How many values it holds at most.
    pub fn capacity(&self) -> usize {
        self.queue.capacity
    }

    /// Values waiting in it.
    pub fn len(&self) -> usize {
        self.queue.items().len()
    }

    /// Whether no value waits in it.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts `value` at the end of the channel, waiting while it is full. Fails with
    /// [`Error::ChannelClosed`] once the app stopped (also when it was waiting).
    pub async fn send(&self, value: T) -> Result<()> {
        let closed = || Error::ChannelClosed {
            channel: self.queue.name.clone(),
        };
        if self.queue.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        self.queue
            .space
            .acquire()
            .await
            .map_err(|_| closed())?
            .forget();
        self.queue.items().push_back(value);
        self.queue.ready.notify_one();
        Ok(())
    }

    /// The stream of one channel agent instance, ending when `stop` turns true and nothing is
    /// left in the channel.
    fn stream(&self, stop: watch::Receiver<bool>) -> ChannelStream<T> {
        let queue = self.queue.clone();
        let values = futures::stream::unfold((queue, stop), |(queue, mut stop)| async move {
            loop {
                let value = {
                    // Listening before looking: a value sent in between wakes it.
                    let ready = queue.ready.notified();
                    tokio::pin!(ready);
                    ready.as_mut().enable();
                    match queue.pop() {
                        Some(value) => Some(value),
                        None if *stop.borrow() || queue.closed.load(Ordering::Acquire) => {
                            return None
                        }
                        None => {
                            tokio::select! {
                                _ = ready => {}
                                changed = stop.changed() => if changed.is_err() {
                                    return None; // the worker is gone
                                }
                            }
                            None
                        }
                    }
                };
                if let Some(value) = value {
                    return Some((value, (queue, stop)));
                }
            }
        });
        ChannelStream {
            values: Box::pin(values),
        }
    }
}

impl<T: Send + 'static> From<&Channel<T>> for Sink<T> {
    fn from(channel: &Channel<T>) -> Self {
        let channel = channel.clone();
        Sink::from_async(&format!("channel {}", channel.name()), move |v| {
            let channel = channel.clone();
            async move { channel.send(v).await }.boxed()
        })
    }
}

/// What a channel agent reads: the channel's values, in the order sent (an instance sees a
/// share of them when there are several). Ends when the worker stops.
pub struct ChannelStream<T> {
    values: BoxStream<'static, T>,
}

impl<T> fmt::Debug for ChannelStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelStream").finish_non_exhaustive()
    }
}

impl<T> Stream for ChannelStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.values.as_mut().poll_next(cx)
    }
}

/// Starts a channel agent's instances; called again when the worker restarts.
pub(crate) type ChannelStarter = Box<dyn FnMut() -> StartedChannelAgent + Send>;

/// A channel agent ready to run: its instances' bodies and the switch that ends their streams.
pub(crate) struct StartedChannelAgent {
    pub name: String,
    pub works: Vec<BoxFuture<'static, Result<(), AgentFailure>>>,
    pub stop: watch::Sender<bool>,
    /// Set when the agent stops on its own (an error).
    pub stopped: Arc<AtomicBool>,
}

/// A channel agent as registered, until the runtime starts it.
pub(crate) struct ChannelAgentSpec {
    pub starter: Option<ChannelStarter>,
    /// What `App::agents` lists for it.
    pub summary: super::AgentSummary,
}

/// Configures an agent over a [`Channel`]; finish with [`run`](Self::run). Made by
/// [`App::channel_agent`](crate::App::channel_agent).
#[must_use = "finish with run()"]
pub struct ChannelAgentBuilder<T> {
    decls: Shared,
    name: String,
    channel: Channel<T>,
    concurrency: usize,
}

impl<T> fmt::Debug for ChannelAgentBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelAgentBuilder")
            .field("name", &self.name)
            .field("channel", &self.channel.queue.name)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl<T: Send + 'static> ChannelAgentBuilder<T> {
    pub(crate) fn new(decls: &Shared, name: &str, channel: &Channel<T>) -> Self {
        ChannelAgentBuilder {
            decls: decls.clone(),
            name: name.to_owned(),
            channel: channel.clone(),
            concurrency: 1,
        }
    }

    /// Instances of the body run at once, taking values from the channel in turn (default 1).
    /// With more than one, values may be handled out of order, as in Faust.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Registers the agent with a body that loops over the channel's values. The runtime
    /// starts it with the other agents; when the worker stops, once the topic agents finished
    /// (so that it gets what they sent), its stream yields what is left in the channel and
    /// ends (within `worker_shutdown_timeout`, else it is cancelled); an error or a panic stops the
    /// worker as a failing agent does ([`Error::AgentFailed`]). The body is called once per
    /// instance (and again when the worker restarts): clone what it captures inside it.
    pub fn run<F, Fut>(self, body: F)
    where
        F: Fn(ChannelStream<T>) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: AgentResult,
    {
        let ChannelAgentBuilder {
            decls,
            name,
            channel,
            concurrency,
        } = self;
        let summary = super::AgentSummary {
            name: name.clone(),
            topic: channel.queue.name.clone(),
            concurrency,
            sinks: Vec::new(),
            channel: true,
        };
        let starter = move || {
            let (stop, stopping) = watch::channel(false);
            let works = (0..concurrency)
                .map(|_| {
                    body(channel.stream(stopping.clone()))
                        .map(AgentResult::into_result)
                        .boxed()
                })
                .collect();
            StartedChannelAgent {
                name: name.clone(),
                works,
                stop,
                stopped: Arc::new(AtomicBool::new(false)),
            }
        };
        decls.add_channel_agent(ChannelAgentSpec {
            starter: Some(Box::new(starter)),
            summary,
        });
    }
}
