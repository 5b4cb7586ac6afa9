//! The stream an agent iterates ([`AgentStream`]), batches ([`Take`]), and the operators that
//! send (echo).
//!
//! An agent's stream yields [`Event`]s that read as their values. Everything else is
//! `futures::StreamExt`: `filter`, `map`, `then`, `chunks`, `buffer_unordered`... An event
//! counts as done when it was dropped and the agent asked for more (see [`crate::offsets`]),
//! so those operators keep the at-least-once promise as long as buffering ones (`chunks`,
//! `buffer_unordered`, `buffered`, `ready_chunks`) see whole events: transform with
//! [`Event::map`] rather than taking the value out before buffering.

mod steps;
mod take;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use kafka_client::consumer::ConsumerRecord;
use kafka_client::producer::ProducerRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

pub use steps::Processor;
pub(crate) use steps::Step;
pub use take::Take;

use crate::error::Error;
use crate::offsets::{Hold, PartitionAcks, Releases};
use crate::record::Event;
use crate::replies::{Current, ReplyTo};
use crate::topic::{OnDecodeError, Topic};

/// A consumed record on its way to an agent instance, with its partition's tracker. The
/// instance makes the record's [`Hold`] when it takes the record (so the hold's reference to
/// the instance is counted on the instance's thread, not the router's). Dropped before that
/// (agent gone, shutdown cut short) it fails the offset, so it is not committed and is read
/// again.
pub(crate) struct Delivery {
    pub record: ConsumerRecord,
    part: Option<Arc<PartitionAcks>>,
    /// When the record was handed over (if the instance measures its latency).
    delivered: Option<tokio::time::Instant>,
}

impl Delivery {
    /// A record registered as delivered in `part`'s tracker.
    pub(crate) fn new(
        record: ConsumerRecord,
        part: Arc<PartitionAcks>,
        delivered: Option<tokio::time::Instant>,
    ) -> Self {
        Delivery {
            record,
            part: Some(part),
            delivered,
        }
    }

    /// The hold on the record for the instance that releases into `releases` (once).
    pub(crate) fn hold(&mut self, releases: &Arc<Releases>) -> Option<Hold> {
        let part = self.part.take()?;
        Some(Hold::new(
            part,
            self.record.offset,
            self.delivered,
            releases.clone(),
        ))
    }
}

impl Delivery {
    /// Fails the record (never committed) unless its hold was taken.
    fn fail(&mut self) {
        if let Some(part) = self.part.take() {
            part.fail(self.record.offset);
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.fail();
    }
}

/// A value between two asynchronous processors: the event without its value, the next step
/// and the future of the value.
struct InStep<K, V> {
    event: Event<K, ()>,
    next: usize,
    value: BoxFuture<'static, V>,
}

/// The events of an agent's topic, decoded and processed; a `futures::Stream` of
/// [`Event`]s that read as their values (`event.amount`).
///
/// Views: [`items`](Self::items) (key and value), [`take`](Self::take) (batches),
/// [`echo`](Self::echo) (copy to other topics).
pub struct AgentStream<K, V> {
    rx: mpsc::Receiver<Vec<Delivery>>,
    /// The last batch received, read in place from `next` on (not moved out one by one: a
    /// delivery is ~150 bytes); dropped as a whole once read (its holds were taken).
    batch: Vec<Delivery>,
    next: usize,
    /// The record [`items`](Self::items) yielded last, with its processing latency (seconds,
    /// if measured): released, settled with the next poll under one lock of the release queue
    /// (see [`Releases::settle_with`]).
    yielded: Option<(Arc<PartitionAcks>, i64, Option<f64>)>,
    topic: Topic<K, V>,
    policy: OnDecodeError,
    steps: Arc<[Step<V>]>,
    releases: Arc<Releases>,
    agent: Arc<str>,
    stopped: Arc<AtomicBool>,
    in_step: Option<InStep<K, V>>,
    done: bool,
    /// Set for agents whose results answer requests: the request taken most recently.
    current: Option<Current>,
}

impl<K, V> AgentStream<K, V>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    pub(crate) fn new(
        rx: mpsc::Receiver<Vec<Delivery>>,
        topic: Topic<K, V>,
        policy: OnDecodeError,
        steps: Arc<[Step<V>]>,
        releases: Arc<Releases>,
        agent: Arc<str>,
        stopped: Arc<AtomicBool>,
    ) -> Self {
        AgentStream {
            rx,
            batch: Vec::new(),
            next: 0,
            yielded: None,
            topic,
            policy,
            steps,
            releases,
            agent,
            stopped,
            in_step: None,
            done: false,
            current: None,
        }
    }

