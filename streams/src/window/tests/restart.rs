//! Restarts in the middle of open windows: a table rebuilt from the changelog it wrote (as
//! recovery does, compacted or not), after a clean stop or a crash, and a redb store reopened.
//! Closes fire once per committed state and totals are exact.

use super::Millis;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use stores::{MemoryStore, Store, StoreUrl};

use super::model::{expected_windows, Ev};
use super::props::{close_map, detached_ids, events, id_table, kinds, IdCloses, Ids};
use crate::codec::CodecRegistry;
use crate::error::Error;
use crate::table::{Replay, Table, TableSpec};
use crate::window::kind::Cut;
use crate::window::WindowedTable;

type Changelog = Vec<Vec<(Bytes, Option<Bytes>)>>;

fn spec(partitions: i32) -> TableSpec {
    TableSpec::new("test", "ids").partitions(partitions)
}

/// A windowed table over `store` whose partitions are recovered from `log`, then active.
fn recovered(
    store: Arc<dyn Store>,
    log: &Changelog,
    kind: Cut,
    grace: i64,
    compacted: bool,
) -> (WindowedTable<String, Ids>, IdCloses) {
    let partitions = log.len() as i32;
    let table = Table::open(spec(partitions), &CodecRegistry::default(), store).unwrap();
    let (windowed, closes) = id_table(table, kind, grace);
    let core = windowed.table.core().clone();
    for p in 0..partitions {
        core.assign(p).unwrap();
        let mut records: Vec<(usize, &(Bytes, Option<Bytes>))> =
            log[p as usize].iter().enumerate().collect();
        if compacted {
            // What compaction keeps: the last record of each key.
            let last: std::collections::BTreeMap<&Bytes, usize> =
                records.iter().map(|(i, (k, _))| (k, *i)).collect();
            records.retain(|(i, (k, _))| last[k] == *i);
        }
        let mut replay = Replay::new(&core, p);
        for (offset, (k, v)) in records {
            replay.push(offset as i64, Some(k), v.as_deref()).unwrap();
        }
        replay.finish().unwrap();
        core.set_active(p).unwrap();
    }
    (windowed, closes)
}

/// The runtime's commit: every pending write produced to the changelog and applied.
fn commit(table: &WindowedTable<String, Ids>, log: &mut Changelog) {
    let core = table.table.core();
    for (p, records) in log.iter_mut().enumerate() {
        if let Some(flush) = core.take_pending(p as i32) {
            records.extend(
                flush
                    .records()
                    .iter()
                    .map(|r| (r.key.clone(), r.value.clone())),
            );
            let last = records.len() as i64 - 1;
            core.complete_flush(flush, Some(last)).unwrap();
        }
    }
}

