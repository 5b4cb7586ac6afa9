//! Feeding events: a record for a topic, with the partition and timestamp the test chooses,
//! produced by the harness's own client (not by a worker, so that killing one loses nothing
//! the test sent).

use std::borrow::Borrow;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use kafka_client::producer::{ProducerRecord, RecordMetadata};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::app::App;
use crate::error::{Error, Result};
use crate::timestamp::Timestamp;
use crate::topic::Topic;

use super::Harness;

/// A record on its way into the cluster ([`Harness::send`]): choose its partition and
/// timestamp, then `.await` it for the broker's acknowledgement.
#[must_use = "a Feed sends nothing until it is awaited"]
pub struct Feed<'h, W> {
    harness: &'h Harness<W>,
    record: Result<ProducerRecord>,
}

impl<W> Feed<'_, W> {
    /// Writes to this partition (default: the producer's partitioner, by key).
    pub fn partition(mut self, partition: i32) -> Self {
        self.record = self.record.map(|r| r.partition(partition));
        self
    }

    /// The record's timestamp (default: what the harness's clock reads when it is built):
    /// event time for windowed tables.
    pub fn at(mut self, at: impl Into<Timestamp>) -> Self {
        let at = at.into().as_millis();
        self.record = self.record.map(|r| r.timestamp(at));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<bytes::Bytes>) -> Self {
        let value = value.into();
        self.record = self
            .record
            .map(|r| r.header(bytes::Bytes::copy_from_slice(name.as_bytes()), value));
        self
    }
}

impl<'h, W> IntoFuture for Feed<'h, W> {
    type Output = Result<RecordMetadata>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + 'h>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let delivery = self.harness.producer.send(self.record?).await?;
            delivery.await.map_err(Error::Kafka)
        })
    }
}

impl<W: AsRef<App>> Harness<W> {
    /// A keyed record for `topic`, encoded with the topic's codecs (any worker's handle of
    /// it, or one declared on a spare app). Await it.
    pub fn send<K, V>(
        &self,
        topic: &Topic<K, V>,
        key: impl Borrow<K>,
        value: impl Borrow<V>,
    ) -> Feed<'_, W>
    where
        K: Serialize + DeserializeOwned + Send + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
    {
        let now = self.clock.now().as_millis();
        Feed {
            harness: self,
            record: topic
                .record(Some(key.borrow()), value.borrow())
                .map(|r| r.timestamp(now)),
        }
    }

    /// A record of raw bytes for the topic named `topic` (`None` is Kafka's null): for
    /// records no codec would write, such as a corrupt one. Await it.
    pub fn send_raw(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>) -> Feed<'_, W> {
        let mut record = ProducerRecord::new(topic).timestamp(self.clock.now().as_millis());
        if let Some(key) = key {
            record = record.key(bytes::Bytes::copy_from_slice(key));
        }
        if let Some(value) = value {
            record = record.value(bytes::Bytes::copy_from_slice(value));
        }
        Feed {
            harness: self,
            record: Ok(record),
        }
    }
}
