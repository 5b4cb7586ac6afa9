//! Model-based test: random scripts of operations, reopen included, run against every backend and
//! against a `BTreeMap` model; every read must agree with the model. RedbStore also runs over a
//! redb storage backend that starts failing its writes and syncs at a random point: after the
//! first failed operation the store refuses every later call (even with the disk working again)
//! and reopening the file yields the last durable state the model recorded.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use proptest::prelude::*;
use stores::testing::FailingDisk;
use stores::{MemoryStore, Offset, Partition, RedbOptions, RedbStore, Store, WriteBatch};

/// Opens the store under test; `reopen` simulates a restart of the process that owns it.
trait Backend {
    fn open(&mut self) -> Box<dyn Store>;
    fn reopen(&mut self, store: Box<dyn Store>) -> Box<dyn Store>;
}

/// Memory does not survive a restart; within one process a "reopen" keeps the same store.
struct MemoryBackend;

impl Backend for MemoryBackend {
    fn open(&mut self) -> Box<dyn Store> {
        Box::new(MemoryStore::new())
    }
    fn reopen(&mut self, store: Box<dyn Store>) -> Box<dyn Store> {
        store
    }
}

struct RedbBackend {
    dir: tempfile::TempDir,
    options: RedbOptions,
}

impl RedbBackend {
    fn new(options: RedbOptions) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            options,
        }
    }
}

impl Backend for RedbBackend {
    fn open(&mut self) -> Box<dyn Store> {
        let store = RedbStore::open_with(self.dir.path(), "table", self.options.clone());
        Box::new(store.unwrap())
    }
    fn reopen(&mut self, store: Box<dyn Store>) -> Box<dyn Store> {
        drop(store); // flushes and releases the file lock
        self.open()
    }
}

#[derive(Debug, Clone)]
enum Write {
    Put(Partition, Vec<u8>, Vec<u8>),
    Delete(Partition, Vec<u8>),
}

#[derive(Debug, Clone)]
enum Op {
    Apply(Vec<Write>, Vec<(Partition, Offset)>),
    Get(Partition, Vec<u8>),
    Range(Partition, Bound<Vec<u8>>, Bound<Vec<u8>>),
    Prefix(Partition, Vec<u8>),
    DropPartition(Partition),
    Flush,
    Reopen,
    /// Offsets, partitions, stats and every partition's full contents.
    CheckAll,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Model {
    data: BTreeMap<Partition, BTreeMap<Vec<u8>, Vec<u8>>>,
    offsets: BTreeMap<Partition, Offset>,
}

impl Model {
    fn apply(&mut self, writes: &[Write], offsets: &[(Partition, Offset)]) {
        for w in writes {
            match w {
                Write::Put(p, k, v) => {
                    self.data
                        .entry(*p)
                        .or_default()
                        .insert(k.clone(), v.clone());
                }
                Write::Delete(p, k) => {
                    if let Some(m) = self.data.get_mut(p) {
                        m.remove(k);
                    }
                }
            }
        }
        self.data.retain(|_, m| !m.is_empty());
        self.offsets.extend(offsets.iter().copied());
    }

