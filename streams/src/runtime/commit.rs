//! Committing done offsets: flush the producer first, so that every record sent while
//! handling a done event is acknowledged before its offset is committed, and stop the app if
//! one was not delivered.

use std::sync::Arc;

use kafka_client::TopicPartition;

use crate::error::{Error, Result};
use crate::offsets::Acks;
use crate::outbox::Outbox;

/// Decides what may be committed, per the rule above.
pub(crate) struct Committer {
    pub acks: Arc<Acks>,
    outbox: Outbox,
}

impl Committer {
    pub(crate) fn new(acks: Arc<Acks>, outbox: Outbox) -> Self {
        Committer { acks, outbox }
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
        self.flush().await?;
        Ok(positions)
    }
}
