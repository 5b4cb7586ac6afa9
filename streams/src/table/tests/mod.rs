//! Tests of the table layer: the handle and flush protocol (no broker), recovery against the
//! mock cluster, and a model of operations across restarts.

mod handle;
mod model;
mod recovery;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use stores::Store;

use super::{Table, TableSpec};
use crate::codec::CodecRegistry;

/// A table over `store` whose partitions are all assigned and active.
fn held<V>(spec: TableSpec, store: Arc<dyn Store>) -> Table<String, V>
where
    V: Serialize + DeserializeOwned + 'static,
{
    let table = Table::open(spec, &CodecRegistry::default(), store).unwrap();
    for p in 0..table.spec().partition_count() {
        table.core().assign(p).unwrap();
        table.core().set_active(p).unwrap();
    }
    table
}

/// A key `k<i>` that lands in `partition`.
fn key_in<V>(table: &Table<String, V>, partition: i32) -> String
where
    V: Serialize + DeserializeOwned + 'static,
{
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| table.partition_of(k.as_str()).unwrap() == partition)
        .unwrap()
}
