//! The transaction over one partition: every read and write of a table goes through a locked,
//! active partition, and every write takes ONE path ([`TableCore::apply_writes`]): the
//! partition's pending overlay (for the next changelog flush), or one store batch when the
//! table is detached.

use std::collections::BTreeMap;

use bytes::Bytes;
use stores::WriteBatch;

use crate::error::{Error, Result};
use crate::table::effects::EffectHold;
use crate::table::hooks::Written;
use crate::table::idle::Activity;
use crate::table::pending::{Overlay, PartitionState, PartitionStatus};

use super::writes::TxnWrites;
use super::{key_text, lock, TableCore};

impl TableCore {
    fn not_owned(&self, key: &[u8], partition: i32, reason: &'static str) -> Error {
        if !self.store_is_open() {
            // Declared, but no worker started: it owns nothing yet.
            return Error::NotStarted;
        }
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
                .store()?
                .get(partition, key)
                .map_err(|e| self.store_error(&[partition], e))?
                .map(Bytes::from)),
        }
    }

    /// Runs `read` on the store's value of `key` in `partition`, where the store holds it
    /// (no copy for the memory store).
    fn read_stored<T>(
        &self,
        partition: i32,
        key: &[u8],
        read: impl FnOnce(Option<&[u8]>) -> Result<T>,
    ) -> Result<T> {
        let mut read = Some(read);
        let mut out = None;
        self.store()?
            .read_value(partition, key, &mut |value| {
                if let Some(read) = read.take() {
                    out = Some(read(value));
                }
            })
            .map_err(|e| self.store_error(&[partition], e))?;
        match (out, read) {
            (Some(out), _) => out,
            // A store that did not call back has no value to give.
            (None, Some(read)) => read(None),
            (None, None) => unreachable!("`read` ran, so its result was kept"),
        }
    }

    /// The value bytes of `key`: its newest write, else the store's.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.with_owned(key, |p, st| self.read_locked(p, st, key))
    }

    /// Runs `read` on the value bytes of `key` in `partition` (its newest write, else the
    /// store's) under the partition's lock, without copying them; returns its result and the
    /// partition's write version (for [`Self::try_put_in`]). `read` must not use the table.
    pub(crate) fn read_versioned_in<T>(
        &self,
        partition: i32,
        key: &[u8],
        read: impl FnOnce(Option<&[u8]>) -> Result<T>,
    ) -> Result<(T, u64)> {
        self.with_active(partition, key, |st| {
            let value = match st.lookup(key) {
                Some(write) => read(write.map(|b| &b[..]))?,
                None => self.read_stored(partition, key, read)?,
            };
            Ok((value, st.version))
        })
    }

    /// [`Self::put_if`] for a key of `partition` (the caller computed it), without copying the
    /// key when the table has no write hooks: `Ok(None)` when written, `Ok(Some(key))` (the key
    /// back, nothing written) when another write came in since `version`.
    pub(crate) fn try_put_in(
        &self,
        partition: i32,
        key: Bytes,
        value: Option<Bytes>,
        version: u64,
    ) -> Result<Option<Bytes>> {
        let no_hooks = self
            .hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if !no_hooks {
            let written = self.put_if(key.clone(), value, Some(version))?;
            return Ok((!written).then_some(key));
        }
        let state = self
            .state(partition)
            .ok_or_else(|| self.not_owned(&key, partition, "does not own"))?;
        let mut st = lock(&state);
        if st.status != PartitionStatus::Active {
            return Err(self.not_owned(
                &key,
                partition,
                "does not own yet (still recovering from the changelog)",
            ));
        }
        if st.version != version {
            return Ok(Some(key));
        }
        self.apply_writes(partition, &mut st, [(key, value)])?;
        Ok(None)
    }

    /// Reads and writes `key` of `partition` under one lock of the partition: `f` gets the
    /// value bytes (the newest write, else the store's) and returns the write to make (`None`:
    /// none, `Some(None)`: a delete) and a result. A key written since the last flush is
    /// rewritten in place (one hash lookup, no copy of the key). `Ok(None)`, `f` not called,
    /// when the table has write hooks (they see the old value and run without the lock) or is
    /// detached: then [`Self::read_versioned_in`] and [`Self::try_put_in`].
    pub(crate) fn update_in<T>(
        &self,
        partition: i32,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> Result<(Option<Option<Bytes>>, T)>,
    ) -> Result<Option<T>> {
        let hooked = !self
            .hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if self.detached || hooked {
            return Ok(None);
        }
        let log = self.cache_is_off();
        self.with_active(partition, key, |st| {
            // `f` runs under the lock: the same table used inside it would deadlock.
            let _updating = super::reentry::Updating::enter(self);
            let before = st.pending_bytes();
            let mut f = Some(f);
            let out = match st.rewrite_pending(key, log, |v| (f.take().expect("once"))(v)) {
                Some(out) => out?,
                None => {
                    let f = f.take().expect("not called");
                    let (write, out) = match st.lookup(key) {
                        Some(write) => f(write.map(|b| &b[..]))?,
                        None => self.read_stored(partition, key, f)?,
                    };
                    if let Some(value) = write {
                        st.write(Bytes::copy_from_slice(key), value, log);
                    }
                    out
                }
            };
            self.cached(before, st.pending_bytes());
            Ok(Some(out))
        })
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
        let hooks = self.write_hooks();
        let k = key.clone();
        let new = value.clone();
        let written = self.with_owned(&k, |partition, st| {
            if version.is_some_and(|v| v != st.version) {
                return Ok(None);
            }
            // The hooks see the value before (a join retracts what the old one made).
            let old = match hooks.is_empty() {
                true => None,
                false => self.read_locked(partition, st, &key)?,
            };
            self.apply_writes(partition, st, [(key, value)])?;
            Ok(Some((partition, old)))
        })?;
        let Some((partition, old)) = written else {
            return Ok(false);
        };
        let write = Written {
            partition,
            key: &k,
            old: old.as_ref(),
            new: new.as_ref(),
        };
        for hook in &hooks {
            hook(&write)?;
        }
        Ok(true)
    }

    /// The one write path, for a single `put` and a transaction's writes alike: a table with
    /// a changelog keeps them in the partition's pending overlay until the next flush; a
    /// detached table (no changelog) writes them straight to its store, in one batch.
    fn apply_writes(
        &self,
        partition: i32,
        st: &mut PartitionState,
        writes: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    ) -> Result<()> {
        if !self.detached {
            let log = self.cache_is_off();
            let before = st.pending_bytes();
            for (key, value) in writes {
                st.write(key, value, log);
            }
            self.cached(before, st.pending_bytes());
            return Ok(());
        }
        let writes = writes.into_iter();
        let mut batch = WriteBatch::with_capacity(writes.size_hint().0);
        for (key, value) in writes {
            match value {
                Some(v) => batch.put(partition, key, v),
                None => batch.delete(partition, key),
            };
        }
        self.store()?
            .apply(batch)
            .map_err(|e| self.store_error(&[partition], e))?;
        st.version += 1;
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
                writes: TxnWrites::default(),
            };
            let result = f(&mut txn)?;
            let writes = txn.writes;
            if !writes.is_empty() {
                if let Err(e) = self.apply_writes(partition, guard, writes.into_sorted()) {
                    // Derived from writes that did not happen.
                    guard.derived.take();
                    return Err(e);
                }
            }
            Ok(result)
        })
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
        for entry in self.store()?.iter(partition).map_err(failed)? {
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
            .store()?
            .partition_stats(partition)
            .map_err(failed)?
            .entries;
        for (k, v) in st.merged_overlay() {
            let stored = self.store()?.get(partition, &k).map_err(failed)?;
            match (stored.is_some(), v.is_some()) {
                (false, true) => len += 1,
                (true, false) => len -= 1,
                _ => {}
            }
        }
        Ok(len)
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
    writes: TxnWrites,
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

    /// Runs `read` on the value bytes of `key` in this partition (`None`: no entry) without
    /// copying them: [`get`](Self::get) for a caller that only decodes them.
    pub fn read<T>(&self, key: &[u8], read: impl FnOnce(Option<&[u8]>) -> Result<T>) -> Result<T> {
        if let Some(write) = self.writes.get(key) {
            return read(write.as_deref());
        }
        match self.state.lookup(key) {
            Some(write) => read(write.map(|b| &b[..])),
            None => self.core.read_stored(self.partition, key, read),
        }
    }

    /// A hold on the partition's flushes while an effect of this change runs after it (a close
    /// callback): call [`EffectHold::done`] when it finished (see `table::effects`).
    pub fn hold_effects(&self) -> EffectHold {
        self.state.effects.hold()
    }

    /// The partition's last event here, if it saw one since it became active.
    pub fn activity(&self) -> Option<Activity> {
        self.state.activity.get()
    }

    /// Records the partition's last event (at once, whatever the change's outcome).
    pub fn set_activity(&self, activity: Activity) {
        self.state.activity.set(Some(activity));
    }

    /// When the partition last became active here.
    pub fn active_since(&self) -> tokio::time::Instant {
        self.state.active_since
    }

    /// Takes the state the caller derived from this partition's entries and kept with
    /// [`keep_derived`](Self::keep_derived) (`None`: none kept, or dropped since because the
    /// entries changed otherwise: derive it again). Keep it again only when the change
    /// succeeds (a change that fails before leaves it to be derived again).
    pub fn take_derived(&self) -> Option<Box<dyn std::any::Any + Send>> {
        self.state.derived.take()
    }

    /// Keeps `derived` with the partition for its next change (see
    /// [`take_derived`](Self::take_derived)); dropped if this change's writes fail.
    pub fn keep_derived(&self, derived: Box<dyn std::any::Any + Send>) {
        self.state.derived.replace(Some(derived));
    }

    /// Writes `key` in this partition (`None` deletes it), when the change succeeds.
    pub fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        self.writes.put(key, value);
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
        self.writes.add_range_to(bounds, &mut overlay);
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
            .store()?
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
            .store()?
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
