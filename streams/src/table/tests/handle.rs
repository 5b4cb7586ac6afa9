//! The typed handle and the flush protocol, without a broker.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_client::producer::partitioner::partition_for_key;
use stores::{MemoryStore, Store};

use super::{held, key_in};
use crate::error::Error;
use crate::table::{PartitionStatus, SetTable, Table, TableSpec};

fn spec() -> TableSpec {
    TableSpec::new("shop", "totals").partitions(3)
}

#[test]
fn a_key_lives_where_kafka_puts_a_record_with_the_same_key() {
    let table = held::<i64>(spec(), Arc::new(MemoryStore::new()));
    for currency in ["EUR", "USD", "GBP", "JPY", "CHF"] {
        // raw keys: the bytes a group_by'd stream's record key has.
        assert_eq!(
            table.partition_of(currency).unwrap(),
            partition_for_key(currency.as_bytes(), 3)
        );
    }
    let json = held::<i64>(
        spec().with_key_serializer("json"),
        Arc::new(MemoryStore::new()),
    );
    assert_eq!(
        json.partition_of("EUR").unwrap(),
        partition_for_key(b"\"EUR\"", 3)
    );
}

#[test]
fn writes_to_a_partition_not_owned_say_which_and_what_to_do() {
    let table =
        Table::<String, i64>::open(spec(), &Default::default(), Arc::new(MemoryStore::new()))
            .unwrap()
            .with_default(|| 0);
    let core = table.core();
    core.assign(0).unwrap();
    core.set_active(0).unwrap();
    core.assign(1).unwrap(); // recovering
    let other = key_in(&table, 2);
    let err = table.insert(other.as_str(), 1).unwrap_err();
    assert!(
        matches!(err, Error::TableNotOwned { partition: 2, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("table totals: key \"{other}\" belongs to partition 2, which this worker does not own: key the stream by the table's key (group_by) first")),
        "{text}"
    );
    let recovering = key_in(&table, 1);
    let err = table.update(recovering.as_str(), |v| *v += 1).unwrap_err();
    assert!(err.to_string().contains("still recovering"), "{err}");
    assert!(
        table.get(recovering.as_str()).is_err(),
        "reads too: the data is not there yet"
    );
    let mine = key_in(&table, 0);
    table.insert(mine.as_str(), 5).unwrap();
    assert_eq!(table.get(mine.as_str()).unwrap(), Some(5));
    assert_eq!(table.owned_partitions(), vec![0]);
}

#[test]
fn reads_see_pending_and_in_flight_writes_and_complete_applies_them_with_the_offset() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let table = held::<i64>(spec(), store.clone()).with_default(|| 0);
    let core = table.core().clone();
    let a = key_in(&table, 1);
    table.update(a.as_str(), |v| *v += 2).unwrap();
    table.update(a.as_str(), |v| *v += 3).unwrap();
    let flush = core.take_pending(1).expect("a write is pending");
    assert_eq!(flush.partition(), 1);
    assert_eq!(flush.records().len(), 1, "one record per key and flush");
    assert_eq!(flush.records()[0].value.as_deref(), Some(&b"5"[..]));
    assert!(core.take_pending(1).is_none());
    // In flight: still visible, not yet in the store.
    assert_eq!(table.get(a.as_str()).unwrap(), Some(5));
    assert_eq!(store.get(1, a.as_bytes()).unwrap(), None);
    table.remove(a.as_str()).unwrap();
    assert_eq!(
        table.get(a.as_str()).unwrap(),
        None,
        "the pending delete wins"
    );
    let second = core.take_pending(1).unwrap();
    assert_eq!(second.records()[0].value, None, "a tombstone");
    // Out of order is refused and changes nothing.
    let err = core.complete_flush(second, Some(8)).unwrap_err();
    assert!(
        err.to_string().contains("in the order they were taken"),
        "{err}"
    );
    core.abort_flush(1);
    assert_eq!(core.status(1), Some(PartitionStatus::Recovering));
    // A flush dropped by the abort completes as a no-op: recovery reads it from the changelog.
    core.complete_flush(flush, Some(7)).unwrap();
    assert_eq!(store.get(1, a.as_bytes()).unwrap(), None);
    assert_eq!(core.applied_offset(1).unwrap(), None);

    // A clean run: complete in order.
    core.set_active(1).unwrap();
    table.insert(a.as_str(), 7).unwrap();
    let flush = core.take_pending(1).unwrap();
    core.complete_flush(flush, Some(41)).unwrap();
    assert_eq!(store.get(1, a.as_bytes()).unwrap(), Some(b"7".to_vec()));
    assert_eq!(core.applied_offset(1).unwrap(), Some(41));
    let flush = {
        table.remove(a.as_str()).unwrap();
        core.take_pending(1).unwrap()
    };
    core.complete_flush(flush, None).unwrap();
    assert_eq!(store.get(1, a.as_bytes()).unwrap(), None);
    assert_eq!(
        core.applied_offset(1).unwrap(),
        Some(41),
        "no offset known: kept"
    );
}

