//! Bringing a table partition up to date from its changelog.

use std::time::Duration;

use kafka_client::consumer::{AutoOffsetReset, Consumer, ConsumerConfig, IsolationLevel, Offset};
use kafka_client::TopicPartition;
use prometheus_client::metrics::gauge::Gauge;
use stores::WriteBatch;

use super::partitions::TableCore;
use super::progress::Progress;
use crate::error::{Error, Result};

/// Records applied to the store per atomic batch during recovery.
const BATCH_RECORDS: usize = 10_000;
/// How often a recovery waiting for records checks whether the consumer reached the end
/// anyway (the last offsets were compacted away or were not records).
const END_CHECK: Duration = Duration::from_millis(500);
/// The first such check after a record.
const FIRST_END_CHECK: Duration = Duration::from_millis(5);

/// The settings of the consumers that read changelogs (recovery, standby replicas): no
/// automatic offset reset, so that a position below the changelog's log start (records deleted
/// by retention or DeleteRecords before this worker read them) is an error that recovery
/// handles (wipe and rebuild), never a silent jump to the changelog's end. They read committed:
/// under exactly-once a changelog holds records of aborted transactions, which never happened
/// (without transactions this changes nothing).
pub(crate) fn changelog_consumer_config() -> ConsumerConfig {
    ConsumerConfig::default()
        .with_auto_offset_reset(AutoOffsetReset::None)
        .with_isolation_level(IsolationLevel::ReadCommitted)
        .with_fetch_max_wait(Duration::from_millis(100))
}

/// Reads changelog partition `partition` of `table` from the store's applied offset + 1 (the
/// log start when the store has none, as a memory store after a restart) up to `end`, the
/// changelog's high watermark taken when the partition was assigned (or when recovery started
/// over, below), and applies the records
/// to the store in atomic batches, each with the offset of its last record (tombstones delete).
/// Returns the number of records read.
///
/// A store ahead of its changelog (applied offset at or past `end`: the changelog topic was
/// recreated, or `reset` ran on another machine) holds data no other copy has: its partition
/// is wiped (data and applied offset, in one atomic step) and rebuilt from the changelog's
/// start, with a warning that says why.
///
/// Changelog records the store has not applied yet may have been deleted (the changelog's log
/// start moved past the position, by retention or DeleteRecords, before or during recovery):
/// the store cannot be brought up to date from the changelog, so its partition is wiped, with
/// a warning that says why, and rebuilt from the changelog's new start (as Kafka Streams does
/// with a corrupted task); the same if the changelog now ends before the position (recreated
/// during recovery). The consumer must have [`AutoOffsetReset::None`] (another policy
/// would jump over the deleted records silently): [`Error::InvalidSetting`] otherwise.
///
/// The consumer's assignment is replaced by the changelog partition and left empty at the end:
/// give each concurrent recovery its own consumer. The partition must not be active (the
/// runtime calls [`TableCore::assign`] first, and
/// [`TableCore::set_active`] after); an unassigned partition is recovered as a standby copy.
///
/// Every record's key and value must decode with the table's codecs and types; one that does
/// not stops recovery with [`Error::TableDecode`] naming the table, partition and offset (the
/// batches before it stay applied, so a fixed run resumes there).
///
/// Cancel-safe in what matters: dropping the future (a revocation during recovery) keeps the
/// batches applied so far and their offset; the consumer then keeps its assignment.
///
/// `remaining`, a metric, is kept at the records left to replay.
pub async fn recover_partition(
    table: &TableCore,
    consumer: &mut Consumer,
    partition: i32,
    end: i64,
    remaining: Option<&Gauge>,
) -> Result<u64> {
    table.ensure_recoverable(partition)?;
    if consumer.config().auto_offset_reset != AutoOffsetReset::None {
        return Err(Error::invalid_setting(
            "auto_offset_reset",
            format!("{:?}", consumer.config().auto_offset_reset),
            format!(
                "recovering table {} needs a consumer with auto_offset_reset None: another \
                 policy skips changelog records deleted before they were read, silently",
                table.name()
            ),
        ));
    }
    let tp = TopicPartition::new(table.spec().changelog_topic(), partition);
    let (mut start, mut end) = (start_offset(table, partition, end)?, end);
    consumer.assign(vec![tp.clone()]);
    let mut read = 0;
    let result = loop {
        match read_changelog(table, consumer, &tp, (start, end), &mut read, remaining).await {
            Err(Error::Kafka(kafka_client::Error::OffsetOutOfRange { offset, .. })) => {
                // What was read in this pass is dropped with the rest of the partition.
                match out_of_range(table, consumer, &tp, offset).await {
                    Ok(now) => (start, end) = (None, now),
                    Err(e) => break Err(e),
                }
            }
            done => break done.map(|()| read),
        }
    };
    consumer.assign(Vec::new());
    result
}

