//! `WindowedTable<K, V>`: the handle, how it is declared, and its settings.

use std::borrow::Borrow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::check::record_check;
use super::kind::Window;
use super::layout;
use super::read::read_clock;
use super::spec::{Kind, WindowSpec};
use super::time::{wall_clock_ms, TimeSource};
use super::view::WindowedAt;
use crate::error::{Error, Result};
use crate::record::Event;
use crate::table::{PartitionStatus, Table, TableSpec};
use crate::topic::Topic;

pub(super) type MergeFn<V> = Arc<dyn Fn(&mut V, V) + Send + Sync>;
pub(super) type CloseFn<K, V> = Arc<dyn Fn(&K, Window, &V) + Send + Sync>;

/// What happens to an event that arrives after all its windows closed (beyond the grace
/// period). It is counted in [`WindowedTable::late_events`] whatever the policy. An event with
/// some windows still open (hopping) updates those and is not late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatePolicy {
    /// Dropped quietly (a debug log line).
    Drop,
    /// Dropped with a warning naming the table, partition and times (the default): for the
    /// first late event, then one in 1,000 (with the count), the others at debug level.
    #[default]
    Log,
    /// [`Error::LateEvent`] from the update, for the agent to handle: hand the event to
    /// [`AgentStream::reject`](crate::AgentStream::reject) to apply the topic's decode-error
    /// policy (skip, dead-letter topic, stop).
    Fail,
}

/// A window that closed: its key, range and final value, for
/// [`WindowedTable::on_window_close`].
#[derive(Debug, Clone, PartialEq)]
pub struct Closed<K, V> {
    /// The table partition (the source partition of the same number).
    pub partition: i32,
    pub key: K,
    pub window: Window,
    pub value: V,
}

/// A closed window's final result, as [`WindowedTable::emit_final_to`] sends it (the record's
/// key is the window's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowResult<V> {
    pub window: Window,
    pub value: V,
}

/// State shared by every clone of a handle.
pub(super) struct Shared {
    pub(super) late_events: AtomicU64,
}

/// Encodes a closed window's final result as a record (key, value) of the emit-final topic.
pub(super) type FinalEncoder<K, V> =
    Arc<dyn Fn(&K, Window, &V) -> Result<(Option<Bytes>, Bytes)> + Send + Sync>;

