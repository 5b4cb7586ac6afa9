//! Table-table joins (Kafka Streams' KTable-KTable join): `left.join(&right, f)`,
//! `left_join`, `outer_join`, whose result is a table of its own.
//!
//! Both sides are keyed alike and co-partitioned, so a key's left value, right value and
//! result live in the same partition number, held by one worker. Every write of either side
//! runs a hook (`table::hooks`) that reads both sides' current values for the key and writes
//! the result (or removes it when the join no longer holds), in the write's own change: the
//! result's changelog records are effects of the event that wrote the input, flushed and
//! committed with it (exactly-once: in its transaction). Recovery restores the result from
//! its own changelog, so after a restart or a rebalance it equals the join of the recovered
//! inputs. The hooks of one partition run one at a time and each reads both sides afresh, so
//! concurrent writers of the two sides leave the result of the last values.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::result::{self, ResultSpec};
use crate::error::{Error, Result};
use crate::table::{Table, TableCore, WriteHook, Written};

/// The result of a key from its two sides' values (`None`: no result).
type Combine<L, R, V> = Arc<dyn Fn(Option<&L>, Option<&R>) -> Option<V> + Send + Sync>;

/// Wires the join's hooks once the result table is declared.
type Wire<K, V> = Box<dyn FnOnce(&Table<K, V>) + Send>;

/// A table-table join being declared: name the result table, then
/// [`build`](Self::build) it. Made by [`Table::join`], [`Table::left_join`] and
/// [`Table::outer_join`].
#[must_use = "finish with build()"]
pub struct TableJoinBuilder<K, V> {
    name: String,
    left: Arc<TableCore>,
    right: Arc<TableCore>,
    value_serializer: Option<String>,
    store: Option<String>,
    wire: Wire<K, V>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, L> Table<K, L>
where
    K: Serialize + DeserializeOwned + 'static,
    L: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Inner join with `other` (Kafka Streams' `KTable#join`): a table with a result
    /// `f(left, right)` for every key both tables have, updated whenever either side of the
    /// key changes and removed (a changelog tombstone) when either side is deleted.
    ///
    /// Both tables must be of the same app, partitioned, with the same partition count and
    /// key codec ([`build`](TableJoinBuilder::build) says which differs). The result table
    /// (named `<left>-join-<right>` unless [`named`](TableJoinBuilder::named)) has their
    /// partitions, key codec and standbys, its own changelog `<app>-<name>-changelog`, and
    /// reads like any table (agents, `App::query`, the web views). It is written only by the
    /// join: a write of yours to it stays until the key's next input change replaces it.
    ///
    /// A write to either side computes the key's result at once, in the same change (so the
    /// result is committed with the event that wrote the input). The write returns the
    /// join's error, if any: a stored value of the other side that does not decode
    /// ([`Error::TableJoinFailed`]); let the agent fail on it (`?`), so that its event is not
    /// committed. Keys written before the join was declared (a join added to an app with
    /// data) get a result at their next change.
    ///
    /// ```
    /// use streams::{Table, TableSpec};
    /// # fn main() -> streams::Result<()> {
    /// let names = Table::<String, String>::detached(TableSpec::new("shop", "names"))?;
    /// let emails = Table::<String, String>::detached(TableSpec::new("shop", "emails"))?;
    /// let contacts = names.join(&emails, |n, e| format!("{n} <{e}>")).build()?;
    /// names.insert("u1", "Ann".into())?;
    /// assert_eq!(contacts.get("u1")?, None, "no email yet");
    /// emails.insert("u1", "ann@example.com".into())?;
    /// assert_eq!(contacts.get("u1")?.as_deref(), Some("Ann <ann@example.com>"));
    /// emails.remove("u1")?;
    /// assert_eq!(contacts.get("u1")?, None, "the join no longer holds");
    /// # Ok(()) }
    /// ```
    pub fn join<R, V>(
        &self,
        other: &Table<K, R>,
        f: impl Fn(&L, &R) -> V + Send + Sync + 'static,
    ) -> TableJoinBuilder<K, V>
    where
        R: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        let combine: Combine<L, R, V> = Arc::new(move |l, r| match (l, r) {
            (Some(l), Some(r)) => Some(f(l, r)),
            _ => None,
        });
        TableJoinBuilder::new(self, other, "join", combine)
    }

