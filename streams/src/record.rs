//! Events as agents see them, and validation of record types.

use std::sync::Arc;

pub use kafka_client::consumer::Header;

use crate::error::Error;
use crate::offsets::AckToken;

/// One decoded record with where it came from: what an agent gets from
/// [`AgentStream::events`](crate::AgentStream::events).
///
/// Holding an event keeps it undone (its offset is not committed); drop it, or ask the stream
/// for the next one, when finished.
#[derive(Debug, Clone)]
pub struct Event<K, V> {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// `None` is Kafka's null key.
    pub key: Option<K>,
    pub value: V,
    /// In the order written, duplicates kept.
    pub headers: Vec<Header>,
    pub(crate) ack: Option<AckToken>,
}

impl<K, V> Event<K, V> {
    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key.as_ref() == name.as_bytes())
            .and_then(|h| h.value.as_deref())
    }

    /// Replaces the value, keeping the key, position and done-tracking.
    pub fn map<W>(self, f: impl FnOnce(V) -> W) -> Event<K, W> {
        Event {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key,
            value: f(self.value),
            headers: self.headers,
            ack: self.ack,
        }
    }

    pub(crate) fn take_ack(&mut self) -> Option<AckToken> {
        self.ack.take()
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