/// A table of values per key and time window (Faust's `table.tumbling(..)`), made from a
/// [`Table`] with [`Table::tumbling`], [`hopping`](Table::hopping), [`sliding`](Table::sliding)
/// or [`session`](Table::session). Cheap to clone; every clone is the same table.
///
/// Entries are (key, window start) in the table's store and changelog; a key's windows live in
/// the partition of the key (as in the plain table and the source topic). Time comes from the
/// event (its record timestamp by default); each partition's *stream time* is the largest
/// event time it has seen, kept in the table itself so that restarts and recovery resume it.
/// A window closes when stream time reaches its end plus the [`grace`](Self::grace) period:
/// [`on_window_close`](Self::on_window_close) fires once, events for it are late from then
/// on ([`LatePolicy`]), and it is deleted, with a changelog tombstone, once stream time
/// reaches its start plus [`expires`](Self::expires). Nothing follows the wall clock unless
/// asked ([`relative_to_now`](Self::relative_to_now), [`advance`](Self::advance)).
///
/// | Faust | here |
/// |---|---|
/// | `app.Table("totals", default=int).tumbling(300, expires=3600)` | `app.table::<String, i64>("totals")?.with_default(i64::default).tumbling(secs(300))?.expires(secs(3600))?` |
/// | `.hopping(300, 60, expires=3600)` | `.hopping(secs(300), secs(60))?.expires(secs(3600))?` |
/// | (Kafka Streams' sliding and session windows) | `.sliding(size, merge)?`, `.session(gap, merge)?` |
/// | `totals[k] += amount` in an agent | `totals.at(&event)?.update(&k, \|t\| *t += amount)?` |
/// | `totals[k].current()` | `totals.at(&event)?.current(&k)?` (`None`: no value yet) |
/// | `totals[k].value()`, `totals[k].delta(30)` | `.value(&k)?`, `.delta(&k, secs(30))?` on the same view |
/// | `totals[k].now()` | `totals.now(&k)?` |
/// | `.relative_to_stream()`, `.relative_to_now()`, `.relative_to_field(Order.at)` | the same names; the field by name: `.relative_to_field("at")` |
/// | `on_window_close=cb` (fired by the wall clock) | `.on_window_close(\|k, window, v\| ..)`, fired by stream time |
/// | every window of a key | `totals.windows(&k, from_ms, to_ms)?` |
/// | (Kafka Streams' `suppress(untilWindowCloses)`) | [`.emit_final_to(&topic)`](Self::emit_final_to) |
///
/// The update closure, the default and the merge function run with the key's partition
/// locked: they must not use the table themselves (`on_window_close` may). An update is all or
/// nothing: if encoding a window's value fails, no window, clock or close of it is written.
///
/// The builder methods (`grace`, `on_window_close`, `emit_final_to`...) set up this handle: call
/// them before cloning it. Window a table before the app starts (recovery reads its changelog
/// with the windowed layout), after declaring the agents that update it
/// (`agent_builder(..).table(&table)` takes the plain table).
///
/// In an app (the examples `tumbling` and `hopping` run this):
///
/// ```no_run
/// # use std::time::Duration;
/// # use futures::StreamExt;
/// # fn main() -> streams::Result<()> {
/// let app = streams::App::builder("shop").build()?;
/// let purchases = app.topic::<String, i64>("purchases"); // keyed by currency
/// let table = app.table::<String, i64>("currency_total")?.with_default(i64::default);
/// let agent = app.agent_builder("totals", &purchases).table(&table);
/// let totals = table.tumbling(Duration::from_secs(300))?.expires(Duration::from_secs(3600))?;
/// agent.run(move |mut purchases| {
///     let totals = totals.clone();
///     async move {
///         while let Some(p) = purchases.next().await {
///             let currency = p.key.clone().unwrap_or_default();
///             totals.at(&p)?.update(&currency, |t| *t += p.value)?;
///         }
///         Ok::<(), streams::Error>(())
///     }
/// });
/// # Ok(()) }
/// ```
///
/// ```
/// use std::time::Duration;
/// use streams::{Event, Table, TableSpec, Window};
///
/// # fn main() -> streams::Result<()> {
/// let mins = |m: u64| Duration::from_secs(60 * m);
/// // The talk's currency totals: 5-minute windows kept an hour.
/// let totals = Table::<String, i64>::detached(TableSpec::new("shop", "currency_total"))?
///     .with_default(i64::default)
///     .tumbling(mins(5))?
///     .expires(mins(60))?
///     .on_window_close(|currency, window, total| {
///         println!("{currency}: {total} in {}..{}", window.start, window.end)
///     });
///
/// // Events as an agent gets them (record timestamps in milliseconds).
/// let minute = 60_000;
/// for (at, currency, amount) in [(1, "EUR", 10), (2, "EUR", 5), (3, "USD", 7), (6, "EUR", 1)] {
///     let event = Event::new("purchases", 0, at, at * minute, Some(currency.to_string()), amount);
///     // Faust: currency_total[event.currency] += event.amount
///     let view = totals.at(&event)?;
///     view.update(currency, |total| *total += amount)?;
///     if at == 2 {
///         // Faust: currency_total[c].current()
///         assert_eq!(view.current("EUR")?, Some(15));
///     }
/// }
/// // Minute 6 moved stream time past the first window of EUR's partition:
/// let at_6 = totals.at_time(6 * minute);
/// assert_eq!(at_6.current("EUR")?, Some(1));
/// assert_eq!(at_6.delta("EUR", mins(5))?, Some(15));
/// assert_eq!(totals.windows("EUR", 0, i64::MAX)?, vec![
///     (Window::new(0, 5 * minute), 15),
///     (Window::new(5 * minute, 10 * minute), 1),
/// ]);
/// # Ok(()) }
/// ```
pub struct WindowedTable<K, V> {
    pub(super) table: Table<K, V>,
    pub(super) spec: WindowSpec,
    time: TimeSource,
    pub(super) merge: Option<MergeFn<V>>,
    pub(super) on_close: Option<CloseFn<K, V>>,
    pub(super) late: LatePolicy,
    pub(super) emit_final: Option<FinalEncoder<K, V>>,
    pub(super) shared: Arc<Shared>,
}

