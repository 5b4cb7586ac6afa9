//! `RedbStore`: one redb file per table, a redb table per partition, and a table of applied
//! offsets written in the same transaction as the data.
//!
//! File layout (layout version 1):
//! - `meta`: `&str -> u64`, holds `layout = 1`, written when the file is created;
//! - `offsets`: `i32 -> i64`, the applied changelog offset of each partition;
//! - `data/{partition}`: `&[u8] -> &[u8]`, the partition's keys and values.

use std::collections::btree_map::Entry as MapEntry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use redb::{
    Builder, Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, TableError, TableHandle, WriteTransaction,
};

use crate::store::is_empty_range;
use crate::{
    BatchOp, EntryIter, Error, Offset, Partition, PartitionStats, Result, Store, StoreStats,
    WriteBatch,
};

/// Version of the table layout above; bump it when the layout changes incompatibly.
const LAYOUT_VERSION: u64 = 1;
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const OFFSETS: TableDefinition<Partition, Offset> = TableDefinition::new("offsets");
const DATA_PREFIX: &str = "data/";

fn data_table_name(partition: Partition) -> String {
    format!("{DATA_PREFIX}{partition}")
}

fn data_table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// How a [`RedbStore`] opens its file and commits batches.
#[derive(Debug, Clone)]
pub struct RedbOptions {
    durable_batches: bool,
    group_records: usize,
    cache_size: Option<usize>,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            durable_batches: false,
            group_records: 100_000,
            cache_size: None,
        }
    }
}

impl RedbOptions {
    /// Defaults: batches grouped into non-durable commits of up to 100,000 records, durable on
    /// [`Store::flush`]; redb's cache size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consecutive batches share one redb transaction until it holds `records` writes, or until
    /// a read or a flush commits it (reads always see every applied batch). Larger groups make a
    /// changelog restore faster (each commit copies every B-tree page it touched) and hold more
    /// dirty pages in memory. `1` commits every batch on its own.
    pub fn group_records(mut self, records: usize) -> Self {
        self.group_records = records.max(1);
        self
    }

    /// Make every [`Store::apply`] a durable commit (an fsync, milliseconds each) instead of
    /// waiting for [`Store::flush`].
    pub fn durable_batches(mut self, durable: bool) -> Self {
        self.durable_batches = durable;
        self
    }

    /// Bytes of memory redb may use to cache pages.
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = Some(bytes);
        self
    }
}

/// A persistent store in one redb file.
///
/// Each [`apply`](Store::apply) writes the batch's data and offsets into one redb write
/// transaction, committed only at a batch boundary, so a crash never leaves half a batch.
/// Consecutive batches share a transaction (see [`RedbOptions::group_records`]) until a read,
/// [`flush`](Store::flush) or the group limit commits it; those commits are non-durable (in
/// memory until the next durable commit) and `flush` commits durably. A crash loses the batches
/// since the last flush, and the applied offsets go back with them, so replaying the changelog
/// from [`applied_offset`](Store::applied_offset)` + 1` restores them.
///
/// Errors are crash-like: if a write or a commit fails (in `apply`, `drop_partition`, `flush`,
/// or a read committing the pending group), the open transaction is abandoned, with batches
/// that were applied successfully before it. The store is then *poisoned*: every later call,
/// reads included (they would see older values), fails with [`Error::Poisoned`], naming the
/// partitions that may have lost writes, until the store is reopened. The reopened file holds
/// the last durable commit, data and offsets in agreement: resume each partition's changelog
/// from its `applied_offset`. A poisoned store does not flush when dropped.
///
/// Costs: an `apply` followed by a read costs one commit, so group writes into batches (a
/// changelog poll, the events of one consumer poll) rather than applying one record at a time.
/// A durable commit writes out every page changed since the previous one and fsyncs
/// (milliseconds), so flush at the consumer's commit interval, and rarely while restoring a
/// partition from its changelog.
///
/// The file is locked while open: a second process (or a second handle) opening it gets
/// [`Error::Locked`]. Dropping the store flushes; use [`close`](RedbStore::close) to see errors.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    durable_batches: bool,
    group_records: usize,
    writer: Mutex<Writer>,
}

/// Write state, behind one lock so commits and flushes never interleave.
#[derive(Default)]
struct Writer {
    /// The transaction that the latest batches went into, not committed yet.
    group: Option<Group>,
    /// True after a non-durable commit, until a durable one.
    dirty: bool,
    /// Partitions written since the last durable commit (pending group included).
    undurable: BTreeSet<Partition>,
    /// Set by the first failed write or commit; the store refuses every call after it.
    poisoned: Option<Poison>,
}

