//! A table over bytes: which partitions this worker holds, their pending writes, and the API
//! the runtime drives (assignment, recovery state, changelog flushes).
//!
//! # What the runtime does, per table partition
//!
//! 1. On assignment: [`TableCore::assign`] (status `Recovering`), then
//!    [`recover_partition`](super::recovery::recover_partition) up to the changelog's high
//!    watermark, then [`TableCore::set_active`]; only then do the partition's events flow.
//! 2. In the commit loop, in this order:
//!    - (a) read the commit positions of the source partitions (a done event has made all its
//!      table writes, so they are pending or in flight now);
//!    - (b) for every held table partition, [`TableCore::take_pending`] moves the writes made
//!      so far into a [`PendingFlush`] (reads still see them);
//!    - (c) produce each flush's records to changelog partition `flush.partition()` (keys as
//!      given, `None` values as tombstones) and await every ack;
//!    - (d) [`TableCore::complete_flush`] with the highest acknowledged offset: the store
//!      applies the writes and that offset in one atomic batch;
//!    - (e) commit the positions read in (a), and only those.
//!
//!    [`flush_partition`](super::changelog::flush_partition) does (b) to (d) for one
//!    partition. Flushes of a partition complete in the order they were taken.
//! 3. If producing fails: [`TableCore::abort_flush`] forgets every unflushed write of the
//!    partition and sets it back to `Recovering`. The runtime then stops the worker (as for
//!    any undelivered record): a restart recovers the partition and redelivers its events.
//! 4. On revocation: [`TableCore::revoke`] (writes not completed are forgotten; what reached
//!    the changelog is recovered by the next owner). The store keeps the partition's data for
//!    a later standby or owner; [`stores::Store::drop_partition`] removes it.
//! 5. On commit: [`TableCore::flush_store`] makes the applied batches durable (redb).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use kafka_client::producer::partitioner::partition_for_key;
use stores::{Store, WriteBatch};

use super::pending::{Overlay, PartitionState, PartitionStatus};
use super::spec::TableSpec;
use crate::error::{Error, Result};

/// Checks that a changelog record's key and value decode as the table's types: `Err` holds the
/// failing part (`key`/`value`) and why.
pub(crate) type RecordCheck =
    Arc<dyn Fn(&[u8], Option<&[u8]>) -> Result<(), (&'static str, String)> + Send + Sync>;

/// One changelog record of a flush: `value: None` is a tombstone (a delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogRecord {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// Writes of one partition taken for the changelog; hand it back to
/// [`TableCore::complete_flush`] once its records are acknowledged.
#[derive(Debug)]
#[must_use = "complete or abort the flush: its writes stay in flight until then"]
pub struct PendingFlush {
    partition: i32,
    id: u64,
    records: Vec<ChangelogRecord>,
    /// Records for another topic made by the same writes (a windowed table's final results),
    /// each framed by [`outbound_record`]; they go out before the changelog records.
    outbound: Vec<Bytes>,
}

impl PendingFlush {
    /// The table partition, which is also the changelog partition to produce to.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The records to produce, one per key written since the last flush.
    pub fn records(&self) -> &[ChangelogRecord] {
        &self.records
    }

    /// The outbound records (key, value) to produce before the changelog records, in the
    /// order of their entry keys.
    pub(crate) fn outbound(&self) -> impl Iterator<Item = (Option<Bytes>, Bytes)> + '_ {
        self.outbound.iter().filter_map(parse_outbound)
    }
}

/// Where a table's outbound entries go: entries whose key starts with `tag` are not table
/// state but records for `topic`, sent by the flush that carries the writes that made them.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub tag: u8,
    pub topic: String,
}

