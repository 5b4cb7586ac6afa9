//! Which offsets are done, per partition, and what may be committed.
//!
//! An event is *done* when every agent that received it has finished with it (its
//! [`AckToken`] is dropped everywhere) and everything those agents sent while handling it is
//! acknowledged by the broker. The commit position of a partition is the lowest offset still
//! pending, or one past the last delivered offset when nothing is pending: offsets that were
//! never delivered (compacted away, transaction markers) do not hold the commit back.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kafka_client::TopicPartition;

/// Done-tracking of one partition.
///
/// ```
/// use streams::offsets::OffsetTracker;
/// let mut t = OffsetTracker::new(10);
/// t.deliver(10);
/// t.deliver(12); // 11 was compacted away
/// t.deliver(13);
/// t.ack(12);
/// assert_eq!(t.commit_position(), 10); // 10 is still being processed
/// t.ack(10);
/// assert_eq!(t.commit_position(), 13); // 11 never came, 12 is done
/// t.ack(13);
/// assert_eq!(t.commit_position(), 14);
/// ```
#[derive(Debug, Clone)]
pub struct OffsetTracker {
    /// Delivered offsets not yet done.
    pending: BTreeSet<i64>,
    /// Pending offsets that failed (poisoned): never done, but no longer in flight.
    failed: BTreeSet<i64>,
    /// One past the highest delivered offset (or the start position).
    next: i64,
    /// The last position handed to a successful commit.
    committed: i64,
}

impl OffsetTracker {
    /// A tracker for a partition read from `start` (its committed offset; -1 if unknown yet,
    /// then the first delivered offset is the start).
    pub fn new(start: i64) -> Self {
        OffsetTracker {
            pending: BTreeSet::new(),
            failed: BTreeSet::new(),
            next: start,
            committed: start,
        }
    }

    /// An offset was handed to agents. Offsets below the last delivered one are ignored
    /// (a redelivery after a seek is tracked from its new position by a new tracker).
    pub fn deliver(&mut self, offset: i64) {
        if offset < self.next {
            return;
        }
        self.pending.insert(offset);
        self.next = offset + 1;
    }

    /// An offset is done. Unknown offsets are ignored.
    pub fn ack(&mut self, offset: i64) {
        self.pending.remove(&offset);
    }

    /// The offset to commit: everything below it is done.
    pub fn commit_position(&self) -> i64 {
        self.pending.first().copied().unwrap_or(self.next)
    }

    /// An offset failed: it stays undone (the commit stops before it) but is not waited for.
    pub fn fail(&mut self, offset: i64) {
        if self.pending.contains(&offset) {
            self.failed.insert(offset);
        }
    }

    /// Offsets delivered and still being worked on (neither done nor failed).
    pub fn in_flight(&self) -> usize {
        self.pending.len() - self.failed.len()
    }

    /// Whether the commit position moved since the last [`committed`](Self::committed).
    pub fn has_progress(&self) -> bool {
        self.commit_position() > self.committed
    }

    /// Records a successful commit of `position`.
    pub fn committed(&mut self, position: i64) {
        self.committed = self.committed.max(position);
    }

    /// The last committed position.
    pub fn last_committed(&self) -> i64 {
        self.committed
    }
}

/// Done-tracking of one assigned partition, shared by its events' tokens.
#[derive(Debug)]
pub struct PartitionAcks {
    tp: TopicPartition,
    tracker: Mutex<OffsetTracker>,
    /// Cleared on revocation: late acks then change nothing.
    live: AtomicBool,
}

impl PartitionAcks {
    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetTracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// Registers a delivered record and returns the token whose last drop acks it.
    pub fn deliver(self: &Arc<Self>, offset: i64) -> AckToken {
        self.lock().deliver(offset);
        AckToken(Arc::new(AckInner {
            part: self.clone(),
            offset,
            poisoned: AtomicBool::new(false),
        }))
    }

    /// The commit position.
    pub fn position(&self) -> i64 {
        self.lock().commit_position()
    }

    /// Events delivered and not done.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight()
    }
}

/// Trackers of every assigned partition, shared by the consumer loop, the agents' ack tokens
/// and the committer.
#[derive(Debug, Default)]
pub struct Acks {
    parts: Mutex<HashMap<TopicPartition, Arc<PartitionAcks>>>,
    /// Bumped by every assignment change, so readers can cache trackers.
    epoch: AtomicU64,
}

