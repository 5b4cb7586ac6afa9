//! Declaring tables: `app.table(..)` and [`TableBuilder`]. Declaring does no I/O: a table's
//! store is opened when the worker starts (a locked or corrupt file is an error of
//! `App::start`, before anything connects), so the CLI's `send`, `agents` and `topics` work
//! beside a running worker. The builder registers the table's untyped core for the runtime.

use std::any::Any;
use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::sync::{Arc, Weak};

use serde::de::DeserializeOwned;
use serde::Serialize;
use stores::{Store, StoreUrl};

use super::{AgentBuilder, Shared};
use crate::error::{Error, Result};
use crate::table::{SetTable, StoreSlot, Table, TableSpec};
use crate::topic::Topic;

/// Configures a table; finish with [`build`](Self::build) (or [`build_set`](Self::build_set)
/// for a [`SetTable`]). `app.table::<K, V>(name)` is this builder with every default.
///
/// ```
/// # fn main() -> streams::Result<()> {
/// let app = streams::App::builder("shop").build()?;
/// let totals = app
///     .table_builder::<String, i64>("totals")
///     .partitions(4)
///     .standby_replicas(1)
///     .build()?
///     .with_default(i64::default);
/// assert_eq!(totals.spec().changelog_topic(), "shop-totals-changelog");
/// assert_eq!(app.tables()[0].partitions, 4);
/// # Ok(()) }
/// ```
#[must_use = "finish with build()"]
pub struct TableBuilder<K, V> {
    decls: Shared,
    spec: TableSpec,
    store: Option<String>,
    /// A store opened by the caller (`with_store`), used instead of opening one.
    opened: Option<Arc<dyn Store>>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> TableBuilder<K, V>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    pub(crate) fn new(decls: &Shared, name: &str) -> Self {
        let spec = TableSpec::new(decls.id.clone(), name)
            .partitions(decls.settings.topic_partitions)
            .standby_replicas(decls.settings.table_standby_replicas);
        TableBuilder {
            decls: decls.clone(),
            spec,
            store: None,
            opened: None,
            _types: PhantomData,
        }
    }

    /// Partitions of the table and its changelog (default: the app's `topic_partitions`).
    /// Must equal the partition count of the topic the agents that update it read.
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.spec = self.spec.partitions(partitions);
        self
    }

    /// Workers that keep a warm copy of each partition (default: the app's
    /// `table_standby_replicas`, 0 unless set).
    pub fn standby_replicas(mut self, replicas: u32) -> Self {
        self.spec = self.spec.standby_replicas(replicas);
        self
    }

    /// Keeps this table in `url` (`memory://`, `redb://DIR`) instead of the app's store.
    pub fn store(mut self, url: &str) -> Self {
        self.store = Some(url.to_owned());
        self
    }

    /// Keeps this table in `store`, opened by the caller, instead of opening one from the
    /// store URL. For tests (the `testing` feature): a store over a disk that fails on
    /// demand (`stores::testing::FailingDisk`), to see what the app does when its store breaks.
    /// The store must be this table's alone; to restart on the same data, open the file the
    /// app's `redb://DIR` opens: `DIR/<app id>-<table>.redb`.
    #[cfg(feature = "testing")]
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.opened = Some(store);
        self
    }

    /// The key codec chain (`raw` by default: see [`TableSpec`] before changing it).
    pub fn key_serializer(mut self, chain: &str) -> Self {
        self.spec = self.spec.with_key_serializer(chain);
        self
    }

    /// The value codec chain (`json` by default).
    pub fn value_serializer(mut self, chain: &str) -> Self {
        self.spec = self.spec.with_value_serializer(chain);
        self
    }

    /// Every worker holds every partition (Faust's `GlobalTable`).
    pub fn global(mut self) -> Self {
        self.spec = self.spec.global();
        self
    }

    /// Registers the table; its store opens when the worker starts. Errors: a name taken by
    /// another table, a bad store URL or codec. A locked or corrupt store file is an error of
    /// [`App::start`](crate::App::start), naming the file.
    pub fn build(self) -> Result<Table<K, V>> {
        let decls = self.decls;
        let mut spec = self.spec;
        if let Some(url) = self.store {
            spec = spec.store(StoreUrl::parse(&url)?);
        }
        spec.validate()?;
        let mut tables = decls.tables();
        if tables.iter().any(|t| t.name() == spec.name()) {
            return Err(Error::DuplicateTable {
                table: spec.name().to_owned(),
            });
        }
        let url = spec.store_url().unwrap_or(&decls.store).clone();
        // One file per app and table, so that two apps sharing a directory do not collide.
        let store = match self.opened {
            Some(store) => StoreSlot::given(store),
            None => {
                let mut options = stores::RedbOptions::default();
                if let Some(bytes) = decls.settings.redb_cache_bytes {
                    options = options.cache_size(bytes);
                }
                StoreSlot::lazy(url, format!("{}-{}", decls.id, spec.name()), options)
            }
        };
        let table = Table::declare(spec, decls.catalog.registry(), store)?;
        // Joins declare their result tables in the app of their inputs.
        let home: Weak<dyn Any + Send + Sync> = Arc::downgrade(&decls) as _;
        table.core().set_home(home);
        tables.push(table.core().clone());
        Ok(table)
    }
}