    /// Left join with `other` (Kafka Streams' `KTable#leftJoin`): a result
    /// `f(left, right or None)` for every key of this table, updated whenever either side
    /// changes, removed when the left value is deleted. See [`join`](Self::join) for the
    /// result table and its name (`<left>-left-join-<right>`).
    pub fn left_join<R, V>(
        &self,
        other: &Table<K, R>,
        f: impl Fn(&L, Option<&R>) -> V + Send + Sync + 'static,
    ) -> TableJoinBuilder<K, V>
    where
        R: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        let combine: Combine<L, R, V> = Arc::new(move |l, r| l.map(|l| f(l, r)));
        TableJoinBuilder::new(self, other, "left-join", combine)
    }

    /// Outer join with `other` (Kafka Streams' `KTable#outerJoin`): a result
    /// `f(left or None, right or None)` for every key either table has, removed when both
    /// sides are deleted. See [`join`](Self::join) for the result table and its name
    /// (`<left>-outer-join-<right>`).
    pub fn outer_join<R, V>(
        &self,
        other: &Table<K, R>,
        f: impl Fn(Option<&L>, Option<&R>) -> V + Send + Sync + 'static,
    ) -> TableJoinBuilder<K, V>
    where
        R: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        let combine: Combine<L, R, V> = Arc::new(move |l, r| match (l, r) {
            (None, None) => None,
            (l, r) => Some(f(l, r)),
        });
        TableJoinBuilder::new(self, other, "outer-join", combine)
    }
}

impl<K, V> TableJoinBuilder<K, V>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    fn new<L, R>(
        left: &Table<K, L>,
        right: &Table<K, R>,
        kind: &str,
        combine: Combine<L, R, V>,
    ) -> Self
    where
        L: Serialize + DeserializeOwned + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let (l, r) = (left.downgrade(), right.downgrade());
        let (left_core, right_core) = (left.core().clone(), right.core().clone());
        let wire: Wire<K, V> = Box::new(move |out: &Table<K, V>| {
            let partitions = out.spec().partition_count().max(0) as usize;
            // One hook at a time per partition: each reads both sides afresh.
            let serial: Arc<Vec<Mutex<()>>> =
                Arc::new((0..partitions).map(|_| Mutex::new(())).collect());
            let out = out.downgrade();
            let hook: WriteHook = Arc::new(move |w: &Written<'_>| {
                let (Some(l), Some(r), Some(out)) = (l.upgrade(), r.upgrade(), out.upgrade())
                else {
                    return Ok(()); // a side or the result is gone: nothing to keep up
                };
                let _one = serial
                    .get(w.partition as usize)
                    .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()));
                let failed = |side: &'static str, table: &str| {
                    let (join, table) = (out.name().to_owned(), table.to_owned());
                    move |e: Error| Error::TableJoinFailed {
                        join,
                        side,
                        table,
                        source: Box::new(e),
                    }
                };
                let lv = l.get_encoded(w.key).map_err(failed("left", l.name()))?;
                let rv = r.get_encoded(w.key).map_err(failed("right", r.name()))?;
                let value = combine(lv.as_ref(), rv.as_ref());
                result::write(&out, w.key, value).map_err(failed("result", out.name()))
            });
            left_core.add_write_hook(hook.clone());
            right_core.add_write_hook(hook);
        });
        TableJoinBuilder {
            name: format!("{}-{kind}-{}", left.name(), right.name()),
            left: left.core().clone(),
            right: right.core().clone(),
            value_serializer: None,
            store: None,
            wire,
            _types: PhantomData,
        }
    }

    /// Names the result table (and its changelog, `<app>-<name>-changelog`).
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// The result's value codec chain (`json` by default).
    pub fn value_serializer(mut self, chain: &str) -> Self {
        self.value_serializer = Some(chain.to_owned());
        self
    }

    /// Keeps the result in `url` (`memory://`, `redb://DIR`) instead of the app's store.
    pub fn store(mut self, url: &str) -> Self {
        self.store = Some(url.to_owned());
        self
    }

    /// Declares the result table and starts following both sides. Errors:
    /// [`Error::TableJoinNotCoPartitioned`] when the sides' partition counts differ,
    /// [`Error::TableJoinSetting`] when they differ in key codec, belong to different apps or one
    /// is global, and the errors of declaring a table (a name taken, a bad codec or store).
    pub fn build(self) -> Result<Table<K, V>> {
        let (left, right) = (self.left.spec(), self.right.spec());
        if left.partition_count() != right.partition_count() {
            return Err(Error::TableJoinNotCoPartitioned {
                join: self.name,
                left: left.name().to_owned(),
                right: right.name().to_owned(),
                left_partitions: left.partition_count(),
                right_partitions: right.partition_count(),
            });
        }
        result::check_sides(&self.name, &self.left, &self.right)?;
        if left.key_serializer() != right.key_serializer() {
            return Err(Error::TableJoinSetting {
                join: self.name.clone(),
                left: left.name().to_owned(),
                right: right.name().to_owned(),
                reason: format!(
                    "keys encoded with {:?} and {:?}: the same key must be the same bytes on both sides (give both tables one key codec)",
                    left.key_serializer(),
                    right.key_serializer()
                ),
            });
        }
        let out = result::declare::<K, V>(
            &self.left,
            ResultSpec {
                name: &self.name,
                partitions: left.partition_count(),
                key_serializer: left.key_serializer(),
                value_serializer: self.value_serializer.as_deref(),
                store: self.store.as_deref(),
                standby_replicas: left.standbys(),
            },
        )?;
        (self.wire)(&out);
        Ok(out)
    }
}
