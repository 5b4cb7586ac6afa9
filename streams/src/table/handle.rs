//! `Table<K, V>`: the typed, dict-like handle an agent uses.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use stores::StoreUrl;

use super::partitions::{RecordCheck, TableCore};
use super::render::Part;
use super::spec::TableSpec;
use super::store_slot::StoreSlot;
use crate::codec::{CodecRegistry, DecodeFailure, Serializer};
use crate::error::{Error, Result};

type DefaultFn<V> = Arc<dyn Fn() -> V + Send + Sync>;

/// What [`Table::modify`] writes after looking at the current value.
pub(crate) enum Write<V> {
    Keep,
    Put(V),
    Delete,
}

/// A partitioned table of `K` to `V` (serde types), read and written like a dict from an
/// agent. Cheap to clone; every clone is the same table.
///
/// A key lives in the partition Kafka's default partitioner gives its encoded bytes: the
/// partition its event has when the stream is keyed by the same key (`group_by`). A worker
/// reads and writes only the partitions it owns; other keys are an error that says so.
/// Writes are visible at once to reads on this worker and reach the changelog and the store
/// when the runtime commits.
///
/// The methods are synchronous: no `.await` between reading and writing a value.
///
/// | Faust | here |
/// |---|---|
/// | `app.Table("totals", default=int)` | `app.table::<String, i64>("totals")` with `.with_default(i64::default)` |
/// | `table[k]` / `table.get(k)` | [`get_or_default`](Self::get_or_default) / [`get`](Self::get) |
/// | `table[k] = v`, `del table[k]` | [`insert`](Self::insert), [`remove`](Self::remove) |
/// | `table.setdefault(k, 0); table[k] += n` | `table.update(&k, \|v\| *v += n)` |
/// | `table.items()`, `keys()`, `values()`, `len(table)` | the same, over the partitions this worker owns |
/// | `app.SetTable(...)`, `app.GlobalTable(...)` | [`SetTable`](super::SetTable), [`TableSpec::global`] |
///
/// ```
/// use streams::{Table, TableSpec};
/// # fn main() -> streams::Result<()> {
/// // A table outside any app (every partition held, no changelog): for tests and examples.
/// let totals = Table::<String, i64>::detached(TableSpec::new("shop", "totals"))?.with_default(i64::default);
///
/// // Faust: currency.setdefault(c, 0); currency[c] += amount
/// totals.update("EUR", |total| *total += 25)?;
/// totals.update("EUR", |total| *total += 17)?;
/// totals.insert("USD", 3)?;
/// assert_eq!(totals.get("EUR")?, Some(42));
/// assert_eq!(totals.get_or_default("GBP")?, 0);
/// assert_eq!(totals.remove("USD")?, Some(3));
/// assert_eq!(totals.items()?, vec![("EUR".to_string(), 42)]);
/// # Ok(()) }
/// ```
pub struct Table<K, V> {
    core: Arc<TableCore>,
    key_ser: Serializer,
    value_ser: Serializer,
    default: Option<DefaultFn<V>>,
    _key: PhantomData<fn() -> K>,
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Table {
            core: self.core.clone(),
            key_ser: self.key_ser.clone(),
            value_ser: self.value_ser.clone(),
            default: self.default.clone(),
            _key: PhantomData,
        }
    }
}

/// A [`Table`] that does not keep its core alive: for what the core itself holds (a windowed
/// table's idle check), which would otherwise keep the table, and its store, open for good.
pub(crate) struct WeakTable<K, V> {
    core: Weak<TableCore>,
    key_ser: Serializer,
    value_ser: Serializer,
    default: Option<DefaultFn<V>>,
    _key: PhantomData<fn() -> K>,
}

impl<K, V> WeakTable<K, V> {
    /// The table, unless it is gone.
    pub(crate) fn upgrade(&self) -> Option<Table<K, V>> {
        Some(Table {
            core: self.core.upgrade()?,
            key_ser: self.key_ser.clone(),
            value_ser: self.value_ser.clone(),
            default: self.default.clone(),
            _key: PhantomData,
        })
    }
}

