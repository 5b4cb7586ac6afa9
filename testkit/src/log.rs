//! One partition's in-memory log: batches stored as produced, offsets stamped on append.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_client::protocol::record::{
    set_base_offset, set_partition_leader_epoch, BatchBuilder, BatchHeader, Compression,
    EndTxnMarker, Record, RecordBatch, RecordBatches,
};
use tokio::sync::Notify;

/// Largest decompressed size accepted when decoding a batch's records.
const MAX_DECOMPRESSED: usize = 64 << 20;

/// All the records of a batch, decompressed; `None` if any is malformed.
pub(crate) fn decode_records(batch: &RecordBatch) -> Option<Vec<Record>> {
    batch
        .records_with_limit(MAX_DECOMPRESSED)
        .ok()?
        .collect::<Result<_, _>>()
        .ok()
}

/// A stored batch and the header fields lookups need.
#[derive(Debug, Clone)]
pub(crate) struct StoredBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: Bytes,
}

impl StoredBatch {
    /// The batch's header and records, decompressed; `None` if malformed.
    pub fn records(&self) -> Option<(BatchHeader, Vec<Record>)> {
        let batch = RecordBatches::new(self.bytes.clone()).next()?.ok()?;
        let records = decode_records(&batch)?;
        Some((*batch.header(), records))
    }
}

/// The last batches appended by one idempotent producer (Kafka keeps five).
#[derive(Debug, Default, Clone)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    /// (first sequence, last sequence, base offset), oldest first.
    pub recent: VecDeque<(i32, i32, i64)>,
}

/// What an idempotence check decided for a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    Append,
    /// A retry of a batch already in the log: answer success with its base offset.
    Duplicate(i64),
    OutOfOrder,
    FencedEpoch,
}

/// An aborted transaction as the partition's index keeps it: the producer, the offset of its
/// first record here and the offset of its ABORT marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// One partition: its log, its producer state and the notifier long-polling fetches wait on.
#[derive(Debug)]
pub(crate) struct PartitionLog {
    pub batches: Vec<StoredBatch>,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub leader: i32,
    pub leader_epoch: i32,
    pub producers: HashMap<i64, ProducerEntry>,
    /// Transactions with data here and no marker yet: producer id -> offset of their first
    /// record in this partition.
    pub open_txns: HashMap<i64, i64>,
    /// Aborted transactions, in the order of their markers (so by last offset).
    pub aborted: Vec<AbortedTxn>,
    pub notify: Arc<Notify>,
    /// What the background cleaner knows (see [`PartitionLog::needs_cleaning`]).
    cleaning: Cleaning,
}

/// Bytes cleaned and dirty since the last compaction, and when a tombstone it kept expires:
/// the background cleaner compacts a partition only when this says there is work, as
/// Kafka's does (`min.cleanable.dirty.ratio`), not every log on every pass.
#[derive(Debug, Default)]
struct Cleaning {
    clean_bytes: usize,
    dirty_bytes: usize,
    /// The earliest time (ms) at which a tombstone the last compaction kept may go.
    tombstone_due_ms: Option<i64>,
}

impl PartitionLog {
    pub fn new(leader: i32) -> Self {
        PartitionLog {
            batches: Vec::new(),
            log_start_offset: 0,
            high_watermark: 0,
            leader,
            leader_epoch: 0,
            producers: HashMap::new(),
            open_txns: HashMap::new(),
            aborted: Vec::new(),
            notify: Arc::new(Notify::new()),
            cleaning: Cleaning::default(),
        }
    }

    /// The last stable offset: the first offset of the earliest open transaction, else the
    /// high watermark. `read_committed` consumers read only below it.
    pub fn last_stable_offset(&self) -> i64 {
        self.open_txns
            .values()
            .copied()
            .min()
            .map_or(self.high_watermark, |first| first.min(self.high_watermark))
    }