/// An outbound entry's value: `key length + 1 (u32, big endian; 0: no key) | key | value`.
pub(crate) fn outbound_record(key: Option<&[u8]>, value: &[u8]) -> Option<Bytes> {
    let len = match key {
        None => 0,
        Some(k) => u32::try_from(k.len()).ok()?.checked_add(1)?,
    };
    let mut buf = Vec::with_capacity(4 + key.map_or(0, <[u8]>::len) + value.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(key.unwrap_or_default());
    buf.extend_from_slice(value);
    Some(Bytes::from(buf))
}

fn parse_outbound(framed: &Bytes) -> Option<(Option<Bytes>, Bytes)> {
    let len = u32::from_be_bytes(framed.get(..4)?.try_into().ok()?) as usize;
    match len.checked_sub(1) {
        None => Some((None, framed.slice(4..))),
        Some(n) => {
            let end = 4usize.checked_add(n).filter(|end| *end <= framed.len())?;
            Some((Some(framed.slice(4..end)), framed.slice(end..)))
        }
    }
}

type Shared = Arc<Mutex<PartitionState>>;

/// A table's partitions on this worker, over bytes. Shared by every typed handle of the table
/// and by the runtime.
pub struct TableCore {
    spec: TableSpec,
    store: Arc<dyn Store>,
    /// Behind a lock: a windowed table replaces it with one that reads its key layout.
    check: RwLock<RecordCheck>,
    /// No changelog: writes go straight to the store and every partition is held.
    detached: bool,
    parts: RwLock<BTreeMap<i32, Shared>>,
    next_flush_id: AtomicU64,
    outbound: RwLock<Option<Outbound>>,
}

impl std::fmt::Debug for TableCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCore")
            .field("spec", &self.spec)
            .field("store", &self.store)
            .field("detached", &self.detached)
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<PartitionState>) -> MutexGuard<'_, PartitionState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A key for an error message: its text, shortened.
pub(crate) fn key_text(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(key);
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

impl TableCore {
    pub(crate) fn new(
        spec: TableSpec,
        store: Arc<dyn Store>,
        check: RecordCheck,
        detached: bool,
    ) -> Result<Self> {
        spec.validate()?;
        let core = TableCore {
            spec,
            store,
            check: RwLock::new(check),
            detached,
            parts: RwLock::new(BTreeMap::new()),
            next_flush_id: AtomicU64::new(1),
            outbound: RwLock::new(None),
        };
        if detached {
            for p in 0..core.spec.partition_count() {
                core.assign(p)?;
                core.set_active(p)?;
            }
        }
        Ok(core)
    }

    /// Entries whose key starts with `tag` become records for `topic`, sent before the
    /// changelog records of the flush that carries them, and are never stored. Needs the
    /// runtime's flushes: a detached or global table cannot have them.
    pub(crate) fn set_outbound(&self, tag: u8, topic: &str) -> Result<()> {
        if self.detached || self.spec.is_global() {
            return Err(Error::TableCannotSend {
                table: self.name().to_owned(),
            });
        }
        *self.outbound.write().unwrap_or_else(|e| e.into_inner()) = Some(Outbound {
            tag,
            topic: topic.to_owned(),
        });
        Ok(())
    }

    /// Where outbound entries go, if the table has them.
    pub(crate) fn outbound(&self) -> Option<Outbound> {
        self.outbound
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The declaration.
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        self.spec.name()
    }

    /// The store holding the applied data.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn check_record(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), (&'static str, String)> {
        let check = self.check.read().unwrap_or_else(|e| e.into_inner()).clone();
        check(key, value)
    }

    /// Replaces the check of changelog records (a windowed table stores its own key layout).
    pub(crate) fn set_record_check(&self, check: RecordCheck) {
        *self.check.write().unwrap_or_else(|e| e.into_inner()) = check;
    }

    /// The partition of an encoded key: Kafka's default partitioner, as for a keyed record.
    pub fn partition_of(&self, key: &[u8]) -> i32 {
        partition_for_key(key, self.spec.partition_count() as usize)
    }

    /// A failure of the store, about `partitions` (when the store is poisoned and names none,
    /// those that may have lost writes).
    pub(crate) fn store_error(&self, partitions: &[i32], source: stores::Error) -> Error {
        let partitions = match &source {
            stores::Error::Poisoned {
                partitions: lost, ..
            } if partitions.is_empty() => lost.clone(),
            _ => partitions.to_vec(),
        };
        Error::TableStore {
            table: self.name().to_owned(),
            partitions,
            source,
        }
    }

    /// `Ok` unless the store failed earlier and refuses every call until it is reopened: then
    /// [`Error::TableStore`] naming the partitions that may have lost writes. No I/O. Checked
    /// before a changelog flush and a commit: nothing may be committed past a failed store.
    pub fn check_store(&self) -> Result<()> {
        self.store
            .check_usable()
            .map_err(|e| self.store_error(&[], e))
    }

    fn state(&self, partition: i32) -> Option<Shared> {
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        parts.get(&partition).cloned()
    }

    fn not_owned(&self, key: &[u8], partition: i32, reason: &'static str) -> Error {
        Error::TableNotOwned {
            table: self.name().to_owned(),
            key: key_text(key),
            partition,
            reason,
        }
    }

    /// Runs `f` on the locked state of `key`'s partition, which must be held and active.
    fn with_owned<T>(
        &self,
        key: &[u8],
        f: impl FnOnce(i32, &mut PartitionState) -> Result<T>,
    ) -> Result<T> {
        let partition = self.partition_of(key);
        self.with_active(partition, key, |st| f(partition, st))
    }

    /// Runs `f` on the locked state of `partition`, which must be held and active; `key`
    /// names the entry in errors.
    fn with_active<T>(
        &self,
        partition: i32,
        key: &[u8],
        f: impl FnOnce(&mut PartitionState) -> Result<T>,
    ) -> Result<T> {
        let state = self
            .state(partition)
            .ok_or_else(|| self.not_owned(key, partition, "does not own"))?;
        let mut guard = lock(&state);
        if guard.status != PartitionStatus::Active {
            // Recovering, or revoked since we looked it up.
            return Err(self.not_owned(
                key,
                partition,
                "does not own yet (still recovering from the changelog)",
            ));
        }
        f(&mut guard)
    }

    fn read_locked(
        &self,
        partition: i32,
        state: &PartitionState,
        key: &[u8],
    ) -> Result<Option<Bytes>> {
        match state.lookup(key) {
            Some(write) => Ok(write.cloned()),
            None => Ok(self
                .store
                .get(partition, key)
                .map_err(|e| self.store_error(&[partition], e))?
                .map(Bytes::from)),
        }
    }

    /// The value bytes of `key`: its newest write, else the store's.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.with_owned(key, |p, st| self.read_locked(p, st, key))
    }

    /// The value bytes of `key` and the partition's write version (for [`Self::put_if`]).
    pub(crate) fn get_versioned(&self, key: &[u8]) -> Result<(Option<Bytes>, u64)> {
        self.with_owned(key, |p, st| Ok((self.read_locked(p, st, key)?, st.version)))
    }

    /// Writes `key` (`None` deletes it).
    pub(crate) fn put(&self, key: Bytes, value: Option<Bytes>) -> Result<()> {
        self.put_if(key, value, None).map(|_| ())
    }

    /// Writes `key` if no write happened in its partition since `version` was read (any
    /// version with `None`); `false` when it did and nothing was written.
    pub(crate) fn put_if(
        &self,
        key: Bytes,
        value: Option<Bytes>,
        version: Option<u64>,
    ) -> Result<bool> {
        let k = key.clone();
        self.with_owned(&k, |partition, st| {
            if version.is_some_and(|v| v != st.version) {
                return Ok(false);
            }
            self.write_locked(partition, st, key, value)?;
            Ok(true)
        })
    }

    /// A detached table (no changelog) writes straight to its store, in one batch.
    fn apply_detached(
        &self,
        partition: i32,
        st: &mut PartitionState,
        writes: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    ) -> Result<()> {
        let writes = writes.into_iter();
        let mut batch = WriteBatch::with_capacity(writes.size_hint().0);
        for (key, value) in writes {
            match value {
                Some(v) => batch.put(partition, key, v),
                None => batch.delete(partition, key),
            };
        }
        self.store
            .apply(batch)
            .map_err(|e| self.store_error(&[partition], e))?;
        st.version += 1;
        Ok(())
    }

    fn write_locked(
        &self,
        partition: i32,
        st: &mut PartitionState,
        key: Bytes,
        value: Option<Bytes>,
    ) -> Result<()> {
        if self.detached {
            self.apply_detached(partition, st, [(key, value)])?;
        } else {
            st.write(key, value);
        }
        Ok(())
    }

    /// Runs `f` with partition `partition` locked, which must be held and active: reads and
    /// writes through the [`PartitionTxn`] go to that partition whatever their key bytes (a
    /// windowed table places a key by a part of its bytes), and its writes are made only if
    /// `f` returns `Ok` (all of them, in one store batch when detached). `key` names the entry
    /// in errors.
    pub(crate) fn with_partition<T>(
        &self,
        partition: i32,
        key: &[u8],
        f: impl FnOnce(&mut PartitionTxn<'_>) -> Result<T>,
    ) -> Result<T> {
        self.check_partition(partition)?;
        self.with_active(partition, key, |guard| {
            let mut txn = PartitionTxn {
                core: self,
                partition,
                state: guard,
                writes: Overlay::new(),
            };
            let result = f(&mut txn)?;
            let writes = txn.writes;
            if writes.is_empty() {
                return Ok(result);
            }
            if self.detached {
                self.apply_detached(partition, guard, writes)?;
            } else {
                for (key, value) in writes {
                    guard.write(key, value);
                }
            }
            Ok(result)
        })
    }

    /// Active partitions, ascending.
    pub fn owned_partitions(&self) -> Vec<i32> {
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        parts
            .iter()
            .filter(|(_, st)| lock(st).status == PartitionStatus::Active)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Every entry of an active partition (store plus newest writes), in key order.
    pub(crate) fn snapshot(&self, partition: i32) -> Result<Vec<(Bytes, Bytes)>> {
        let Some(state) = self.state(partition) else {
            return Ok(Vec::new());
        };
        let st = lock(&state);
        if st.status != PartitionStatus::Active {
            return Ok(Vec::new());
        }
        let mut entries: BTreeMap<Bytes, Bytes> = BTreeMap::new();
        let failed = |e| self.store_error(&[partition], e);
        for entry in self.store.iter(partition).map_err(failed)? {
            let (k, v) = entry.map_err(failed)?;
            entries.insert(Bytes::from(k), Bytes::from(v));
        }
        for (k, v) in st.merged_overlay() {
            match v {
                Some(v) => entries.insert(k, v),
                None => entries.remove(&k),
            };
        }
        Ok(entries.into_iter().collect())
    }

    /// Number of keys in an active partition, counting writes not yet in the store.
    pub(crate) fn partition_len(&self, partition: i32) -> Result<u64> {
        let Some(state) = self.state(partition) else {
            return Ok(0);
        };
        let st = lock(&state);
        if st.status != PartitionStatus::Active {
            return Ok(0);
        }
        let failed = |e| self.store_error(&[partition], e);
        let mut len = self
            .store
            .partition_stats(partition)
            .map_err(failed)?
            .entries;
        for (k, v) in st.merged_overlay() {
            let stored = self.store.get(partition, &k).map_err(failed)?;
            match (stored.is_some(), v.is_some()) {
                (false, true) => len += 1,
                (true, false) => len -= 1,
                _ => {}
            }
        }
        Ok(len)
    }

    // ---- the runtime's API ----

    fn check_partition(&self, partition: i32) -> Result<()> {
        if (0..self.spec.partition_count()).contains(&partition) {
            Ok(())
        } else {
            Err(Error::NoSuchPartition {
                table: self.name().to_owned(),
                partition,
                count: self.spec.partition_count(),
            })
        }
    }

    /// Takes a partition on, as `Recovering`. Assigning a held partition again starts it over
    /// (unflushed writes forgotten).
    pub fn assign(&self, partition: i32) -> Result<()> {
        self.check_partition(partition)?;
        let fresh = Arc::new(Mutex::new(PartitionState::new()));
        let old = self
            .parts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partition, fresh);
        if let Some(old) = old {
            let mut st = lock(&old);
            st.status = PartitionStatus::Recovering;
            st.discard_all();
        }
        Ok(())
    }

    /// Lets a partition go: its unflushed writes are forgotten (what reached the changelog is
    /// recovered by the next owner); the store's data stays. Returns whether writes were lost
    /// that way.
    pub fn revoke(&self, partition: i32) -> bool {
        let old = self
            .parts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&partition);
        old.is_some_and(|old| {
            let mut st = lock(&old);
            st.status = PartitionStatus::Recovering;
            let lost = st.has_unflushed();
            st.discard_all();
            lost
        })
    }

    fn set_status(&self, partition: i32, status: PartitionStatus) -> Result<()> {
        let state = self
            .state(partition)
            .ok_or_else(|| Error::PartitionNotActive {
                table: self.name().to_owned(),
                partition,
                state: "not assigned",
                hint: "assign it first",
            })?;
        let mut st = lock(&state);
        if status == PartitionStatus::Recovering {
            st.discard_all();
        }
        st.status = status;
        Ok(())
    }

    /// Marks an assigned partition as up to date: reads and writes allowed.
    pub fn set_active(&self, partition: i32) -> Result<()> {
        self.set_status(partition, PartitionStatus::Active)
    }

    /// The status of a partition, `None` if it is not assigned.
    pub fn status(&self, partition: i32) -> Option<PartitionStatus> {
        self.state(partition).map(|st| lock(&st).status)
    }

    /// The last changelog offset the store applied for `partition`.
    pub fn applied_offset(&self, partition: i32) -> Result<Option<i64>> {
        self.store
            .applied_offset(partition)
            .map_err(|e| self.store_error(&[partition], e))
    }

    /// Fails unless `partition` may be written by recovery: not active and without unflushed
    /// writes (an unassigned partition is fine: a standby copy).
    pub(crate) fn ensure_recoverable(&self, partition: i32) -> Result<()> {
        self.check_partition(partition)?;
        if let Some(state) = self.state(partition) {
            let st = lock(&state);
            if st.status == PartitionStatus::Active || st.has_unflushed() {
                return Err(Error::PartitionActive {
                    table: self.name().to_owned(),
                    partition,
                });
            }
        }
        Ok(())
    }

    /// Moves the partition's pending writes into a flush (still visible to reads). `None` when
    /// nothing is pending or the partition is not held.
    pub fn take_pending(&self, partition: i32) -> Option<PendingFlush> {
        let state = self.state(partition)?;
        let mut st = lock(&state);
        let id = self.next_flush_id.fetch_add(1, Ordering::Relaxed);
        let taken = st.take(id)?;
        let tag = self.outbound().map(|o| o.tag);
        let mut records = Vec::with_capacity(taken.len());
        let mut outbound = Vec::new();
        for (key, value) in taken {
            match value {
                Some(value) if tag.is_some() && key.first() == tag.as_ref() => outbound.push(value),
                // A deleted outbound entry: nothing to send, nothing to store.
                None if tag.is_some() && key.first() == tag.as_ref() => {}
                value => records.push(ChangelogRecord { key, value }),
            }
        }
        Some(PendingFlush {
            partition,
            id,
            records,
            outbound,
        })
    }

    /// The flush's records are acknowledged, the last one at `last_offset`: applies them and
    /// that offset to the store in one atomic batch, then drops their overlay.
    ///
    /// `last_offset` is `None` when the producer could not say (a retried batch the broker
    /// reported as a duplicate): the writes are applied and the store's offset stays, so a
    /// recovery replays a little more, never less.
    ///
    /// If the flush was dropped meanwhile (the partition was revoked, reassigned or set back
    /// to recovering), nothing is applied and this is `Ok`: the records are in the changelog,
    /// where the partition's next recovery reads them, so the source offsets may be committed.
    pub fn complete_flush(&self, flush: PendingFlush, last_offset: Option<i64>) -> Result<()> {
        let dropped = || {
            tracing::debug!(
                table = self.name(),
                partition = flush.partition,
                "flush completed after its partition was revoked or reset: left to recovery"
            );
            Ok(())
        };
        let Some(state) = self.state(flush.partition) else {
            return dropped();
        };
        let mut st = lock(&state);
        if !st.is_in_flight(flush.id) {
            return dropped();
        }
        if st.oldest_in_flight() != Some(flush.id) {
            return Err(Error::FlushOutOfOrder {
                table: self.name().to_owned(),
                partition: flush.partition,
            });
        }
        if self.spec.is_global() {
            if let Some(offset) = last_offset {
                // Every worker writes a global table: its store takes the changelog in order,
                // through the follower, and this worker's writes stay visible until then.
                st.ack_oldest(offset);
                return Ok(());
            }
        }
        let mut batch = WriteBatch::with_capacity(flush.records.len());
        for r in flush.records {
            match r.value {
                Some(v) => batch.put(flush.partition, r.key, v),
                None => batch.delete(flush.partition, r.key),
            };
        }
        if let Some(offset) = last_offset {
            batch.set_offset(flush.partition, offset);
        }
        self.store
            .apply(batch)
            .map_err(|e| self.store_error(&[flush.partition], e))?;
        st.complete_oldest();
        Ok(())
    }

    /// Producing a flush failed: forgets every unflushed write of the partition and sets it
    /// back to `Recovering`. Recover it, and seek its source back to the committed offset.
    pub fn abort_flush(&self, partition: i32) {
        if let Some(state) = self.state(partition) {
            let mut st = lock(&state);
            st.discard_all();
            st.status = PartitionStatus::Recovering;
        }
        tracing::warn!(
            table = self.name(),
            partition,
            "changelog flush failed: the partition's unflushed writes are dropped; it recovers from its changelog and its events are redelivered"
        );
    }

    /// Applies changelog records read back (recovery, a standby or a global table following
    /// its changelog) to the store, `last` being the offset of the last; for a held partition,
    /// under its lock, dropping this worker's acknowledged writes the store now has.
    pub(crate) fn apply_replayed(
        &self,
        partition: i32,
        mut batch: WriteBatch,
        last: i64,
    ) -> Result<()> {
        batch.set_offset(partition, last);
        let failed = |e| self.store_error(&[partition], e);
        match self.state(partition) {
            Some(state) => {
                let mut st = lock(&state);
                self.store.apply(batch).map_err(failed)?;
                st.applied_through(last);
            }
            None => self.store.apply(batch).map_err(failed)?,
        }
        Ok(())
    }

    /// Removes the store's data and applied offset of a partition that is not active, in one
    /// atomic step, so that it is rebuilt from the changelog's start (it was ahead of its
    /// changelog).
    pub(crate) fn wipe_partition(&self, partition: i32) -> Result<()> {
        self.ensure_recoverable(partition)?;
        let failed = |e| self.store_error(&[partition], e);
        match self.state(partition) {
            Some(state) => {
                let _held = lock(&state);
                self.store.drop_partition(partition).map_err(failed)
            }
            None => self.store.drop_partition(partition).map_err(failed),
        }
    }

    /// Makes the applied batches durable (call it when the source offsets are committed).
    pub fn flush_store(&self) -> Result<()> {
        self.store.flush().map_err(|e| self.store_error(&[], e))
    }
}