impl<K, V> Table<K, V> {
    /// A handle that does not keep the table alive.
    pub(crate) fn downgrade(&self) -> WeakTable<K, V> {
        WeakTable {
            core: Arc::downgrade(&self.core),
            key_ser: self.key_ser.clone(),
            value_ser: self.value_ser.clone(),
            default: self.default.clone(),
            _key: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("spec", self.core.spec())
            .field("has_default", &self.default.is_some())
            .finish()
    }
}

fn failure_text(failure: DecodeFailure) -> String {
    match failure.field {
        Some(field) => format!("at field `{field}`: {}", failure.reason),
        None => failure.reason,
    }
}

impl<K, V> Table<K, V>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    /// The table over `store`, already open: for unit tests.
    #[cfg(test)]
    pub(crate) fn open(
        spec: TableSpec,
        registry: &CodecRegistry,
        store: Arc<dyn stores::Store>,
    ) -> Result<Self> {
        Self::declare(spec, registry, StoreSlot::given(store))
    }

    /// The table over `store` (opened when the worker starts), holding no partition until the
    /// runtime assigns them.
    pub(crate) fn declare(
        spec: TableSpec,
        registry: &CodecRegistry,
        store: StoreSlot,
    ) -> Result<Self> {
        Self::build(spec, registry, store, false)
    }

    /// A table outside any app: it holds every partition, has no changelog and writes straight
    /// to its store (the spec's store URL, else memory). For tests of agent logic and examples.
    pub fn detached(spec: TableSpec) -> Result<Self> {
        let url = spec.store_url().cloned().unwrap_or(StoreUrl::Memory);
        let store = StoreSlot::given(url.open(spec.name())?);
        Self::build(spec, &CodecRegistry::default(), store, true)
    }