#[test]
fn a_value_that_cannot_be_encoded_fails_with_the_table_name_and_writes_nothing() {
    // JSON object keys must be strings: a map keyed by pairs does not encode.
    type Bad = BTreeMap<(i32, i32), i32>;
    let table = held::<Bad>(spec(), Arc::new(MemoryStore::new())).with_default(Bad::new);
    let key = key_in(&table, 0);
    let err = table
        .insert(key.as_str(), Bad::from([((1, 2), 3)]))
        .unwrap_err();
    assert!(
        matches!(err, Error::TableEncode { part: "value", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("table totals: cannot encode a value"),
        "{err}"
    );
    let err = table
        .update(key.as_str(), |m| {
            m.insert((0, 0), 1);
        })
        .unwrap_err();
    assert!(err.to_string().contains("table totals"), "{err}");
    assert!(
        table.core().take_pending(0).is_none(),
        "nothing half-written"
    );
    assert_eq!(table.len().unwrap(), 0);
}

#[test]
fn items_keys_and_len_merge_the_store_with_unflushed_writes() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let table = held::<i64>(spec(), store.clone());
    for i in 0..10 {
        table.insert(&format!("k{i}"), i).unwrap();
    }
    for p in 0..3 {
        if let Some(f) = table.core().take_pending(p) {
            table.core().complete_flush(f, Some(0)).unwrap();
        }
    }
    table.remove("k3").unwrap();
    table.insert("k4", 40).unwrap();
    table.insert("k10", 10).unwrap();
    let mut items = table.items().unwrap();
    items.sort();
    let mut model: Vec<(String, i64)> = (0..11)
        .filter(|i| *i != 3)
        .map(|i| (format!("k{i}"), if i == 4 { 40 } else { i }))
        .collect();
    model.sort();
    assert_eq!(items, model);
    assert_eq!(table.len().unwrap(), 10);
    let mut keys = table.keys().unwrap();
    keys.sort();
    assert_eq!(
        keys,
        model.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    );
    // A revoked partition leaves the snapshot; its store data stays for a later owner.
    let p = table.partition_of("k4").unwrap();
    assert!(table.core().revoke(p), "k4's new value was not flushed");
    assert!(table
        .items()
        .unwrap()
        .iter()
        .all(|(k, _)| table.partition_of(k.as_str()).unwrap() != p));
    assert!(store.get(p, b"k4").unwrap().is_some());
}

#[test]
fn updates_from_many_threads_lose_nothing() {
    let table = held::<i64>(spec(), Arc::new(MemoryStore::new())).with_default(|| 0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let t = table.clone();
            s.spawn(move || {
                for _ in 0..500 {
                    t.update("EUR", |v| *v += 1).unwrap();
                }
            });
        }
    });
    assert_eq!(table.get("EUR").unwrap(), Some(2000));
}

#[test]
fn a_missing_key_without_a_default_is_an_error_that_says_how_to_give_one() {
    let table = held::<i64>(spec(), Arc::new(MemoryStore::new()));
    let err = table.update("EUR", |v| *v += 1).unwrap_err();
    assert!(err.to_string().contains("Table::with_default"), "{err}");
    assert_eq!(
        table
            .get_or_default("EUR")
            .map_err(|e| e.to_string())
            .unwrap_err(),
        err.to_string()
    );
}

