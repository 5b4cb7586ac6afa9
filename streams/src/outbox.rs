//! Where the app's records go: its one producer, set when the app connects, or, under
//! exactly-once, the worker's transactional producer for sends made by its agents.
//!
//! Sends return once the producer accepted the record; delivery is checked in bulk by the
//! committer, which flushes the producer before every commit and stops the app if a record
//! was not delivered. So an event whose agent awaited its sends before releasing it is
//! committed only after those records are acknowledged, with no task or future per record.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use kafka_client::producer::{Producer, ProducerRecord, RecordMetadata};
use prometheus_client::metrics::counter::Counter;

use crate::error::{Error, Result};
use crate::metrics::Metrics;

tokio::task_local! {
    /// The worker's transactional producer, in its agents' tasks under exactly-once: what they
    /// send is committed with the offsets of the events that made it.
    static TRANSACTIONAL: Arc<Producer>;
}

/// Runs `work` (an agent's task) with its sends going through `producer`'s transactions.
pub(crate) fn in_transactions<F: Future>(
    producer: Arc<Producer>,
    work: F,
) -> impl Future<Output = F::Output> {
    TRANSACTIONAL.scope(producer, work)
}

/// A handle on the app's producer, shared by topics, sinks and the runtime, with the app's
/// metrics (everything that sends has it at hand). Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Outbox {
    producer: Arc<OnceLock<Arc<Producer>>>,
    metrics: Arc<Metrics>,
}

impl Outbox {
    /// Installs the producer (once; later calls keep the first).
    pub(crate) fn set(&self, producer: Producer) {
        let _ = self.producer.set(Arc::new(producer));
    }

    /// The app's own producer, once the app is connected (never a transactional one).
    pub(crate) fn app_producer(&self) -> Result<&Arc<Producer>> {
        self.producer.get().ok_or(Error::NotStarted)
    }

    /// The app's metrics.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Brings the retry counter up to the app producer's count (at each scrape: the producer
    /// counts, the metric follows when read).
    pub(crate) fn report_retries(&self) {
        if let Some(producer) = self.producer.get() {
            self.metrics.app_producer_retries(producer.retries());
        }
    }

    /// The producer for a send made here: the worker's transactional one inside an agent under
    /// exactly-once, else the app's. Sends from tasks an agent spawned itself take the app's:
    /// they are delivered at least once, outside the transactions.
    pub(crate) fn producer(&self) -> Result<ProducerRef<'_>> {
        match TRANSACTIONAL.try_with(Arc::clone) {
            Ok(producer) => Ok(ProducerRef::Transactional(producer)),
            Err(_) => self.app_producer().map(|p| ProducerRef::App(p)),
        }
    }

    /// Waits until every record accepted so far is acknowledged; an error if any of the
    /// app's records was not delivered (nothing may be committed then).
    pub(crate) async fn flush(&self) -> Result<()> {
        flush_checked(&*self.producer()?, &self.metrics).await
    }

    /// Hands a record to the producer; returns once it is accepted (batched). Counted under
    /// its topic, looked up per record: hot paths use [`send_counted`](Self::send_counted).
    pub(crate) async fn send(&self, record: ProducerRecord) -> Result<()> {
        let sent = self.metrics.records_sent(&record.topic);
        self.send_counted(record, &sent).await
    }

    /// [`send`](Self::send), counted on `sent`, the counter of the record's topic.
    pub(crate) async fn send_counted(&self, record: ProducerRecord, sent: &Counter) -> Result<()> {
        drop(self.producer()?.send(record).await?);
        sent.inc();
        Ok(())
    }

    /// Hands a record to the app's own producer, outside any transaction (requests to other
    /// agents, failure replies: an exactly-once agent's transaction may never commit).
    pub(crate) async fn send_outside_transactions(&self, record: ProducerRecord) -> Result<()> {
        let sent = self.metrics.records_sent(&record.topic);
        drop(self.app_producer()?.send(record).await?);
        sent.inc();
        Ok(())
    }

    /// Sends a record and waits for the broker's acknowledgement.
    pub(crate) async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let sent = self.metrics.records_sent(&record.topic);
        let written = self.producer()?.send(record).await?.await?;
        sent.inc();
        Ok(written)
    }
}

/// The producer a send takes (the app's is borrowed: no reference count on the hot path).
pub(crate) enum ProducerRef<'a> {
    App(&'a Producer),
    Transactional(Arc<Producer>),
}

impl std::ops::Deref for ProducerRef<'_> {
    type Target = Producer;
    fn deref(&self) -> &Producer {
        match self {
            ProducerRef::App(p) => p,
            ProducerRef::Transactional(p) => p,
        }
    }
}

/// Flushes `producer`; an error if any record it accepted since it started was not delivered
/// (counted in `metrics`).
pub(crate) async fn flush_checked(producer: &Producer, metrics: &Metrics) -> Result<()> {
    producer.flush().await;
    let failures = producer.delivery_failures();
    if failures.records > 0 {
        metrics.producer_failures(failures.records);
        return Err(Error::Delivery {
            records: failures.records,
            last: failures.last,
        });
    }
    Ok(())
}
