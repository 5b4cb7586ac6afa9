//! Declaring a windowed table: `Table::tumbling(..)` and the others return a
//! [`WindowedTableBuilder`] that gathers the settings; `build()` checks them once and returns
//! the [`WindowedTable`], whose settings never change after.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::check::record_check;
use super::kind::Window;
use super::layout;
use super::spec::{Kind, WindowSpec};
use super::time::TimeSource;
use super::windowed::{FinalEncoder, LatePolicy, MergeFn, OnClose, WindowResult, WindowedTable};
use crate::error::Result;
use crate::table::Table;
use crate::topic::Topic;

/// The settings of a windowed table before it is built: made by [`Table::tumbling`],
/// [`hopping`](Table::hopping), [`sliding`](Table::sliding) or [`session`](Table::session);
/// [`build`](Self::build) checks them and returns the [`WindowedTable`].
///
/// ```
/// use std::time::Duration;
/// use streams::{LatePolicy, Table, TableSpec};
///
/// # fn main() -> streams::Result<()> {
/// let secs = Duration::from_secs;
/// let totals = Table::<String, i64>::detached(TableSpec::new("shop", "totals"))?
///     .with_default(i64::default)
///     .hopping(secs(300), secs(60))
///     .grace(secs(10))
///     .expires(secs(3600))
///     .on_late(LatePolicy::Drop)
///     .build()?;
/// assert_eq!(totals.spec().grace(), secs(10));
///
/// // Settings that cannot work are refused by build(), saying what to change.
/// let err = Table::<String, i64>::detached(TableSpec::new("shop", "bad"))?
///     .tumbling(secs(300))
///     .expires(secs(60))
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().contains("expires (60000 ms) is shorter than the window size"));
/// # Ok(()) }
/// ```
pub struct WindowedTableBuilder<K, V> {
    table: Table<K, V>,
    kind: Kind,
    merge: Option<MergeFn<V>>,
    grace: Duration,
    expires: Option<Duration>,
    time: TimeSource,
    on_close: Option<OnClose<K, V>>,
    late: LatePolicy,
    emit_final: Option<Topic<K, WindowResult<V>>>,
    idle_after: Option<Duration>,
}

impl<K, V> fmt::Debug for WindowedTableBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedTableBuilder")
            .field("table", &self.table)
            .field("kind", &self.kind)
            .field("grace", &self.grace)
            .field("expires", &self.expires)
            .field("time", &self.time)
            .field("late", &self.late)
            .field("emit_final", &self.emit_final.is_some())
            .field("idle_after", &self.idle_after)
            .finish_non_exhaustive()
    }
}

/// Declaring windows on a table.
impl<K, V> Table<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Back-to-back windows of `size` (Faust's `table.tumbling(size)`).
    ///
    /// Windowing takes the table over: its entries become windows, which the plain handle's
    /// other clones cannot read. Build it before the app starts (recovery checks changelog
    /// records against the windowed layout).
    pub fn tumbling(self, size: Duration) -> WindowedTableBuilder<K, V> {
        WindowedTableBuilder::new(self, Kind::Tumbling(size), None)
    }

    /// Windows of `size` starting every `step` (Faust's `table.hopping(size, step)`): an event
    /// counts in `size / step` windows (when the step divides the size; otherwise that,
    /// rounded up or down by where it falls).
    pub fn hopping(self, size: Duration, step: Duration) -> WindowedTableBuilder<K, V> {
        WindowedTableBuilder::new(self, Kind::Hopping(size, step), None)
    }

    /// One window per distinct event time `t` of a key, over the `size` up to and including
    /// `t`: the value of "the last `size`" at each event. Like Kafka Streams' sliding windows,
    /// aligned to events, but only the windows that end at an event (Kafka Streams also has
    /// those that start just after one). Updates go to the bucket of the event's time; a
    /// window's value is its buckets folded with `merge(&mut acc, later)`, so it is exact
    /// whatever the order events arrive in (within the grace period).
    pub fn sliding(
        self,
        size: Duration,
        merge: impl Fn(&mut V, V) + Send + Sync + 'static,
    ) -> WindowedTableBuilder<K, V> {
        WindowedTableBuilder::new(self, Kind::Sliding(size), Some(Arc::new(merge)))
    }

    /// Activity sessions per key: an event closer than `gap` to a session joins it; one that
    /// bridges two sessions merges them with `merge(&mut earlier, later)` (Kafka Streams'
    /// session windows).
    pub fn session(
        self,
        gap: Duration,
        merge: impl Fn(&mut V, V) + Send + Sync + 'static,
    ) -> WindowedTableBuilder<K, V> {
        WindowedTableBuilder::new(self, Kind::Session(gap), Some(Arc::new(merge)))
    }
}

