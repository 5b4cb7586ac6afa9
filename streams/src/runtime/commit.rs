//! Committing done offsets: write the tables' pending changes to their changelogs and flush
//! the producer first, so that every record sent and every table write made while handling a
//! done event is acknowledged before its offset is committed, and stop the app if one was not
//! delivered. After a commit the tables' stores are made durable.

use std::sync::Arc;

use kafka_client::group::GroupConsumer;
use kafka_client::TopicPartition;
use tokio::task::JoinHandle;

use super::tables::Tables;
use crate::error::{Error, Result};
use crate::offsets::Acks;
use crate::outbox::Outbox;
use crate::table::flush_partition;

/// Decides what may be committed, per the rule above.
pub(crate) struct Committer {
    pub acks: Arc<Acks>,
    outbox: Outbox,
    pub tables: Arc<Tables>,
    /// One preparation at a time: table flushes of a partition must complete in the order
    /// they were taken (the worker's commits and a revocation's may overlap).
    preparing: tokio::sync::Mutex<()>,
}

impl Committer {
    pub(crate) fn new(acks: Arc<Acks>, outbox: Outbox, tables: Arc<Tables>) -> Self {
        Committer {
            acks,
            outbox,
            tables,
            preparing: tokio::sync::Mutex::new(()),
        }
    }

    /// Writes every held table partition's pending changes to its changelog and applies them
    /// to the store once acknowledged. A write that fails stops the app (as an undelivered
    /// record does): the partition's unflushed writes are gone, and only a restart recovers
    /// them from the changelog and redelivers their events.
    async fn flush_tables(&self) -> Result<()> {
        if self.tables.is_empty() {
            return Ok(());
        }
        let producer = self.outbox.producer()?;
        let flushes = self.tables.cores().iter().flat_map(|core| {
            core.owned_partitions()
                .into_iter()
                .map(move |p| async move { (core, flush_partition(core, producer, p).await) })
        });
        for (core, outcome) in futures::future::join_all(flushes).await {
            if let Err(e) = outcome {
                if let Error::TableStore { .. } = e {
                    return Err(e); // it says what failed and what to do
                }
                return Err(Error::Table {
                    table: core.name().to_owned(),
                    reason: format!(
                        "writing to the changelog {} failed ({e}); the worker stops so that nothing \
                         is committed past it: restart it (the table recovers from its changelog)",
                        core.spec().changelog_topic()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The offsets in `positions` were committed: remember them, and make the tables' stores
    /// durable (a store behind its changelog only replays a little more after a crash).
    pub(crate) fn committed(&self, positions: &[(TopicPartition, i64)]) {
        self.acks.committed(positions);
        self.tables.flush_stores();
    }

    /// Waits until every record accepted so far is acknowledged; an error if any of the
    /// app's records was not delivered (nothing may be committed then).
    pub(crate) async fn flush(&self) -> Result<()> {
        let producer = self.outbox.producer()?;
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

    /// The positions to commit now: the done offsets that moved (of `only`, if given),
    /// taken before the flush that makes them safe.
    pub(crate) async fn ready(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        // A store that failed may have lost writes: nothing more is committed, the worker stops.
        self.tables.check_stores()?;
        let positions = match only {
            None => self.acks.progress(),
            Some(tps) => self
                .acks
                .positions(Some(tps))
                .into_iter()
                .filter(|(_, p)| *p >= 0)
                .collect(),
        };
        if positions.is_empty() {
            return Ok(positions);
        }
        let _one_at_a_time = self.preparing.lock().await;
        self.flush_tables().await?;
        self.flush().await?;
        Ok(positions)
    }
}

/// A commit that runs beside the worker's dispatch loop, so that events keep flowing while the
/// producer is flushed and the broker answers: [`Committer::ready`] in a task, then the commit
/// request (the group consumer sends commits in the order they were made), then
/// [`Committer::committed`]. One preparation at a time; commits follow each other in order.
/// Positions to commit: the next offset to read, per partition.
pub(crate) type Positions = Vec<(TopicPartition, i64)>;

#[derive(Default)]
pub(crate) struct BackgroundCommit {
    preparing: Option<JoinHandle<Result<Positions>>>,
    committing: Vec<JoinHandle<()>>,
}

impl BackgroundCommit {
    /// Starts preparing a commit, unless one is being prepared.
    pub(crate) fn start(&mut self, committer: &Arc<Committer>) {
        if self.preparing.is_none() {
            let committer = committer.clone();
            self.preparing = Some(tokio::spawn(async move { committer.ready(None).await }));
        }
        self.committing.retain(|t| !t.is_finished());
    }

    pub(crate) fn is_preparing(&self) -> bool {
        self.preparing.is_some()
    }

    /// The prepared positions, once ready (pending while nothing is prepared); an error when
    /// the app must stop (a record not delivered).
    pub(crate) async fn prepared(&mut self) -> Result<Positions> {
        let Some(task) = self.preparing.as_mut() else {
            return std::future::pending().await;
        };
        let outcome = task.await;
        self.preparing = None;
        outcome.unwrap_or_else(|e| Err(Error::Runtime(format!("the commit task failed: {e}"))))
    }

    /// Sends the commit of prepared `positions`; it completes in the background.
    pub(crate) fn commit(
        &mut self,
        consumer: &GroupConsumer,
        committer: &Arc<Committer>,
        positions: Positions,
    ) {
        if positions.is_empty() {
            return;
        }
        let request = consumer.commit_offsets_async(positions.clone());
        let committer = committer.clone();
        self.committing.push(tokio::spawn(async move {
            match request.await {
                Ok(()) => {
                    tracing::debug!(?positions, "committed");
                    committer.committed(&positions);
                }
                Err(e) => tracing::warn!(error = %e, "commit failed; the next one will retry"),
            }
        }));
    }

    /// Drops what is under way (a simulated crash).
    pub(crate) fn abort(&mut self) {
        if let Some(task) = self.preparing.take() {
            task.abort();
        }
        self.committing.drain(..).for_each(|t| t.abort());
    }

    /// Completes what is under way: the preparation (committed then) and the commits sent.
    pub(crate) async fn settle(
        &mut self,
        consumer: &GroupConsumer,
        committer: &Arc<Committer>,
    ) -> Result<()> {
        if self.is_preparing() {
            let positions = self.prepared().await?;
            self.commit(consumer, committer, positions);
        }
        for task in self.committing.drain(..) {
            let _ = task.await;
        }
        Ok(())
    }
}
