//! `WindowedTable<K, V>`: the handle, what it holds, and the types its settings name.

use std::borrow::Borrow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::kind::Window;
use super::spec::WindowSpec;
use super::time::TimeSource;
use crate::error::{Error, Result};
use crate::table::{PartitionStatus, Table, TableSpec};

pub(super) type MergeFn<V> = Arc<dyn Fn(&mut V, V) + Send + Sync>;

/// A synchronous close callback: key, window, final value.
pub(super) type CloseFn<K, V> = Arc<dyn Fn(&K, Window, &V) + Send + Sync>;
/// An asynchronous close callback, given owned copies (its future outlives the call).
pub(super) type AsyncCloseFn<K, V> =
    Arc<dyn Fn(K, Window, V) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// What runs when a window closes.
pub(super) enum OnClose<K, V> {
    /// Called in the update (or `advance`) that closed the window.
    Sync(CloseFn<K, V>),
    /// Awaited by `update_async` (or `advance_async`), in close order.
    Async(AsyncCloseFn<K, V>),
}

impl<K, V> Clone for OnClose<K, V> {
    fn clone(&self) -> Self {
        match self {
            OnClose::Sync(f) => OnClose::Sync(f.clone()),
            OnClose::Async(f) => OnClose::Async(f.clone()),
        }
    }
}

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

/// A window that closed: its key, range and final value, for the close callback.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Closed<K, V> {
    /// The table partition (the source partition of the same number).
    pub partition: i32,
    /// The window's key.
    pub key: K,
    /// The window's range.
    pub window: Window,
    /// The window's final value.
    pub value: V,
}

