//! A windowed table seen at one time: the event being processed.

use std::borrow::Borrow;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::time::wall_clock_ms;
use super::windowed::WindowedTable;
use crate::error::Result;

/// A [`WindowedTable`] at the time of one event ([`WindowedTable::at`]): its updates go to the
/// event's windows, its reads name windows relative to it (Faust's `table[k].current()` ...).
#[derive(Debug)]
pub struct WindowedAt<'a, K, V> {
    table: &'a WindowedTable<K, V>,
    /// By the table's time source: where updates go, what `value()` reads.
    time: i64,
    /// The record timestamp: what `current()` reads.
    event_time: i64,
}

impl<'a, K, V> WindowedAt<'a, K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(super) fn new(table: &'a WindowedTable<K, V>, time: i64, event_time: i64) -> Self {
        WindowedAt {
            table,
            time,
            event_time,
        }
    }

    /// The time updates are filed under (milliseconds since the epoch).
    pub fn time(&self) -> i64 {
        self.time
    }

    /// Changes the value of `key` in every open window of this time, starting from the
    /// table's default in a new window, and returns the value of the current window
    /// (`windowed.at(&event)?.update(&key, |total| *total += amount)`). Moves the stream time
    /// of the key's partition, which closes (and fires `on_window_close` for) the windows it
    /// passed and deletes the expired ones.
    ///
    /// `Ok(None)`: every window of this time had closed; the event was counted as late and
    /// dropped (with [`LatePolicy::Fail`](super::LatePolicy::Fail) it is an error instead).
    pub fn update<Q>(&self, key: &Q, mut f: impl FnMut(&mut V)) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.table.update_at(key, self.time, &mut f)
    }

    /// The value of `key` in the window of the event's record timestamp (Faust's `current()`).
    pub fn current<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.table.value_at(key, self.event_time)
    }

    /// The value of `key` in the window of this time by the table's time source (Faust's
    /// `value()`; the same as `current()` unless `relative_to_field`/`relative_to_now`).
    pub fn value<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.table.value_at(key, self.time)
    }

    /// The value of `key` in the window of this time minus `d` (Faust's `delta(d)`).
    pub fn delta<Q>(&self, key: &Q, d: Duration) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let d = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.table.value_at(key, self.time.saturating_sub(d))
    }

    /// The value of `key` in the window of the wall clock (Faust's `now()`).
    pub fn now<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.table.value_at(key, wall_clock_ms())
    }
}
