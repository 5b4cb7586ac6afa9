//! A model of table operations across flushes and restarts, for both stores: reads always see
//! every write; after a restart the store holds exactly the last completed flush (redb) or
//! nothing (memory), and replaying the changelog tail after its applied offset gives back
//! everything that reached the changelog.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use stores::{MemoryStore, RedbStore, Store};

use crate::codec::CodecRegistry;
use crate::table::recovery::Replay;
use crate::table::{Table, TableSpec};

const KEYS: u8 = 6;
const PARTITIONS: i32 = 3;

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, i64),
    Remove(u8),
    Add(u8, i64),
    /// Produce the pending writes and complete the flush.
    Flush,
    /// Produce the pending writes, then crash before the store applies them.
    ProducedNotApplied,
    /// Stop (unflushed writes are lost) and start again, recovering from the changelog.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..KEYS, -50i64..50).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0..KEYS).prop_map(Op::Remove),
        4 => (0..KEYS, -9i64..10).prop_map(|(k, d)| Op::Add(k, d)),
        2 => Just(Op::Flush),
        1 => Just(Op::ProducedNotApplied),
        1 => Just(Op::Restart),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Memory,
    Redb,
}

type Model = BTreeMap<String, i64>;

struct Harness {
    kind: Kind,
    dir: tempfile::TempDir,
    spec: TableSpec,
    table: Option<Table<String, i64>>,
    /// The changelog: records of each partition, the offset being the index.
    log: Vec<Vec<(Bytes, Option<Bytes>)>>,
    /// Per partition, the log length at the last flush the store applied.
    applied_len: Vec<usize>,
}

fn key(k: u8) -> String {
    format!("k{k}")
}

impl Harness {
    fn new(kind: Kind) -> Self {
        let mut h = Harness {
            kind,
            dir: tempfile::tempdir().unwrap(),
            spec: TableSpec::new("app", "model").partitions(PARTITIONS),
            table: None,
            log: vec![Vec::new(); PARTITIONS as usize],
            applied_len: vec![0; PARTITIONS as usize],
        };
        h.start(&Model::new());
        h
    }

    fn table(&self) -> &Table<String, i64> {
        self.table.as_ref().unwrap()
    }

    fn open_store(&self) -> Arc<dyn Store> {
        match self.kind {
            Kind::Memory => Arc::new(MemoryStore::new()),
            Kind::Redb => Arc::new(RedbStore::open(self.dir.path(), "model").unwrap()),
        }
    }

    /// Opens the store, checks it holds the last completed flush, recovers from the changelog.
    fn start(&mut self, completed: &Model) {
        let store = self.open_store();
        let stored = store_contents(store.as_ref());
        match self.kind {
            Kind::Redb => assert_eq!(&stored, completed, "redb holds the last completed flush"),
            Kind::Memory => assert!(stored.is_empty()),
        }
        let table = Table::open(self.spec.clone(), &CodecRegistry::default(), store)
            .unwrap()
            .with_default(|| 0);
        for p in 0..PARTITIONS {
            table.core().assign(p).unwrap();
            let start = table
                .core()
                .applied_offset(p)
                .unwrap()
                .map_or(0, |o| o as usize + 1);
            let expected_start = match self.kind {
                Kind::Redb => self.applied_len[p as usize],
                Kind::Memory => 0,
            };
            assert_eq!(
                start, expected_start,
                "partition {p} resumes after its last applied flush"
            );
            let log = &self.log[p as usize];
            let mut replay = Replay::new(table.core(), p);
            for (offset, (k, v)) in log.iter().enumerate().skip(start) {
                replay.push(offset as i64, Some(k), v.as_deref()).unwrap();
            }
            assert_eq!(
                replay.finish().unwrap() as usize,
                log.len() - start,
                "only the tail is read"
            );
            self.applied_len[p as usize] = log.len();
            table.core().set_active(p).unwrap();
        }
        self.table = Some(table);
    }

    /// Produces every partition's pending writes to the log; completes the flushes if asked.
    fn flush(&mut self, complete: bool) {
        let table = self.table.as_ref().unwrap();
        for p in 0..PARTITIONS {
            if let Some(flush) = table.core().take_pending(p) {
                let log = &mut self.log[p as usize];
                log.extend(
                    flush
                        .records()
                        .iter()
                        .map(|r| (r.key.clone(), r.value.clone())),
                );
                if complete {
                    self.applied_len[p as usize] = log.len();
                    table
                        .core()
                        .complete_flush(flush, Some(log.len() as i64 - 1))
                        .unwrap();
                }
            }
        }
    }

    fn restart(&mut self, completed: &Model) {
        self.table = None; // stops: closes the store
        self.start(completed);
    }
}

fn store_contents(store: &dyn Store) -> Model {
    let mut out = Model::new();
    for p in 0..PARTITIONS {
        for entry in store.iter(p).unwrap() {
            let (k, v) = entry.unwrap();
            let v: i64 = serde_json::from_slice(&v).unwrap();
            out.insert(String::from_utf8(k).unwrap(), v);
        }
    }
    out
}

fn run(kind: Kind, ops: Vec<Op>) {
    let mut h = Harness::new(kind);
    let mut live = Model::new(); // what reads must see
    let mut logged = Model::new(); // what the changelog holds
    let mut completed = Model::new(); // what the store holds
    for op in ops.into_iter().chain([Op::Flush, Op::Restart]) {
        match op {
            Op::Insert(k, v) => {
                h.table().insert(key(k).as_str(), v).unwrap();
                live.insert(key(k), v);
            }
            Op::Remove(k) => {
                assert_eq!(
                    h.table().remove(key(k).as_str()).unwrap(),
                    live.remove(&key(k))
                );
            }
            Op::Add(k, d) => {
                let new = h.table().update(key(k).as_str(), |v| *v += d).unwrap();
                let model = live.entry(key(k)).or_insert(0);
                *model += d;
                assert_eq!(new, *model);
            }
            Op::Flush => {
                h.flush(true);
                logged = live.clone();
                completed = live.clone();
            }
            Op::ProducedNotApplied => {
                h.flush(false);
                logged = live.clone();
                h.restart(&completed);
                completed = logged.clone();
                live = logged.clone();
            }
            Op::Restart => {
                h.restart(&completed);
                completed = logged.clone();
                live = logged.clone();
            }
        }
        for k in 0..KEYS {
            assert_eq!(
                h.table().get(key(k).as_str()).unwrap(),
                live.get(&key(k)).copied()
            );
        }
        let mut items = h.table().items().unwrap();
        items.sort();
        assert_eq!(
            items,
            live.iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect::<Vec<_>>()
        );
        assert_eq!(h.table().len().unwrap(), live.len() as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn memory_tables_match_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(Kind::Memory, ops);
    }

    #[test]
    fn redb_tables_match_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(Kind::Redb, ops);
    }
}