#[test]
fn set_tables_add_discard_and_tombstone_an_emptied_set() {
    let table = held::<std::collections::BTreeSet<u32>>(spec(), Arc::new(MemoryStore::new()));
    let sets = SetTable::new(table);
    assert!(sets.add("a", 1).unwrap());
    assert!(sets.add("a", 2).unwrap());
    assert!(!sets.add("a", 2).unwrap());
    assert!(!sets.discard("a", &9).unwrap());
    assert!(sets.contains("a", &1).unwrap());
    let p = sets.table().partition_of("a").unwrap();
    let f = sets.table().core().take_pending(p).unwrap();
    assert_eq!(f.records()[0].value.as_deref(), Some(&b"[1,2]"[..]));
    sets.table().core().complete_flush(f, Some(1)).unwrap();
    sets.discard("a", &1).unwrap();
    sets.discard("a", &2).unwrap();
    let f = sets.table().core().take_pending(p).unwrap();
    assert_eq!(f.records()[0].value, None, "an emptied set is deleted");
    assert!(sets.get("a").unwrap().is_empty());
}

#[test]
fn handles_are_send_and_sync_whatever_the_types() {
    fn send_sync<T: Send + Sync + Clone>() {}
    // Not Send: the handle holds no K or V, only their codecs.
    send_sync::<Table<std::rc::Rc<String>, std::rc::Rc<i64>>>();
    send_sync::<SetTable<String, u8>>();
}

#[test]
fn an_update_rewrites_its_pending_write_in_place_and_counts_its_bytes_once() {
    use crate::table::handle::Write;
    let table = held::<i64>(spec(), Arc::new(MemoryStore::new())).with_default(|| 0);
    let core = table.core().clone();
    let a = key_in(&table, 0);
    // Over the bound once the key and a two-digit count are pending, not before.
    core.set_cache(a.len() as u64 + 1, Arc::new(tokio::sync::Notify::new()));
    for _ in 0..9 {
        table.update(a.as_str(), |v| *v += 1).unwrap();
    }
    assert!(!core.cache_over_bound(), "one pending write: key and `9`");
    table.update(a.as_str(), |v| *v += 1).unwrap();
    assert!(core.cache_over_bound(), "key and `10`");
    // A change that fails writes nothing.
    let failed = table.modify(a.as_str(), |_| {
        Err::<(Write<i64>, ()), _>(Error::NotStarted)
    });
    assert!(failed.is_err());
    assert_eq!(table.get(a.as_str()).unwrap(), Some(10));
    let flush = core.take_pending(0).unwrap();
    assert_eq!(flush.records().len(), 1, "one record per key and flush");
    assert_eq!(flush.records()[0].value.as_deref(), Some(&b"10"[..]));
    assert!(!core.cache_over_bound(), "taken by the flush");
    // The cache off: every write is a record, in order.
    core.set_cache(0, Arc::new(tokio::sync::Notify::new()));
    table.update(a.as_str(), |v| *v += 1).unwrap();
    table.update(a.as_str(), |v| *v += 1).unwrap();
    let flush = core.take_pending(0).unwrap();
    let values: Vec<_> = flush.records().iter().map(|r| r.value.clone()).collect();
    assert_eq!(values, [Some("11".into()), Some("12".into())]);
}

#[test]
fn using_a_table_inside_its_own_update_panics_with_its_name_instead_of_deadlocking() {
    let table = held::<i64>(spec(), Arc::new(MemoryStore::new())).with_default(|| 0);
    let a = key_in(&table, 0);
    let inner = table.clone();
    let key = a.clone();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        table.update(a.as_str(), |v| {
            *v += inner.get(key.as_str()).unwrap().unwrap_or(0)
        })
    }))
    .expect_err("the same table inside its update closure");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("inside its own update closure"),
        "{message}"
    );
    // The mark is gone and the partition's lock was released: the table works on.
    assert_eq!(table.update(a.as_str(), |v| *v += 1).unwrap(), 1);
    assert_eq!(table.get(a.as_str()).unwrap(), Some(1));
}
