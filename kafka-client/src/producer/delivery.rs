//! Delivery reports: one completion per batch, shared by a cheap future per record.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic written to.
    pub topic: String,
    /// The partition written to.
    pub partition: i32,
    /// The record's offset; -1 with `acks=0`, or for a retried batch the broker reported as
    /// a duplicate without its offset.
    pub offset: i64,
    /// The record's timestamp (the broker's, for topics with `LogAppendTime`).
    pub timestamp: i64,
}

/// A batch's outcome: its base offset and the broker's log-append time (-1 if none).
type Outcome = std::result::Result<(i64, i64), Arc<Error>>;

/// Completed once when the broker acknowledges (or the producer gives up on) a batch.
pub(crate) struct Completion {
    topic: Arc<str>,
    partition: i32,
    state: Mutex<(Option<Outcome>, Vec<Waker>)>,
}

impl Completion {
    pub(crate) fn new(topic: Arc<str>, partition: i32) -> Arc<Self> {
        Arc::new(Completion {
            topic,
            partition,
            state: Mutex::new((None, Vec::new())),
        })
    }

    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    pub(crate) fn partition(&self) -> i32 {
        self.partition
    }

    /// Records the outcome and wakes every waiting record future. Later calls are ignored.
    pub(crate) fn complete_shared(&self, outcome: std::result::Result<(i64, i64), Arc<Error>>) {
        let wakers = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.0.is_some() {
                return;
            }
            state.0 = Some(outcome);
            std::mem::take(&mut state.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Resolves when the broker has acknowledged the record, with its offset.
#[must_use = "a DeliveryFuture does nothing unless awaited; drop it to ignore the outcome"]
pub struct DeliveryFuture {
    pub(crate) completion: Arc<Completion>,
    /// Position of the record in its batch (its offset delta).
    pub(crate) index: i32,
    pub(crate) timestamp: i64,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("topic", &self.completion.topic())
            .field("partition", &self.completion.partition())
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let completion = &self.completion;
        let mut state = completion.state.lock().unwrap_or_else(|e| e.into_inner());
        match &state.0 {
            Some(Ok((base_offset, log_append_time))) => Poll::Ready(Ok(RecordMetadata {
                topic: completion.topic.to_string(),
                partition: completion.partition,
                offset: if *base_offset < 0 {
                    -1
                } else {
                    base_offset + self.index as i64
                },
                timestamp: if *log_append_time >= 0 {
                    *log_append_time
                } else {
                    self.timestamp
                },
            })),
            Some(Err(e)) => Poll::Ready(Err(Error::Delivery {
                topic: completion.topic.to_string(),
                partition: completion.partition,
                source: e.clone(),
            })),
            None => {
                if !state.1.iter().any(|w| w.will_wake(cx.waker())) {
                    state.1.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}
