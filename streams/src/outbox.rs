//! Where the app's records go: its one producer, set when the app connects.
//!
//! Sends return once the producer accepted the record; delivery is checked in bulk by the
//! committer, which flushes the producer before every commit and stops the app if a record
//! was not delivered. So an event whose agent awaited its sends before releasing it is
//! committed only after those records are acknowledged, with no task or future per record.

use std::sync::{Arc, OnceLock};

use kafka_client::producer::{Producer, ProducerRecord, RecordMetadata};

use crate::error::{Error, Result};

/// A handle on the app's producer, shared by topics, sinks and the runtime. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Outbox(Arc<OnceLock<Producer>>);

impl Outbox {
    /// Installs the producer (once; later calls keep the first).
    pub(crate) fn set(&self, producer: Producer) {
        let _ = self.0.set(producer);
    }

    /// The producer, once the app is connected.
    pub(crate) fn producer(&self) -> Result<&Producer> {
        self.0.get().ok_or(Error::NotStarted)
    }

    /// Waits until every record accepted so far is acknowledged; an error if any of the
    /// app's records was not delivered (nothing may be committed then).
    pub(crate) async fn flush(&self) -> Result<()> {
        let producer = self.producer()?;
        producer.flush().await;
        let failures = producer.delivery_failures();
        if failures.records > 0 {
            return Err(Error::Delivery {
                records: failures.records,
                reason: failures.last.unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Hands a record to the producer; returns once it is accepted (batched).
    pub(crate) async fn send(&self, record: ProducerRecord) -> Result<()> {
        drop(self.producer()?.send(record).await?);
        Ok(())
    }

    /// Sends a record and waits for the broker's acknowledgement.
    pub(crate) async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        Ok(self.producer()?.send(record).await?.await?)
    }
}