impl Acks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, Arc<PartitionAcks>>> {
        self.parts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts tracking a newly assigned partition at its start position.
    pub fn assign(&self, tp: TopicPartition, start: i64) -> Arc<PartitionAcks> {
        let part = Arc::new(PartitionAcks {
            tp: tp.clone(),
            tracker: Mutex::new(OffsetTracker::new(start)),
            live: AtomicBool::new(true),
        });
        if let Some(old) = self.lock().insert(tp, part.clone()) {
            old.live.store(false, Ordering::Release);
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        part
    }

    /// Stops tracking; late acks of the partition are ignored.
    pub fn revoke(&self, tp: &TopicPartition) -> Option<OffsetTracker> {
        let part = self.lock().remove(tp)?;
        part.live.store(false, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let tracker = part.lock().clone();
        Some(tracker)
    }

    /// Changes with every assignment change.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The tracker of an assigned partition.
    pub fn partition(&self, tp: &TopicPartition) -> Option<Arc<PartitionAcks>> {
        self.lock().get(tp).cloned()
    }

    /// Registers a delivered record of an assigned partition; `None` if it is not assigned.
    pub fn deliver(&self, tp: &TopicPartition, offset: i64) -> Option<AckToken> {
        self.partition(tp).map(|p| p.deliver(offset))
    }

    /// Partitions whose commit position moved, with that position.
    pub fn progress(&self) -> Vec<(TopicPartition, i64)> {
        let mut out: Vec<(TopicPartition, i64)> = self
            .lock()
            .values()
            .filter_map(|p| {
                let t = p.lock();
                t.has_progress()
                    .then(|| (p.tp.clone(), t.commit_position()))
            })
            .collect();
        out.sort();
        out
    }

    /// Commit positions of the given partitions (all assigned ones if `None`).
    pub fn positions(&self, only: Option<&[TopicPartition]>) -> Vec<(TopicPartition, i64)> {
        let parts = self.lock();
        let mut out: Vec<(TopicPartition, i64)> = parts
            .values()
            .filter(|p| only.is_none_or(|tps| tps.contains(&p.tp)))
            .map(|p| (p.tp.clone(), p.position()))
            .collect();
        out.sort();
        out
    }

    /// Records successful commits.
    pub fn committed(&self, offsets: &[(TopicPartition, i64)]) {
        let parts = self.lock();
        for (tp, position) in offsets {
            if let Some(p) = parts.get(tp) {
                p.lock().committed(*position);
            }
        }
    }

    /// Events delivered and not done, over the given partitions (all if `None`).
    pub fn in_flight(&self, only: Option<&[TopicPartition]>) -> usize {
        self.lock()
            .values()
            .filter(|p| only.is_none_or(|tps| tps.contains(&p.tp)))
            .map(|p| p.in_flight())
            .sum()
    }

    /// The tracked (assigned) partitions.
    pub fn assigned(&self) -> Vec<TopicPartition> {
        let mut tps: Vec<TopicPartition> = self.lock().keys().cloned().collect();
        tps.sort();
        tps
    }

    /// The commit position of one partition.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.lock().get(tp).map(|p| p.position())
    }
}

/// Marks an event done when the last clone is dropped, unless it was poisoned: a poisoned
/// event is never done, so the commit stops before it and a restart re-delivers it.
#[derive(Debug, Clone)]
pub struct AckToken(Arc<AckInner>);

#[derive(Debug)]
struct AckInner {
    part: Arc<PartitionAcks>,
    offset: i64,
    poisoned: AtomicBool,
}

impl AckToken {
    /// Keeps the event from ever counting as done (a failed send, a stopped agent).
    pub fn poison(&self) {
        self.0.poisoned.store(true, Ordering::Release);
    }

