//! What every table join does with its result table: declare it in the app of its inputs
//! (or detached, beside detached inputs) and write it.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::declarations::{Declarations, TableBuilder};
use crate::error::{Error, Result};
use crate::table::{Table, TableCore, TableSpec};

/// How the result table is declared: its name and what the builder set.
pub(crate) struct ResultSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub key_serializer: &'a str,
    pub value_serializer: Option<&'a str>,
    pub store: Option<&'a str>,
    pub standby_replicas: u32,
}

/// Fails unless `left` and `right` are tables of the same app (or both detached), neither
/// global.
pub(crate) fn check_sides(join: &str, left: &TableCore, right: &TableCore) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::TableJoinSetting {
            join: join.to_owned(),
            left: left.name().to_owned(),
            right: right.name().to_owned(),
            reason: reason.to_owned(),
        })
    };
    if left.spec().is_global() || right.spec().is_global() {
        return bad("a global table is held whole by every worker, which would each write the result: join two partitioned tables (or join a stream with the global table)");
    }
    match (left.home(), right.home()) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) if std::sync::Arc::ptr_eq(&a, &b) => Ok(()),
        _ => bad("the tables belong to different apps (or one is detached): declare both in the app that joins them"),
    }
}

/// Declares the result table beside `like` (in its app, or detached).
pub(crate) fn declare<K, V>(like: &TableCore, spec: ResultSpec<'_>) -> Result<Table<K, V>>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    let Some(home) = like.home() else {
        let mut table = TableSpec::new(like.spec().app_id(), spec.name)
            .partitions(spec.partitions)
            .with_key_serializer(spec.key_serializer)
            .standby_replicas(spec.standby_replicas);
        if let Some(chain) = spec.value_serializer {
            table = table.with_value_serializer(chain);
        }
        if let Some(url) = spec.store {
            table = table.store(stores::StoreUrl::parse(url)?);
        }
        return Table::detached(table);
    };
    let decls = home
        .downcast::<Declarations>()
        .map_err(|_| Error::NotStarted)?;
    declare_in(&decls, spec)
}

/// The app that declared `core`, unless it is detached.
pub(crate) fn app_of(core: &TableCore) -> Option<Arc<Declarations>> {
    core.home()?.downcast::<Declarations>().ok()
}

/// Declares the result table in `decls`.
pub(crate) fn declare_in<K, V>(
    decls: &Arc<Declarations>,
    spec: ResultSpec<'_>,
) -> Result<Table<K, V>>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    let mut builder = TableBuilder::<K, V>::new(decls, spec.name)
        .partitions(spec.partitions)
        .key_serializer(spec.key_serializer)
        .standby_replicas(spec.standby_replicas);
    if let Some(chain) = spec.value_serializer {
        builder = builder.value_serializer(chain);
    }
    if let Some(url) = spec.store {
        builder = builder.store(url);
    }
    builder.build()
}

/// Writes `value` as the result of `key` (`None`: the join does not hold, a tombstone if the
/// key had a result).
pub(crate) fn write<K, V>(result: &Table<K, V>, key: &Bytes, value: Option<V>) -> Result<()>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    match value {
        Some(v) => result
            .core()
            .put(key.clone(), Some(result.encode_value(&v)?)),
        None if result.core().get(key)?.is_some() => result.core().put(key.clone(), None),
        None => Ok(()),
    }
}