    fn build(
        spec: TableSpec,
        registry: &CodecRegistry,
        store: StoreSlot,
        detached: bool,
    ) -> Result<Self> {
        let parse = |chain: &str, part: &'static str| {
            Serializer::parse(chain, registry).map_err(|e| Error::TableSerializer {
                table: spec.name().to_owned(),
                part,
                chain: chain.to_owned(),
                source: Box::new(e),
            })
        };
        let key_ser = parse(spec.key_serializer(), "key")?;
        let value_ser = parse(spec.value_serializer(), "value")?;
        let (ks, vs) = (key_ser.clone(), value_ser.clone());
        let check: RecordCheck = Arc::new(move |key, value| {
            ks.decode::<K>(key).map_err(|e| ("key", failure_text(e)))?;
            if let Some(value) = value {
                vs.decode::<V>(value)
                    .map_err(|e| ("value", failure_text(e)))?;
            }
            Ok(())
        });
        let core = TableCore::new(spec, store, check, detached)?;
        let (ks, vs) = (key_ser.clone(), value_ser.clone());
        core.set_render(Arc::new(move |part, bytes| {
            let json = match part {
                Part::Key => ks.decode::<K>(bytes).map(|k| serde_json::to_value(&k)),
                Part::Value => vs.decode::<V>(bytes).map(|v| serde_json::to_value(&v)),
            };
            match json {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(failure_text(e)),
            }
        }));
        Ok(Table {
            core: Arc::new(core),
            key_ser,
            value_ser,
            default: None,
            _key: PhantomData,
        })
    }

    /// Sets the value a missing key starts from (Faust's `default=int`), used by
    /// [`update`](Self::update) and [`get_or_default`](Self::get_or_default). Clones made
    /// before this call keep their own (missing) default.
    pub fn with_default(mut self, default: impl Fn() -> V + Send + Sync + 'static) -> Self {
        self.default = Some(Arc::new(default));
        self
    }

    /// The untyped table the runtime drives.
    pub(crate) fn core(&self) -> &Arc<TableCore> {
        &self.core
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// The declaration.
    pub fn spec(&self) -> &TableSpec {
        self.core.spec()
    }

    pub(crate) fn encode_key<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Bytes> {
        self.key_ser
            .encode(key)
            .map(Bytes::from)
            .map_err(|e| self.encode_error("key", e))
    }

    pub(crate) fn encode_value(&self, value: &V) -> Result<Bytes> {
        self.value_ser
            .encode(value)
            .map(Bytes::from)
            .map_err(|e| self.encode_error("value", e))
    }

    /// Appends the encoded `value` to `out`: the bytes of [`Self::encode_value`], for a caller
    /// that frames them (a window's end before its value) in one buffer it reuses.
    pub(crate) fn encode_value_into(&self, value: &V, out: &mut Vec<u8>) -> Result<()> {
        self.value_ser
            .encode_into(value, out)
            .map_err(|e| self.encode_error("value", e))
    }

    fn encode_error(&self, part: &'static str, e: Error) -> Error {
        Error::TableEncode {
            table: self.name().to_owned(),
            part,
            reason: e.to_string(),
        }
    }

    fn decode_error(&self, partition: i32, part: &'static str, e: DecodeFailure) -> Error {
        Error::TableDecode {
            table: self.name().to_owned(),
            partition,
            offset: None,
            part,
            reason: failure_text(e),
        }
    }

    fn decode_value(&self, key: &[u8], bytes: &[u8]) -> Result<V> {
        self.value_ser
            .decode(bytes)
            .map_err(|e| self.decode_error(self.core.partition_of(key), "value", e))
    }

    pub(crate) fn default_value(&self) -> Result<V> {
        match &self.default {
            Some(default) => Ok(default()),
            None => Err(Error::NoDefault {
                table: self.name().to_owned(),
            }),
        }
    }

    /// The key and value codecs (a windowed table checks its changelog records with them).
    pub(crate) fn serializers(&self) -> (&Serializer, &Serializer) {
        (&self.key_ser, &self.value_ser)
    }

    /// Decodes key bytes of an entry in `partition`.
    pub(crate) fn decode_key_in(&self, partition: i32, bytes: &[u8]) -> Result<K> {
        self.key_ser
            .decode(bytes)
            .map_err(|e| self.decode_error(partition, "key", e))
    }

    /// Decodes value bytes of an entry in `partition`.
    pub(crate) fn decode_value_in(&self, partition: i32, bytes: &[u8]) -> Result<V> {
        self.value_ser
            .decode(bytes)
            .map_err(|e| self.decode_error(partition, "value", e))
    }

    /// The value of the key encoded as `key`, if any (a join reads a side by the bytes the
    /// other side wrote).
    pub(crate) fn get_encoded(&self, key: &[u8]) -> Result<Option<V>> {
        match self.core.get(key)? {
            Some(bytes) => self.decode_value(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The partition `key` belongs to.
    pub fn partition_of<Q>(&self, key: &Q) -> Result<i32>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        Ok(self.core.partition_of(&self.encode_key(key)?))
    }

    /// The value of `key`, if any.
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.encode_key(key)?;
        match self.core.get(&key)? {
            Some(bytes) => self.decode_value(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The value of `key`, or the table's default (not stored) when it has none.
    pub fn get_or_default<Q>(&self, key: &Q) -> Result<V>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        match self.get(key)? {
            Some(v) => Ok(v),
            None => self.default_value(),
        }
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.encode_key(key)?;
        Ok(self.core.get(&key)?.is_some())
    }

    /// Sets `key` to `value`. A value that cannot be encoded is an error naming the table, and
    /// nothing is written.
    pub fn insert<Q>(&self, key: &Q, value: V) -> Result<()>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.encode_key(key)?;
        let value = self.encode_value(&value)?;
        self.core.put(key, Some(value))
    }

    /// Removes `key`, returning its value (a tombstone goes to the changelog only when there
    /// was one).
    pub fn remove<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.modify(key, |current| {
            Ok(match current {
                Some(v) => (Write::Delete, Some(v)),
                None => (Write::Keep, None),
            })
        })
    }

    /// Changes the value of `key` in place, starting from the default when it has none, and
    /// returns the new value: `table.update(&currency, |total| *total += amount)`.
    ///
    /// The read and the write are atomic with respect to other writers of the table: `f` runs
    /// with the key's partition locked, as a windowed table's update does, so it must only
    /// change the value it is given: using the same table inside it panics, naming the table
    /// (read what `f` needs before calling `update`; other tables are fine). A table
    /// with write hooks (a side of a table join) runs `f` unlocked instead, and again on the
    /// newer value if another write came in between.
    pub fn update<Q>(&self, key: &Q, mut f: impl FnMut(&mut V)) -> Result<V>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        V: Clone,
    {
        self.modify(key, |current| {
            let mut value = match current {
                Some(v) => v,
                None => self.default_value()?,
            };
            f(&mut value);
            Ok((Write::Put(value.clone()), value))
        })
    }

    /// Reads `key`, lets `f` decide what to write, and writes it: under the partition's lock
    /// (see [`update`](Self::update)), else unless another write to the partition came in
    /// between (then `f` runs again on the newer value).
    pub(crate) fn modify<Q, R>(
        &self,
        key: &Q,
        mut f: impl FnMut(Option<V>) -> Result<(Write<V>, R)>,
    ) -> Result<R>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let mut key = self.encode_key(key)?;
        let partition = self.core.partition_of(&key);
        // The usual case: one lock and, for a key written since the last flush, one hash
        // lookup; the value is decoded where it lies and the new one takes its place.
        let in_place = self.core.update_in(partition, &key, |bytes| {
            let current = bytes
                .map(|b| {
                    self.value_ser
                        .decode(b)
                        .map_err(|e| self.decode_error(partition, "value", e))
                })
                .transpose()?;
            let (write, result) = f(current)?;
            let write = match write {
                Write::Keep => None,
                Write::Put(v) => Some(Some(self.encode_value(&v)?)),
                Write::Delete => Some(None),
            };
            Ok((write, result))
        })?;
        if let Some(result) = in_place {
            return Ok(result);
        }
        // Write hooks, or detached: the value is decoded under the partition's lock (no copy
        // of its bytes), `f` runs without it.
        loop {
            let (current, version) = self.core.read_versioned_in(partition, &key, |bytes| {
                bytes
                    .map(|b| {
                        self.value_ser
                            .decode(b)
                            .map_err(|e| self.decode_error(partition, "value", e))
                    })
                    .transpose()
            })?;
            let (write, result) = f(current)?;
            let value = match write {
                Write::Keep => return Ok(result),
                Write::Put(v) => Some(self.encode_value(&v)?),
                Write::Delete => None,
            };
            match self.core.try_put_in(partition, key, value, version)? {
                None => return Ok(result),
                Some(back) => key = back,
            }
        }
    }

    /// Every entry of the partitions this worker owns, by partition then key bytes: a snapshot.
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        let mut items = Vec::new();
        for partition in self.core.owned_partitions() {
            for (k, v) in self.core.snapshot(partition)? {
                let key = self
                    .key_ser
                    .decode(&k)
                    .map_err(|e| self.decode_error(partition, "key", e))?;
                let value = self
                    .value_ser
                    .decode(&v)
                    .map_err(|e| self.decode_error(partition, "value", e))?;
                items.push((key, value));
            }
        }
        Ok(items)
    }

    /// The keys of the partitions this worker owns: a snapshot.
    pub fn keys(&self) -> Result<Vec<K>> {
        let mut keys = Vec::new();
        for partition in self.core.owned_partitions() {
            for (k, _) in self.core.snapshot(partition)? {
                keys.push(
                    self.key_ser
                        .decode(&k)
                        .map_err(|e| self.decode_error(partition, "key", e))?,
                );
            }
        }
        Ok(keys)
    }

    /// The values of the partitions this worker owns: a snapshot.
    pub fn values(&self) -> Result<Vec<V>> {
        Ok(self.items()?.into_iter().map(|(_, v)| v).collect())
    }

    /// Number of keys in the partitions this worker owns.
    pub fn len(&self) -> Result<u64> {
        let mut len = 0;
        for partition in self.core.owned_partitions() {
            len += self.core.partition_len(partition)?;
        }
        Ok(len)
    }

    /// Whether the owned partitions hold no key.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The partitions this worker owns and that are up to date, ascending.
    pub fn owned_partitions(&self) -> Vec<i32> {
        self.core.owned_partitions()
    }
}