    /// The event's partition and offset.
    pub fn position(&self) -> (&TopicPartition, i64) {
        (&self.0.part.tp, self.0.offset)
    }
}

impl Drop for AckInner {
    fn drop(&mut self) {
        if !self.part.live.load(Ordering::Acquire) {
            return;
        }
        // A panicking agent has not finished its event: leave it undone.
        if self.poisoned.load(Ordering::Acquire) || std::thread::panicking() {
            self.part.lock().fail(self.offset);
        } else {
            self.part.lock().ack(self.offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_acks_advance_one_by_one() {
        let mut t = OffsetTracker::new(0);
        for o in 0..5 {
            t.deliver(o);
        }
        assert_eq!(t.commit_position(), 0);
        for o in 0..5 {
            t.ack(o);
            assert_eq!(t.commit_position(), o + 1);
        }
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn out_of_order_acks_wait_for_the_lowest() {
        let mut t = OffsetTracker::new(100);
        for o in 100..110 {
            t.deliver(o);
        }
        for o in (101..110).rev() {
            t.ack(o);
            assert_eq!(t.commit_position(), 100);
        }
        t.ack(100);
        assert_eq!(t.commit_position(), 110);
    }

    #[test]
    fn gaps_from_compaction_do_not_block() {
        let mut t = OffsetTracker::new(0);
        for o in [0, 5, 6, 20] {
            t.deliver(o);
        }
        t.ack(0);
        assert_eq!(t.commit_position(), 5);
        t.ack(6);
        assert_eq!(t.commit_position(), 5);
        t.ack(5);
        assert_eq!(t.commit_position(), 20);
        t.ack(20);
        assert_eq!(t.commit_position(), 21);
    }

    #[test]
    fn nothing_delivered_commits_the_start() {
        let t = OffsetTracker::new(42);
        assert_eq!(t.commit_position(), 42);
        assert!(!t.has_progress());
    }

    #[test]
    fn an_unknown_start_is_set_by_the_first_delivery() {
        let mut t = OffsetTracker::new(-1);
        assert!(!t.has_progress());
        t.deliver(57);
        assert_eq!(t.commit_position(), 57);
        t.ack(57);
        assert_eq!(t.commit_position(), 58);
        assert!(t.has_progress());
    }

    #[test]
    fn stale_and_unknown_offsets_are_ignored() {
        let mut t = OffsetTracker::new(10);
        t.deliver(9); // below the start: a duplicate
        t.deliver(10);
        t.deliver(10);
        t.ack(3);
        t.ack(99);
        assert_eq!(t.commit_position(), 10);
        t.ack(10);
        assert_eq!(t.commit_position(), 11);
    }

    #[test]
    fn progress_is_relative_to_the_last_commit() {
        let mut t = OffsetTracker::new(0);
        t.deliver(0);
        t.ack(0);
        assert!(t.has_progress());
        t.committed(1);
        assert!(!t.has_progress());
        t.committed(0); // an older commit finishing late does not go back
        assert_eq!(t.last_committed(), 1);
    }

    /// Random delivery with gaps and random ack order against a simple model: the commit
    /// position is always the lowest undone delivered offset, else one past the last.
    #[test]
    fn matches_a_model_on_random_histories() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let start = rand(1000) as i64;
            let mut t = OffsetTracker::new(start);
            let mut delivered = Vec::new();
            let mut offset = start;
            for _ in 0..rand(60) {
                offset += 1 + rand(3) as i64; // gaps of up to two offsets
                delivered.push(offset);
                t.deliver(offset);
            }
            let mut undone: std::collections::BTreeSet<i64> = delivered.iter().copied().collect();
            while !undone.is_empty() {
                let pick = *undone
                    .iter()
                    .nth(rand(undone.len() as u64) as usize)
                    .unwrap();
                undone.remove(&pick);
                t.ack(pick);
                let model = undone
                    .iter()
                    .next()
                    .copied()
                    .unwrap_or(delivered.last().map_or(start, |o| o + 1));
                assert_eq!(t.commit_position(), model);
            }
        }
    }

    #[test]
    fn tokens_ack_on_last_drop_and_poison_holds_the_commit() {
        let acks = Arc::new(Acks::default());
        let tp = TopicPartition::new("t", 0);
        acks.assign(tp.clone(), 0);
        let a = acks.deliver(&tp, 0).unwrap();
        let a2 = a.clone(); // a second agent on the same topic
        let b = acks.deliver(&tp, 1).unwrap();
        drop(a);
        assert_eq!(acks.position(&tp), Some(0));
        drop(a2);
        assert_eq!(acks.position(&tp), Some(1));
        b.poison();
        drop(b);
        assert_eq!(acks.position(&tp), Some(1));
        assert_eq!(acks.in_flight(None), 0, "failed events are not waited for");
        assert_eq!(acks.progress(), vec![(tp.clone(), 1)]);
        acks.committed(&[(tp.clone(), 1)]);
        assert!(acks.progress().is_empty());
        // Acks after revocation are ignored.
        let c = acks.deliver(&tp, 2).unwrap();
        acks.revoke(&tp);
        drop(c);
        assert_eq!(acks.position(&tp), None);
    }
}
