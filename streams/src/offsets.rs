//! Which offsets are done, per partition, and what may be committed.
//!
//! Every record handed to an agent instance comes with a [`Hold`]. The record is *done* when
//! every instance that received it has released its hold and then asked its stream for more
//! (or finished): the release is queued in the instance's [`Releases`] and settled at the
//! instance's next poll of its source. That lag is what makes combinators safe: a value that a
//! `map` took out of its event is released at once, but only counts once the agent came back
//! for the next one, i.e. after it processed the value. Events kept whole (in `chunks`, in a
//! `buffer_unordered` future) are released when they are dropped after processing.
//!
//! The commit position of a partition is the lowest offset still pending, or one past the last
//! delivered offset when nothing is pending: offsets that were never delivered (compacted away,
//! transaction markers) do not hold the commit back.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use kafka_client::TopicPartition;

use crate::metrics::{Counts, Shard, ShardedHistogram};
// Tokio's clock: under paused time (tests) latencies follow virtual time.
use tokio::time::Instant;

/// Marks a delivered offset that failed: never done, no longer awaited.
const FAILED: u32 = u32::MAX;

/// Done-tracking of one partition.
#[derive(Debug, Clone)]
pub(crate) struct OffsetTracker {
    /// Delivered offsets not yet done, ascending, with how many holders still hold each
    /// (`FAILED` for a failed one). Acks come mostly in order, so the front is where work is.
    pending: VecDeque<(i64, u32)>,
    failed: usize,
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
            pending: VecDeque::new(),
            failed: 0,
            next: start,
            committed: start,
        }
    }

    /// An offset was handed to `holders` agent instances. Offsets below the last delivered
    /// one are ignored (a redelivery after a seek is tracked by a new tracker).
    pub fn deliver(&mut self, offset: i64, holders: u32) {
        if offset < self.next || holders == 0 {
            return;
        }
        self.pending.push_back((offset, holders.min(FAILED - 1)));
        self.next = offset + 1;
    }

    fn find(&self, offset: i64) -> Option<usize> {
        // In-order acks hit the front; out-of-order ones search.
        match self.pending.front() {
            Some((o, _)) if *o == offset => Some(0),
            _ => self.pending.binary_search_by_key(&offset, |(o, _)| *o).ok(),
        }
    }

    /// One holder of an offset is done. Unknown offsets are ignored.
    pub fn ack(&mut self, offset: i64) {
        let Some(i) = self.find(offset) else { return };
        let holders = &mut self.pending[i].1;
        if *holders == FAILED {
            return;
        }
        *holders -= 1;
        if i == 0 {
            while matches!(self.pending.front(), Some((_, 0))) {
                self.pending.pop_front();
            }
        }
    }

    /// An offset failed: it stays undone (the commit stops before it) but is not waited for.
    pub fn fail(&mut self, offset: i64) {
        if let Some(i) = self.find(offset) {
            if self.pending[i].1 != FAILED {
                self.pending[i].1 = FAILED;
                self.failed += 1;
            }
        }
    }

    /// The offset to commit: everything below it is done.
    pub fn commit_position(&self) -> i64 {
        self.pending
            .iter()
            .find(|(_, h)| *h != 0)
            .map_or(self.next, |(o, _)| *o)
    }

    /// Offsets delivered and still being worked on (neither done nor failed).
    pub fn in_flight(&self) -> usize {
        self.pending.iter().filter(|(_, h)| *h != 0).count() - self.failed
    }

    /// Whether the commit position moved since the last [`committed`](Self::committed).
    pub fn has_progress(&self) -> bool {
        self.commit_position() > self.committed
    }

    /// The consumer will return nothing below `position` any more (it skipped transaction
    /// markers or aborted records there): when every delivered offset is done, the commit
    /// position moves up to it. Ignored while an offset is pending, and when it is lower.
    pub fn skip_to(&mut self, position: i64) {
        if self.pending.is_empty() && position > self.next {
            self.next = position;
        }
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

/// Done-tracking of one assigned partition, shared by the holds of its records.
#[derive(Debug)]
pub(crate) struct PartitionAcks {
    tp: TopicPartition,
    tracker: Mutex<OffsetTracker>,
    /// Cleared on revocation: late releases then change nothing.
    live: AtomicBool,
}

impl PartitionAcks {
    fn lock(&self) -> MutexGuard<'_, OffsetTracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a record delivered to `holders` agent instances.
    #[cfg(test)]
    pub fn deliver(&self, offset: i64, holders: u32) {
        self.lock().deliver(offset, holders);
    }

    /// Registers records delivered to `holders` agent instances each, ascending, under one
    /// lock (the router registers a run of records before handing them over).
    pub fn deliver_all(&self, offsets: &[i64], holders: u32) {
        let mut tracker = self.lock();
        offsets.iter().for_each(|&o| tracker.deliver(o, holders));
    }

    /// A hold on `offset` for the instance that releases into `releases`.
    pub fn hold(self: &Arc<Self>, offset: i64, releases: &Arc<Releases>) -> Hold {
        self.hold_at(offset, releases, Instant::now)
    }

    /// [`hold`](Self::hold) for a record delivered at `now()`, read only if the instance
    /// measures its latency (the router reads the clock once per run of records).
    pub fn hold_at(
        self: &Arc<Self>,
        offset: i64,
        releases: &Arc<Releases>,
        now: impl FnOnce() -> Instant,
    ) -> Hold {
        Hold {
            part: Some(self.clone()),
            offset,
            delivered: releases.latency.get().map(|_| now()),
            releases: releases.clone(),
            failed: false,
        }
    }

    fn ack(&self, offset: i64) {
        if self.live.load(Ordering::Acquire) {
            self.lock().ack(offset);
        }
    }

    /// The offset failed (see [`OffsetTracker::fail`]); ignored once revoked.
    pub(crate) fn fail(&self, offset: i64) {
        if self.live.load(Ordering::Acquire) {
            self.lock().fail(offset);
        }
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

/// Trackers of every assigned partition, shared by the consumer loop and the committer.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    parts: Mutex<HashMap<TopicPartition, Arc<PartitionAcks>>>,
    /// Bumped by every assignment change, so readers can cache trackers.
    epoch: AtomicU64,
}

impl Acks {
    fn lock(&self) -> MutexGuard<'_, HashMap<TopicPartition, Arc<PartitionAcks>>> {
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

    /// Stops tracking; late releases of the partition are ignored.
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

    /// What of `positions` may be committed now: partitions still assigned, each at a position
    /// above its last commit. Positions taken before a rebalance or a later commit are dropped,
    /// so a commit never sends an offset lower than one already committed.
    pub fn committable(&self, positions: Vec<(TopicPartition, i64)>) -> Vec<(TopicPartition, i64)> {
        let parts = self.lock();
        positions
            .into_iter()
            .filter(|(tp, position)| {
                parts
                    .get(tp)
                    .is_some_and(|p| *position > p.lock().last_committed())
            })
            .collect()
    }

    /// See [`OffsetTracker::skip_to`]: `position` is where the consumer reads next.
    pub fn skip_to(&self, tp: &TopicPartition, position: i64) {
        if let Some(p) = self.lock().get(tp) {
            p.lock().skip_to(position);
        }
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

    /// Whether an event of an assigned partition failed (its agent stops the worker).
    pub fn any_failed(&self) -> bool {
        self.lock().values().any(|p| p.lock().failed > 0)
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

/// Releases of one agent instance, settled when the instance next polls its source.
#[derive(Debug, Default)]
pub(crate) struct Releases {
    /// Also the instance's shard of its agent's latency histogram (counted under this lock,
    /// which a release takes anyway).
    queue: Arc<Mutex<Queue>>,
    /// The agent's processing-latency histogram, set by the runtime before the first event.
    latency: OnceLock<ShardedHistogram>,
}

#[derive(Debug, Default)]
struct Queue {
    released: Vec<(Arc<PartitionAcks>, i64)>,
    /// The instance's last poll of its source found nothing: it has processed all it could,
    /// so releases while it waits are settled at once.
    parked: bool,
    /// The processing latencies of this instance's events (no buckets: not measured).
    latency: Counts,
}

impl Queue {
    /// Acks everything released; runs of one partition (the usual case) lock it once.
    fn settle(&mut self) {
        let released = &self.released;
        let mut i = 0;
        while i < released.len() {
            let part = &released[i].0;
            let run = released[i..]
                .iter()
                .take_while(|(p, _)| Arc::ptr_eq(p, part))
                .count();
            if part.live.load(Ordering::Acquire) {
                let mut tracker = part.lock();
                released[i..i + run]
                    .iter()
                    .for_each(|(_, o)| tracker.ack(*o));
            }
            i += run;
        }
        self.released.clear(); // keeps its capacity for the next events
    }

    fn observe(&mut self, latency: Option<f64>) {
        if let Some(seconds) = latency {
            self.latency.observe(seconds);
        }
    }
}

impl Shard for Mutex<Queue> {
    fn add_to(&self, total: &mut Counts) {
        total.add(&self.lock().unwrap_or_else(|e| e.into_inner()).latency);
    }
}

impl Releases {
    /// Whether the instance measures its processing latency (then deliveries read the clock).
    pub fn measures_latency(&self) -> bool {
        self.latency.get().is_some()
    }

    /// Measures the time from each hold's creation to its release into `histogram`.
    pub fn measure_latency(&self, histogram: ShardedHistogram) {
        let counts = histogram.counts();
        if self.latency.set(histogram.clone()).is_ok() {
            self.queue().latency = counts;
            histogram.join(self.queue.clone());
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The processing latency, in seconds, of an event delivered at `delivered` and released
    /// now; `None` when not measured.
    pub(crate) fn latency(&self, delivered: Option<Instant>) -> Option<f64> {
        delivered
            .filter(|_| self.measures_latency())
            .map(|at| at.elapsed().as_secs_f64())
    }

    /// Releases `offset` of `part`, whose processing took `latency` (if measured): what
    /// dropping its [`Hold`] does.
    pub(crate) fn release(&self, part: Arc<PartitionAcks>, offset: i64, latency: Option<f64>) {
        let mut queue = self.queue();
        queue.observe(latency);
        if queue.parked {
            drop(queue);
            part.ack(offset);
        } else {
            queue.released.push((part, offset));
        }
    }

    /// The instance polls its source: what it released before is done.
    pub fn settle(&self) {
        let mut queue = self.queue();
        queue.parked = false;
        queue.settle();
    }

    /// [`settle`](Self::settle) after [`release`](Self::release) of `offset` of `part`: one
    /// lock of the queue for the usual case of an instance that released one event since its
    /// last poll, instead of one to release it and one to settle.
    pub(crate) fn settle_with(&self, part: Arc<PartitionAcks>, offset: i64, latency: Option<f64>) {
        let mut queue = self.queue();
        queue.parked = false;
        queue.observe(latency);
        if queue.released.is_empty() {
            drop(queue);
            part.ack(offset);
        } else {
            queue.released.push((part, offset));
            queue.settle();
        }
    }

    /// The instance found its source empty and waits.
    pub fn park(&self) {
        let mut queue = self.queue();
        queue.settle();
        queue.parked = true;
    }

    /// The instance failed: what it released since its last poll was not finished.
    pub fn fail_unsettled(&self) {
        let released = std::mem::take(&mut self.queue().released);
        for (part, offset) in released {
            part.fail(offset);
        }
    }
}

impl Drop for Releases {
    fn drop(&mut self) {
        // What this instance counted stays in its agent's histogram.
        if let Some(histogram) = self.latency.get() {
            let shard: Arc<dyn Shard> = self.queue.clone();
            histogram.leave(&shard);
        }
    }
}

/// An agent instance's hold on a delivered record. Dropping it (or [`ack`](Self::ack))
/// releases it: the record is done once the instance asks for its next one.
/// [`fail`](Self::fail) (or a drop while panicking) keeps the record from ever counting as
/// done, so the commit stops before it and a restart reads it again.
#[derive(Debug)]
#[must_use = "dropping a Hold releases it"]
pub struct Hold {
    part: Option<Arc<PartitionAcks>>,
    offset: i64,
    /// When the record was handed to the instance (if its latency is measured).
    delivered: Option<Instant>,
    releases: Arc<Releases>,
    failed: bool,
}

impl Hold {
    /// A hold on `offset` of `part`, delivered at `delivered`, for the instance releasing into
    /// `releases`.
    pub(crate) fn new(
        part: Arc<PartitionAcks>,
        offset: i64,
        delivered: Option<Instant>,
        releases: Arc<Releases>,
    ) -> Self {
        Hold {
            part: Some(part),
            offset,
            delivered,
            releases,
            failed: false,
        }
    }

    /// Releases the hold now (the same as dropping it).
    pub fn ack(self) {}

    /// Marks the record failed: it is never committed by this worker.
    pub fn fail(mut self) {
        self.failed = true;
    }

    /// The record's partition and offset.
    pub fn position(&self) -> (Option<&TopicPartition>, i64) {
        (self.part.as_ref().map(|p| &p.tp), self.offset)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let Some(part) = self.part.take() else { return };
        if self.failed || std::thread::panicking() {
            part.fail(self.offset);
        } else {
            let latency = self.releases.latency(self.delivered);
            self.releases.release(part, self.offset, latency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_position_skips_offsets_never_delivered() {
        let mut t = OffsetTracker::new(10);
        t.deliver(10, 1);
        t.deliver(12, 1); // 11 was compacted away
        t.deliver(13, 1);
        t.ack(12);
        assert_eq!(t.commit_position(), 10); // 10 is still being processed
        t.ack(10);
        assert_eq!(t.commit_position(), 13); // 11 never came, 12 is done
        t.ack(13);
        assert_eq!(t.commit_position(), 14);
    }

    #[test]
    fn a_skipped_transaction_marker_moves_the_position_only_when_nothing_is_pending() {
        let mut t = OffsetTracker::new(0);
        t.deliver(0, 1);
        t.skip_to(2); // offset 1 is a commit marker the consumer stepped over
        assert_eq!(t.commit_position(), 0, "offset 0 is still being processed");
        t.ack(0);
        assert_eq!(t.commit_position(), 1);
        t.skip_to(2);
        assert_eq!(t.commit_position(), 2);
        t.skip_to(1);
        assert_eq!(t.commit_position(), 2, "never backwards");
    }

    #[test]
    fn in_order_acks_advance_one_by_one() {
        let mut t = OffsetTracker::new(0);
        for o in 0..5 {
            t.deliver(o, 1);
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
            t.deliver(o, 1);
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
            t.deliver(o, 1);
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
        t.deliver(57, 1);
        assert_eq!(t.commit_position(), 57);
        t.ack(57);
        assert_eq!(t.commit_position(), 58);
        assert!(t.has_progress());
    }

    #[test]
    fn stale_and_unknown_offsets_are_ignored() {
        let mut t = OffsetTracker::new(10);
        t.deliver(9, 1); // below the start: a duplicate
        t.deliver(10, 1);
        t.deliver(10, 1);
        t.ack(3);
        t.ack(99);
        assert_eq!(t.commit_position(), 10);
        t.ack(10);
        assert_eq!(t.commit_position(), 11);
    }

    #[test]
    fn positions_taken_before_a_rebalance_or_a_later_commit_are_not_committable() {
        let acks = Acks::default();
        let (a, b) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        for tp in [&a, &b] {
            let part = acks.assign(tp.clone(), 0);
            (0..10).for_each(|o| part.deliver(o, 1));
            (0..5).for_each(|o| part.lock().ack(o));
        }
        // A commit prepares its snapshot...
        let stale = acks.progress();
        assert_eq!(stale, vec![(a.clone(), 5), (b.clone(), 5)]);
        // ...then a revocation commits `a` further and lets it go; it comes back at 8, and `b`
        // is committed at 7 by another commit.
        let part = acks.partition(&a).unwrap();
        (5..8).for_each(|o| part.lock().ack(o));
        acks.committed(&[(a.clone(), 8)]);
        acks.revoke(&a);
        acks.assign(a.clone(), 8);
        let part = acks.partition(&b).unwrap();
        (5..7).for_each(|o| part.lock().ack(o));
        acks.committed(&[(b.clone(), 7)]);
        assert_eq!(acks.committable(stale), vec![], "nothing may go backwards");
        let part = acks.partition(&b).unwrap();
        part.lock().ack(7);
        assert_eq!(acks.committable(acks.progress()), vec![(b.clone(), 8)]);
        acks.revoke(&b);
        assert_eq!(acks.committable(vec![(b, 9)]), vec![], "not owned any more");
    }

    #[test]
    fn progress_is_relative_to_the_last_commit() {
        let mut t = OffsetTracker::new(0);
        t.deliver(0, 1);
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
                t.deliver(offset, 1);
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
    fn holds_settle_at_the_next_poll_and_failures_hold_the_commit() {
        let acks = Arc::new(Acks::default());
        let tp = TopicPartition::new("t", 0);
        let part = acks.assign(tp.clone(), 0);
        let (one, two) = (Arc::new(Releases::default()), Arc::new(Releases::default()));
        part.deliver(0, 2); // two agents read the topic
        let a = part.hold(0, &one);
        let a2 = part.hold(0, &two);
        part.deliver(1, 1);
        let b = part.hold(1, &one);
        drop(a);
        one.settle();
        assert_eq!(
            acks.position(&tp),
            Some(0),
            "the second agent still holds 0"
        );
        drop(a2);
        assert_eq!(acks.position(&tp), Some(0), "released, but not settled yet");
        two.park();
        assert_eq!(acks.position(&tp), Some(1));
        b.fail();
        one.settle();
        assert_eq!(acks.position(&tp), Some(1));
        assert_eq!(acks.in_flight(None), 0, "failed events are not waited for");
        assert_eq!(acks.progress(), vec![(tp.clone(), 1)]);
        acks.committed(&[(tp.clone(), 1)]);
        assert!(acks.progress().is_empty());
        // While parked, releases count at once; after revocation they are ignored.
        part.deliver(2, 1);
        two.park();
        let h = part.hold(2, &two);
        assert_eq!(acks.in_flight(None), 1);
        drop(h);
        assert_eq!(
            acks.in_flight(None),
            0,
            "done at once: its instance waits for more"
        );
        assert_eq!(
            acks.position(&tp),
            Some(1),
            "the failed offset still holds the commit"
        );
        part.deliver(3, 1);
        let c = part.hold(3, &two);
        acks.revoke(&tp);
        drop(c);
        assert_eq!(acks.position(&tp), None);
    }

    #[test]
    fn settling_with_a_last_release_settles_it_and_the_queue() {
        let acks = Arc::new(Acks::default());
        let tp = TopicPartition::new("t", 0);
        let part = acks.assign(tp.clone(), 0);
        let one = Arc::new(Releases::default());
        part.deliver_all(&[0, 1, 2], 1);
        one.settle_with(part.clone(), 0, None); // nothing queued: acked at once
        assert_eq!(acks.position(&tp), Some(1));
        drop(part.hold(1, &one)); // queued, not settled
        assert_eq!(acks.position(&tp), Some(1));
        one.settle_with(part.clone(), 2, None);
        assert_eq!(
            acks.position(&tp),
            Some(3),
            "the queue and the last release"
        );
        assert_eq!(acks.in_flight(None), 0);
    }

    #[test]
    fn a_failed_instance_fails_what_it_released_since_its_last_poll() {
        let acks = Acks::default();
        let tp = TopicPartition::new("t", 0);
        let part = acks.assign(tp.clone(), 0);
        let inst = Arc::new(Releases::default());
        part.deliver(0, 1);
        part.deliver(1, 1);
        drop(part.hold(0, &inst));
        inst.settle();
        drop(part.hold(1, &inst));
        inst.fail_unsettled();
        inst.settle();
        assert_eq!(acks.position(&tp), Some(1));
        assert_eq!(acks.in_flight(None), 0);
    }
}