/// One locked, active partition of a table, for one all-or-nothing change: reads see the
/// writes not yet in the store and the change's own; the change's writes take the table's
/// normal path (pending overlay and changelog, or one store batch when detached) only when the
/// closure given to [`TableCore::with_partition`] returns `Ok`.
pub(crate) struct PartitionTxn<'a> {
    core: &'a TableCore,
    partition: i32,
    state: &'a PartitionState,
    /// This change's writes (`None`: delete).
    writes: Overlay,
}

impl PartitionTxn<'_> {
    /// The locked partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The value bytes of `key` in this partition.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        match self.writes.get(key) {
            Some(write) => Ok(write.clone()),
            None => self.core.read_locked(self.partition, self.state, key),
        }
    }

    /// Writes `key` in this partition (`None` deletes it), when the change succeeds.
    pub fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        self.writes.insert(key, value);
    }

    /// The writes not in the store with keys in `start..end`: the partition's, then this
    /// change's.
    fn overlay_range(&self, start: &[u8], end: Option<&[u8]>) -> Overlay {
        use std::ops::Bound;
        let mut overlay = self.state.overlay_range(start, end);
        let bounds = (
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        overlay.extend(
            self.writes
                .range::<[u8], _>(bounds)
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        overlay
    }

    /// The first entry with a key in `start..end` (`None`: to the end).
    pub fn first(&self, start: &[u8], end: Option<&[u8]>) -> Result<Option<(Bytes, Bytes)>> {
        use std::ops::Bound;
        let overlay = self.overlay_range(start, end);
        let from_overlay = overlay
            .iter()
            .find_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())));
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let mut from_store = None;
        let failed = |e| self.core.store_error(&[self.partition], e);
        for entry in self
            .core
            .store
            .range(self.partition, Bound::Included(start), upper)
            .map_err(failed)?
        {
            let (k, v) = entry.map_err(failed)?;
            // A key the overlay wrote is decided there (deleted, or counted above).
            if !overlay.contains_key(k.as_slice()) {
                from_store = Some((Bytes::from(k), Bytes::from(v)));
                break;
            }
        }
        Ok(match (from_overlay, from_store) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        })
    }

    /// The entries with keys in `start..end` (`None`: to the end), in key order.
    pub fn range(&self, start: &[u8], end: Option<&[u8]>) -> Result<Vec<(Bytes, Bytes)>> {
        use std::ops::Bound;
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let mut entries: BTreeMap<Bytes, Bytes> = BTreeMap::new();
        let failed = |e| self.core.store_error(&[self.partition], e);
        for entry in self
            .core
            .store
            .range(self.partition, Bound::Included(start), upper)
            .map_err(failed)?
        {
            let (k, v) = entry.map_err(failed)?;
            entries.insert(Bytes::from(k), Bytes::from(v));
        }
        for (k, v) in self.overlay_range(start, end) {
            match v {
                Some(v) => entries.insert(k, v),
                None => entries.remove(&k),
            };
        }
        Ok(entries.into_iter().collect())
    }
}