/// Why a store refuses every call, and which partitions may have lost writes.
struct Poison {
    cause: String,
    partitions: Vec<Partition>,
}

struct Group {
    txn: WriteTransaction,
    records: usize,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("durable_batches", &self.durable_batches)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (or creates) the file of table `table` in directory `dir`, creating the directory
    /// if needed: `dir/<table>.redb`.
    pub fn open(dir: impl AsRef<Path>, table: &str) -> Result<Self> {
        Self::open_with(dir, table, RedbOptions::default())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(dir: impl AsRef<Path>, table: &str, options: RedbOptions) -> Result<Self> {
        crate::table_name::validate_table_name(table)?;
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Self::open_file(dir.join(format!("{table}.redb")), options)
    }

    /// Opens (or creates) the store file at `path`.
    pub fn open_file(path: impl Into<PathBuf>, options: RedbOptions) -> Result<Self> {
        let path = path.into();
        let db = builder(&options)
            .create(&path)
            .map_err(|e| classify(&path, "opening", None, e))?;
        Self::from_db(db, path, options)
    }

    /// Opens (or creates) the store kept in file `path` through a custom redb
    /// [`StorageBackend`](redb::StorageBackend) over that file, e.g. one that instruments its
    /// I/O or injects failures into it. `path` names the file in errors and is what
    /// [`stats`](Store::stats) measures.
    pub fn open_backend(
        path: impl Into<PathBuf>,
        backend: impl redb::StorageBackend,
        options: RedbOptions,
    ) -> Result<Self> {
        let path = path.into();
        let db = builder(&options)
            .create_with_backend(backend)
            .map_err(|e| classify(&path, "opening", None, e))?;
        Self::from_db(db, path, options)
    }

    fn from_db(db: Database, path: PathBuf, options: RedbOptions) -> Result<Self> {
        let store = Self {
            db,
            path,
            durable_batches: options.durable_batches,
            group_records: if options.durable_batches {
                1
            } else {
                options.group_records
            },
            writer: Mutex::new(Writer::default()),
        };
        store.check_layout()?;
        let offsets = store.applied_offsets()?;
        tracing::debug!(path = %store.path.display(), ?offsets, "opened redb store");
        Ok(store)
    }

    /// The file backing this store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and closes the file, reporting any error (dropping the store only logs it).
    pub fn close(self) -> Result<()> {
        self.flush()
    }

    /// Writes the layout marker into a new file, or checks the one in an existing file.
    fn check_layout(&self) -> Result<()> {
        let txn = self.read_txn("checking layout")?;
        let names: Vec<String> = txn
            .list_tables()
            .map_err(|e| self.err("listing tables", None, e))?
            .map(|t| t.name().to_string())
            .collect();
        if names.iter().any(|n| n == META.name()) {
            let meta = txn
                .open_table(META)
                .map_err(|e| self.err("reading layout", None, e))?;
            let layout = meta
                .get("layout")
                .map_err(|e| self.err("reading layout", None, e))?
                .map(|g| g.value());
            return match layout {
                Some(LAYOUT_VERSION) => Ok(()),
                Some(other) => Err(Error::Incompatible {
                    path: self.path.clone(),
                    detail: format!(
                        "store layout version {other}, this build reads version {LAYOUT_VERSION}"
                    ),
                }),
                None => Err(self.foreign()),
            };
        }
        if !names.is_empty() {
            return Err(self.foreign());
        }
        drop(txn);
        // A new file: mark it durably so a crash cannot leave an unmarked file with data.
        let txn = self.write_txn("writing layout", Durability::Immediate)?;
        {
            let mut meta = txn
                .open_table(META)
                .map_err(|e| self.err("writing layout", None, e))?;
            meta.insert("layout", LAYOUT_VERSION)
                .map_err(|e| self.err("writing layout", None, e))?;
        }
        txn.commit()
            .map_err(|e| self.err("writing layout", None, e))
    }

    fn foreign(&self) -> Error {
        Error::Incompatible {
            path: self.path.clone(),
            detail: "a redb file without this crate's layout marker".to_string(),
        }
    }

    fn err(
        &self,
        op: &'static str,
        partition: Option<Partition>,
        e: impl Into<redb::Error>,
    ) -> Error {
        classify(&self.path, op, partition, e)
    }

    /// A read transaction that sees every applied batch: commits the pending group first.
    fn read_txn(&self, op: &'static str) -> Result<ReadTransaction> {
        {
            let mut writer = self.lock_writer()?;
            if writer.group.is_some() {
                self.commit_group(&mut writer, Durability::None, op)?;
            }
        }
        self.db.begin_read().map_err(|e| self.err(op, None, e))
    }

    /// The write state, unless the store is poisoned.
    fn lock_writer(&self) -> Result<MutexGuard<'_, Writer>> {
        let writer = self.writer.lock().map_err(|_| Error::Poisoned {
            store: format!("file {}", self.path.display()),
            partitions: Vec::new(),
            cause: "a thread panicked while writing to it".to_string(),
        })?;
        match &writer.poisoned {
            None => Ok(writer),
            Some(poison) => Err(Error::Poisoned {
                store: format!("file {}", self.path.display()),
                partitions: poison.partitions.clone(),
                cause: poison.cause.clone(),
            }),
        }
    }

