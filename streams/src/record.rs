//! Events as agents see them, and validation of record types.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

pub use kafka_client::consumer::Header;

use crate::error::Error;
use crate::offsets::Hold;
use crate::timestamp::Timestamp;

/// One decoded record with where it came from: what an agent's stream yields. It reads as
/// its value (`event.amount` for `event.value.amount`, through `Deref`).
///
/// Holding an event keeps it undone: its offset is committed only after the event was dropped
/// (or [`ack`](Self::ack)ed) and the agent asked its stream for more. So keep events whole
/// through buffering combinators (`chunks`, `buffer_unordered`) and transform them with
/// [`map`](Self::map), which keeps the hold. Hand an event (or its [`Hold`]) to another task
/// to process it there: it is done when that task drops it.
#[derive(Debug)]
pub struct Event<K, V> {
    /// The topic the record was read from.
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The record's timestamp as Kafka carries it: milliseconds since the epoch, negative
    /// (-1) when the record has none. [`time`](Self::time) reads it as a [`Timestamp`].
    pub timestamp: i64,
    /// `None` is Kafka's null key.
    pub key: Option<K>,
    /// The decoded value (after the agent's processors).
    pub value: V,
    /// In the order written, duplicates kept.
    pub headers: Vec<Header>,
    pub(crate) hold: Option<Hold>,
}

impl<K, V> Event<K, V> {
    /// An event outside any stream, with no headers and no hold (nothing to commit): for tests
    /// and examples of code that takes events, such as windowed tables.
    pub fn new(
        topic: impl Into<Arc<str>>,
        partition: i32,
        offset: i64,
        timestamp: i64,
        key: Option<K>,
        value: V,
    ) -> Self {
        Event {
            topic: topic.into(),
            partition,
            offset,
            timestamp,
            key,
            value,
            headers: Vec::new(),
            hold: None,
        }
    }

    /// The record's timestamp, `None` when it has none (Kafka's -1).
    pub fn time(&self) -> Option<Timestamp> {
        (self.timestamp >= 0).then_some(Timestamp::from_millis(self.timestamp))
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key.as_ref() == name.as_bytes())
            .and_then(|h| h.value.as_deref())
    }

    /// Replaces the value, keeping the key, position and hold.
    pub fn map<W>(self, f: impl FnOnce(V) -> W) -> Event<K, W> {
        Event {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key,
            value: f(self.value),
            headers: self.headers,
            hold: self.hold,
        }
    }

    /// The value; the event is released (done once the agent asks for more).
    pub fn into_value(self) -> V {
        self.value
    }

    /// Done with the event now (the same as dropping it).
    pub fn ack(self) {}

    /// The event failed: it is never committed by this worker, so a restart reads it again
    /// (Faust has no equivalent; Kafka Streams stops the task).
    pub fn fail(mut self) {
        if let Some(hold) = self.hold.take() {
            hold.fail();
        }
    }

    /// Takes the event's hold, to release it elsewhere (Faust's `event.ack()` from another
    /// task). `None` if it was taken already.
    pub fn take_hold(&mut self) -> Option<Hold> {
        self.hold.take()
    }

    /// A copy of the event's data without its hold (the copy does not keep it undone).
    pub fn detached(&self) -> Event<K, V>
    where
        K: Clone,
        V: Clone,
    {
        Event {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self.headers.clone(),
            hold: None,
        }
    }
}

impl<K, V> Deref for Event<K, V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.value
    }
}

impl<K, V> DerefMut for Event<K, V> {
    fn deref_mut(&mut self) -> &mut V {
        &mut self.value
    }
}

/// Sends an event's value where a value is taken (`topic.send(key, event)`).
impl<K, V> std::borrow::Borrow<V> for Event<K, V> {
    fn borrow(&self) -> &V {
        &self.value
    }
}

/// Shows the value, as Faust prints a stream's values.
impl<K, V: fmt::Display> fmt::Display for Event<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// Rules a record must follow beyond its types, checked when a topic is
/// [`validated`](crate::Topic::validated) (Faust's `validation=True`). Types are already
/// checked by serde; name the field in the error.
///
/// ```
/// use streams::{Error, Validate};
/// #[derive(serde::Deserialize)]
/// struct Purchase { currency: String, amount: i64 }
/// impl Validate for Purchase {
///     fn validate(&self) -> Result<(), Error> {
///         if self.amount <= 0 {
///             return Err(Error::validation("amount", format!("must be positive, got {}", self.amount)));
///         }
///         if self.currency.len() != 3 {
///             return Err(Error::validation("currency", "must be a 3-letter ISO code"));
///         }
///         Ok(())
///     }
/// }
/// assert!(Purchase { currency: "EUR".into(), amount: 0 }.validate().is_err());
/// ```
pub trait Validate {
    /// `Ok` if the record is acceptable, else [`Error::Validation`] naming the field.
    fn validate(&self) -> Result<(), Error>;
}
