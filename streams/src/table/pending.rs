//! The state of one table partition on this worker: recovering or active, and the writes not
//! yet in the store.
//!
//! Writes first land in the *pending* overlay. The runtime takes them as a flush: the overlay
//! moves to the *in-flight* queue (still visible to reads) while its changelog records are
//! produced; once they are acknowledged the store applies them with their changelog offset and
//! the overlay is dropped. Reads look at pending, then in-flight (newest first), then the store.
//! Within one overlay a key holds only its last write: the changelog gets one record per key
//! and flush, which is all a compacted changelog keeps anyway: the overlay is the table's write
//! cache (Kafka Streams' record cache). With the cache off (`table_cache_max_bytes` 0) a
//! partition also keeps every write in order (the *log*), and a flush produces one changelog
//! record per write, as Kafka Streams does without its cache; reads are the same either way.
//!
//! The pending writes are a hash index of key to write (std's keyed SipHash, as keys come from
//! outside): an update reads its key and writes it back, one hash each, and a write to a new key
//! is one insert. Their key order is made only when something needs it: a flush sorts its
//! writes once (its records go out, and reach the store, in key order), and a range read builds
//! the ordered key set, which the pending writes then keep up to date until the next flush (a
//! table read by ranges keeps reading them). A flush in flight is a vector sorted by key: point
//! reads search it, range reads slice it, and taking one copies nothing into a new map. It is
//! shared with the flush's changelog records (the same writes, one per key: nothing is cloned
//! for them), and once they are acknowledged its keys and values move into the store's batch
//! without a copy (see `TableCore::complete_flush`).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use stores::key_order;

use super::effects::Effects;
use super::idle::Activity;

/// One changelog record of a flush, and one write of a flush in flight (the same thing, so
/// both can share one vector): `value: None` is a tombstone (a delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogRecord {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// Key bytes to the last write: a value, or `None` for a delete.
pub(crate) type Overlay = BTreeMap<Bytes, Option<Bytes>>;

/// Key bounds of a range read.
type Bounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The writes waiting for the next flush: each key's last write, by key; the keys in order
/// only once a range read asked for them.
#[derive(Debug, Default)]
struct Pending {
    writes: HashMap<Bytes, Option<Bytes>>,
    /// Every key of `writes` in order, when a range read since the last flush built it
    /// (`None`: not needed so far; no write pays for it).
    order: RefCell<Option<BTreeSet<Bytes>>>,
}

impl Pending {
    fn get(&self, key: &[u8]) -> Option<&Option<Bytes>> {
        self.writes.get(key)
    }