impl<K, V> Clone for WindowedTable<K, V> {
    fn clone(&self) -> Self {
        WindowedTable {
            table: self.table.clone(),
            spec: self.spec,
            time: self.time.clone(),
            merge: self.merge.clone(),
            on_close: self.on_close.clone(),
            late: self.late,
            emit_final: self.emit_final.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<K, V> fmt::Debug for WindowedTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedTable")
            .field("table", &self.table)
            .field("spec", &self.spec)
            .field("time", &self.time)
            .field("late", &self.late)
            .field("emit_final", &self.emit_final.is_some())
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
    /// other clones cannot read. Declare it before the app starts (recovery checks changelog
    /// records against the windowed layout).
    pub fn tumbling(self, size: Duration) -> Result<WindowedTable<K, V>> {
        WindowedTable::new(self, Kind::Tumbling(size), None)
    }

    /// Windows of `size` starting every `step` (Faust's `table.hopping(size, step)`): an event
    /// counts in `size / step` windows (when the step divides the size; otherwise that,
    /// rounded up or down by where it falls).
    pub fn hopping(self, size: Duration, step: Duration) -> Result<WindowedTable<K, V>> {
        WindowedTable::new(self, Kind::Hopping(size, step), None)
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
    ) -> Result<WindowedTable<K, V>> {
        WindowedTable::new(self, Kind::Sliding(size), Some(Arc::new(merge)))
    }

    /// Activity sessions per key: an event closer than `gap` to a session joins it; one that
    /// bridges two sessions merges them with `merge(&mut earlier, later)` (Kafka Streams'
    /// session windows).
    pub fn session(
        self,
        gap: Duration,
        merge: impl Fn(&mut V, V) + Send + Sync + 'static,
    ) -> Result<WindowedTable<K, V>> {
        WindowedTable::new(self, Kind::Session(gap), Some(Arc::new(merge)))
    }
}

impl<K, V> WindowedTable<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn new(table: Table<K, V>, kind: Kind, merge: Option<MergeFn<V>>) -> Result<Self> {
        let spec = WindowSpec::new(table.name(), kind)?;
        table.core().set_record_check(record_check(&table));
        Ok(WindowedTable {
            table,
            spec,
            time: TimeSource::default(),
            merge,
            on_close: None,
            late: LatePolicy::default(),
            emit_final: None,
            shared: Arc::new(Shared {
                late_events: AtomicU64::new(0),
            }),
        })
    }

    /// Keeps a window open `grace` after its end for late events (0 by default).
    pub fn grace(mut self, grace: Duration) -> Result<Self> {
        self.spec = self.spec.with_grace(self.table.name(), grace)?;
        Ok(self)
    }

    /// Deletes windows `expires` after their start (a session: after its last event); at
    /// least size plus grace. By default a day, or size plus grace when longer.
    pub fn expires(mut self, expires: Duration) -> Result<Self> {
        self.spec = self.spec.with_expires(self.table.name(), expires)?;
        Ok(self)
    }

    /// Files events under their record timestamp (the default; Faust's `relative_to_stream`).
    pub fn relative_to_stream(mut self) -> Self {
        self.time = TimeSource::EventTimestamp;
        self
    }

    /// Files events under a field of their value holding milliseconds since the epoch: a name
    /// or a dotted path (Faust's `relative_to_field(Model.field)`). An event without it is an
    /// [`Error::Decode`] naming the field. The field is found through serde (the value is
    /// serialized to JSON values): to save that, compute the time and use
    /// [`at_time`](Self::at_time).
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
    /// in close order, on the task whose update (or [`advance`](Self::advance)) closed it.
    pub fn on_window_close(mut self, f: impl Fn(&K, Window, &V) + Send + Sync + 'static) -> Self {
        self.on_close = Some(Arc::new(f));
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
    /// never lost). Results appear at commits, so at most `broker_commit_interval` after the
    /// close. Needs a table in an app (not detached, not global).
    pub fn emit_final_to(mut self, topic: &Topic<K, WindowResult<V>>) -> Result<Self> {
        self.table
            .core()
            .set_outbound(layout::EMIT_TAG, topic.name())?;
        let topic = topic.clone();
        self.emit_final = Some(Arc::new(move |key, window, value| {
            let record = topic.record(
                Some(key),
                &WindowResult {
                    window,
                    value: value.clone(),
                },
            )?;
            Ok((record.key, record.value.unwrap_or_default()))
        }));
        Ok(self)
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        self.table.name()
    }

    /// The table's declaration (for `AgentBuilder::table`-style checks of co-partitioning).
    pub fn table_spec(&self) -> &TableSpec {
        self.table.spec()
    }

    /// The windows' declaration.
    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    /// Where event times come from.
    pub fn time_source(&self) -> &TimeSource {
        &self.time
    }

    /// The partition of `key` (the user key's bytes only, as the source topic places it).
    pub fn partition_of<Q>(&self, key: &Q) -> Result<i32>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.table.partition_of(key)
    }

    /// The windowed table at the time of `event` (by the table's time source), to update and
    /// read: `windowed.at(&event)?.update(&key, |v| *v += 1)?`.
    pub fn at<EK, EV: Serialize>(&self, event: &Event<EK, EV>) -> Result<WindowedAt<'_, K, V>> {
        let time = self.time.time_of(event)?;
        Ok(WindowedAt::new(self, time, event.timestamp))
    }