    /// A write or commit failed with `error`: the pending group is abandoned and, with it,
    /// batches that were applied successfully before, so the store refuses every later call
    /// (see [`lock_writer`](Self::lock_writer)). `partitions`: those the failed call wrote to.
    fn poison(
        &self,
        writer: &mut Writer,
        op: &'static str,
        partitions: &BTreeSet<Partition>,
        error: &Error,
    ) {
        writer.group = None;
        let mut lost = std::mem::take(&mut writer.undurable);
        lost.extend(partitions);
        let partitions: Vec<Partition> = lost.into_iter().collect();
        tracing::error!(
            path = %self.path.display(),
            op,
            error = %error,
            ?partitions,
            "store write failed: it refuses every call until it is reopened; its partitions \
             then recover from their changelog"
        );
        writer.poisoned = Some(Poison {
            cause: cause_text(error),
            partitions,
        });
    }

    /// Commits the pending group (if any) with `durability`. On failure the group is gone
    /// (aborted), with the batches applied since the last commit, and the store is poisoned.
    fn commit_group(
        &self,
        writer: &mut Writer,
        durability: Durability,
        op: &'static str,
    ) -> Result<()> {
        let result = self.try_commit_group(writer, durability, op);
        if let Err(e) = &result {
            self.poison(writer, op, &BTreeSet::new(), e);
        }
        result
    }

    fn try_commit_group(
        &self,
        writer: &mut Writer,
        durability: Durability,
        op: &'static str,
    ) -> Result<()> {
        let durable = matches!(durability, Durability::Immediate);
        match writer.group.take() {
            Some(mut group) => {
                group
                    .txn
                    .set_durability(durability)
                    .map_err(|e| self.err(op, None, e))?;
                group.txn.commit().map_err(|e| self.err(op, None, e))?;
            }
            None if durable && writer.dirty => {
                // Nothing pending, but earlier non-durable commits: an empty durable commit
                // persists them.
                self.write_txn(op, Durability::Immediate)?
                    .commit()
                    .map_err(|e| self.err(op, None, e))?;
            }
            None => return Ok(()),
        }
        writer.dirty = !durable;
        if durable {
            writer.undurable.clear();
        }
        Ok(())
    }

    /// Runs `write`, which writes to `partitions`, in the pending group (opening one if
    /// needed), then commits the group if it is full. If `write` fails, the whole group is
    /// abandoned (nothing of it lands) and the store is poisoned.
    fn write_grouped(
        &self,
        op: &'static str,
        records: usize,
        partitions: BTreeSet<Partition>,
        write: impl FnOnce(&WriteTransaction) -> Result<()>,
    ) -> Result<()> {
        let mut writer = self.lock_writer()?;
        let mut group = match writer.group.take() {
            Some(group) => group,
            None => match self.write_txn(op, Durability::None) {
                Ok(txn) => Group { txn, records: 0 },
                Err(e) => {
                    self.poison(&mut writer, op, &partitions, &e);
                    return Err(e);
                }
            },
        };
        if let Err(e) = write(&group.txn) {
            drop(group);
            self.poison(&mut writer, op, &partitions, &e);
            return Err(e);
        }
        group.records += records.max(1);
        let full = group.records >= self.group_records;
        writer.group = Some(group);
        writer.undurable.extend(partitions);
        if full {
            let durability = if self.durable_batches {
                Durability::Immediate
            } else {
                Durability::None
            };
            self.commit_group(&mut writer, durability, op)?;
        }
        Ok(())
    }

    fn write_txn(&self, op: &'static str, durability: Durability) -> Result<WriteTransaction> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(op, None, e))?;
        txn.set_durability(durability)
            .map_err(|e| self.err(op, None, e))?;
        Ok(txn)
    }