    fn range(
        &self,
        p: Partition,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some(m) = self.data.get(&p) else {
            return Vec::new();
        };
        m.iter()
            .filter(|(k, _)| (start, end).contains(k.as_slice()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn partitions(&self) -> Vec<Partition> {
        let mut ps: Vec<Partition> = self
            .data
            .keys()
            .chain(self.offsets.keys())
            .copied()
            .collect();
        ps.sort_unstable();
        ps.dedup();
        ps
    }
}

fn collect(iter: stores::EntryIter<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.collect::<Result<_, _>>().unwrap()
}

fn run_script(backend: &mut impl Backend, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut store = backend.open();
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Apply(writes, offsets) => {
                let mut batch = WriteBatch::new();
                for w in writes {
                    match w {
                        Write::Put(p, k, v) => batch.put(*p, k.clone(), v.clone()),
                        Write::Delete(p, k) => batch.delete(*p, k.clone()),
                    };
                }
                for &(p, o) in offsets {
                    batch.set_offset(p, o);
                }
                store.apply(batch).unwrap();
                model.apply(writes, offsets);
            }
            Op::Get(p, k) => {
                let expected = model.data.get(p).and_then(|m| m.get(k)).cloned();
                prop_assert_eq!(store.get(*p, k).unwrap(), expected, "op {}", i);
            }
            Op::Range(p, start, end) => {
                let (start, end) = (
                    start.as_ref().map(Vec::as_slice),
                    end.as_ref().map(Vec::as_slice),
                );
                let got = collect(store.range(*p, start, end).unwrap());
                prop_assert_eq!(got, model.range(*p, start, end), "op {}", i);
            }
            Op::Prefix(p, prefix) => {
                let got = collect(store.prefix(*p, prefix).unwrap());
                let expected: Vec<_> = model
                    .range(*p, Bound::Unbounded, Bound::Unbounded)
                    .into_iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .collect();
                prop_assert_eq!(got, expected, "op {}", i);
            }
            Op::DropPartition(p) => {
                store.drop_partition(*p).unwrap();
                model.data.remove(p);
                model.offsets.remove(p);
            }
            Op::Flush => store.flush().unwrap(),
            Op::Reopen => store = backend.reopen(store),
            Op::CheckAll => check_all(store.as_ref(), &model, i)?,
        }
    }
    check_all(store.as_ref(), &model, ops.len())?;
    store = backend.reopen(store);
    check_all(store.as_ref(), &model, ops.len() + 1)
}

fn check_all(store: &dyn Store, model: &Model, i: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        &store.applied_offsets().unwrap(),
        &model.offsets,
        "op {}",
        i
    );
    for p in -1..4 {
        prop_assert_eq!(
            store.applied_offset(p).unwrap(),
            model.offsets.get(&p).copied()
        );
    }
    prop_assert_eq!(store.partitions().unwrap(), model.partitions(), "op {}", i);
    let stats = store.stats().unwrap();
    for p in model.partitions() {
        let entries = model.data.get(&p).map_or(0, |m| m.len() as u64);
        let bytes: u64 = model.data.get(&p).map_or(0, |m| {
            m.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
        });
        let got = stats.partitions.get(&p).copied().unwrap_or_default();
        prop_assert_eq!(got.entries, entries, "entries of {} at op {}", p, i);
        prop_assert_eq!(got.bytes, bytes, "bytes of {} at op {}", p, i);
        prop_assert_eq!(store.partition_stats(p).unwrap(), got);
        let all = collect(store.iter(p).unwrap());
        prop_assert_eq!(all, model.range(p, Bound::Unbounded, Bound::Unbounded));
    }
    Ok(())
}

// Few partitions, a tiny key alphabet (with 0xff, the prefix edge case) and short keys, so that
// scripts hit the same keys, prefixes and range ends again and again.
fn partition() -> impl Strategy<Value = Partition> {
    -1..3i32
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![0u8..3, Just(0xff)], 0..4)
}

fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        Just(Bound::Unbounded),
        key().prop_map(Bound::Included),
        key().prop_map(Bound::Excluded),
    ]
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        3 => (partition(), key(), prop::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(p, k, v)| Write::Put(p, k, v)),
        1 => (partition(), key()).prop_map(|(p, k)| Write::Delete(p, k)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            prop::collection::vec(write(), 0..12),
            prop::collection::vec((partition(), 0..1_000i64), 0..3),
        )
            .prop_map(|(w, o)| Op::Apply(w, o)),
        4 => (partition(), key()).prop_map(|(p, k)| Op::Get(p, k)),
        3 => (partition(), bound(), bound()).prop_map(|(p, s, e)| Op::Range(p, s, e)),
        2 => (partition(), key()).prop_map(|(p, k)| Op::Prefix(p, k)),
        1 => partition().prop_map(Op::DropPartition),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => Just(Op::CheckAll),
    ]
}

fn script() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn memory_store_matches_model(ops in script()) {
        run_script(&mut MemoryBackend, &ops)?;
    }
}

proptest! {
    // Each case creates a file and reopens it (durable commits): fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn redb_store_matches_model(ops in script()) {
        run_script(&mut RedbBackend::new(RedbOptions::new()), &ops)?;
    }

    // Small groups: full groups commit between reads, and a group can span many batches.
    #[test]
    fn redb_store_with_small_groups_matches_model(ops in script()) {
        run_script(&mut RedbBackend::new(RedbOptions::new().group_records(5)), &ops)?;
    }

    #[test]
    fn redb_store_with_durable_batches_matches_model(ops in script()) {
        run_script(&mut RedbBackend::new(RedbOptions::new().durable_batches(true)), &ops)?;
    }
}