impl<K, V> WindowedTableBuilder<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn new(table: Table<K, V>, kind: Kind, merge: Option<MergeFn<V>>) -> Self {
        WindowedTableBuilder {
            table,
            kind,
            merge,
            grace: Duration::ZERO,
            expires: None,
            time: TimeSource::default(),
            on_close: None,
            late: LatePolicy::default(),
            emit_final: None,
            idle_after: None,
        }
    }

    /// Keeps a window open `grace` after its end for late events (0 by default).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Deletes windows `expires` after their start (a session: after its last event); at
    /// least size plus grace. By default a day ([`DEFAULT_EXPIRES`](super::DEFAULT_EXPIRES)),
    /// or size plus grace when longer.
    pub fn expires(mut self, expires: Duration) -> Self {
        self.expires = Some(expires);
        self
    }

    /// Files events under their record timestamp (the default; Faust's `relative_to_stream`).
    pub fn relative_to_stream(mut self) -> Self {
        self.time = TimeSource::EventTimestamp;
        self
    }

    /// Files events under a field of their value holding milliseconds since the epoch or an
    /// RFC 3339 date-time: a name or a dotted path (Faust's `relative_to_field(Model.field)`).
    /// An event without it is an [`Error::Decode`](crate::Error::Decode) naming the field. The
    /// field is found through serde (the value is serialized to JSON values): to save that,
    /// compute the time and use [`WindowedTable::at_time`].
    pub fn relative_to_field(mut self, field: impl Into<String>) -> Self {
        self.time = TimeSource::Field(field.into());
        self
    }

    /// Files events under the wall clock when processed (Faust's `relative_to_now`): stream
    /// time then follows the wall clock.
    pub fn relative_to_now(mut self) -> Self {
        self.time = TimeSource::WallClock;
        self
    }

    /// Calls `f(key, window, final value)` once per window and key when the window closes,
    /// in close order, inside the update (or [`advance`](WindowedTable::advance)) that closed
    /// it, on that task. Replaces an earlier `on_window_close*`.
    ///
    /// Across a crash it is at-least-once: the close reaches the table's changelog (and is
    /// committed) only after the callback returned, as a commit waits for the callbacks
    /// running on the partition; a crash before replays the events that closed the window,
    /// which call it again. A callback that panics fails the partition's next flush
    /// ([`Error::CloseCallbackFailed`](crate::Error::CloseCallbackFailed)): nothing past it
    /// is committed and the worker stops. Under `processing_guarantee("exactly_once")` the
    /// close and the callback's run belong to the same transaction.
    pub fn on_window_close(mut self, f: impl Fn(&K, Window, &V) + Send + Sync + 'static) -> Self {
        self.on_close = Some(OnClose::Sync(Arc::new(f)));
        self
    }

    /// Awaits `f(key, window, final value)` once per window and key when the window closes,
    /// in close order, for callbacks that do I/O such as sending to a topic. Replaces an
    /// earlier `on_window_close*`.
    ///
    /// The callback runs in [`WindowedAt::update_async`](super::WindowedAt::update_async) (and
    /// [`WindowedTable::advance_async`]), awaited on the task that calls it before that
    /// returns; the synchronous `update` and `advance` of such a table refuse to run (they
    /// could not await it). An error from the callback is returned by the update; the window
    /// stays closed.
    ///
    /// What a crash does to its effects:
    ///
    /// - called from an agent under `processing_guarantee("exactly_once")`, its sends go
    ///   through the worker's transactional producer, into the transaction that records the
    ///   close and commits the offset of the event that closed the window: an aborted
    ///   transaction aborts them, and the replayed event sends them again, so a
    ///   `read_committed` consumer sees each of them once;
    /// - otherwise (at-least-once processing, or a task outside an agent) its sends go through
    ///   the app's producer and are at-least-once: the close is committed only after the
    ///   callback returned, and the commit waits for every record the app's producer accepted
    ///   to be acknowledged, so a crash before replays the close and sends them again. An
    ///   error (or a panic) from the callback fails the partition's next flush
    ///   ([`Error::CloseCallbackFailed`](crate::Error::CloseCallbackFailed)): the close is
    ///   not committed and the worker stops.
    pub fn on_window_close_async<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(K, Window, V) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.on_close = Some(OnClose::Async(Arc::new(move |k, w, v| f(k, w, v).boxed())));
        self
    }

    /// What to do with events later than the grace period (by default [`LatePolicy::Log`]).
    pub fn on_late(mut self, policy: LatePolicy) -> Self {
        self.late = policy;
        self
    }

    /// Sends each window's final result to `topic` once it closes (Kafka Streams'
    /// `suppress(untilWindowCloses)`): the window's key as the record key, a [`WindowResult`]
    /// as its value, in close order per partition.
    ///
    /// The result is part of the closing: it is written with the table's changelog records at
    /// the next commit and acknowledged before them, so the event that closed the window is
    /// committed only after its result is in `topic`. After a crash before that commit, the
    /// replayed events close the window again and the result is sent again (at-least-once;
    /// never lost; exactly once under `processing_guarantee("exactly_once")`). Results appear
    /// at commits, so at most `broker_commit_interval` after the close. Needs a table in an
    /// app (not detached, not global): [`build`](Self::build) fails otherwise.
    pub fn emit_final_to(mut self, topic: &Topic<K, WindowResult<V>>) -> Self {
        self.emit_final = Some(topic.clone());
        self
    }

    /// Closes the windows of partitions that go idle (Faust's windows closed by the wall
    /// clock, for keys whose partition stopped receiving events): once an owned partition of
    /// the table got no update for `idle` (an event filed into it, late or not), its stream
    /// time follows the wall clock from its last event: stream time at that event plus the
    /// time elapsed since it was processed, never past the wall time now. What that makes due closes as an event would close it: the
    /// `on_window_close*` callback, [`emit_final_to`](Self::emit_final_to) results, expiry.
    /// Off by default: stream time moves only with events.
    ///
    /// - Wall time is the app's [`Clock`](crate::Clock) (virtual in tests); elapsed time is
    ///   measured on tokio's clock, which a virtual app clock follows (paused time in tests
    ///   makes it deterministic). The worker
    ///   checks each idle partition when something may be due (at least every `idle`), under
    ///   the partition's lock, as an update takes it: never at the same time as an agent's
    ///   update of that partition. Only the partitions this worker owns and that are up to
    ///   date are checked: not standby copies, not revoked ones.
    /// - Stream time is moved (and written) only when it closes or expires something; it never
    ///   goes back: a later event with an older timestamp leaves it where it is.
    /// - An event for a window that an idle advance closed is late: the table's
    ///   [`LatePolicy`] applies, as for an event beyond the grace period. Grace still counts
    ///   from stream time: a window closes when stream time, advanced by events or by idle
    ///   time, reaches its end plus grace.
    /// - A close callback runs on the worker's idle task, and the commit protocol holds as for
    ///   event-driven closes: the close is committed only after its callback returned; one
    ///   that fails or panics fails the partition's next flush
    ///   ([`Error::CloseCallbackFailed`](crate::Error::CloseCallbackFailed)), nothing past it
    ///   is committed and the worker stops.
    /// - After a restart (or a rebalance), stream time is recovered from the store as always;
    ///   the idle interval counts again from when the partition became active on this worker.
    ///
    /// [`build`](Self::build) refuses a zero interval and a global table (every worker holds
    /// every partition: each would close them). A detached table has no worker: nothing
    /// checks it.
    pub fn close_idle_after(mut self, idle: Duration) -> Self {
        self.idle_after = Some(idle);
        self
    }

    /// Checks the settings and returns the windowed table. Errors
    /// ([`Error::TableSetting`](crate::Error::TableSetting), naming the table, the setting and
    /// what to change): a zero size, gap or step; a hopping step larger than the size or more
    /// than 10,000 windows per event; `expires` shorter than size plus grace; a duration
    /// beyond `i64::MAX` milliseconds. `emit_final_to` on a detached or global table is
    /// [`Error::TableCannotSend`](crate::Error::TableCannotSend).
    pub fn build(self) -> Result<WindowedTable<K, V>> {
        let name = self.table.name().to_owned();
        let mut spec = WindowSpec::new(&name, self.kind)?.with_grace(&name, self.grace)?;
        if let Some(expires) = self.expires {
            spec = spec.with_expires(&name, expires)?;
        }
        let emit_final = match self.emit_final {
            None => None,
            Some(topic) => {
                self.table
                    .core()
                    .set_outbound(layout::EMIT_TAG, topic.name())?;
                Some(final_encoder(topic))
            }
        };
        if let Some(idle) = self.idle_after {
            let refuse = |reason: &str| {
                Err(crate::Error::TableSetting {
                    table: name.clone(),
                    setting: "close_idle_after",
                    reason: reason.to_owned(),
                })
            };
            if idle.is_zero() {
                return refuse(
                    "0: give how long a partition goes without events first (such as 1 s)",
                );
            }
            if self.table.spec().is_global() {
                return refuse("a global table is held by every worker, which would each close its windows: use a partitioned table");
            }
        }
        self.table
            .core()
            .set_record_check(record_check(&self.table));
        let windowed = WindowedTable::new(
            self.table,
            spec,
            self.time,
            self.merge,
            self.on_close,
            self.late,
            emit_final,
        );
        if let Some(idle) = self.idle_after {
            windowed.table.core().set_idle(windowed.idle_closer(idle));
        }
        let shared = windowed.shared.clone();
        windowed.table.core().set_late_events(Arc::new(move || {
            shared
                .late_events
                .load(std::sync::atomic::Ordering::Relaxed)
        }));
        Ok(windowed)
    }
}

/// Encodes a closed window's final result as a record of `topic`.
fn final_encoder<K, V>(topic: Topic<K, WindowResult<V>>) -> FinalEncoder<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    Arc::new(move |key, window, value| {
        let record = topic.record(
            Some(key),
            &WindowResult {
                window,
                value: value.clone(),
            },
        )?;
        Ok((record.key, record.value.unwrap_or_default()))
    })
}