    fn partition_stats_in(
        &self,
        txn: &ReadTransaction,
        partition: Partition,
    ) -> Result<PartitionStats> {
        let name = data_table_name(partition);
        let op = "reading partition stats";
        let table = match txn.open_table(data_table(&name)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(PartitionStats::default()),
            Err(e) => return Err(self.err(op, Some(partition), e)),
        };
        let entries = table.len().map_err(|e| self.err(op, Some(partition), e))?;
        let stats = table
            .stats()
            .map_err(|e| self.err(op, Some(partition), e))?;
        Ok(PartitionStats {
            entries,
            bytes: stats.stored_bytes(),
        })
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        if let Err(e @ Error::Poisoned { .. }) = self.check_usable() {
            tracing::debug!(path = %self.path.display(), error = %e, "closing a poisoned store without a flush");
            return;
        }
        if let Err(e) = self.flush() {
            tracing::warn!(path = %self.path.display(), error = %e, "flush on drop failed; batches since the last flush will be replayed from the changelog");
        }
    }
}

impl Store for RedbStore {
    fn get(&self, partition: Partition, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let op = "reading a key";
        let txn = self.read_txn(op)?;
        let name = data_table_name(partition);
        let table = match txn.open_table(data_table(&name)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(op, Some(partition), e)),
        };
        let value = table
            .get(key)
            .map_err(|e| self.err(op, Some(partition), e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn range(
        &self,
        partition: Partition,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Result<EntryIter<'_>> {
        if is_empty_range(start, end) {
            self.check_usable()?;
            return Ok(Box::new(std::iter::empty()));
        }
        let op = "scanning";
        let txn = self.read_txn(op)?;
        let name = data_table_name(partition);
        let table = match txn.open_table(data_table(&name)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Box::new(std::iter::empty())),
            Err(e) => return Err(self.err(op, Some(partition), e)),
        };
        // The range keeps the read transaction alive: the scan is a snapshot.
        let range = table
            .range::<&[u8]>((start, end))
            .map_err(|e| self.err(op, Some(partition), e))?;
        Ok(Box::new(range.map(move |item| {
            item.map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
                .map_err(|e| self.err(op, Some(partition), e))
        })))
    }

    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let op = "applying a batch";
        let (mut ops, offsets) = batch.into_parts();
        // B-tree inserts in key order touch each page once instead of at random. The sort is
        // stable, so writes to the same key keep their order and the last one still wins.
        if !ops.is_sorted_by(|a, b| (a.partition(), a.key()) <= (b.partition(), b.key())) {
            ops.sort_by(|a, b| (a.partition(), a.key()).cmp(&(b.partition(), b.key())));
        }
        let partitions = ops
            .iter()
            .map(BatchOp::partition)
            .chain(offsets.keys().copied())
            .collect();
        self.write_grouped(op, ops.len(), partitions, |txn| {
            // redb allows one open handle per table and transaction: keep them by partition.
            let mut tables = BTreeMap::new();
            for write in &ops {
                let partition = write.partition();
                let table = match tables.entry(partition) {
                    MapEntry::Occupied(t) => t.into_mut(),
                    MapEntry::Vacant(slot) => {
                        let name = data_table_name(partition);
                        let table = txn
                            .open_table(data_table(&name))
                            .map_err(|e| self.err(op, Some(partition), e))?;
                        slot.insert(table)
                    }
                };
                let result = match write {
                    BatchOp::Put { key, value, .. } => {
                        table.insert(key.as_slice(), value.as_slice()).map(drop)
                    }
                    BatchOp::Delete { key, .. } => table.remove(key.as_slice()).map(drop),
                };
                result.map_err(|e| self.err(op, Some(partition), e))?;
            }
            if !offsets.is_empty() {
                let mut table = txn.open_table(OFFSETS).map_err(|e| self.err(op, None, e))?;
                for (&partition, &offset) in &offsets {
                    table
                        .insert(partition, offset)
                        .map_err(|e| self.err(op, Some(partition), e))?;
                }
            }
            Ok(())
        })
    }