    /// The aborted transactions a fetch of `[from, to)` must list: those whose range
    /// (first record to marker) overlaps it.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .copied()
            .collect()
    }

    /// Writes a transaction marker (a control batch with one COMMIT or ABORT record) for
    /// `producer_id` at `epoch`, closes the producer's open transaction here and, on abort,
    /// indexes it. The marker's epoch fences the producer's older epochs on this partition.
    /// Returns the marker's offset.
    pub fn write_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> kafka_client::Result<i64> {
        let raw = EndTxnMarker {
            commit,
            coordinator_epoch,
        }
        .encode_batch(producer_id, epoch, now_ms)?;
        let header = BatchHeader::parse(&raw)?;
        let offset = self.append(&header, &raw)?;
        match self.producers.get_mut(&producer_id) {
            Some(entry) if entry.epoch >= epoch => {}
            Some(entry) => {
                entry.epoch = epoch;
                entry.recent.clear();
            }
            None => {
                self.producers.insert(
                    producer_id,
                    ProducerEntry {
                        epoch,
                        recent: VecDeque::new(),
                    },
                );
            }
        }
        if let Some(first) = self.open_txns.remove(&producer_id) {
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset: first,
                    last_offset: offset,
                });
            }
        }
        self.notify.notify_waiters();
        Ok(offset)
    }

    /// Whether the record at `offset` of a transactional batch of `producer_id` belongs to an
    /// aborted transaction.
    fn is_aborted(&self, producer_id: i64, offset: i64) -> bool {
        self.aborted.iter().any(|a| {
            a.producer_id == producer_id && a.first_offset <= offset && offset <= a.last_offset
        })
    }

    /// Checks an idempotent batch's sequence against the producer's recent batches.
    pub fn check_sequence(&self, h: &BatchHeader) -> SequenceCheck {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return SequenceCheck::Append;
        }
        // A producer this partition does not know starts at any sequence, as on Kafka (whose
        // state for a producer may have expired): so a client must not let a later batch
        // overtake a failed first one.
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return SequenceCheck::Append;
        };
        if h.producer_epoch < entry.epoch {
            return SequenceCheck::FencedEpoch;
        }
        if h.producer_epoch > entry.epoch {
            return if h.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder
            };
        }
        let last = h.last_sequence();
        if let Some(&(_, _, offset)) = entry
            .recent
            .iter()
            .find(|(first, l, _)| *first == h.base_sequence && *l == last)
        {
            return SequenceCheck::Duplicate(offset);
        }
        let expected = match entry.recent.back() {
            Some(&(_, l, _)) => {
                if l == i32::MAX {
                    0
                } else {
                    l + 1
                }
            }
            None => 0,
        };
        if h.base_sequence == expected {
            SequenceCheck::Append
        } else {
            SequenceCheck::OutOfOrder
        }
    }

    /// Appends a validated batch, stamping its base offset and the leader epoch; returns the
    /// base offset. Fails only if `raw` is not a whole batch.
    pub fn append(&mut self, h: &BatchHeader, raw: &[u8]) -> kafka_client::Result<i64> {
        let base = self.high_watermark;
        let bytes = stamp(raw, base, self.leader_epoch)?;
        let last = base + h.last_offset_delta as i64;
        self.cleaning.dirty_bytes += bytes.len();
        self.batches.push(StoredBatch {
            base_offset: base,
            last_offset: last,
            max_timestamp: h.max_timestamp,
            bytes,
        });
        self.high_watermark = last + 1;
        if h.is_transactional() && !h.is_control() && h.producer_id >= 0 {
            self.open_txns.entry(h.producer_id).or_insert(base);
        }
        if h.producer_id >= 0 && h.base_sequence >= 0 {
            let entry = self.producers.entry(h.producer_id).or_default();
            if entry.epoch != h.producer_epoch {
                entry.epoch = h.producer_epoch;
                entry.recent.clear();
            }
            entry
                .recent
                .push_back((h.base_sequence, h.last_sequence(), base));
            while entry.recent.len() > 5 {
                entry.recent.pop_front();
            }
        }
        self.notify.notify_waiters();
        Ok(base)
    }

    /// Moves the log start to `offset` (at most the high watermark), dropping the batches wholly
    /// below it, as Kafka's DeleteRecords or retention do; returns the new log start. A fetch
    /// below it is then out of range.
    pub fn delete_before(&mut self, offset: i64) -> i64 {
        let start = offset.clamp(self.log_start_offset, self.high_watermark);
        self.batches.retain(|b| b.last_offset >= start);
        let total = self.batches.iter().map(|b| b.bytes.len()).sum::<usize>();
        self.cleaning.clean_bytes = self.cleaning.clean_bytes.min(total);
        self.cleaning.dirty_bytes = self.cleaning.dirty_bytes.min(total);
        self.log_start_offset = start;
        self.notify.notify_waiters();
        start
    }

    /// Index of the first batch whose last offset is at or after `offset`.
    fn batch_index(&self, offset: i64) -> usize {
        self.batches.partition_point(|b| b.last_offset < offset)
    }

    /// Whole batches from `offset`, up to `max_bytes` but at least one batch when
    /// `at_least_one`; stops before `up_to` (exclusive, the high watermark or LSO). Returns
    /// the bytes and the offset after the last batch returned (`offset` when none).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        at_least_one: bool,
        up_to: i64,
    ) -> (Bytes, i64) {
        let from = &self.batches[self.batch_index(offset)..];
        let mut count = 0;
        let mut size = 0;
        for b in from {
            if b.base_offset >= up_to {
                break;
            }
            if size + b.bytes.len() > max_bytes && !(count == 0 && at_least_one) {
                break;
            }
            size += b.bytes.len();
            count += 1;
        }
        // Fetch serves this on every poll: one batch is shared, not copied, and several are
        // copied once into a buffer of the right size.
        let end = from[..count].last().map_or(offset, |b| b.last_offset + 1);
        let bytes = match &from[..count] {
            [] => Bytes::new(),
            [one] => one.bytes.clone(),
            several => {
                let mut out = BytesMut::with_capacity(size);
                for b in several {
                    out.extend_from_slice(&b.bytes);
                }
                out.freeze()
            }
        };
        (bytes, end)
    }

    /// The offset and timestamp of the first record with a timestamp at or after `ts`.
    pub fn offset_for_timestamp(&self, ts: i64) -> Option<(i64, i64)> {
        for b in &self.batches {
            if b.max_timestamp < ts {
                continue;
            }
            if let Some((_, recs)) = b.records() {
                if let Some(r) = recs.iter().find(|r| r.timestamp >= ts) {
                    return Some((r.offset, r.timestamp));
                }
            } else {
                return Some((b.base_offset, b.max_timestamp));
            }
        }
        None
    }

    /// The offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let b = self.batches.iter().max_by_key(|b| b.max_timestamp)?;
        if let Some((_, recs)) = b.records() {
            let r = recs.iter().max_by_key(|r| r.timestamp)?;
            return Some((r.offset, r.timestamp));
        }
        Some((b.last_offset, b.max_timestamp))
    }

    /// Whether the background cleaner should compact this partition now: its dirty part
    /// (written since the last compaction) is at least `min_dirty_ratio` of the log, or a
    /// tombstone the last compaction kept has outlived `delete.retention.ms`. Compacting
    /// every log on every pass decoded all of it under the cluster's lock, which slowed a
    /// long-lived broker down as its changelogs grew.
    pub fn needs_cleaning(&self, now_ms: i64, min_dirty_ratio: f64) -> bool {
        let Cleaning {
            clean_bytes,
            dirty_bytes,
            tombstone_due_ms,
        } = self.cleaning;
        let dirty = dirty_bytes > 0
            && dirty_bytes as f64 >= min_dirty_ratio * (clean_bytes + dirty_bytes) as f64;
        dirty || tombstone_due_ms.is_some_and(|due| now_ms >= due)
    }

    /// Compacts the log below the last stable offset (like Kafka's cleaner, which stops at
    /// the first uncleanable offset): keeps the latest record per key, drops tombstones whose
    /// timestamp is older than `now_ms - delete_retention_ms` and the records of aborted
    /// transactions. Control batches (transaction markers) are kept. Compressed batches that
    /// lose records are rewritten uncompressed.
    pub fn compact(&mut self, now_ms: i64, delete_retention_ms: i64) {
        let stable = self.last_stable_offset();
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        let mut decoded = Vec::with_capacity(self.batches.len());
        for b in &self.batches {
            let parsed = b
                .records()
                .filter(|(h, _)| !h.is_control() && b.last_offset < stable);
            let parsed = parsed.map(|(h, recs)| {
                if h.is_transactional() {
                    let recs = recs
                        .into_iter()
                        .filter(|r| !self.is_aborted(h.producer_id, r.offset))
                        .collect();
                    (h, recs)
                } else {
                    (h, recs)
                }
            });
            if let Some((_, recs)) = &parsed {
                for r in recs {
                    if let Some(k) = &r.key {
                        latest.insert(k.clone(), r.offset);
                    }
                }
            }
            decoded.push(parsed);
        }
        let mut kept = Vec::with_capacity(self.batches.len());
        let mut tombstone_due_ms: Option<i64> = None;
        for (b, parsed) in self.batches.drain(..).zip(decoded) {
            let Some((h, recs)) = parsed else {
                kept.push(b);
                continue;
            };
            // The header's count: aborted records were already left out of `recs`.
            let total = usize::try_from(h.record_count).unwrap_or(0);
            let keep: Vec<_> = recs
                .into_iter()
                .filter(|r| {
                    let Some(k) = &r.key else { return true };
                    if latest.get(k) != Some(&r.offset) {
                        return false;
                    }
                    r.value.is_some() || r.timestamp > now_ms - delete_retention_ms
                })
                .collect();
            for r in keep.iter().filter(|r| r.value.is_none() && r.key.is_some()) {
                let due = r.timestamp.saturating_add(delete_retention_ms);
                tombstone_due_ms = Some(tombstone_due_ms.map_or(due, |d| d.min(due)));
            }
            if keep.len() == total {
                kept.push(b);
                continue;
            }
            let Some(first) = keep.first() else {
                continue; // nothing left: the whole batch goes
            };
            match rewrite(&h, &keep) {
                Ok(rebuilt) => {
                    kept.push(StoredBatch {
                        base_offset: first.offset,
                        last_offset: b.last_offset,
                        max_timestamp: b.max_timestamp,
                        bytes: rebuilt,
                    });
                }
                Err(e) => {
                    tracing::warn!(base_offset = h.base_offset, error = %e, "compaction left a batch as it was");
                    kept.push(b);
                }
            }
        }
        self.batches = kept;
        let (clean, dirty) = self.batches.iter().fold((0, 0), |(c, d), b| {
            if b.last_offset < stable {
                (c + b.bytes.len(), d)
            } else {
                (c, d + b.bytes.len())
            }
        });
        self.cleaning = Cleaning {
            clean_bytes: clean,
            dirty_bytes: dirty,
            tombstone_due_ms,
        };
    }
}

