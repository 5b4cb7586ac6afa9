//! Model-based test: random scripts of operations, reopen included, run against every backend and
//! against a `BTreeMap` model; every read must agree with the model.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use proptest::prelude::*;
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

#[derive(Debug, Default)]
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
