//! What the consumer and its fetcher task share: per-partition positions, fetch state and
//! buffered record sets, behind one mutex.
//!
//! The consumer side owns *positions* (the next offset to hand to the caller); the fetcher owns
//! *fetch offsets* (the next offset to ask a broker for, ahead of the position by whatever is
//! buffered). Every seek or reset bumps the partition's epoch, so data fetched for an older
//! epoch is recognised and dropped wherever it is.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::error::Error;
use crate::list_offsets::OffsetSpec;
use crate::topic_partition::TopicPartition;

/// State shared between a [`Consumer`](super::Consumer) and its fetcher task.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the fetcher: assignment, seek, pause/resume, or buffer space freed.
    pub(crate) fetcher_wake: Notify,
    /// Wakes the consumer: data or an error arrived.
    pub(crate) data_ready: Notify,
}

impl Shared {
    pub(crate) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State::default()),
            fetcher_wake: Notify::new(),
            data_ready: Notify::new(),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where the fetcher is with a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchState {
    /// The start offset must be looked up first (ListOffsets).
    Reset(OffsetSpec),
    /// Fetch from this offset next.
    At(i64),
    /// Stopped after an error that was reported (or a broken frame); waits for a seek.
    Stopped,
}

/// Fetched records of one partition, waiting to be consumed.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) epoch: u64,
    /// The offset the fetch asked for: records before it are skipped.
    pub(crate) fetch_offset: i64,
    /// Complete batches only (a partial trailing batch is cut off).
    pub(crate) records: Bytes,
    /// Offset after the last complete batch: the consumer's position once drained.
    pub(crate) next_offset: i64,
    /// Aborted transactions `(producer_id, first_offset)` for read_committed, sorted by first
    /// offset; `None` for read_uncommitted.
    pub(crate) aborted: Option<Vec<(i64, i64)>>,
    /// Framing broke after the records: the broken batch's base offset and why, reported
    /// once the records before it are consumed.
    pub(crate) error_after: Option<(i64, Error)>,
}

impl Chunk {
    /// Bytes counted against the prefetch limit.
    pub(crate) fn size(&self) -> usize {
        self.records.len()
    }
}

/// One assigned partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    pub(crate) topic: Arc<str>,
    pub(crate) epoch: u64,
    /// Next offset to hand to the caller; `None` until the start offset is known.
    pub(crate) position: Option<i64>,
    pub(crate) fetch: FetchState,
    pub(crate) paused: bool,
    pub(crate) queue: VecDeque<Chunk>,
    /// Bytes of this partition's queued chunks plus the one being consumed.
    pub(crate) buffered: usize,
    pub(crate) high_watermark: Option<i64>,
    pub(crate) last_stable_offset: Option<i64>,
    pub(crate) log_start_offset: Option<i64>,
    /// No fetch or reset before this instant (backoff after an error).
    pub(crate) retry_at: Option<Instant>,
    /// Consecutive failed attempts, for the backoff.
    pub(crate) failures: u32,
    /// False from assignment until the consumer first asks for records: fetching (and the
    /// start-offset lookup) begins then, as at Java's first `poll`, so a seek right after
    /// assign does not wait for a long poll at a position nobody wants.
    pub(crate) started: bool,
    /// Base offset of the unreadable batch that was refetched once (a second failure there
    /// is not in transit: the corrupt batch policy applies).
    pub(crate) refetched: Option<i64>,
    /// The partition is stopped at a batch that stayed unreadable: every `recv` reports it
    /// until a seek, pause or unassignment.
    pub(crate) corrupt: Option<(i64, Arc<Error>)>,
}

/// The shared state proper.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) partitions: HashMap<TopicPartition, PartitionState>,
    /// Sum of every partition's `buffered`.
    pub(crate) buffered_bytes: usize,
    /// Errors for the caller, in the order they happened.
    pub(crate) errors: VecDeque<Error>,
    /// Unreadable batches skipped under [`CorruptBatchPolicy::Skip`](super::CorruptBatchPolicy::Skip).
    pub(crate) corrupt_batches_skipped: u64,
    next_epoch: u64,
    /// Some partition is not `started` yet.
    unstarted: bool,
    /// The partition served last, for round-robin between partitions.
    cursor: Option<TopicPartition>,
}