/// A copy of the batch `raw` with its base offset and partition leader epoch stamped (both
/// outside the CRC), as a leader does on append.
fn stamp(raw: &[u8], base_offset: i64, leader_epoch: i32) -> kafka_client::Result<Bytes> {
    let mut b = BytesMut::from(raw);
    set_base_offset(&mut b, base_offset)?;
    set_partition_leader_epoch(&mut b, leader_epoch)?;
    Ok(b.freeze())
}

/// Rewrites a batch with only the records `keep`, like Kafka's log cleaner: offset gaps stay
/// and the original last offset is preserved; producer fields, leader epoch, timestamp type
/// and the transactional flag are kept. Unlike Kafka, the base offset becomes the first kept
/// record's (the base sequence is left as it was) and the result is uncompressed.
fn rewrite(h: &BatchHeader, keep: &[Record]) -> kafka_client::Result<Bytes> {
    let base_offset = keep.first().map_or(h.base_offset, |r| r.offset);
    let mut builder = BatchBuilder::new(Compression::None)
        .base_offset(base_offset)
        .partition_leader_epoch(h.partition_leader_epoch)
        .producer(h.producer_id, h.producer_epoch, h.base_sequence)
        .transactional(h.is_transactional())
        .timestamp_type(h.timestamp_type());
    for r in keep {
        builder.append_record(r)?;
    }
    builder.override_last_offset(h.last_offset())?;
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: &[(&str, Option<&str>, i64)], producer: (i64, i32)) -> Bytes {
        let mut b = BatchBuilder::new(Compression::Gzip).producer(producer.0, 0, producer.1);
        for (k, v, ts) in records {
            b.append(*ts, Some(k.as_bytes()), v.map(str::as_bytes), &[])
                .unwrap();
        }
        b.build().unwrap()
    }

    fn append(log: &mut PartitionLog, raw: Bytes) -> i64 {
        log.append(&BatchHeader::parse(&raw).unwrap(), &raw)
            .unwrap()
    }

    #[test]
    fn append_stamps_and_compaction_keeps_gaps_last_offsets_and_producer_fields() {
        let mut log = PartitionLog::new(0);
        log.leader_epoch = 7;
        append(
            &mut log,
            batch(&[("a", Some("1"), 10), ("b", Some("1"), 11)], (-1, -1)),
        );
        append(
            &mut log,
            batch(
                &[("c", Some("1"), 12), ("a", Some("2"), 13), ("c", None, 14)],
                (5, 0),
            ),
        );
        assert_eq!(log.high_watermark, 5);
        assert_eq!(log.producers[&5].recent, [(0, 2, 2)]);
        assert_eq!(log.offset_for_timestamp(12), Some((2, 12)));
        assert_eq!(log.max_timestamp(), Some((4, 14)));

        log.compact(1_000, 10_000);
        let got: Vec<_> = log
            .batches
            .iter()
            .map(|b| {
                let (h, recs) = b.records().unwrap();
                assert_eq!(
                    (b.base_offset, b.last_offset),
                    (h.base_offset, h.last_offset())
                );
                let recs: Vec<_> = recs.iter().map(|r| (r.offset, r.timestamp)).collect();
                (
                    h.base_offset,
                    h.last_offset(),
                    h.partition_leader_epoch,
                    h.producer_id,
                    h.base_sequence,
                    recs,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 1, 7, -1, -1, vec![(1, 11)]),
                // c's tombstone is within delete.retention.ms: kept; the last offset stays.
                (3, 4, 7, 5, 0, vec![(3, 13), (4, 14)]),
            ]
        );
        log.compact(100_000, 10_000);
        let (h, recs) = log.batches[1].records().unwrap();
        assert_eq!((h.base_offset, h.last_offset(), recs.len()), (3, 4, 1));
        assert_eq!(log.high_watermark, 5);
    }

    #[test]
    fn the_cleaner_waits_for_a_dirty_half_or_a_due_tombstone() {
        let mut log = PartitionLog::new(0);
        assert!(
            !log.needs_cleaning(0, 0.5),
            "an empty log has nothing to clean"
        );
        let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let rows: Vec<_> = keys.iter().map(|k| (k.as_str(), Some("v"), 10)).collect();
        append(&mut log, batch(&rows, (-1, -1)));
        assert!(
            log.needs_cleaning(0, 0.5),
            "a log never cleaned is all dirty"
        );
        log.compact(1_000, 10_000);
        assert!(!log.needs_cleaning(1_000, 0.5), "just cleaned");

        // One key rewritten: far less than half of the log is dirty.
        append(&mut log, batch(&[("k0", Some("w"), 20)], (-1, -1)));
        assert!(!log.needs_cleaning(1_000, 0.5));
        // A tombstone kept for delete.retention.ms makes the log due when it expires.
        append(&mut log, batch(&[("k1", None, 900)], (-1, -1)));
        log.compact(1_000, 10_000);
        assert!(!log.needs_cleaning(10_899, 0.5));
        assert!(log.needs_cleaning(10_900, 0.5), "the kept tombstone is due");
        log.compact(10_900, 10_000);
        assert!(!log.needs_cleaning(20_000, 0.5), "the tombstone is gone");

        // Written until as much is dirty as is clean: due at half, not before.
        while log.cleaning.dirty_bytes < log.cleaning.clean_bytes {
            assert!(!log.needs_cleaning(20_000, 0.5));
            append(&mut log, batch(&rows, (-1, -1)));
        }
        assert!(log.needs_cleaning(20_000, 0.5));
        assert!(
            !log.needs_cleaning(20_000, 0.9),
            "the topic's ratio decides"
        );
    }
}
