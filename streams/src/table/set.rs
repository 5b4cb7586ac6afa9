//! `SetTable<K, T>`: a table whose values are sets (Faust's `SetTable`).

use std::borrow::Borrow;
use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::handle::{Table, Write};
use super::spec::TableSpec;
use crate::error::Result;

/// A table of `K` to a set of `T`: add, discard and test members per key. A key whose set
/// becomes empty is removed (a tombstone in the changelog), so only non-empty sets are stored.
///
/// ```
/// use streams::{SetTable, TableSpec};
/// # fn main() -> streams::Result<()> {
/// let visitors = SetTable::<String, String>::detached(TableSpec::new("site", "visitors"))?;
/// assert!(visitors.add("/home", "ann".to_string())?);
/// assert!(!visitors.add("/home", "ann".to_string())?, "already a member");
/// visitors.add("/home", "bob".to_string())?;
/// assert!(visitors.contains("/home", &"bob".to_string())?);
/// assert!(visitors.discard("/home", &"ann".to_string())?);
/// assert_eq!(visitors.get("/home")?.len(), 1);
/// visitors.discard("/home", &"bob".to_string())?;
/// assert_eq!(visitors.table().len()?, 0, "an emptied set is removed");
/// # Ok(()) }
/// ```
pub struct SetTable<K, T> {
    table: Table<K, BTreeSet<T>>,
}

impl<K, T> Clone for SetTable<K, T> {
    fn clone(&self) -> Self {
        SetTable {
            table: self.table.clone(),
        }
    }
}

impl<K, T> std::fmt::Debug for SetTable<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetTable")
            .field("table", &self.table)
            .finish()
    }
}

impl<K, T> SetTable<K, T>
where
    K: Serialize + DeserializeOwned + 'static,
    T: Ord + Clone + Serialize + DeserializeOwned + 'static,
{
    /// A set table over a table of sets (its default is the empty set).
    pub(crate) fn new(table: Table<K, BTreeSet<T>>) -> Self {
        SetTable {
            table: table.with_default(BTreeSet::new),
        }
    }

    /// A set table outside any app; see [`Table::detached`].
    pub fn detached(spec: TableSpec) -> Result<Self> {
        Ok(Self::new(Table::detached(spec)?))
    }

    /// The underlying table of sets (items, len, partitions...).
    pub fn table(&self) -> &Table<K, BTreeSet<T>> {
        &self.table
    }

    /// Adds `member` to the set of `key`; `true` if it was not there.
    pub fn add<Q>(&self, key: &Q, member: T) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.table.modify(key, |set| {
            let mut set = set.unwrap_or_default();
            Ok(if set.insert(member.clone()) {
                (Write::Put(set), true)
            } else {
                (Write::Keep, false)
            })
        })
    }

    /// Removes `member` from the set of `key`; `true` if it was there.
    pub fn discard<Q>(&self, key: &Q, member: &T) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.table.modify(key, |set| {
            let mut set = set.unwrap_or_default();
            Ok(match set.remove(member) {
                false => (Write::Keep, false),
                true if set.is_empty() => (Write::Delete, true),
                true => (Write::Put(set), true),
            })
        })
    }

    /// Whether `member` is in the set of `key`.
    pub fn contains<Q>(&self, key: &Q, member: &T) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        Ok(self.table.get(key)?.is_some_and(|set| set.contains(member)))
    }

    /// The set of `key` (empty when it has none).
    pub fn get<Q>(&self, key: &Q) -> Result<BTreeSet<T>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        Ok(self.table.get(key)?.unwrap_or_default())
    }

    /// Removes the whole set of `key`, returning it.
    pub fn remove<Q>(&self, key: &Q) -> Result<BTreeSet<T>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        Ok(self.table.remove(key)?.unwrap_or_default())
    }
}
