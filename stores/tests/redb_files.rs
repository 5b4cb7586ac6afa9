//! What `RedbStore` does with files: resuming, locking, and files it cannot read.

use std::path::Path;

use stores::{Error, RedbOptions, RedbStore, Store, StoreUrl, WriteBatch};

fn batch(partition: i32, offset: i64, pairs: &[(&str, &str)]) -> WriteBatch {
    let mut b = WriteBatch::new();
    for (k, v) in pairs {
        b.put(partition, k.as_bytes(), v.as_bytes());
    }
    b.set_offset(partition, offset);
    b
}

#[test]
fn reopening_resumes_at_the_stored_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::Redb {
        dir: dir.path().to_path_buf(),
    };
    {
        let store = url.open("counts").unwrap();
        store.apply(batch(0, 41, &[("a", "1")])).unwrap();
        store.apply(batch(2, 7, &[("b", "2"), ("c", "3")])).unwrap();
        store.flush().unwrap();
    }
    let store = url.open("counts").unwrap();
    assert_eq!(store.applied_offset(0).unwrap(), Some(41));
    assert_eq!(store.applied_offset(2).unwrap(), Some(7));
    assert_eq!(store.applied_offset(1).unwrap(), None);
    assert_eq!(store.get(2, b"c").unwrap(), Some(b"3".to_vec()));
    assert_eq!(store.partitions().unwrap(), vec![0, 2]);
    assert!(dir.path().join("counts.redb").exists());
    assert!(store.stats().unwrap().file_bytes.unwrap() > 0);
}

#[test]
fn a_second_open_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let _first = RedbStore::open(dir.path(), "t").unwrap();
    let err = RedbStore::open(dir.path(), "t").unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("t.redb") && msg.contains("locked by another process"),
        "{msg}"
    );
    assert!(msg.contains("give this worker its own directory"), "{msg}");
}

fn assert_incompatible(path: &Path, expect: &str) {
    let err = RedbStore::open_file(path, RedbOptions::new()).unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(expect), "{msg}");
    assert!(
        msg.contains("delete the file to rebuild the table from its changelog"),
        "{msg}"
    );
}

#[test]
fn a_newer_redb_file_format_is_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    RedbStore::open_file(&path, RedbOptions::new())
        .unwrap()
        .close()
        .unwrap();
    // redb keeps the file format version in the first byte of each of its two commit slots.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[64] = 99;
    bytes[64 + 128] = 99;
    std::fs::write(&path, bytes).unwrap();
    assert_incompatible(&path, "found 99");
}

#[test]
fn another_layout_version_is_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let db = redb::Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(redb::TableDefinition::<&str, u64>::new("meta"))
        .unwrap()
        .insert("layout", 2)
        .unwrap();
    txn.commit().unwrap();
    drop(db);
    assert_incompatible(&path, "store layout version 2");
}

#[test]
fn a_foreign_redb_file_is_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let db = redb::Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(redb::TableDefinition::<u64, u64>::new("something"))
        .unwrap()
        .insert(1, 2)
        .unwrap();
    txn.commit().unwrap();
    drop(db);
    assert_incompatible(&path, "without this crate's layout marker");
}

#[test]
fn a_file_that_is_not_redb_is_reported_as_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = RedbStore::open_file(&path, RedbOptions::new()).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    assert!(err.to_string().contains("delete the file"), "{err}");
}

#[test]
fn unflushed_batches_survive_a_clean_drop() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RedbStore::open(dir.path(), "t").unwrap();
        store.apply(batch(1, 5, &[("k", "v")])).unwrap();
    }
    let store = RedbStore::open(dir.path(), "t").unwrap();
    assert_eq!(store.applied_offset(1).unwrap(), Some(5));
    assert_eq!(store.get(1, b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn bad_table_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = RedbStore::open(dir.path(), "../escape").unwrap_err();
    assert!(matches!(err, Error::InvalidTableName { .. }), "{err:?}");
}