    /// Records the write; returns the key's previous pending write, if any.
    fn insert(&mut self, key: Bytes, value: Option<Bytes>) -> Option<Option<Bytes>> {
        match self.writes.entry(key) {
            Entry::Occupied(mut slot) => Some(slot.insert(value)),
            Entry::Vacant(slot) => {
                if let Some(order) = self.order.get_mut() {
                    order.insert(slot.key().clone());
                }
                slot.insert(value);
                None
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    fn clear(&mut self) {
        self.writes.clear();
        *self.order.get_mut() = None;
    }

    /// Calls `f` with the keys in `bounds` and their writes, in key order.
    fn for_range(&self, bounds: Bounds<'_>, mut f: impl FnMut(&Bytes, &Option<Bytes>)) {
        if self.writes.is_empty() {
            return;
        }
        let mut order = self.order.borrow_mut();
        let order = order.get_or_insert_with(|| self.writes.keys().cloned().collect());
        for key in order.range::<[u8], _>(bounds) {
            if let Some(write) = self.writes.get(&key[..]) {
                f(key, write);
            }
        }
    }

    /// The writes in key order, leaving this empty (its table keeps its room for the next
    /// ones, unless it is far larger than they were).
    fn take(&mut self) -> Flushed {
        let mut writes: Vec<ChangelogRecord> = self
            .writes
            .drain()
            .map(|(key, value)| ChangelogRecord { key, value })
            .collect();
        // `key_order`: the keys' byte order, without a call to memcmp per comparison.
        writes.sort_unstable_by(|a, b| key_order(&a.key, &b.key));
        if self.writes.capacity() > 4 * writes.len().max(1024) {
            self.writes.shrink_to(writes.len());
        }
        *self.order.get_mut() = None;
        Flushed(Arc::new(writes))
    }
}

/// A flush's writes, one per key, sorted by key: in flight, or acknowledged and waiting for a
/// global table's store. Shared with the flush's records when they are the same writes.
#[derive(Debug, Default)]
pub(crate) struct Flushed(Arc<Vec<ChangelogRecord>>);

impl Flushed {
    fn get(&self, key: &[u8]) -> Option<&Option<Bytes>> {
        let i = self.0.binary_search_by(|r| key_order(&r.key, key)).ok()?;
        Some(&self.0[i].value)
    }

    /// The writes with keys in `bounds`, in key order.
    fn range(&self, (start, end): Bounds<'_>) -> &[ChangelogRecord] {
        let from = match start {
            Bound::Included(s) => self.0.partition_point(|r| &r.key[..] < s),
            Bound::Excluded(s) => self.0.partition_point(|r| &r.key[..] <= s),
            Bound::Unbounded => 0,
        };
        let to = match end {
            Bound::Included(e) => self.0.partition_point(|r| &r.key[..] <= e),
            Bound::Excluded(e) => self.0.partition_point(|r| &r.key[..] < e),
            Bound::Unbounded => self.0.len(),
        };
        self.0.get(from..to.max(from)).unwrap_or_default()
    }

    fn pairs(records: &[ChangelogRecord]) -> impl Iterator<Item = (Bytes, Option<Bytes>)> + '_ {
        records.iter().map(|r| (r.key.clone(), r.value.clone()))
    }
}

/// Where a partition is in its life on this worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionStatus {
    /// Assigned, catching up with its changelog: events must not flow yet.
    Recovering,
    /// Up to date: reads and writes allowed.
    Active,
    /// Not held: a warm copy this worker keeps by following the changelog (a standby replica),
    /// as `App::table_partitions` reports it.
    Standby,
}

/// The writes a flush takes: each key's last write (key order; shared with the flush in
/// flight), and every write in order when the cache is off (else empty).
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub last: Arc<Vec<ChangelogRecord>>,
    pub log: Vec<(Bytes, Option<Bytes>)>,
}

#[derive(Debug)]
pub(crate) struct PartitionState {
    pub status: PartitionStatus,
    pending: Pending,
    /// The cache is off: every pending write, in order (the flush produces each).
    log: Option<Vec<(Bytes, Option<Bytes>)>>,
    /// Bytes of keys and values in `pending` (what the cache's bound counts).
    pending_bytes: usize,
    /// Flushes taken and not completed, oldest first, with their ids.
    in_flight: VecDeque<(u64, Flushed)>,
    /// Global tables: flushes acknowledged at a changelog offset, kept until the changelog
    /// follower applied the store up to it (the store takes every write in changelog order).
    acked: VecDeque<(i64, Flushed)>,
    /// Bumped by every write: an update retries when it changed under it.
    pub version: u64,
    /// Close callbacks running for changes in this partition: a flush waits for them.
    pub effects: Arc<Effects>,
    /// The partition's last event here (a new assignment starts with none), set through a
    /// shared reference by the change that handled it.
    pub activity: Cell<Option<Activity>>,
    /// When the partition last became active here: an idle partition's clock starts there.
    pub active_since: tokio::time::Instant,
    /// State the layer above derives from the partition's entries (a windowed table's due
    /// times), kept between its changes; dropped whenever the entries may change otherwise
    /// (writes discarded, a status change), to be derived again.
    pub derived: RefCell<Option<Box<dyn Any + Send>>>,
}

