//! Following a table partition's changelog into the local store: standby replicas (so that if
//! this worker becomes its owner it replays only what it has not seen yet) and the partitions of
//! global tables (which every worker holds and writes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_client::consumer::{Consumer, Offset};
use kafka_client::{ClientConfig, TopicPartition};

use crate::error::{Error, Result};
use crate::table::{changelog_consumer_config, out_of_range, start_offset, Replay, TableCore};

/// Records applied per store batch at most; a batch is also applied when the changelog is
/// quiet for this long.
const BATCH_RECORDS: usize = 1_000;
const QUIET: Duration = Duration::from_millis(100);

/// Follows changelog partition `partition` of `table` from the store's applied offset, forever
/// (the runtime aborts the task when the partition stops being a standby). Retries what can
/// pass; returns only on a record that does not decode (the error names it). `followed` counts
/// the records applied. A partition held here (a global table's) must be up to date first.
pub(crate) async fn follow(
    table: Arc<TableCore>,
    client: ClientConfig,
    partition: i32,
    followed: Arc<AtomicU64>,
) -> Result<()> {
    let mut pause = Duration::from_millis(100);
    loop {
        match follow_once(&table, &client, partition, &followed).await {
            // A store error does not pass: a failed store refuses every call until reopened.
            Err(e @ (Error::TableDecode { .. } | Error::TableStore { .. })) => return Err(e),
            Err(e) if e.is_table_misuse() => return Err(e),
            Err(Error::Store(e)) => return Err(table.store_error(&[partition], e)),
            Err(e) => {
                tracing::warn!(table = table.name(), partition, error = %e, ?pause, "following the changelog failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Ok(()) => return Ok(()),
        }
    }
}

async fn follow_once(
    table: &TableCore,
    client: &ClientConfig,
    partition: i32,
    followed: &AtomicU64,
) -> Result<()> {
    if !table.spec().is_global() {
        table.ensure_recoverable(partition)?;
    }
    let tp = TopicPartition::new(table.spec().changelog_topic(), partition);
    let mut consumer = Consumer::new(client.clone(), changelog_consumer_config()).await?;
    consumer.assign(vec![tp.clone()]);
    let start = if table.spec().is_global() {
        // Held and recovered here already.
        table.applied_offset(partition)?.map(|o| o + 1)
    } else {
        // The end now, to tell a copy ahead of its changelog (rebuilt from the start).
        consumer.seek(&tp, Offset::Latest).await?;
        let end = consumer.position(&tp).unwrap_or(0);
        start_offset(table, partition, end)?
    };
    consumer
        .seek(&tp, start.map_or(Offset::Earliest, Offset::At))
        .await?;
    loop {
        let mut replay = Replay::new(table, partition);
        let mut queued = 0;
        let mut out_of_range_at = None;
        while queued < BATCH_RECORDS {
            match tokio::time::timeout(QUIET, consumer.recv()).await {
                Err(_) => break,
                Ok(Err(kafka_client::Error::OffsetOutOfRange { offset, .. })) => {
                    out_of_range_at = Some(offset);
                    break;
                }
                Ok(record) => {
                    let record = record?;
                    replay.push(
                        record.offset,
                        record.key.as_deref(),
                        record.value.as_deref(),
                    )?;
                    queued += 1;
                }
            }
        }
        if let Some(position) = out_of_range_at {
            // The position left the changelog (records this copy had not applied were deleted,
            // or the topic was recreated): what is queued is dropped with the rest of the copy,
            // rebuilt from the log start.
            drop(replay);
            if table.spec().is_global() {
                // Held and read here: it cannot be wiped under its readers.
                return Err(Error::ChangelogGap {
                    table: table.name().to_owned(),
                    partition,
                    offset: position,
                });
            }
            out_of_range(table, &mut consumer, &tp, position).await?;
            continue;
        }
        followed.fetch_add(replay.finish()?, Ordering::Relaxed);
    }
}
