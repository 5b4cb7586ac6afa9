//! A windowed table seen at one time: the event being processed.

use std::borrow::Borrow;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::time::wall_clock_ms;
use super::windowed::WindowedTable;
use crate::error::Result;
use crate::record::Event;
use crate::timestamp::Timestamp;

/// A [`WindowedTable`] at the time of one event ([`WindowedTable::at`]): its updates go to the
/// event's windows, its reads name windows relative to it (Faust's `table[k].current()` ...).
#[derive(Debug)]
pub struct WindowedAt<'a, K, V> {
    table: &'a WindowedTable<K, V>,
    /// By the table's time source: where updates go, what `value()` reads (milliseconds).
    time: i64,
    /// The record timestamp: what `current()` reads (milliseconds).
    event_time: i64,
}

/// Seeing the table at a time.
impl<K, V> WindowedTable<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The windowed table at the time of `event` (by the table's time source), to update and
    /// read: `windowed.at(&event)?.update(&key, |v| *v += 1)?`. An error of the topic's
    /// decode kind when the event has no such time (no record timestamp, no field).
    pub fn at<EK, EV: Serialize>(&self, event: &Event<EK, EV>) -> Result<WindowedAt<'_, K, V>> {
        let time = self.time.time_ms(event)?;
        Ok(WindowedAt {
            table: self,
            time,
            event_time: event.timestamp,
        })
    }

    /// The windowed table at `time`, given explicitly (as an event at that time).
    pub fn at_time(&self, time: Timestamp) -> WindowedAt<'_, K, V> {
        WindowedAt {
            table: self,
            time: time.as_millis(),
            event_time: time.as_millis(),
        }
    }

    /// The value of `key` in the window of the wall clock now: Faust's `table[k].now()`
    /// called outside an agent. In an agent Faust reads the window of the partition's latest
    /// event time instead: that is [`WindowedAt::now`].
    pub fn now<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.value_at(key, wall_clock_ms())
    }
}

impl<K, V> WindowedAt<'_, K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The time updates are filed under.
    pub fn time(&self) -> Timestamp {
        Timestamp::from_millis(self.time)
    }

    /// Changes the value of `key` in every open window of this time, starting from the
    /// table's default in a new window, and returns the value of the current window
    /// (`windowed.at(&event)?.update(&key, |total| *total += amount)`). Moves the stream time
    /// of the key's partition, which closes (and fires `on_window_close` for) the windows it
    /// passed and deletes the expired ones.
    ///
    /// `Ok(None)`: every window of this time had closed; the event was counted as late and
    /// dropped (with [`LatePolicy::Fail`](super::LatePolicy::Fail) it is an error instead).
    /// A table with an `on_window_close_async` callback refuses this (nothing changes): use
    /// [`update_async`](Self::update_async).
    pub fn update<Q>(&self, key: &Q, mut f: impl FnMut(&mut V)) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.table.update_at(key, self.time, &mut f)
    }

    /// [`update`](Self::update), then awaits the table's close callback for each window the
    /// update closed, in close order (a synchronous `on_window_close` is called as by
    /// `update`). Needed with `on_window_close_async`; in an agent under exactly-once the
    /// callback's sends join the worker's transaction.
    pub async fn update_async<Q>(&self, key: &Q, mut f: impl FnMut(&mut V)) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let filed = self.table.file_update(key, self.time, &mut f)?;
        self.table.finish_async(filed, self.time).await
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

    /// The value of `key` in the window of its partition's stream time (the latest event time
    /// the partition has seen, this event's included once it is filed): Faust's
    /// `table[k].now()` inside an agent, which reads the window of the event's partition's
    /// latest timestamp. `None` before the partition's first event. Not the wall clock: for
    /// that, [`WindowedTable::now`].
    pub fn now<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.table.value_at_stream_time(key)
    }
}
