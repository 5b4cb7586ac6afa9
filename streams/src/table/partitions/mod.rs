//! A table over bytes: which partitions this worker holds and in which status (here), the
//! transaction over one partition that every read and write goes through ([`txn`]), and the
//! changelog flush protocol the runtime drives ([`flush`]).
//!
//! # What the runtime does, per table partition
//!
//! 1. On assignment: [`TableCore::assign`] (status `Recovering`), then
//!    [`recover_partition`](super::recovery::recover_partition) up to the changelog's high
//!    watermark, then [`TableCore::set_active`]; only then do the partition's events flow.
//! 2. In the commit loop, in this order:
//!    - (a) read the commit positions of the source partitions (a done event has made all its
//!      table writes, so they are pending or in flight now);
//!    - (b) for every held table partition, [`TableCore::take_settled`] moves the writes made
//!      so far into a [`PendingFlush`] (reads still see them), once the close callbacks of
//!      windows closed by those writes finished (`table::effects`);
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

mod flush;
mod reentry;
mod txn;
mod writes;

pub use flush::PendingFlush;
pub(crate) use flush::{outbound_record, outbound_record_at, Outbound};
pub(crate) use txn::PartitionTxn;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use kafka_client::producer::partitioner::partition_for_key;
use stores::Store;
use tokio::sync::Notify;

use super::store_slot::StoreSlot;

use std::any::Any;
use std::sync::Weak;

use super::hooks::{Home, WriteHook};
use super::idle::IdleCloser;
use super::pending::{PartitionState, PartitionStatus};
use super::render::{Part, Render};
use super::spec::TableSpec;
use crate::error::{Error, Result};