/// Runs `ops` on a RedbStore whose disk fails after `budget` writes/syncs. Until the first
/// failed operation every read agrees with the model; then the store is dropped and the file
/// reopened on a healthy disk, where it must hold the last durable state (or, if the failure
/// hit a durable commit, possibly the state that commit was making durable), offsets included.
fn run_with_failing_disk(
    ops: &[Op],
    budget: u64,
    (options, durable_batches): (RedbOptions, bool),
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.redb");
    let (disk, faults) = FailingDisk::open(&path).unwrap();
    let store = RedbStore::open_backend(&path, disk, options.clone()).unwrap();
    faults.fail_after(budget);
    let mut model = Model::default();
    let mut durable = Model::default();
    // The first failure: the operation's index and the state a durable commit was making.
    let mut failure: Option<(usize, Option<Model>)> = None;
    // A closing flush, so that without a failure everything applied is durable.
    for (i, op) in ops.iter().chain([&Op::Flush]).enumerate() {
        let outcome: Result<(), stores::Error> = match op {
            Op::Apply(writes, offsets) => {
                let mut batch = WriteBatch::new();
                for w in writes {
                    match w {
                        Write::Put(p, k, v) => batch.put(*p, k.clone(), v.clone()),
                        Write::Delete(p, k) => batch.delete(*p, k.clone()),
                    };
                }
                for &(p, o) in offsets {
                    batch.set_offset(p, o);
                }
                let mut after = model.clone();
                after.apply(writes, offsets);
                match store.apply(batch) {
                    Ok(()) => {
                        model = after;
                        if durable_batches {
                            durable = model.clone();
                        }
                        Ok(())
                    }
                    Err(e) => {
                        failure = Some((i, durable_batches.then_some(after)));
                        Err(e)
                    }
                }
            }
            Op::DropPartition(p) => {
                let mut after = model.clone();
                after.data.remove(p);
                after.offsets.remove(p);
                match store.drop_partition(*p) {
                    Ok(()) => {
                        model = after;
                        if durable_batches {
                            durable = model.clone();
                        }
                        Ok(())
                    }
                    Err(e) => {
                        failure = Some((i, durable_batches.then_some(after)));
                        Err(e)
                    }
                }
            }
            Op::Flush => match store.flush() {
                Ok(()) => {
                    durable = model.clone();
                    Ok(())
                }
                Err(e) => {
                    failure = Some((i, Some(model.clone())));
                    Err(e)
                }
            },
            // Reads commit the pending group (not durably) and may fail too.
            Op::Get(p, k) => store.get(*p, k).map(|got| {
                assert_eq!(
                    got,
                    model.data.get(p).and_then(|m| m.get(k)).cloned(),
                    "op {i}"
                )
            }),
            Op::Range(..) | Op::Prefix(..) | Op::CheckAll | Op::Reopen => store
                .applied_offsets()
                .map(|got| assert_eq!(got, model.offsets, "op {i}")),
        };
        if let Err(e) = outcome {
            failure.get_or_insert((i, None));
            // A failure is an error value that names the file, never a panic.
            prop_assert!(e.to_string().contains("table.redb"), "{}", e);
            // The disk works again, but the store does not: its uncommitted batches are gone
            // (reads would see older values), so it refuses every later call, reads included,
            // until it is reopened.
            faults.heal();
            let kinds = every_kind_of_op();
            let later = ops[(i + 1).min(ops.len())..].iter().chain(&kinds);
            for (j, op) in later.enumerate() {
                match call(&store, op) {
                    Ok(()) => prop_assert!(false, "{:?} succeeded {} ops after the failure", op, j),
                    Err(e) => prop_assert!(
                        matches!(e, stores::Error::Poisoned { .. })
                            && e.to_string().contains("table.redb")
                            && e.to_string().contains("reopen"),
                        "{:?} after the failure: {}",
                        op,
                        e
                    ),
                }
            }
            break;
        }
    }
    drop(store); // poisoned: it does not flush on drop
    let store = RedbStore::open_file(&path, options).unwrap();
    let Some((at, committing)) = failure else {
        // The budget outlasted the script: everything applied is there after a reopen.
        return check_all(&store, &model, ops.len());
    };
    match committing {
        Some(next) if check_all(&store, &next, at).is_ok() => Ok(()),
        _ => check_all(&store, &durable, at),
    }
}

