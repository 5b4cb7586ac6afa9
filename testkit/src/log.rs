//! One partition's in-memory log: batches stored as produced, offsets stamped on append.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::batch::{self, Header};

/// A stored batch and the header fields lookups need.
#[derive(Debug, Clone)]
pub(crate) struct StoredBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: Bytes,
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

/// One partition: its log, its producer state and the notifier long-polling fetches wait on.
#[derive(Debug)]
pub(crate) struct PartitionLog {
    pub batches: Vec<StoredBatch>,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub leader: i32,
    pub leader_epoch: i32,
    pub producers: HashMap<i64, ProducerEntry>,
    pub notify: Arc<Notify>,
    /// Total bytes stored (for memory reports).
    pub bytes: usize,
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
            notify: Arc::new(Notify::new()),
            bytes: 0,
        }
    }

    /// Checks an idempotent batch's sequence against the producer's recent batches.
    pub fn check_sequence(&self, h: &Header) -> SequenceCheck {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return SequenceCheck::Append;
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return if h.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder
            };
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

    /// Appends a validated batch, stamping its base offset; returns the base offset.
    pub fn append(&mut self, h: &Header, raw: &[u8]) -> i64 {
        let base = self.high_watermark;
        let bytes = batch::stamp(raw, base, self.leader_epoch);
        let last = base + h.last_offset_delta as i64;
        self.bytes += bytes.len();
        self.batches.push(StoredBatch {
            base_offset: base,
            last_offset: last,
            max_timestamp: h.max_timestamp,
            bytes,
        });
        self.high_watermark = last + 1;
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
        base
    }

    /// Index of the first batch whose last offset is at or after `offset`.
    fn batch_index(&self, offset: i64) -> usize {
        self.batches.partition_point(|b| b.last_offset < offset)
    }

    /// Whole batches from `offset`, up to `max_bytes` but at least one batch when
    /// `at_least_one`; stops before `up_to` (exclusive, the high watermark or LSO).
    pub fn read(&self, offset: i64, max_bytes: usize, at_least_one: bool, up_to: i64) -> Bytes {
        let mut i = self.batch_index(offset);
        let mut out = BytesMut::new();
        while let Some(b) = self.batches.get(i) {
            if b.base_offset >= up_to {
                break;
            }
            if out.len() + b.bytes.len() > max_bytes && !(out.is_empty() && at_least_one) {
                break;
            }
            if out.is_empty() && i + 1 == self.batches.len()
                || out.is_empty() && b.bytes.len() >= max_bytes
            {
                // Single batch: no copy.
                return b.bytes.clone();
            }
            out.extend_from_slice(&b.bytes);
            i += 1;
        }
        out.freeze()
    }

    /// The offset and timestamp of the first record with a timestamp at or after `ts`.
    pub fn offset_for_timestamp(&self, ts: i64) -> Option<(i64, i64)> {
        for b in &self.batches {
            if b.max_timestamp < ts {
                continue;
            }
            if let Some(recs) = batch::records(&b.bytes) {
                let Ok(h) = batch::parse_header(&b.bytes) else {
                    continue;
                };
                for r in recs {
                    let rts = h.base_timestamp + r.timestamp_delta;
                    if rts >= ts {
                        return Some((b.base_offset + r.offset_delta as i64, rts));
                    }
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
        if let (Some(recs), Ok(h)) = (batch::records(&b.bytes), batch::parse_header(&b.bytes)) {
            let r = recs.iter().max_by_key(|r| r.timestamp_delta)?;
            return Some((
                b.base_offset + r.offset_delta as i64,
                h.base_timestamp + r.timestamp_delta,
            ));
        }
        Some((b.last_offset, b.max_timestamp))
    }

    /// Compacts the log: keeps the latest record per key, drops tombstones whose timestamp is
    /// older than `now_ms - delete_retention_ms`. Compressed batches that lose records are
    /// rewritten uncompressed.
    pub fn compact(&mut self, now_ms: i64, delete_retention_ms: i64) {
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        let mut decoded = Vec::with_capacity(self.batches.len());
        for b in &self.batches {
            let parsed = batch::parse_header(&b.bytes).ok().and_then(|h| {
                if h.is_control() {
                    None
                } else {
                    batch::records(&b.bytes).map(|r| (h, r))
                }
            });
            if let Some((h, recs)) = &parsed {
                for r in recs {
                    if let Some(k) = &r.key {
                        latest.insert(k.clone(), h.base_offset + r.offset_delta as i64);
                    }
                }
            }
            decoded.push(parsed);
        }
        let mut kept = Vec::with_capacity(self.batches.len());
        let mut bytes = 0;
        for (b, parsed) in self.batches.drain(..).zip(decoded) {
            let Some((h, recs)) = parsed else {
                bytes += b.bytes.len();
                kept.push(b);
                continue;
            };
            let total = recs.len();
            let keep: Vec<_> = recs
                .into_iter()
                .filter(|r| {
                    let offset = h.base_offset + r.offset_delta as i64;
                    let Some(k) = &r.key else { return true };
                    if latest.get(k) != Some(&offset) {
                        return false;
                    }
                    r.value.is_some()
                        || h.base_timestamp + r.timestamp_delta > now_ms - delete_retention_ms
                })
                .collect();
            if keep.len() == total {
                bytes += b.bytes.len();
                kept.push(b);
                continue;
            }
            if let Some(rebuilt) = batch::rebuild(&h, &keep) {
                let epoch =
                    i32::from_be_bytes([b.bytes[12], b.bytes[13], b.bytes[14], b.bytes[15]]);
                let base = h.base_offset + keep[0].offset_delta as i64;
                let rebuilt = batch::stamp(&rebuilt, base, epoch);
                bytes += rebuilt.len();
                kept.push(StoredBatch {
                    base_offset: base,
                    last_offset: b.last_offset,
                    max_timestamp: b.max_timestamp,
                    bytes: rebuilt,
                });
            }
        }
        self.batches = kept;
        self.bytes = bytes;
    }
}
