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
    /// The topic to write to.
    pub topic: String,
    /// `None` lets the partitioner choose (by key, or sticky for keyless records).
    pub partition: Option<i32>,
    /// `None` is Kafka's null key (the record then goes to a sticky partition).
    pub key: Option<Bytes>,
    /// `None` is a tombstone (deletes the key in a compacted topic).
    pub value: Option<Bytes>,
    /// Kept in order; the same key may appear more than once.
    pub headers: Vec<Header>,
    /// Milliseconds since the epoch; `None` means now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key, value or headers yet.
    pub fn new(topic: impl Into<String>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            ..Default::default()
        }
    }
    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }
    /// Adds a header (after any added before).
    pub fn header(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, Some(value)));
        self
    }
    /// Sends to this partition instead of letting the partitioner choose.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
    /// Sets the timestamp, in milliseconds since the epoch.
    pub fn timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }
}

/// A record whose parts the caller keeps: the producer copies them into its batch, so a caller
/// that encodes into buffers of its own sends without allocating per record. See
/// [`Producer::try_send`](super::Producer::try_send).
///
/// ```
/// # use kafka_client::producer::{ProducerRecord, RecordRef};
/// let record = RecordRef { key: Some(b"k1"), value: Some(b"v"), ..RecordRef::new("orders") };
/// assert_eq!(record.to_record().key.as_deref(), Some(&b"k1"[..]));
/// let owned = ProducerRecord::new("orders").value("v");
/// assert_eq!(RecordRef::from(&owned).value, Some(&b"v"[..]));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordRef<'a> {
    /// The topic to write to.
    pub topic: &'a str,
    /// `None` lets the partitioner choose, as for [`ProducerRecord::partition`].
    pub partition: Option<i32>,
    /// `None` is Kafka's null key.
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Kept in order.
    pub headers: &'a [Header],
    /// Milliseconds since the epoch; `None` means now.
    pub timestamp: Option<i64>,
}

impl<'a> RecordRef<'a> {
    /// A record for `topic` with no key, value or headers.
    pub fn new(topic: &'a str) -> Self {
        RecordRef {
            topic,
            ..Default::default()
        }
    }

    /// The same record, owning copies of its parts.
    pub fn to_record(&self) -> ProducerRecord {
        ProducerRecord {
            topic: self.topic.to_owned(),
            partition: self.partition,
            key: self.key.map(Bytes::copy_from_slice),
            value: self.value.map(Bytes::copy_from_slice),
            headers: self.headers.to_vec(),
            timestamp: self.timestamp,
        }
    }
}

impl<'a> From<&'a ProducerRecord> for RecordRef<'a> {
    fn from(record: &'a ProducerRecord) -> Self {
        RecordRef {
            topic: &record.topic,
            partition: record.partition,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &record.headers,
            timestamp: record.timestamp,
        }
    }
}
