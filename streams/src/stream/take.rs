//! `take(max, within)`: batches by count or time.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::AgentStream;
use crate::offsets::Hold;
use crate::record::Event;

/// Batches of an agent's values; see [`AgentStream::take`].
pub struct Take<K, V> {
    inner: AgentStream<K, V>,
    max: usize,
    within: Duration,
    buffer: Vec<Event<K, V>>,
    /// Holds of the batch last yielded: released when the agent asks for the next one (a
    /// batch yielded by the timer comes while the source waits, when a release would count
    /// at once).
    yielded: Vec<Hold>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    ended: bool,
}

impl<K, V> Take<K, V>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    pub(crate) fn new(inner: AgentStream<K, V>, max: usize, within: Duration) -> Self {
        Take {
            inner,
            max: max.max(1),
            within,
            buffer: Vec::new(),
            yielded: Vec::new(),
            deadline: None,
            ended: false,
        }
    }

    fn flush(&mut self) -> Vec<V> {
        self.deadline = None;
        let events = std::mem::take(&mut self.buffer);
        let mut values = Vec::with_capacity(events.len());
        for mut e in events {
            self.yielded.extend(e.take_hold());
            values.push(e.value);
        }
        values
    }
}

impl<K, V> Unpin for Take<K, V> {}

impl<K, V> Stream for Take<K, V>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = Vec<V>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<V>>> {
        let this = &mut *self;
        this.yielded.clear(); // the agent is done with the last batch
        while !this.ended {
            match this.inner.poll_event(cx) {
                Poll::Ready(Some(event)) => {
                    if this.buffer.is_empty() {
                        this.deadline = Some(Box::pin(tokio::time::sleep(this.within)));
                    }
                    this.buffer.push(event);
                    if this.buffer.len() >= this.max {
                        return Poll::Ready(Some(this.flush()));
                    }
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => break,
            }
        }
        if this.ended {
            return Poll::Ready((!this.buffer.is_empty()).then(|| this.flush()));
        }
        if let Some(deadline) = &mut this.deadline {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(this.flush()));
            }
        }
        Poll::Pending
    }
}
