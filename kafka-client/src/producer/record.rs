//! What a caller hands to the producer.

use bytes::Bytes;

use crate::protocol::record::Header;

/// A record to produce: topic, optional partition, key, value, headers and timestamp.
///
/// ```
/// # use kafka_client::producer::ProducerRecord;
/// let record = ProducerRecord::new("orders").key("k1").value(vec![1, 2, 3]).header("trace", "abc");
/// assert_eq!(record.headers.len(), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    /// `None` lets the partitioner choose (by key, or sticky for keyless records).
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Kept in order; the same key may appear more than once.
    pub headers: Vec<Header>,
    /// Milliseconds since the epoch; `None` means now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            ..Default::default()
        }
    }
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }
    pub fn header(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, Some(value)));
        self
    }
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
    pub fn timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }
}