/// The consumer's position `position` in changelog partition `tp` left the log (a fetch
/// answered OFFSET_OUT_OF_RANGE): records the store had not applied yet were deleted (the log
/// start moved past the position: retention, or DeleteRecords), or the changelog now ends
/// before it (the topic was recreated). Either way the partition's store cannot be brought up
/// to date: it is wiped (data and applied offset, in one atomic step), with a warning that
/// says why, and the consumer is left at the log start to rebuild it. Returns the changelog's
/// end now. The partition must not be active.
pub(crate) async fn out_of_range(
    table: &TableCore,
    consumer: &mut Consumer,
    tp: &TopicPartition,
    position: i64,
) -> Result<i64> {
    let partition = tp.partition;
    consumer.seek(tp, Offset::Latest).await?;
    let end = consumer.position(tp).unwrap_or(0);
    consumer.seek(tp, Offset::Earliest).await?;
    let log_start = consumer.position(tp).unwrap_or(0);
    if position < log_start {
        tracing::warn!(
            table = table.name(),
            partition,
            changelog = tp.topic.as_str(),
            position,
            log_start,
            "the changelog's log start moved past this partition's position: records it had \
             not read yet were deleted (retention, or DeleteRecords), so its local state cannot \
             be brought up to date; it is wiped and rebuilt from the changelog's start (keys \
             whose every record was deleted are gone)"
        );
    } else {
        tracing::warn!(
            table = table.name(),
            partition,
            changelog = tp.topic.as_str(),
            position,
            changelog_end = end,
            "the changelog ends before this partition's position (was the changelog topic \
             recreated?): its local state holds data no other copy has, so it is wiped and \
             rebuilt from the changelog"
        );
    }
    table.wipe_partition(partition)?;
    Ok(end)
}

/// Where to resume reading changelog partition `partition`, whose end (high watermark) is
/// `end`: after the store's applied offset, or at the log start (`None`) when the store has
/// none. A store whose applied offset is at or past `end` is ahead of its changelog (the topic
/// was recreated, or `reset` ran elsewhere): its partition is wiped, with a warning saying why,
/// and rebuilt from the log start. The partition must not be active.
pub(crate) fn start_offset(table: &TableCore, partition: i32, end: i64) -> Result<Option<i64>> {
    let Some(applied) = table.applied_offset(partition)? else {
        return Ok(None);
    };
    if applied < end {
        return Ok(Some(applied + 1));
    }
    tracing::warn!(
        table = table.name(),
        partition,
        applied,
        changelog_end = end,
        "the store is ahead of its changelog (was the changelog topic recreated, or the app \
         reset on another machine?): it holds data no other copy has, so this partition's local \
         state is wiped and rebuilt from the changelog"
    );
    table.wipe_partition(partition)?;
    Ok(None)
}