/// Checks that a changelog record's key and value decode as the table's types: `Err` holds the
/// failing part (`key`/`value`) and why.
pub(crate) type RecordCheck =
    Arc<dyn Fn(&[u8], Option<&[u8]>) -> Result<(), (&'static str, String)> + Send + Sync>;

type Shared = Arc<Mutex<PartitionState>>;

/// A table's partitions on this worker, over bytes. Shared by every typed handle of the table
/// and by the runtime.
pub struct TableCore {
    spec: TableSpec,
    /// Opened when the worker starts ([`open_store`](Self::open_store)).
    store: StoreSlot,
    /// Behind a lock: a windowed table replaces it with one that reads its key layout.
    check: RwLock<RecordCheck>,
    /// No changelog: writes go straight to the store and every partition is held.
    detached: bool,
    parts: RwLock<BTreeMap<i32, Shared>>,
    next_flush_id: AtomicU64,
    /// The write cache's bound in bytes per table on this worker (`table_cache_max_bytes`;
    /// 0: off, one changelog record per write; `u64::MAX`: bounded by the commit interval only).
    cache_max_bytes: AtomicU64,
    /// Bytes of the writes waiting for a flush, over every held partition.
    cached_bytes: AtomicU64,
    /// Notified when a write takes the cache over its bound (the worker commits early).
    cache_full: RwLock<Option<Arc<Notify>>>,
    outbound: RwLock<Option<Outbound>>,
    /// A windowed table's closing of idle partitions, for the runtime to drive.
    idle: RwLock<Option<IdleCloser>>,
    /// Entries as JSON, from the typed table's codecs (the web pages).
    render: RwLock<Option<Render>>,
    /// Events a windowed table or join dropped as late, read at each metrics scrape.
    late_events: RwLock<Option<LateEvents>>,
    /// Derived state following the writes (`table::hooks`).
    pub(in crate::table) hooks: RwLock<Vec<WriteHook>>,
    /// The app that declared the table (`table::hooks`).
    pub(in crate::table) home: RwLock<Option<Home>>,
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

/// Reads a late-event counter kept by the windowed table or join that owns the table.
pub(crate) type LateEvents = Arc<dyn Fn() -> u64 + Send + Sync>;

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
        store: StoreSlot,
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
            cache_max_bytes: AtomicU64::new(u64::MAX),
            cached_bytes: AtomicU64::new(0),
            cache_full: RwLock::new(None),
            outbound: RwLock::new(None),
            idle: RwLock::new(None),
            render: RwLock::new(None),
            late_events: RwLock::new(None),
            hooks: RwLock::default(),
            home: RwLock::new(None),
        };
        if detached {
            core.open_store()?;
            for p in 0..core.spec.partition_count() {
                core.assign(p)?;
                core.set_active(p)?;
            }
        }
        Ok(core)
    }

    /// Sets how entries render as JSON (the typed table does, at declaration).
    pub(crate) fn set_render(&self, render: Render) {
        *self.render.write().unwrap_or_else(|e| e.into_inner()) = Some(render);
    }

    /// Says where this table's late-event count lives (windowed tables and joins set it).
    pub(crate) fn set_late_events(&self, count: LateEvents) {
        *self.late_events.write().unwrap_or_else(|e| e.into_inner()) = Some(count);
    }

    /// Events dropped as later than the grace period, when the table counts them.
    pub(crate) fn late_events(&self) -> Option<u64> {
        let count = self.late_events.read().unwrap_or_else(|e| e.into_inner());
        count.as_ref().map(|count| count())
    }

    /// Key or value bytes decoded with the table's codecs, as JSON; the error says why they
    /// do not decode (or that the table has no codecs to render with).
    pub(crate) fn render_json(
        &self,
        part: Part,
        bytes: &[u8],
    ) -> Result<serde_json::Value, String> {
        let render = self
            .render
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match render {
            Some(render) => render(part, bytes),
            None => Err("the table has no codecs to render its entries with".into()),
        }
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

    /// Has the runtime check this table's idle partitions with `closer` (a windowed table's
    /// `close_idle_after`).
    pub(crate) fn set_idle(&self, closer: IdleCloser) {
        *self.idle.write().unwrap_or_else(|e| e.into_inner()) = Some(closer);
    }

    /// The closing of idle partitions, if the table has one.
    pub(crate) fn idle(&self) -> Option<IdleCloser> {
        self.idle.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The declaration.
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        self.spec.name()
    }

    /// The store holding the applied data; [`Error::NotStarted`] until
    /// [`open_store`](Self::open_store).
    pub fn store(&self) -> Result<&Arc<dyn Store>> {
        self.store.get().ok_or(Error::NotStarted)
    }

    /// Opens the store unless it is open: when the worker starts (or the CLI reads or resets
    /// it), never at declaration. A locked or corrupt file is an error naming it.
    pub fn open_store(&self) -> Result<&Arc<dyn Store>> {
        Ok(self.store.open()?)
    }

    /// Whether the store is open (a worker started, here or in this process's CLI command).
    pub(crate) fn store_is_open(&self) -> bool {
        self.store.get().is_some()
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
        self.store()?
            .check_usable()
            .map_err(|e| self.store_error(&[], e))
    }

    fn state(&self, partition: i32) -> Option<Shared> {
        reentry::refuse_inside_update(self, self.name());
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        parts.get(&partition).cloned()
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

    /// Whether a partition holds writes not yet in its store (waiting for a flush, or in one).
    pub(crate) fn has_unflushed(&self) -> bool {
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        parts.values().any(|st| lock(st).has_unflushed())
    }

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
            self.discard(&mut st);
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
            self.discard(&mut st);
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
            self.discard(&mut st);
        }
        st.derived.take();
        if status == PartitionStatus::Active && st.status != PartitionStatus::Active {
            st.active_since = tokio::time::Instant::now();
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
        self.store()?
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

    /// Removes the store's data and applied offset of a partition that is not active, in one
    /// atomic step, so that it is rebuilt from the changelog's start (it was ahead of its
    /// changelog).
    pub(crate) fn wipe_partition(&self, partition: i32) -> Result<()> {
        self.ensure_recoverable(partition)?;
        let failed = |e| self.store_error(&[partition], e);
        match self.state(partition) {
            Some(state) => {
                let _held = lock(&state);
                self.store()?.drop_partition(partition).map_err(failed)
            }
            None => self.store()?.drop_partition(partition).map_err(failed),
        }
    }

    /// Sets the write cache's bound (`table_cache_max_bytes`) and what to notify when a write
    /// takes the cache over it: the runtime does, from the app's settings, before the worker's
    /// first event.
    pub(crate) fn set_cache(&self, max_bytes: u64, full: Arc<Notify>) {
        self.cache_max_bytes.store(max_bytes, Ordering::Relaxed);
        *self.cache_full.write().unwrap_or_else(|e| e.into_inner()) = Some(full);
    }

    /// Whether the cache is off: every write becomes its own changelog record.
    pub(crate) fn cache_is_off(&self) -> bool {
        self.cache_max_bytes.load(Ordering::Relaxed) == 0
    }

    /// Whether the writes waiting for the next flush (keys and values, over every held
    /// partition) exceed the cache's bound: the runtime then flushes (commits) early.
    pub(crate) fn cache_over_bound(&self) -> bool {
        let bound = self.cache_max_bytes.load(Ordering::Relaxed);
        bound != 0 && self.cached_bytes.load(Ordering::Relaxed) > bound
    }

    /// A partition's pending bytes went from `before` to `after` (a write): counts them, and
    /// notifies the worker when the cache is over its bound now.
    pub(in crate::table) fn cached(&self, before: usize, after: usize) {
        let (before, after) = (before as u64, after as u64);
        if after >= before {
            self.cached_bytes
                .fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.uncache(before - after);
        }
        if after > before && self.cache_over_bound() {
            if let Some(full) = &*self.cache_full.read().unwrap_or_else(|e| e.into_inner()) {
                full.notify_one();
            }
        }
    }

    /// `bytes` left the cache (taken by a flush, or dropped).
    pub(in crate::table) fn uncache(&self, bytes: u64) {
        let _ = self
            .cached_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(bytes))
            });
    }

    /// Forgets every unflushed write of a partition, and its bytes in the cache.
    fn discard(&self, st: &mut PartitionState) {
        self.uncache(st.pending_bytes() as u64);
        st.discard_all();
    }

    /// Makes the applied batches durable (call it when the source offsets are committed).
    pub fn flush_store(&self) -> Result<()> {
        self.store()?.flush().map_err(|e| self.store_error(&[], e))
    }
}

// Hooks and home (`table::hooks`).
impl TableCore {
    /// Has `hook` called after every write of this table.
    pub(crate) fn add_write_hook(&self, hook: WriteHook) {
        self.hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    /// The hooks, if any (cloned: they run without the lock).
    pub(crate) fn write_hooks(&self) -> Vec<WriteHook> {
        self.hooks.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the app that declared this table.
    pub(crate) fn set_home(&self, home: Home) {
        *self.home.write().unwrap_or_else(|e| e.into_inner()) = Some(home);
    }

    /// The app that declared this table, unless it is detached or the app is gone.
    pub(crate) fn home(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        self.home
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Weak::upgrade)
    }
}