    /// Records in `current` whether each event this stream yields is a request (with where
    /// its reply goes): an agent's next result answers it.
    pub(crate) fn track_requests(&mut self, current: Current) {
        self.current = Some(current);
    }

    /// The agent's name.
    pub fn agent_name(&self) -> &str {
        &self.agent
    }

    /// Runs the processing steps from `from` on; `None` if a filter dropped the event.
    fn run_steps(&mut self, mut event: Event<K, V>, from: usize) -> Option<Event<K, V>> {
        let steps = self.steps.clone();
        for (i, step) in steps.iter().enumerate().skip(from) {
            match step {
                Step::Map(f) => event.value = f(event.value),
                Step::Filter(keep) => {
                    if !keep(&event.value) {
                        return None; // done: filtering was its processing
                    }
                }
                Step::Async(f) => {
                    let mut value = None;
                    let event = event.map(|v| value = Some(v));
                    let future = value.map(|v| f(v));
                    self.in_step = future.map(|value| InStep {
                        event,
                        next: i + 1,
                        value,
                    });
                    return None;
                }
            }
        }
        Some(event)
    }

    /// The index in `batch` of the next delivery, once what this instance released before
    /// is settled (it asks for more); `None` when the stream ended.
    #[inline]
    fn poll_delivery(&mut self, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        if self.done {
            return Poll::Ready(None);
        }
        // Asking for more: what this instance released before is done.
        match self.yielded.take() {
            Some((part, offset, latency)) => self.releases.settle_with(part, offset, latency),
            None => self.releases.settle(),
        }
        if self.next >= self.batch.len() {
            self.batch.clear(); // every hold was taken: nothing fails
            self.next = 0;
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.batch = batch,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {
                    self.releases.park();
                    return Poll::Pending;
                }
            }
        }
        let i = self.next;
        self.next += 1;
        Poll::Ready(Some(i))
    }

    /// The next decoded and processed event, applying the decode-error policy.
    #[inline]
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event<K, V>>> {
        loop {
            if let Some(in_step) = &mut self.in_step {
                let value = futures::ready!(in_step.value.poll_unpin(cx));
                let Some(InStep { event, next, .. }) = self.in_step.take() else {
                    continue;
                };
                match self.run_steps(event.map(|()| value), next) {
                    Some(event) => return Poll::Ready(Some(event)),
                    None => continue,
                }
            }
            let Some(i) = futures::ready!(self.poll_delivery(cx)) else {
                return Poll::Ready(None);
            };
            // Decoded where it lies in the batch: the delivery is not moved out.
            let Some(delivery) = self.batch.get_mut(i) else {
                continue;
            };
            match self.topic.decode(&delivery.record) {
                Ok(mut event) => {
                    event.hold = delivery.hold(&self.releases);
                    if self.steps.is_empty() {
                        return Poll::Ready(Some(event)); // no processors: not moved again
                    }
                    if let Some(event) = self.run_steps(event, 0) {
                        return Poll::Ready(Some(event));
                    }
                }
                Err(e) => self.on_decode_error_at(e, i),
            }
        }
    }

    /// The next key and value for [`items`](Self::items), released as they are yielded,
    /// without building the event: with no processors and no requests to track, the
    /// event would be taken apart at once (its topic, headers and hold made for nothing,
    /// and ~200 bytes moved through the combinators).
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Option<K>, V)>> {
        if !self.steps.is_empty() || self.current.is_some() {
            let next = Pin::new(&mut *self).poll_next(cx);
            return next.map(|event| event.map(|e| (e.key, e.value)));
        }
        loop {
            let Some(i) = futures::ready!(self.poll_delivery(cx)) else {
                return Poll::Ready(None);
            };
            let Some(delivery) = self.batch.get_mut(i) else {
                continue;
            };
            match self.topic.decode_parts(&delivery.record) {
                Ok(item) => {
                    // Released now (its latency ends here), settled with the next poll.
                    if let Some(part) = delivery.part.take() {
                        let latency = self.releases.latency(delivery.delivered);
                        self.yielded = Some((part, delivery.record.offset, latency));
                    }
                    return Poll::Ready(Some(item));
                }
                Err(e) => self.on_decode_error_at(e, i),
            }
        }
    }

    /// [`on_decode_error`](Self::on_decode_error) for the delivery at `i` of the batch.
    fn on_decode_error_at(&mut self, error: Error, i: usize) {
        let mut batch = std::mem::take(&mut self.batch);
        if let Some(delivery) = batch.get_mut(i) {
            self.on_decode_error(error, delivery);
        }
        self.batch = batch;
    }

    fn on_decode_error(&mut self, error: Error, delivery: &mut Delivery) {
        let agent = &*self.agent;
        match &self.policy {
            OnDecodeError::Skip => {
                tracing::warn!(agent, %error, "skipped a record that does not decode");
                drop(delivery.hold(&self.releases)); // done: it was looked at and skipped
            }
            OnDecodeError::DeadLetter(dead) => {
                tracing::warn!(agent, %error, dead_letter_topic = %dead, "sent a record that does not decode to the dead-letter topic");
                let r = &delivery.record;
                let mut record = ProducerRecord::new(dead.clone());
                record.key = r.key.clone();
                record.value = r.value.clone();
                record.headers = r.headers.clone();
                let origin = (r.topic.to_string(), r.partition, r.offset);
                let hold = delivery.hold(&self.releases);
                self.dead_letter(record, origin, &error, hold);
            }
            OnDecodeError::Stop => {
                tracing::error!(agent, %error, "stopping the agent on a record that does not decode (on_decode_error = Stop); fix the producer or the type, then restart: the record will be read again");
                delivery.fail(); // never committed
                self.done = true;
                self.stopped.store(true, Ordering::Release);
            }
        }
    }

    /// Sends `record` to the dead-letter topic with `x-error-*` headers naming where it came
    /// from and why; `hold` (the event) is done once the copy is accepted, failed if not.
    fn dead_letter(
        &self,
        record: ProducerRecord,
        (topic, partition, offset): (String, i32, i64),
        error: &Error,
        hold: Option<crate::offsets::Hold>,
    ) {
        let source = topic.clone();
        let record = record
            .header("x-error-topic", topic)
            .header("x-error-partition", partition.to_string())
            .header("x-error-offset", offset.to_string())
            .header("x-error-reason", error.to_string());
        let outbox = self.topic.outbox().clone();
        // Rare: a task for the send, holding the record until the copy is accepted.
        tokio::spawn(async move {
            match outbox.send(record).await {
                Ok(()) => outbox.metrics().dead_lettered(&source),
                Err(e) => {
                    tracing::error!(error = %e, "could not send to the dead-letter topic; the record will not be committed");
                    if let Some(hold) = hold {
                        hold.fail();
                    }
                }
            }
        });
    }

    /// Gives up on an event the agent cannot use, with the topic's decode-error policy
    /// ([`OnDecodeError`]): logged and skipped, copied to the dead-letter topic (re-encoded as
    /// the agent sees it, after processors, with `x-error-*` headers saying where it came from
    /// and `error`), or the agent stops (the event is never committed). For what only the agent
    /// finds wrong: a windowed table's event time that cannot be read (`Error::Decode`), an
    /// event later than the grace period (`Error::LateEvent` with `LatePolicy::Fail`).
    ///
    /// ```no_run
    /// # use futures::StreamExt;
    /// # async fn agent(mut events: streams::AgentStream<String, i64>, totals: streams::WindowedTable<String, i64>) -> streams::Result<()> {
    /// while let Some(event) = events.next().await {
    ///     let key = event.key.clone().unwrap_or_default();
    ///     let amount = event.value;
    ///     match totals.at(&event).and_then(|at| at.update(&key, |t| *t += amount)) {
    ///         Err(e @ (streams::Error::Decode { .. } | streams::Error::LateEvent { .. })) => {
    ///             events.reject(event, &e)
    ///         }
    ///         other => drop(other?),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn reject(&mut self, mut event: Event<K, V>, error: &Error) {
        let agent = &*self.agent;
        let origin = (event.topic.to_string(), event.partition, event.offset);
        match &self.policy {
            OnDecodeError::Skip => {
                tracing::warn!(agent, %error, topic = %origin.0, partition = origin.1, offset = origin.2, "skipped an event the agent rejected");
                drop(event); // done: it was looked at and skipped
            }
            OnDecodeError::DeadLetter(dead) => {
                tracing::warn!(agent, %error, dead_letter_topic = %dead, "sent an event the agent rejected to the dead-letter topic");
                let hold = event.take_hold();
                let record = match self.topic.record(event.key.as_ref(), &event.value) {
                    Ok(encoded) => {
                        let mut record = ProducerRecord::new(dead.clone());
                        record.key = encoded.key;
                        record.value = encoded.value;
                        record.headers = event.headers.clone();
                        record
                    }
                    Err(e) => {
                        tracing::error!(agent, error = %e, "cannot re-encode the rejected event for the dead-letter topic; it will not be committed");
                        if let Some(hold) = hold {
                            hold.fail();
                        }
                        return;
                    }
                };
                self.dead_letter(record, origin, error, hold);
            }
            OnDecodeError::Stop => {
                tracing::error!(agent, %error, "stopping the agent on an event it rejected (on_decode_error = Stop): the event will be read again after a restart");
                if let Some(hold) = event.take_hold() {
                    hold.fail();
                }
                self.done = true;
                self.stopped.store(true, Ordering::Release);
            }
        }
    }

    /// Stops the agent on `event` whatever the decode-error policy says: for a failure that
    /// is not the event's fault (a join whose table cannot be read). The event is never
    /// committed and is read again after a restart.
    pub(crate) fn stop_on(&mut self, mut event: Event<K, V>, error: &Error) {
        let agent = &*self.agent;
        tracing::error!(agent, %error, topic = %event.topic, partition = event.partition, offset = event.offset, "stopping the agent: the event cannot be handled; it will be read again after a restart");
        if let Some(hold) = event.take_hold() {
            hold.fail();
        }
        self.done = true;
        self.stopped.store(true, Ordering::Release);
    }

    /// The stream itself: every item is an [`Event`] already (Faust's `stream.events()`).
    pub fn events(self) -> Self {
        self
    }

    /// `(key, value)` pairs (Faust's `stream.items()`). Each event is released as it is
    /// yielded, and done when the agent asks for the next: do not buffer after `items()`.
    pub fn items(self) -> impl Stream<Item = (Option<K>, V)> + Send + Unpin {
        Items(self)
    }

    /// Batches of up to `max` values, each yielded when full or `within` after its first value
    /// arrived (Faust's `stream.take(max, within=...)`). A batch's events are done when the
    /// agent asks for the next batch.
    pub fn take(self, max: usize, within: std::time::Duration) -> Take<K, V> {
        Take::new(self, max, within)
    }

    /// Copies every event (key kept) to each of `topics` and passes it on (Faust's
    /// `stream.echo(*topics)`). A copy that cannot be sent fails the event (never committed).
    pub fn echo(self, topics: Vec<Topic<K, V>>) -> impl Stream<Item = Event<K, V>> + Send
    where
        K: Sync,
        V: Sync,
    {
        let topics: Arc<[Topic<K, V>]> = topics.into();
        self.then(move |mut event| {
            let topics = topics.clone();
            async move {
                for topic in topics.iter() {
                    let sent = match &event.key {
                        Some(k) => topic.send(k, &event.value).await,
                        None => topic.send_value(&event.value).await,
                    };
                    if let Err(e) = sent {
                        tracing::error!(topic = topic.name(), error = %e, "echo failed; the event will not be committed");
                        if let Some(hold) = event.take_hold() {
                            hold.fail();
                        }
                    }
                }
                event
            }
        })
    }
}

impl<K, V> Stream for AgentStream<K, V>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = Event<K, V>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event<K, V>>> {
        let next = self.poll_event(cx);
        if let (Poll::Ready(Some(event)), Some(current)) = (&next, &self.current) {
            *current.lock().unwrap_or_else(|e| e.into_inner()) =
                ReplyTo::from_headers(&event.headers);
        }
        next
    }
}

impl<K, V> Unpin for AgentStream<K, V> {}

impl<K, V> Drop for AgentStream<K, V> {
    fn drop(&mut self) {
        // Released at its yield: into the queue, where the instance's end settles or fails it
        // as it did before the stream kept it.
        if let Some((part, offset, latency)) = self.yielded.take() {
            self.releases.release(part, offset, latency);
        }
    }
}

/// [`AgentStream::items`].
struct Items<K, V>(AgentStream<K, V>);

impl<K, V> Stream for Items<K, V>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = (Option<K>, V);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_item(cx)
    }
}