/// A closed window's final result, as
/// [`WindowedTableBuilder::emit_final_to`](super::WindowedTableBuilder::emit_final_to) sends it
/// (the record's key is the window's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowResult<V> {
    /// The window's range.
    pub window: Window,
    /// The window's final value.
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
/// or [`session`](Table::session), which return a
/// [`WindowedTableBuilder`](super::WindowedTableBuilder) for its settings; its
/// [`build`](super::WindowedTableBuilder::build) checks them and returns this handle, whose
/// settings no longer change. Cheap to clone; every clone is the same table.
///
/// Entries are (key, window start) in the table's store and changelog; a key's windows live in
/// the partition of the key (as in the plain table and the source topic). Time comes from the
/// event (its record timestamp by default); each partition's *stream time* is the largest
/// event time it has seen, kept in the table itself so that restarts and recovery resume it.
/// A window closes when stream time reaches its end plus the grace period: the
/// `on_window_close` callback fires once, events for it are late from then on
/// ([`LatePolicy`]), and it is deleted, with a changelog tombstone, once stream time reaches
/// its start plus `expires`. Nothing follows the wall clock unless asked (`relative_to_now`,
/// [`advance`](Self::advance)).
///
/// | Faust | here |
/// |---|---|
/// | `app.Table("totals", default=int).tumbling(300, expires=3600)` | `app.table::<String, i64>("totals")?.with_default(i64::default).tumbling(secs(300)).expires(secs(3600)).build()?` |
/// | `.hopping(300, 60, expires=3600)` | `.hopping(secs(300), secs(60)).expires(secs(3600)).build()?` |
/// | (Kafka Streams' sliding and session windows) | `.sliding(size, merge)`, `.session(gap, merge)` |
/// | `totals[k] += amount` in an agent | `totals.at(&event)?.update(&k, \|t\| *t += amount)?` |
/// | `totals[k].current()` (the window of the event's timestamp) | `totals.at(&event)?.current(&k)?` (`None`: no value yet) |
/// | `totals[k].value()`, `totals[k].delta(30)` | `.value(&k)?`, `.delta(&k, secs(30))?` on the same view |
/// | `totals[k].now()` in an agent (the window of the partition's latest event time) | `totals.at(&event)?.now(&k)?` |
/// | `totals[k].now()` outside an agent (the wall clock's window) | `totals.now(&k)?` |
/// | `.relative_to_stream()`, `.relative_to_now()`, `.relative_to_field(Order.at)` | the same names on the builder; the field by name: `.relative_to_field("at")` |
/// | `on_window_close=cb` (fired by the wall clock) | `.on_window_close(\|k, window, v\| ..)` or `.on_window_close_async(..)`, fired by stream time |
/// | `totals.keys()`, `totals.items()` | [`keys`](Self::keys), [`items`](Self::items) (key, window, value) |
/// | every window of a key | `totals.windows(&k, Timestamp::MIN, Timestamp::MAX)?` |
/// | (Kafka Streams' `suppress(untilWindowCloses)`) | `.emit_final_to(&topic)` on the builder |
///
/// The update closure, the default and the merge function run with the key's partition
/// locked: they must not use the table themselves (a synchronous `on_window_close` may). An
/// update is all or nothing: if encoding a window's value fails, no window, clock or close of
/// it is written.
///
/// Window a table before the app starts (recovery reads its changelog with the windowed
/// layout); `agent_builder(..).table(&windowed)` declares that an agent updates it.
///
/// In an app (the examples `tumbling` and `hopping` run this):
///
/// ```no_run
/// # use std::time::Duration;
/// # use futures::StreamExt;
/// # fn main() -> streams::Result<()> {
/// let app = streams::App::builder("shop").build()?;
/// let purchases = app.topic::<String, i64>("purchases"); // keyed by currency
/// let totals = app
///     .table::<String, i64>("currency_total")?
///     .with_default(i64::default)
///     .tumbling(Duration::from_secs(300))
///     .expires(Duration::from_secs(3600))
///     .build()?;
/// app.agent_builder("totals", &purchases).table(&totals).run(move |mut purchases| {
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
/// use streams::{Event, Table, TableSpec, Timestamp, Window};
///
/// # fn main() -> streams::Result<()> {
/// let mins = |m: u64| Duration::from_secs(60 * m);
/// let minute = |m: i64| Timestamp::from_millis(m * 60_000);
/// // The talk's currency totals: 5-minute windows kept an hour.
/// let totals = Table::<String, i64>::detached(TableSpec::new("shop", "currency_total"))?
///     .with_default(i64::default)
///     .tumbling(mins(5))
///     .expires(mins(60))
///     .on_window_close(|currency, window, total| println!("{currency}: {total} in {window}"))
///     .build()?;
///
/// // Events as an agent gets them (record timestamps in milliseconds).
/// for (at, currency, amount) in [(1, "EUR", 10), (2, "EUR", 5), (3, "USD", 7), (6, "EUR", 1)] {
///     let event = Event::new("purchases", 0, at, minute(at).as_millis(), Some(currency.to_string()), amount);
///     // Faust: currency_total[event.currency] += event.amount
///     let view = totals.at(&event)?;
///     view.update(currency, |total| *total += amount)?;
///     if at == 2 {
///         // Faust: currency_total[c].current()
///         assert_eq!(view.current("EUR")?, Some(15));
///     }
/// }
/// // Minute 6 moved stream time past the first window of EUR's partition:
/// let at_6 = totals.at_time(minute(6));
/// assert_eq!(at_6.current("EUR")?, Some(1));
/// assert_eq!(at_6.delta("EUR", mins(5))?, Some(15));
/// assert_eq!(totals.windows("EUR", Timestamp::MIN, Timestamp::MAX)?, vec![
///     (Window::new(minute(0), minute(5)), 15),
///     (Window::new(minute(5), minute(10)), 1),
/// ]);
/// assert_eq!(totals.stream_time(totals.partition_of("EUR")?)?, Some(minute(6)));
/// # Ok(()) }
/// ```
pub struct WindowedTable<K, V> {
    pub(super) table: Table<K, V>,
    pub(super) spec: WindowSpec,
    pub(super) time: TimeSource,
    pub(super) merge: Option<MergeFn<V>>,
    pub(super) on_close: Option<OnClose<K, V>>,
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

impl<K, V> WindowedTable<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The handle over `table` with checked settings (see the builder).
    pub(super) fn new(
        table: Table<K, V>,
        spec: WindowSpec,
        time: TimeSource,
        merge: Option<MergeFn<V>>,
        on_close: Option<OnClose<K, V>>,
        late: LatePolicy,
        emit_final: Option<FinalEncoder<K, V>>,
    ) -> Self {
        WindowedTable {
            table,
            spec,
            time,
            merge,
            on_close,
            late,
            emit_final,
            shared: Arc::new(Shared {
                late_events: AtomicU64::new(0),
            }),
        }
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

    /// Events rejected as later than the grace period, on this worker since the handle was made.
    pub fn late_events(&self) -> u64 {
        self.shared.late_events.load(Ordering::Relaxed)
    }

    /// Entries held in the partitions this worker owns (windows, and a clock per partition that
    /// has seen an event), counting writes not yet in the store: the state's size.
    pub fn stored_entries(&self) -> Result<u64> {
        self.table.len()
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
