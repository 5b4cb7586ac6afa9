//! Committing done offsets: write the tables' pending changes to their changelogs and flush
//! the producer first, so that every record sent and every table write made while handling a
//! done event is acknowledged before its offset is committed, and stop the app if one was not
//! delivered. After a commit the tables' stores are made durable.

use std::sync::Arc;

use kafka_client::TopicPartition;

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
}

impl Committer {
    pub(crate) fn new(acks: Arc<Acks>, outbox: Outbox, tables: Arc<Tables>) -> Self {
        Committer {
            acks,
            outbox,
            tables,
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
        self.flush_tables().await?;
        self.flush().await?;
        Ok(positions)
    }
}
