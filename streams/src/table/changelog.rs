//! Producing a partition's pending writes to the changelog and completing the flush: the
//! sequence the runtime's commit loop follows, in one function.

use std::time::Duration;

use kafka_client::producer::{Producer, RecordRef};

use super::partitions::{PendingFlush, TableCore};
use crate::error::Result;

/// Flushes the pending writes of `partition`: takes them (once its close callbacks finished,
/// waiting up to `settle` for them), produces one record per key to the
/// changelog partition of the same number (deletes as tombstones), waits for every ack, then
/// applies the writes with the last acknowledged offset to the store. Returns the number of
/// records written (0 when nothing was pending).
///
/// On a produce error the flush is aborted ([`TableCore::abort_flush`]: the partition is
/// `Recovering` again) and the error returned: do not commit the source offsets of the events
/// that wrote to the table since the last completed flush. A store that failed earlier
/// ([`TableCore::check_store`]) fails the flush before anything is produced, and a store that
/// fails to apply it is [`Error::TableStore`](crate::error::Error::TableStore): stop, commit nothing
/// more.
pub async fn flush_partition(
    table: &TableCore,
    producer: &Producer,
    partition: i32,
    settle: Duration,
) -> Result<usize> {
    let Some(produced) = produce_flush(table, producer, partition, settle).await? else {
        return Ok(0);
    };
    let written = produced.flush.records().len();
    table.complete_flush(produced.flush, produced.last_offset)?;
    Ok(written)
}

/// A flush whose records the broker acknowledged, not yet applied to the store: under
/// exactly-once it is applied once its transaction commits ([`TableCore::complete_flush`]),
/// and dropped with the partition's other unflushed writes if it aborts.
pub(crate) struct ProducedFlush {
    pub flush: PendingFlush,
    /// The offset of its last changelog record, when the producer could say.
    pub last_offset: Option<i64>,
}

/// The first half of [`flush_partition`]: takes the pending writes and produces them (and the
/// table's outbound records), waiting for every acknowledgement; `None` when nothing was
/// pending. On a produce error the flush is aborted, as there.
pub(crate) async fn produce_flush(
    table: &TableCore,
    producer: &Producer,
    partition: i32,
    settle: Duration,
) -> Result<Option<ProducedFlush>> {
    // A store that failed may have lost writes that reads no longer see: nothing of it may
    // reach the changelog (the worker stops; a restart recovers from the changelog).
    table.check_store()?;
    let Some(flush) = table.take_settled(partition, settle).await? else {
        return Ok(None);
    };
    let topic = table.spec().changelog_topic();
    let sent = async {
        // Outbound records first, acknowledged before the changelog has the writes that made
        // them: after a crash either both are there, or the writes are replayed and make them
        // again (a closed window's final result is never lost to a crash).
        if let Some(outbound) = table.outbound() {
            let mut acks = Vec::new();
            for (key, value, timestamp) in flush.outbound_timed() {
                let out = RecordRef {
                    key: key.as_deref(),
                    value: Some(&value),
                    timestamp,
                    ..RecordRef::new(&outbound.topic)
                };
                acks.push(producer.send_ref(out).await?);
            }
            for ack in acks {
                ack.await?;
            }
        }
        let mut acks = Vec::with_capacity(flush.records().len());
        // Borrowed parts, copied into the batch: no topic name or reference count per record.
        for record in flush.records() {
            let out = RecordRef {
                partition: Some(flush.partition()),
                key: Some(&record.key),
                value: record.value.as_deref(),
                ..RecordRef::new(&topic)
            };
            acks.push(producer.send_ref(out).await?);
        }
        let mut last = None;
        for ack in acks {
            let offset = ack.await?.offset;
            if offset >= 0 {
                last = last.max(Some(offset));
            }
        }
        Ok::<_, kafka_client::Error>(last)
    }
    .await;
    match sent {
        Ok(last_offset) => Ok(Some(ProducedFlush { flush, last_offset })),
        Err(e) => {
            table.abort_flush(partition);
            Err(e.into())
        }
    }
}