    fn applied_offset(&self, partition: Partition) -> Result<Option<Offset>> {
        let op = "reading the applied offset";
        let txn = self.read_txn(op)?;
        let table = match txn.open_table(OFFSETS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(op, Some(partition), e)),
        };
        let offset = table
            .get(partition)
            .map_err(|e| self.err(op, Some(partition), e))?;
        Ok(offset.map(|g| g.value()))
    }

    fn applied_offsets(&self) -> Result<BTreeMap<Partition, Offset>> {
        let op = "reading applied offsets";
        let txn = self.read_txn(op)?;
        let table = match txn.open_table(OFFSETS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.err(op, None, e)),
        };
        let iter = table.iter().map_err(|e| self.err(op, None, e))?;
        iter.map(|item| {
            item.map(|(p, o)| (p.value(), o.value()))
                .map_err(|e| self.err(op, None, e))
        })
        .collect()
    }

    fn partitions(&self) -> Result<Vec<Partition>> {
        let op = "listing partitions";
        let mut partitions: Vec<Partition> = self.applied_offsets()?.into_keys().collect();
        let txn = self.read_txn(op)?;
        let names = txn.list_tables().map_err(|e| self.err(op, None, e))?;
        for handle in names {
            let Some(partition) = handle
                .name()
                .strip_prefix(DATA_PREFIX)
                .and_then(|p| p.parse::<Partition>().ok())
            else {
                continue;
            };
            // `len` is O(1); the byte count of `partition_stats_in` walks the tree.
            let name = data_table_name(partition);
            let table = txn
                .open_table(data_table(&name))
                .map_err(|e| self.err(op, Some(partition), e))?;
            if table.len().map_err(|e| self.err(op, Some(partition), e))? > 0 {
                partitions.push(partition);
            }
        }
        partitions.sort_unstable();
        partitions.dedup();
        Ok(partitions)
    }

    fn flush(&self) -> Result<()> {
        let mut writer = self.lock_writer()?;
        self.commit_group(
            &mut writer,
            Durability::Immediate,
            "flushing (durable commit)",
        )
    }

    fn check_usable(&self) -> Result<()> {
        self.lock_writer().map(drop)
    }

    fn drop_partition(&self, partition: Partition) -> Result<()> {
        let op = "dropping a partition";
        self.write_grouped(op, 1, BTreeSet::from([partition]), |txn| {
            let name = data_table_name(partition);
            txn.delete_table(data_table(&name))
                .map_err(|e| self.err(op, Some(partition), e))?;
            let mut offsets = txn
                .open_table(OFFSETS)
                .map_err(|e| self.err(op, Some(partition), e))?;
            offsets
                .remove(partition)
                .map_err(|e| self.err(op, Some(partition), e))?;
            Ok(())
        })?;
        tracing::debug!(path = %self.path.display(), partition, "dropped partition");
        Ok(())
    }

    fn partition_stats(&self, partition: Partition) -> Result<PartitionStats> {
        let txn = self.read_txn("reading partition stats")?;
        self.partition_stats_in(&txn, partition)
    }

    fn stats(&self) -> Result<StoreStats> {
        let partitions = self.partitions()?;
        let txn = self.read_txn("reading stats")?;
        let partitions = partitions
            .into_iter()
            .map(|p| Ok((p, self.partition_stats_in(&txn, p)?)))
            .collect::<Result<_>>()?;
        let file_bytes = std::fs::metadata(&self.path)
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })?
            .len();
        Ok(StoreStats {
            partitions,
            file_bytes: Some(file_bytes),
        })
    }
}

fn builder(options: &RedbOptions) -> Builder {
    let mut builder = Builder::new();
    if let Some(bytes) = options.cache_size {
        builder.set_cache_size(bytes);
    }
    builder
}

/// What went wrong, without the file name (a poisoned store's error names it).
fn cause_text(error: &Error) -> String {
    match error {
        Error::Redb {
            op,
            partition,
            source,
            ..
        } => format!("{op}{}: {source}", fmt_partition(*partition)),
        Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

fn fmt_partition(partition: Option<Partition>) -> String {
    partition.map_or_else(String::new, |p| format!(" (partition {p})"))
}

/// Turns a redb error into ours, picking out the cases an operator must act on.
fn classify(
    path: &Path,
    op: &'static str,
    partition: Option<Partition>,
    e: impl Into<redb::Error>,
) -> Error {
    let path = path.to_path_buf();
    match e.into() {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
            Error::Locked { path }
        }
        redb::Error::UpgradeRequired(version) => Error::Incompatible {
            path,
            detail: format!("redb file format {version}, older than this build reads"),
        },
        redb::Error::Corrupted(detail) if detail.contains("file format version") => {
            Error::Incompatible { path, detail }
        }
        redb::Error::Corrupted(detail) => Error::Corrupted { path, detail },
        // redb reports a file that is not a redb database at all this way.
        redb::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => Error::Corrupted {
            path,
            detail: e.to_string(),
        },
        e @ (redb::Error::TableTypeMismatch { .. } | redb::Error::TypeDefinitionChanged { .. }) => {
            Error::Incompatible {
                path,
                detail: e.to_string(),
            }
        }
        source => Error::Redb {
            path,
            op,
            partition,
            source: Box::new(source),
        },
    }
}