/// Calls the store as `op` does, without checking what it returns.
fn call(store: &RedbStore, op: &Op) -> Result<(), stores::Error> {
    match op {
        Op::Apply(writes, offsets) => {
            let mut batch = WriteBatch::new();
            for w in writes {
                match w {
                    Write::Put(p, k, v) => batch.put(*p, k.clone(), v.clone()),
                    Write::Delete(p, k) => batch.delete(*p, k.clone()),
                };
            }
            for &(p, o) in offsets {
                batch.set_offset(p, o);
            }
            store.apply(batch)
        }
        Op::Get(p, k) => store.get(*p, k).map(drop),
        Op::Range(p, start, end) => {
            let bounds = (
                start.as_ref().map(Vec::as_slice),
                end.as_ref().map(Vec::as_slice),
            );
            store
                .range(*p, bounds.0, bounds.1)?
                .try_for_each(|e| e.map(drop))
        }
        Op::Prefix(p, prefix) => store.prefix(*p, prefix)?.try_for_each(|e| e.map(drop)),
        Op::DropPartition(p) => store.drop_partition(*p),
        Op::Flush => store.flush(),
        Op::Reopen => store.applied_offset(0).map(drop),
        Op::CheckAll => {
            store.applied_offsets()?;
            store.partitions()?;
            store.partition_stats(0)?;
            store.stats()?;
            store.iter(0)?.try_for_each(|e| e.map(drop))
        }
    }
}

/// One operation of each kind, each call of the `Store` trait included.
fn every_kind_of_op() -> Vec<Op> {
    vec![
        Op::Get(0, b"a".to_vec()),
        Op::Range(0, Bound::Unbounded, Bound::Unbounded),
        Op::Prefix(1, Vec::new()),
        Op::Reopen,
        Op::CheckAll,
        Op::Apply(
            vec![Write::Put(0, b"a".to_vec(), b"b".to_vec())],
            vec![(0, 1)],
        ),
        Op::Apply(Vec::new(), Vec::new()),
        Op::DropPartition(2),
        Op::Flush,
    ]
}

/// Options, and whether they make every batch durable.
fn redb_options() -> impl Strategy<Value = (RedbOptions, bool)> {
    prop_oneof![
        Just((RedbOptions::new(), false)),
        Just((RedbOptions::new().group_records(5), false)),
        Just((RedbOptions::new().durable_batches(true), true)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn redb_store_recovers_its_last_durable_state_after_io_failures(
        ops in script(),
        // Small budgets, so that most scripts fail somewhere (a script makes tens of writes).
        budget in 0..60u64,
        options in redb_options(),
    ) {
        run_with_failing_disk(&ops, budget, options)?;
    }
}

/// The hazard the poisoning closes, step by step: a batch that `apply` accepted sits in the
/// uncommitted group; the durable commit fails and abandons it. Reading on would return the
/// older value (and a table would write a count built on it to its changelog): the store
/// refuses instead, until reopened, where data and offsets agree again.
#[test]
fn a_failed_commit_poisons_the_store_until_it_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.redb");
    let (disk, faults) = FailingDisk::open(&path).unwrap();
    let store = RedbStore::open_backend(&path, disk, RedbOptions::new()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(0, b"k".to_vec(), b"1".to_vec()).set_offset(0, 10);
    store.apply(batch).unwrap();
    store.flush().unwrap();

    faults.fail_syncs_after(0);
    let mut batch = WriteBatch::new();
    batch.put(0, b"k".to_vec(), b"2".to_vec()).set_offset(0, 11);
    store.apply(batch).unwrap(); // accepted, in the uncommitted group
    let failed = store.flush().unwrap_err();
    assert!(failed.to_string().contains("table.redb"), "{failed}");
    faults.heal();

    let refused = store.get(0, b"k").unwrap_err();
    let stores::Error::Poisoned { partitions, .. } = &refused else {
        panic!("expected Poisoned, got {refused:?}");
    };
    assert_eq!(partitions, &vec![0]);
    let text = refused.to_string();
    assert!(
        text.contains("table.redb") && text.contains("partition 0") && text.contains("reopen"),
        "{text}"
    );
    assert!(store.applied_offset(0).is_err());
    assert!(store.check_usable().is_err());
    drop(store);

    // The last durable state, or the one the failed commit was making durable (its pages may
    // have reached the file before the sync failed): data and offset agree either way.
    let store = RedbStore::open_file(&path, RedbOptions::new()).unwrap();
    let state = (
        store.get(0, b"k").unwrap(),
        store.applied_offset(0).unwrap(),
    );
    assert!(
        [
            (Some(b"1".to_vec()), Some(10)),
            (Some(b"2".to_vec()), Some(11))
        ]
        .contains(&state),
        "{state:?}"
    );
}
