//! Tests of the table layer: the handle and flush protocol (no broker), recovery against the
//! mock cluster, and a model of operations across restarts.

mod handle;
mod model;
mod recovery;
mod txn;

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

/// The table layer sits below the runtime: it may use only `codec`, `error`, `record`,
/// `settings` and `offsets` of this crate.
#[test]
fn the_table_layer_imports_only_the_layers_below_it() {
    fn visit(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/table");
    let mut files = Vec::new();
    visit(&root, &mut files);
    assert!(files.len() >= 8, "{files:?}");
    let allowed = [
        "codec", "error", "record", "settings", "offsets", "table", "Result",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("crate::") {
            let module: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if module.is_empty() {
                continue; // this test's own strings
            }
            assert!(
                allowed.contains(&module.as_str()),
                "{} uses crate::{module}: the table layer may not reach above itself",
                file.display()
            );
        }
    }
}