fn file(table: &WindowedTable<String, Ids>, (key, t, id): &Ev) {
    let ids = table
        .at_ms(*t)
        .update(key.as_str(), |ids| {
            ids.insert(*id);
        })
        .unwrap();
    assert!(ids.is_some(), "event {id} at {t} was late");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Stops at `stop` (cleanly: committed first, or a crash: what was not committed is lost
    /// and its events are redelivered), rebuilds the table from its changelog into a new
    /// store and goes on. The closes of the committed states are each window exactly once,
    /// with every event it holds.
    #[test]
    fn a_table_rebuilt_from_its_changelog_closes_each_window_once_with_exact_totals(
        kind in kinds(),
        partitions in 1i32..4,
        evs in events(15, 60),
        stop_at in any::<prop::sample::Index>(),
        commit_every in 1usize..10,
        crash in any::<bool>(),
        compacted in any::<bool>(),
    ) {
        let grace = 15;
        let stop = stop_at.index(evs.len());
        let mut log: Changelog = vec![Vec::new(); partitions as usize];
        let held = Table::open(spec(partitions), &CodecRegistry::default(), Arc::new(MemoryStore::new()) as Arc<dyn Store>).unwrap();
        let (first, first_closes) = id_table(held, kind, grace);
        for p in 0..partitions {
            first.table.core().assign(p).unwrap();
            first.table.core().set_active(p).unwrap();
        }
        // (events done, closes fired) at the last commit.
        let mut committed = (0, 0);
        for (i, ev) in evs[..stop].iter().enumerate() {
            file(&first, ev);
            if (i + 1) % commit_every == 0 {
                commit(&first, &mut log);
                committed = (i + 1, first_closes.lock().unwrap().len());
            }
        }
        if !crash {
            commit(&first, &mut log);
            committed = (stop, first_closes.lock().unwrap().len());
        }
        let mut closes = first_closes.lock().unwrap()[..committed.1].to_vec();
        drop(first);

        let (second, second_closes) = recovered(Arc::new(MemoryStore::new()), &log, kind, grace, compacted);
        for ev in &evs[committed.0..] {
            file(&second, ev);
        }
        for p in 0..partitions {
            second.advance_ms(p, i64::MAX / 2).unwrap();
        }
        prop_assert_eq!(second.late_events(), 0);
        closes.extend(second_closes.lock().unwrap().iter().cloned());
        prop_assert_eq!(close_map(&closes), expected_windows(kind, &evs));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Due times are not in the changelog: a worker that takes over from it (after a clean
    /// stop or a crash) builds them from the windows and the clock. Every event it handles
    /// closes exactly what the same event closed in a worker that went on without a restart
    /// (the same windows, values and order), and so does moving stream time to the end.
    #[test]
    fn a_restarted_worker_closes_at_each_event_exactly_what_one_that_went_on_closed(
        kind in kinds(),
        partitions in 1i32..4,
        evs in events(15, 60),
        stop_at in any::<prop::sample::Index>(),
        commit_every in 1usize..10,
        crash in any::<bool>(),
        compacted in any::<bool>(),
    ) {
        let grace = 15;
        let stop = stop_at.index(evs.len());
        let held = |store: Arc<dyn Store>| {
            let table = Table::open(spec(partitions), &CodecRegistry::default(), store).unwrap();
            let (windowed, closes) = id_table(table, kind, grace);
            for p in 0..partitions {
                windowed.table.core().assign(p).unwrap();
                windowed.table.core().set_active(p).unwrap();
            }
            (windowed, closes)
        };
        // What each event closed, then what the end of time closed.
        let closes_per_event = |table: &WindowedTable<String, Ids>, closes: &IdCloses, evs: &[Ev]| {
            let mut per_event = Vec::new();
            for ev in evs {
                let before = closes.lock().unwrap().len();
                file(table, ev);
                per_event.push(closes.lock().unwrap()[before..].to_vec());
            }
            let before = closes.lock().unwrap().len();
            for p in 0..partitions {
                table.advance_ms(p, i64::MAX / 2).unwrap();
            }
            per_event.push(closes.lock().unwrap()[before..].to_vec());
            per_event
        };
        let (went_on, went_on_closes) = held(Arc::new(MemoryStore::new()));
        let expected = closes_per_event(&went_on, &went_on_closes, &evs);

        let mut log: Changelog = vec![Vec::new(); partitions as usize];
        let (first, _) = held(Arc::new(MemoryStore::new()));
        let mut committed = 0;
        for (i, ev) in evs[..stop].iter().enumerate() {
            file(&first, ev);
            if (i + 1) % commit_every == 0 {
                commit(&first, &mut log);
                committed = i + 1;
            }
        }
        if !crash {
            commit(&first, &mut log);
            committed = stop;
        }
        drop(first);
        prop_assert!(
            log.iter().flatten().all(|(k, _)| k.first() != Some(&0x02)),
            "no due entry in the changelog"
        );
        let (second, second_closes) =
            recovered(Arc::new(MemoryStore::new()), &log, kind, grace, compacted);
        let after = closes_per_event(&second, &second_closes, &evs[committed..]);
        prop_assert_eq!(&after[..], &expected[committed..]);
    }
}

#[test]
fn due_entries_an_earlier_version_stored_are_deleted_and_its_windows_still_close() {
    let (table, closes) = id_table(detached_ids(1), Cut::Tumbling { size: 100 }, 0);
    file(&table, &("a".to_owned(), 10, 1));
    file(&table, &("b".to_owned(), 150, 2));
    // An entry as the earlier version scheduled it for "a"'s window (its expiry).
    let core = table.table.core().clone();
    let user_key = table.table.encode_key("a").unwrap();
    let old = crate::window::layout::due_key(86_400_000, &user_key, 0).unwrap();
    core.with_partition(0, b"(test)", |txn| {
        txn.put(old.clone(), Some(Bytes::new()));
        Ok(())
    })
    .unwrap();
    assert_eq!(core.get(&old).unwrap(), Some(Bytes::new()));
    // A start (or a recovery) here: the next update derives the due times again.
    core.set_active(0).unwrap();
    file(&table, &("b".to_owned(), 160, 3));
    assert_eq!(core.get(&old).unwrap(), None, "deleted by the first update");
    table.advance_ms(0, 1_000).unwrap();
    assert_eq!(
        closes.lock().unwrap().clone(),
        vec![
            (
                "a".to_owned(),
                crate::window::Window::ms(0, 100),
                [1].into()
            ),
            (
                "b".to_owned(),
                crate::window::Window::ms(100, 200),
                [2, 3].into()
            ),
        ]
    );
}

#[test]
fn a_redb_store_reopened_mid_window_keeps_its_clock_and_closes_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::Redb {
        dir: dir.path().to_owned(),
    };
    let kind = Cut::Hopping {
        size: 300,
        step: 100,
    };
    let evs: Vec<Ev> = (0..40u32)
        .map(|i| {
            (
                format!("k{}", i % 3),
                1_000 + i as i64 * 37 - (i % 4) as i64 * 5,
                i,
            )
        })
        .collect();
    let open = || {
        let table = Table::detached(spec(2).store(url.clone())).unwrap();
        id_table(table, kind, 20)
    };
    let (first, first_closes) = open();
    for ev in &evs[..23] {
        file(&first, ev);
    }
    let p = first.partition_of("k0").unwrap();
    let stream_time = first.stream_ms(p).unwrap();
    first.table.core().flush_store().unwrap();
    let mut closes = first_closes.lock().unwrap().clone();
    assert!(!closes.is_empty(), "some windows closed before the restart");
    drop(first);

    let (second, second_closes) = open();
    assert_eq!(second.stream_ms(p).unwrap(), stream_time);
    for ev in &evs[23..] {
        file(&second, ev);
    }
    for p in 0..2 {
        second.advance_ms(p, i64::MAX / 2).unwrap();
    }
    closes.extend(second_closes.lock().unwrap().iter().cloned());
    assert_eq!(close_map(&closes), expected_windows(kind, &evs));
    // Expired with the clock far ahead: only the clocks are left.
    assert_eq!(
        second
            .table
            .core()
            .store()
            .unwrap()
            .stats()
            .unwrap()
            .entries(),
        2
    );
}

#[test]
fn recovery_rejects_a_changelog_record_that_is_not_a_windowed_entry() {
    let table = detached_ids(1).tumbling(super::ms(10)).build().unwrap();
    let core = table.table.core().clone();
    core.assign(0).unwrap();
    let mut replay = Replay::new(&core, 0);
    let err = replay
        .push(7, Some(b"plain-key"), Some(b"[1]"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TableDecode {
                offset: Some(7),
                part: "key",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("not a windowed table's key"),
        "{err}"
    );
    let mut replay = Replay::new(&core, 0);
    let err = replay
        .push(8, Some(b"\x01clock"), Some(b"short"))
        .unwrap_err();
    assert!(err.to_string().contains("not a window clock"), "{err}");
}