impl PartitionState {
    pub fn new() -> Self {
        PartitionState {
            status: PartitionStatus::Recovering,
            pending: Pending::default(),
            log: None,
            pending_bytes: 0,
            in_flight: VecDeque::new(),
            acked: VecDeque::new(),
            version: 0,
            effects: Arc::default(),
            activity: Cell::new(None),
            active_since: tokio::time::Instant::now(),
            derived: RefCell::new(None),
        }
    }

    /// The newest write of `key` not yet in the store: `Some(None)` is a delete, `None` means
    /// ask the store.
    pub fn lookup(&self, key: &[u8]) -> Option<Option<&Bytes>> {
        if let Some(v) = self.pending.get(key) {
            return Some(v.as_ref());
        }
        let in_flight = self.in_flight.iter().rev().map(|(_, o)| o);
        let acked = self.acked.iter().rev().map(|(_, o)| o);
        in_flight
            .chain(acked)
            .find_map(|flushed| flushed.get(key).map(Option::as_ref))
    }

    /// Records a write; with `log`, also in the log of every write (the cache is off).
    pub fn write(&mut self, key: Bytes, value: Option<Bytes>, log: bool) {
        if log {
            self.log
                .get_or_insert_with(Vec::new)
                .push((key.clone(), value.clone()));
        }
        let added = value.as_ref().map_or(0, Bytes::len);
        let key_len = key.len();
        match self.pending.insert(key, value) {
            Some(old) => self.pending_bytes -= old.as_ref().map_or(0, Bytes::len),
            None => self.pending_bytes += key_len,
        }
        self.pending_bytes += added;
        self.version += 1;
    }

    /// Runs `f` on the pending write of `key` and puts the write it returns (`None`: none) in
    /// its place: an update of a key written since the last flush, with one hash lookup and no
    /// copy of the key (the usual update). `None`, `f` not called, when `key` has no pending
    /// write. With `log` the write also goes to the log, as [`Self::write`] does.
    pub fn rewrite_pending<T, E>(
        &mut self,
        key: &[u8],
        log: bool,
        f: impl FnOnce(Option<&[u8]>) -> Result<(Option<Option<Bytes>>, T), E>,
    ) -> Option<Result<T, E>> {
        let slot = self.pending.writes.get_mut(key)?;
        let (write, out) = match f(slot.as_deref()) {
            Ok(done) => done,
            Err(e) => return Some(Err(e)),
        };
        if let Some(value) = write {
            if log {
                let logged = (Bytes::copy_from_slice(key), value.clone());
                self.log.get_or_insert_with(Vec::new).push(logged);
            }
            self.pending_bytes -= slot.as_ref().map_or(0, Bytes::len);
            self.pending_bytes += value.as_ref().map_or(0, Bytes::len);
            *slot = value;
            self.version += 1;
        }
        Some(Ok(out))
    }

    /// Bytes of keys and values waiting for the next flush.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Moves the pending writes in flight under `id`; `None` when there are none. Returns the
    /// last write of each key, and every write in order when the log was kept (else empty).
    pub fn take(&mut self, id: u64) -> Option<Taken> {
        if self.pending.is_empty() {
            return None;
        }
        let flushed = self.pending.take();
        self.pending_bytes = 0;
        let last = Arc::clone(&flushed.0);
        self.in_flight.push_back((id, flushed));
        Some(Taken {
            last,
            log: self.log.take().unwrap_or_default(),
        })
    }

    /// The id of the oldest flush in flight.
    pub fn oldest_in_flight(&self) -> Option<u64> {
        self.in_flight.front().map(|(id, _)| *id)
    }

    /// Whether flush `id` is in flight (not completed, not discarded).
    pub fn is_in_flight(&self, id: u64) -> bool {
        self.in_flight.iter().any(|(i, _)| *i == id)
    }

    /// Drops the oldest in-flight overlay (its writes are in the store now).
    pub fn complete_oldest(&mut self) {
        self.in_flight.pop_front();
    }

    /// Whether the oldest in-flight overlay is `records` itself (the flush's records are its
    /// writes, not a log or a filtered copy).
    pub fn oldest_is(&self, records: &Arc<Vec<ChangelogRecord>>) -> bool {
        self.in_flight
            .front()
            .is_some_and(|(_, flushed)| Arc::ptr_eq(&flushed.0, records))
    }