    /// The windowed table at time `time` (milliseconds since the epoch), given explicitly.
    pub fn at_time(&self, time: i64) -> WindowedAt<'_, K, V> {
        WindowedAt::new(self, time, time)
    }

    /// The value of `key` in the window of the wall clock now (Faust's `.now()`).
    pub fn now<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.value_at(key, wall_clock_ms())
    }

    /// Events rejected as later than the grace period, on this worker since the handle was made.
    pub fn late_events(&self) -> u64 {
        self.shared.late_events.load(Ordering::Relaxed)
    }

    /// Entries held in the partitions this worker owns (windows, a due entry per window, and a
    /// clock per partition that has seen an event), counting writes not yet in the store: the
    /// state's size.
    pub fn stored_entries(&self) -> Result<u64> {
        self.table.len()
    }

    /// The stream time of `partition` (the largest event time seen), `None` before any event.
    pub fn stream_time(&self, partition: i32) -> Result<Option<i64>> {
        self.check_active(partition)?;
        let clock = self
            .table
            .core()
            .with_partition(partition, b"(clock)", |txn| read_clock(self.name(), txn))?;
        Ok((clock.stream_time != i64::MIN).then_some(clock.stream_time))
    }

    /// Fails unless this worker owns `partition` and it is up to date.
    pub(super) fn check_active(&self, partition: i32) -> Result<()> {
        match self.table.core().status(partition) {
            Some(PartitionStatus::Active) => Ok(()),
            status => Err(Error::PartitionNotActive {
                table: self.name().to_owned(),
                partition,
                state: match status {
                    Some(PartitionStatus::Recovering) => "still recovering",
                    Some(_) => "a standby copy",
                    None => "not held",
                },
                hint: "only the partitions it owns have a stream time here",
            }),
        }
    }
}
