//! The streams agents iterate: values ([`AgentStream`]), events with their metadata
//! ([`EventStream`]), batches ([`Take`]), and the operators that need the app (echo).
//!
//! Everything else is `futures::StreamExt`: `filter`, `map`, `then`, `enumerate`... An event
//! counts as done when the agent asks for the next one, so those operators ack naturally
//! (a filtered-out value is done when `filter` pulls the next).

mod take;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use kafka_client::producer::ProducerRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

pub use take::Take;

use crate::agent::{Delivery, Processor, Slot};
use crate::app::lock;
use crate::error::Error;
use crate::record::Event;
use crate::topic::{OnDecodeError, Topic};

/// The values of an agent's topic, decoded and processed; a `futures::Stream<Item = V>`.
///
/// Views: [`events`](Self::events) (key, partition, offset, timestamp, headers),
/// [`items`](Self::items) (key and value), [`take`](Self::take) (batches),
/// [`echo`](Self::echo) (copy to other topics).
pub struct AgentStream<K, V> {
    rx: mpsc::Receiver<Delivery>,
    topic: Topic<K, V>,
    policy: OnDecodeError,
    processors: Arc<[Processor<V>]>,
    slot: Slot,
    agent: Arc<str>,
    stopped: Arc<AtomicBool>,
    done: bool,
}

impl<K, V> AgentStream<K, V>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    pub(crate) fn new(
        rx: mpsc::Receiver<Delivery>,
        topic: Topic<K, V>,
        policy: OnDecodeError,
        processors: Arc<[Processor<V>]>,
        slot: Slot,
        agent: Arc<str>,
        stopped: Arc<AtomicBool>,
    ) -> Self {
        AgentStream {
            rx,
            topic,
            policy,
            processors,
            slot,
            agent,
            stopped,
            done: false,
        }
    }

    /// The agent's name.
    pub fn agent_name(&self) -> &str {
        &self.agent
    }

    /// The next decoded event (its token inside), applying the decode-error policy.
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event<K, V>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let Some(mut delivery) = futures::ready!(self.rx.poll_recv(cx)) else {
                return Poll::Ready(None);
            };
            match self.topic.decode(&delivery.record) {
                Ok(mut event) => {
                    for p in self.processors.iter() {
                        event.value = p(event.value);
                    }
                    event.ack = delivery.ack.take();
                    return Poll::Ready(Some(event));
                }
                Err(e) => self.on_decode_error(e, delivery),
            }
        }
    }

    fn on_decode_error(&mut self, error: Error, mut delivery: Delivery) {
        let agent = &*self.agent;
        match &self.policy {
            OnDecodeError::Skip => {
                tracing::warn!(agent, %error, "skipped a record that does not decode");
                drop(delivery.ack.take()); // done: it was looked at and skipped
            }
            OnDecodeError::DeadLetter(dead) => {
                tracing::warn!(agent, %error, dead_letter_topic = %dead, "sent a record that does not decode to the dead-letter topic");
                let r = &delivery.record;
                let mut record = ProducerRecord::new(dead.clone());
                record.key = r.key.clone();
                record.value = r.value.clone();
                record.headers = r.headers.clone();
                record = record
                    .header("x-error-topic", r.topic.to_string())
                    .header("x-error-partition", r.partition.to_string())
                    .header("x-error-offset", r.offset.to_string())
                    .header("x-error-reason", error.to_string());
                let holds: Vec<_> = delivery.ack.take().into_iter().collect();
                let app = self.topic.app.clone();
                tokio::spawn(async move {
                    if let Err(e) = app.produce_holding(record, holds).await {
                        tracing::error!(error = %e, "could not send to the dead-letter topic; the record will not be committed");
                    }
                });
            }
            OnDecodeError::Stop => {
                tracing::error!(agent, %error, "stopping the agent on a record that does not decode (on_decode_error = Stop); fix the producer or the type, then restart: the record will be read again");
                // `delivery` drops with its token: poisoned, never committed.
                self.done = true;
                self.stopped.store(true, Ordering::Release);
            }
        }
    }

    /// Events with key, partition, offset, timestamp and headers (Faust's `stream.events()`).
    pub fn events(self) -> EventStream<K, V> {
        EventStream { inner: self }
    }

    /// `(key, value)` pairs (Faust's `stream.items()`).
    pub fn items(self) -> impl Stream<Item = (Option<K>, V)> + Send + Unpin {
        self.events().map(|e| (e.key, e.value))
    }

    /// Batches of up to `max` values, each yielded when full or `within` after its first value
    /// arrived (Faust's `stream.take(max, within=...)`). A batch's events are done when the
    /// agent asks for the next batch.
    pub fn take(self, max: usize, within: std::time::Duration) -> Take<K, V> {
        Take::new(self, max, within)
    }

    /// Copies every event (key kept) to each of `topics` and passes the value on (Faust's
    /// `stream.echo(*topics)`). The event is done once the copies are acknowledged.
    pub fn echo(self, topics: Vec<Topic<K, V>>) -> impl Stream<Item = V> + Send
    where
        K: Sync,
        V: Sync,
    {
        let topics: Arc<[Topic<K, V>]> = topics.into();
        self.events().then(move |event| {
            let topics = topics.clone();
            async move {
                for topic in topics.iter() {
                    let sent = match &event.key {
                        Some(k) => topic.send(k, &event.value).await,
                        None => topic.send_value(&event.value).await,
                    };
                    if let Err(e) = sent {
                        tracing::error!(topic = topic.name(), error = %e, "echo failed; the event will not be committed");
                        if let Some(ack) = &event.ack {
                            ack.poison();
                        }
                    }
                }
                event.value
            }
        })
    }

    /// Marks the tokens of what is yielded now as the agent's current events (the previous
    /// ones are done by being replaced).
    fn set_current(&self, tokens: impl IntoIterator<Item = crate::offsets::AckToken>) {
        let mut slot = lock(&self.slot);
        slot.clear();
        slot.extend(tokens);
    }

    fn release_current(&self) {
        lock(&self.slot).clear();
    }
}

impl<K, V> Stream for AgentStream<K, V>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = V;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<V>> {
        // Asking for the next value means the previous one is done.
        self.release_current();
        match self.poll_event(cx) {
            Poll::Ready(Some(mut event)) => {
                self.set_current(event.take_ack());
                Poll::Ready(Some(event.value))
            }
            other => other.map(|_| None),
        }
    }
}

impl<K, V> Unpin for AgentStream<K, V> {}

/// The events of an agent's topic; see [`AgentStream::events`]. An event is done when it is
/// dropped and the agent has asked for the next one.
pub struct EventStream<K, V> {
    inner: AgentStream<K, V>,
}

impl<K, V> Stream for EventStream<K, V>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = Event<K, V>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event<K, V>>> {
        self.inner.release_current();
        match self.inner.poll_event(cx) {
            Poll::Ready(Some(event)) => {
                self.inner.set_current(event.ack.clone());
                Poll::Ready(Some(event))
            }
            other => other,
        }
    }
}