    /// Removes the oldest in-flight overlay and returns its writes, to be applied to the store
    /// under the same lock (reads must not miss them in between).
    pub fn pop_oldest(&mut self) -> Option<Arc<Vec<ChangelogRecord>>> {
        self.in_flight.pop_front().map(|(_, flushed)| flushed.0)
    }

    /// Moves the oldest in-flight overlay aside until the store has applied the changelog up
    /// to `offset` (see [`Self::applied_through`]).
    pub fn ack_oldest(&mut self, offset: i64) {
        if let Some((_, overlay)) = self.in_flight.pop_front() {
            self.acked.push_back((offset, overlay));
        }
    }

    /// The store applied the changelog up to `offset`: acknowledged writes at or below it are
    /// in the store now.
    pub fn applied_through(&mut self, offset: i64) {
        while self.acked.front().is_some_and(|(o, _)| *o <= offset) {
            self.acked.pop_front();
        }
    }

    /// Forgets every write not in the store.
    pub fn discard_all(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
        self.log = None;
        self.in_flight.clear();
        self.acked.clear();
        self.version += 1;
        self.derived.take();
    }

    /// Whether writes are waiting or in flight.
    pub fn has_unflushed(&self) -> bool {
        !self.pending.is_empty() || !self.in_flight.is_empty()
    }