impl<K, V> TableBuilder<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Registers the table as `topic`'s latest value per key, kept by the runtime (Kafka
    /// Streams' `builder.table(topic)`): an agent `<table>-from-<topic>` writes each record's
    /// value to its key and deletes the key on a tombstone (a null value); a record without a
    /// key is skipped (logged), as Kafka Streams does. The table takes the topic's partition
    /// count when the topic declares one ([`Topic::partitions`]), else the builder's; either
    /// way start checks they are equal (co-partitioning). Records that do not decode follow
    /// the topic's decode-error policy. Finishes the builder as [`build`](Self::build) does.
    ///
    /// The table still has its own changelog (`<app>-<table>-changelog`), from which it
    /// recovers; Kafka Streams can reuse the source topic instead (`topology.optimization`).
    ///
    /// ```
    /// # fn main() -> streams::Result<()> {
    /// let app = streams::App::builder("shop").build()?;
    /// let profiles = app.topic::<String, String>("profiles").partitions(4);
    /// let table = app.table_builder::<String, String>("profiles").from_topic(&profiles)?;
    /// assert_eq!(table.spec().partition_count(), 4);
    /// assert_eq!(app.agents()[0].name, "profiles-from-profiles");
    /// # Ok(()) }
    /// ```
    pub fn from_topic(mut self, topic: &Topic<K, V>) -> Result<Table<K, V>> {
        if let Some(n) = topic.spec.partitions {
            self.spec = self.spec.partitions(n);
        }
        self.spec = self.spec.kept_from(topic.name());
        let decls = self.decls.clone();
        let table = self.build()?;
        // The same topic read as Option<V>, so that a tombstone decodes (as None).
        let source = decls.topic::<K, Option<V>>(topic.name());
        let name = format!("{}-from-{}", table.name(), topic.name());
        let writer = table.clone();
        AgentBuilder::<K, Option<V>, ()>::new(&decls, &name, &source)
            .table(&table)
            .run(move |events| keep_latest(events, writer.clone()));
        Ok(table)
    }
}

/// The body of a `from_topic` table's agent: each record's value to its key, tombstones
/// delete.
async fn keep_latest<K, V>(
    mut events: crate::stream::AgentStream<K, Option<V>>,
    table: Table<K, V>,
) -> Result<()>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    use futures::StreamExt;
    while let Some(mut event) = events.next().await {
        let Some(key) = event.key.take() else {
            tracing::warn!(table = table.name(), topic = %event.topic, partition = event.partition, offset = event.offset, "skipped a record without a key");
            continue;
        };
        match event.value.take() {
            Some(value) => table.insert(&key, value)?,
            None => drop(table.remove(&key)?),
        }
    }
    Ok(())
}

impl<K, T> TableBuilder<K, BTreeSet<T>>
where
    K: Serialize + DeserializeOwned + 'static,
    T: Ord + Clone + Serialize + DeserializeOwned + 'static,
{
    /// Builds a [`SetTable`] (Faust's `app.SetTable`).
    pub fn build_set(self) -> Result<SetTable<K, T>> {
        Ok(SetTable::new(self.build()?))
    }
}

/// A declared table, as `app.tables()` and the CLI list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// The table's name.
    pub name: String,
    /// Partitions of the table and its changelog.
    pub partitions: i32,
    /// The changelog topic, `<app>-<table>-changelog`.
    pub changelog: String,
    /// The store URL the table lives in.
    pub store: String,
    /// Workers that keep a warm copy of each partition.
    pub standby_replicas: u32,
    /// Whether every worker holds every partition (Faust's `GlobalTable`).
    pub global: bool,
}

#[cfg(test)]
mod tests {
    use crate::App;

    #[test]
    fn the_redb_cache_setting_reaches_every_tables_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("redb://{}", dir.path().display());
        let app = App::builder("redb-cache")
            .store(&url)
            .redb_cache_bytes(1 << 20)
            .build()
            .unwrap();
        let table = app.table::<String, i64>("counts").unwrap();
        let slot = format!("{:?}", table.core());
        assert!(slot.contains("cache_size: Some(1048576)"), "{slot}");
        let plain = App::builder("redb-default").store(&url).build().unwrap();
        let table = plain.table::<String, i64>("counts").unwrap();
        let slot = format!("{:?}", table.core());
        assert!(slot.contains("cache_size: None"), "{slot}");
    }
}