async fn read_changelog(
    table: &TableCore,
    consumer: &mut Consumer,
    tp: &TopicPartition,
    (start, end): (Option<i64>, i64),
    read: &mut u64,
    remaining: Option<&Gauge>,
) -> Result<()> {
    let partition = tp.partition;
    consumer
        .seek(tp, start.map_or(Offset::Earliest, Offset::At))
        .await?;
    let first = consumer.position(tp).or(start).unwrap_or(0);
    let mut progress = Progress::new(
        format!("recovering table {} partition {partition}", table.name()),
        end.saturating_sub(first).max(0) as u64,
    );
    tracing::info!(
        table = table.name(),
        partition,
        from = first,
        to = end,
        "recovering from the changelog"
    );
    let left = |position: i64| {
        if let Some(gauge) = remaining {
            gauge.set(end.saturating_sub(position).max(0));
        }
    };
    left(first);
    let mut replay = Replay::new(table, partition);
    let mut position = first;
    // A changelog written under exactly-once ends with a transaction marker, not a record:
    // look at the position soon after the records stop, then less and less often.
    let mut check = FIRST_END_CHECK;
    while position < end {
        let record = tokio::select! {
            record = consumer.recv() => record?,
            _ = tokio::time::sleep(check) => {
                match consumer.position(tp) {
                    Some(p) if p >= end => break,
                    _ => {
                        check = (check * 2).min(END_CHECK);
                        continue;
                    }
                }
            }
        };
        check = FIRST_END_CHECK;
        if record.offset >= end {
            break;
        }
        position = record.offset + 1;
        replay.push(
            record.offset,
            record.key.as_deref(),
            record.value.as_deref(),
        )?;
        progress.advance(1);
        left(position);
    }
    *read += replay.finish()?;
    left(end);
    progress.finish();
    Ok(())
}

/// Applies changelog records of one partition to the table's store, in atomic batches that
/// each carry the offset of their last record. Used by recovery, and by whatever else follows
/// a changelog (standby replicas).
pub(crate) struct Replay<'a> {
    table: &'a TableCore,
    partition: i32,
    batch: WriteBatch,
    /// Offset of the last record in `batch`.
    last: Option<i64>,
    read: u64,
}

impl<'a> Replay<'a> {
    pub fn new(table: &'a TableCore, partition: i32) -> Self {
        Replay {
            table,
            partition,
            batch: WriteBatch::new(),
            last: None,
            read: 0,
        }
    }

    /// Checks the record at `offset` and queues its write (`value: None` deletes). A record
    /// that does not decode is an error naming table, partition and offset; the records before
    /// it are applied first, so the store's offset points just before it.
    pub fn push(&mut self, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<()> {
        if let Err(e) = self.check(offset, key, value) {
            self.apply()?;
            return Err(e);
        }
        let key = key.unwrap_or_default().to_vec();
        match value {
            Some(value) => self.batch.put(self.partition, key, value.to_vec()),
            None => self.batch.delete(self.partition, key),
        };
        self.last = Some(offset);
        self.read += 1;
        if self.batch.len() >= BATCH_RECORDS {
            self.apply()?;
        }
        Ok(())
    }

    fn check(&self, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<()> {
        let decode_error = |part, reason: String| Error::TableDecode {
            table: self.table.name().to_owned(),
            partition: self.partition,
            offset: Some(offset),
            part,
            reason,
        };
        let Some(key) = key else {
            return Err(decode_error(
                "key",
                "the record has no key (a changelog record always has one): was something else \
                 written to the changelog topic?"
                    .into(),
            ));
        };
        self.table
            .check_record(key, value)
            .map_err(|(part, reason)| decode_error(part, reason))
    }

    fn apply(&mut self) -> Result<()> {
        if let Some(last) = self.last.take() {
            let batch = std::mem::take(&mut self.batch);
            self.table.apply_replayed(self.partition, batch, last)?;
        }
        Ok(())
    }

    /// Applies what is queued; returns the number of records pushed.
    pub fn finish(mut self) -> Result<u64> {
        self.apply()?;
        Ok(self.read)
    }
}
