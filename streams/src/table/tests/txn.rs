//! `TableCore::with_partition`: explicit-partition reads and all-or-nothing writes over the
//! store, the in-flight and pending overlays and the change's own writes.

use std::sync::Arc;

use bytes::Bytes;
use stores::{MemoryStore, Store};

use super::held;
use crate::error::Error;
use crate::table::TableSpec;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn reads_merge_store_overlays_and_own_writes_and_an_error_writes_nothing() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let table = held::<i64>(TableSpec::new("a", "t").partitions(2), store.clone());
    let core = table.core();
    // Partition 1 whatever the key bytes: "a" and "b" reach the store through a flush...
    core.with_partition(1, b"", |txn| {
        txn.put(b("a"), Some(b("1")));
        txn.put(b("b"), Some(b("1")));
        Ok(())
    })
    .unwrap();
    let flush = core.take_pending(1).unwrap();
    core.complete_flush(flush, Some(0)).unwrap();
    // ...then "b" deleted in flight and "c" pending.
    core.with_partition(1, b"", |txn| {
        txn.put(b("b"), None);
        Ok(())
    })
    .unwrap();
    let in_flight = core.take_pending(1).unwrap();
    core.with_partition(1, b"", |txn| {
        txn.put(b("c"), Some(b("3")));
        Ok(())
    })
    .unwrap();
    core.with_partition(1, b"", |txn| {
        assert_eq!(txn.partition(), 1);
        assert_eq!(txn.first(b"a", None)?, Some((b("a"), b("1"))));
        assert_eq!(
            txn.first(b"b", None)?,
            Some((b("c"), b("3"))),
            "b is deleted in flight"
        );
        txn.put(b("a"), None);
        txn.put(b("d"), Some(b("4")));
        assert_eq!(txn.get(b"a")?, None);
        assert_eq!(txn.first(b"a", Some(b"c"))?, None);
        let keys: Vec<Bytes> = txn.range(b"", None)?.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b("c"), b("d")]);
        Ok(())
    })
    .unwrap();
    core.complete_flush(in_flight, Some(1)).unwrap();
    // A failing change leaves nothing behind.
    let err = core
        .with_partition(1, b"", |txn| {
            txn.put(b("e"), Some(b("5")));
            Err::<(), _>(Error::NoDemo)
        })
        .unwrap_err();
    assert!(matches!(err, Error::NoDemo));
    let items: Vec<(Bytes, Bytes)> = core.snapshot(1).unwrap();
    assert_eq!(items, vec![(b("c"), b("3")), (b("d"), b("4"))]);
    assert!(
        store.get(1, b"b").unwrap().is_none(),
        "the flushed delete is applied"
    );
    assert!(
        store.get(1, b"a").unwrap().is_some(),
        "the pending one is not yet"
    );
    // Partitions not held, or out of range, are errors.
    core.revoke(0);
    assert!(matches!(
        core.with_partition(0, b"k", |_| Ok(())).unwrap_err(),
        Error::TableNotOwned { partition: 0, .. }
    ));
    assert!(matches!(
        core.with_partition(5, b"k", |_| Ok(())).unwrap_err(),
        Error::NoSuchPartition { partition: 5, .. }
    ));
}