impl State {
    fn bump_epoch(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    /// Adds a partition (or restarts it if present) at `start`.
    pub(crate) fn add(&mut self, tp: TopicPartition, start: FetchState) {
        self.remove(&tp);
        let epoch = self.bump_epoch();
        let position = match start {
            FetchState::At(offset) => Some(offset),
            _ => None,
        };
        let topic: Arc<str> = Arc::from(tp.topic.as_str());
        self.partitions.insert(
            tp,
            PartitionState {
                topic,
                epoch,
                position,
                fetch: start,
                paused: false,
                queue: VecDeque::new(),
                buffered: 0,
                high_watermark: None,
                last_stable_offset: None,
                log_start_offset: None,
                retry_at: None,
                failures: 0,
                started: false,
                refetched: None,
                corrupt: None,
            },
        );
        self.unstarted = true;
    }

    /// The consumer asks for records: every assigned partition may be fetched from now on.
    /// Returns whether some partition started (the fetcher has work).
    pub(crate) fn start_fetching(&mut self) -> bool {
        if !std::mem::take(&mut self.unstarted) {
            return false;
        }
        for p in self.partitions.values_mut() {
            p.started = true;
        }
        true
    }

    /// Forgets a partition and its buffered data.
    pub(crate) fn remove(&mut self, tp: &TopicPartition) -> bool {
        match self.partitions.remove(tp) {
            Some(p) => {
                self.buffered_bytes -= p.buffered;
                true
            }
            None => false,
        }
    }

    /// Drops a partition's buffered data and restarts it at `start` under a new epoch.
    pub(crate) fn restart(&mut self, tp: &TopicPartition, start: FetchState) -> bool {
        let epoch = self.bump_epoch();
        let Some(p) = self.partitions.get_mut(tp) else {
            return false;
        };
        self.buffered_bytes -= p.buffered;
        p.buffered = 0;
        p.queue.clear();
        p.epoch = epoch;
        p.fetch = start;
        if let FetchState::At(offset) = start {
            p.position = Some(offset);
        }
        p.retry_at = None;
        p.failures = 0;
        p.refetched = None;
        p.corrupt = None;
        // Errors about where the partition was (no position, out of range) are stale now:
        // an assign with no position followed by a seek must not report the assign's error.
        self.errors.retain(|e| match e {
            Error::NoPosition { topic, partition }
            | Error::OffsetOutOfRange {
                topic, partition, ..
            } => !(topic == &tp.topic && *partition == tp.partition),
            _ => true,
        });
        true
    }

    /// The error of an unpaused partition stopped at a corrupt batch, if any.
    pub(crate) fn corrupt_error(&self) -> Option<Error> {
        let (tp, (offset, source)) = self
            .partitions
            .iter()
            .filter(|(_, p)| !p.paused)
            .find_map(|(tp, p)| Some((tp, p.corrupt.as_ref()?)))?;
        Some(Error::CorruptRecords {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset: *offset,
            source: source.clone(),
        })
    }

    /// Takes the next chunk to consume, round-robin over unpaused partitions. The chunk stays
    /// counted in `buffered` until [`State::consumed`].
    pub(crate) fn next_chunk(&mut self) -> Option<Chunk> {
        let ready = |p: &PartitionState| !p.paused && !p.queue.is_empty();
        let candidates: Vec<&TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, p)| ready(p))
            .map(|(tp, _)| tp)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        // Order by partition, then pick the first after the cursor (wrapping around).
        let ordered: BTreeMap<&TopicPartition, ()> =
            candidates.into_iter().map(|tp| (tp, ())).collect();
        let after = self.cursor.as_ref().and_then(|c| {
            ordered
                .range::<TopicPartition, _>((Bound::Excluded(c), Bound::Unbounded))
                .next()
        });
        let tp = after
            .or_else(|| ordered.iter().next())
            .map(|(tp, _)| (*tp).clone())?;
        let chunk = self.partitions.get_mut(&tp)?.queue.pop_front();
        self.cursor = Some(tp);
        chunk
    }

    /// A chunk was fully consumed (or dropped): releases its bytes and records the position,
    /// unless the partition was restarted or removed in the meantime.
    pub(crate) fn consumed(&mut self, tp: &TopicPartition, epoch: u64, size: usize, position: i64) {
        if let Some(p) = self.partitions.get_mut(tp).filter(|p| p.epoch == epoch) {
            p.buffered -= size;
            self.buffered_bytes -= size;
            p.position = Some(position);
        }
    }
}