    /// The keys in `start..end` (`None`: to the end) with a write not in the store, and their
    /// newest write.
    pub fn overlay_range(&self, start: &[u8], end: Option<&[u8]>) -> Overlay {
        let bounds = (
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        let mut merged = Overlay::new();
        // Oldest to newest, as `lookup` reads them newest first: a global table's acknowledged
        // writes are not in the store yet either.
        let acked = self.acked.iter().map(|(_, o)| o);
        let in_flight = self.in_flight.iter().map(|(_, o)| o);
        for flushed in acked.chain(in_flight) {
            merged.extend(Flushed::pairs(flushed.range(bounds)));
        }
        self.pending.for_range(bounds, |k, v| {
            merged.insert(k.clone(), v.clone());
        });
        merged
    }

    /// Every key with a write not in the store, and its newest write.
    pub fn merged_overlay(&self) -> Overlay {
        let mut merged = Overlay::new();
        for (_, flushed) in &self.acked {
            merged.extend(Flushed::pairs(&flushed.0));
        }
        for (_, flushed) in &self.in_flight {
            merged.extend(Flushed::pairs(&flushed.0));
        }
        // Pending writes override whatever flush they follow, in any order.
        merged.extend(
            self.pending
                .writes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// A flush's last writes as (key, write) pairs.
    fn last(taken: Taken) -> Vec<(Bytes, Option<Bytes>)> {
        Flushed::pairs(&taken.last).collect()
    }

    #[test]
    fn reads_see_pending_then_in_flight_newest_first() {
        let mut st = PartitionState::new();
        st.write(b("a"), Some(b("1")), false);
        st.write(b("b"), Some(b("1")), false);
        assert_eq!(st.take(1).unwrap().last.len(), 2);
        st.write(b("a"), Some(b("2")), false);
        st.take(2);
        st.write(b("b"), None, false);
        assert_eq!(st.lookup(b"a"), Some(Some(&b("2"))));
        assert_eq!(st.lookup(b"b"), Some(None));
        assert_eq!(st.lookup(b"c"), None);
        assert_eq!(st.oldest_in_flight(), Some(1));
        st.complete_oldest();
        assert_eq!(st.oldest_in_flight(), Some(2));
        let merged = st.merged_overlay();
        assert_eq!(merged.get(&b"a"[..]), Some(&Some(b("2"))));
        assert_eq!(merged.get(&b"b"[..]), Some(&None));
    }

    #[test]
    fn range_reads_see_acknowledged_writes_not_yet_in_the_store() {
        let mut st = PartitionState::new();
        st.write(b("a"), Some(b("1")), false);
        st.write(b("b"), Some(b("1")), false);
        st.take(1);
        st.ack_oldest(10); // a global table's flush: acknowledged, store not applied yet
        st.write(b("b"), Some(b("2")), false);
        st.take(2);
        st.write(b("c"), Some(b("3")), false);
        let range = st.overlay_range(b"a", None);
        assert_eq!(range.get(&b"a"[..]), Some(&Some(b("1"))), "{range:?}");
        assert_eq!(range.get(&b"b"[..]), Some(&Some(b("2"))), "newest wins");
        assert_eq!(range.get(&b"c"[..]), Some(&Some(b("3"))));
        assert_eq!(
            range,
            st.merged_overlay(),
            "the whole range is every unapplied write"
        );
        st.applied_through(10);
        assert_eq!(st.overlay_range(b"a", Some(b"b")).get(&b"a"[..]), None);
    }

    #[test]
    fn a_flush_holds_one_record_per_key_its_last_write() {
        let mut st = PartitionState::new();
        st.write(b("k"), Some(b("1")), false);
        st.write(b("k"), Some(b("2")), false);
        st.write(b("j"), Some(b("1")), false);
        st.write(b("j"), None, false);
        assert_eq!(st.pending_bytes(), 3);
        let taken = st.take(7).unwrap();
        assert!(taken.log.is_empty(), "the cache was on");
        assert_eq!(last(taken), vec![(b("j"), None), (b("k"), Some(b("2")))]);
        assert!(st.take(8).is_none(), "nothing pending any more");
        assert_eq!(st.pending_bytes(), 0);
    }

    #[test]
    fn pending_writes_read_by_key_and_in_key_order() {
        let mut st = PartitionState::new();
        for (k, v) in [("d", "1"), ("b", "1"), ("d", "2"), ("a", "1"), ("c", "1")] {
            st.write(b(k), Some(b(v)), false);
        }
        st.write(b("b"), None, false);
        assert_eq!(st.lookup(b"d"), Some(Some(&b("2"))));
        assert_eq!(st.lookup(b"b"), Some(None));
        assert_eq!(st.lookup(b"e"), None);
        assert_eq!(st.pending_bytes(), 4 + 3, "keys a b c d, values of a c d");
        let range: Vec<_> = st.overlay_range(b"b", Some(b"d")).into_iter().collect();
        assert_eq!(range, vec![(b("b"), None), (b("c"), Some(b("1")))]);
        let keys: Vec<_> = st.merged_overlay().into_keys().collect();
        assert_eq!(keys, vec![b("a"), b("b"), b("c"), b("d")]);
        let taken = st.take(1).unwrap();
        assert_eq!(
            last(taken),
            vec![
                (b("a"), Some(b("1"))),
                (b("b"), None),
                (b("c"), Some(b("1"))),
                (b("d"), Some(b("2")))
            ]
        );
        assert_eq!(st.lookup(b"d"), Some(Some(&b("2"))), "in flight now");
        st.write(b("a"), Some(b("2")), false);
        assert_eq!(st.overlay_range(b"a", Some(b"b")).len(), 1);
        assert_eq!(last(st.take(2).unwrap()), vec![(b("a"), Some(b("2")))]);
    }

    #[test]
    fn with_the_cache_off_a_flush_holds_every_write_in_order() {
        let mut st = PartitionState::new();
        st.write(b("k"), Some(b("1")), true);
        st.write(b("k"), Some(b("2")), true);
        st.write(b("j"), None, true);
        assert_eq!(st.lookup(b"k"), Some(Some(&b("2"))));
        let taken = st.take(1).unwrap();
        assert_eq!(
            taken.log,
            vec![
                (b("k"), Some(b("1"))),
                (b("k"), Some(b("2"))),
                (b("j"), None)
            ]
        );
        st.write(b("k"), Some(b("3")), true);
        assert_eq!(st.take(2).unwrap().log, vec![(b("k"), Some(b("3")))]);
    }
}
