//! Moving a partition's stream time: closing the windows it passed (once each, in close
//! order) and deleting those that expired, with the clock written in the same partition.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use super::due::{DueTimes, PartitionWindows};
use super::kind::{Cut, Window};
use super::layout::{self, Clock};
use super::read::read_clock;
use super::update::{schedule, Outcome};
use super::windowed::{Closed, LatePolicy, OnClose, WindowedTable};
use crate::error::{Error, Result};
use crate::table::{outbound_record, Activity, EffectHold, PartitionTxn};
use crate::timestamp::Timestamp;

impl<K, V> WindowedTable<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Files an update at `time` for `key`, moves stream time and closes what it passed;
    /// calls a synchronous close callback. `Ok(None)`: the event was late and the policy
    /// dropped it.
    pub(super) fn update_at<Q>(
        &self,
        key: &Q,
        time: i64,
        f: &mut dyn FnMut(&mut V),
    ) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.refuse_async("update", "update_async")?;
        let filed = self.file_update(key, time, f)?;
        self.deliver(filed.closed);
        if let Some(hold) = filed.hold {
            hold.done();
        }
        self.outcome(filed.outcome, filed.partition, time, filed.stream_time)
    }

    /// After [`file_update`](Self::file_update): awaits the close callback for each window
    /// closed, then applies the late policy. Holds no reference to the update closure, so
    /// the future is `Send` whatever the closure is.
    pub(super) async fn finish_async(&self, filed: Filed<K, V>, time: i64) -> Result<Option<V>> {
        self.deliver_async(filed.closed).await?;
        if let Some(hold) = filed.hold {
            hold.done();
        }
        self.outcome(filed.outcome, filed.partition, time, filed.stream_time)
    }

    /// The update's effect in the locked partition of `key`: what it did and what it closed.
    pub(super) fn file_update<Q>(
        &self,
        key: &Q,
        time: i64,
        f: &mut dyn FnMut(&mut V),
    ) -> Result<Filed<K, V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let (bytes, partition, prefix) = self.encode_user_key(key)?;
        self.table.core().with_partition(partition, &bytes, |txn| {
            let (mut held, before) = self.take_windows(txn)?;
            let PartitionWindows { clock, due } = &mut *held;
            let outcome = self.file(txn, clock, due, &bytes, &prefix, time, f)?;
            if matches!(outcome, Outcome::Updated(_)) {
                clock.stream_time = clock.stream_time.max(time);
            }
            let (closed, clock) = self.settle(txn, held, before)?;
            // An event, late or not: an idle partition's clock counts from here.
            txn.set_activity(Activity {
                time: clock.stream_time,
                at: Instant::now(),
            });
            Ok(Filed {
                outcome,
                partition,
                stream_time: before.stream_time,
                hold: self.hold_for(txn, &closed),
                closed,
            })
        })
    }

    fn outcome(
        &self,
        outcome: Outcome<V>,
        partition: i32,
        time: i64,
        stream_time: i64,
    ) -> Result<Option<V>> {
        match outcome {
            Outcome::Updated(v) => Ok(Some(v)),
            Outcome::Late => self
                .reject_late(partition, time, stream_time)
                .map(|()| None),
        }
    }

    /// Moves the stream time of `partition` to `time` if that is later, closing and deleting
    /// what it passed, as an event at `time` would: for partitions that see no events (pass
    /// the wall clock, `Timestamp::now()`, to close windows by it; nothing does by default).
    /// Returns the number of windows closed. Fails unless this worker owns the partition and
    /// it is up to date, and with an `on_window_close_async` callback (use
    /// [`advance_async`](Self::advance_async)).
    pub fn advance(&self, partition: i32, time: Timestamp) -> Result<usize> {
        self.refuse_async("advance", "advance_async")?;
        let (closed, hold) = self.advance_clock(partition, time.as_millis())?;
        let count = closed.len();
        self.deliver(closed);
        if let Some(hold) = hold {
            hold.done();
        }
        Ok(count)
    }

    /// [`advance`](Self::advance), then awaits the close callback for each window closed.
    pub async fn advance_async(&self, partition: i32, time: Timestamp) -> Result<usize> {
        let (closed, hold) = self.advance_clock(partition, time.as_millis())?;
        let count = closed.len();
        self.deliver_async(closed).await?;
        if let Some(hold) = hold {
            hold.done();
        }
        Ok(count)
    }

    fn advance_clock(&self, partition: i32, time: i64) -> Result<ClosedHeld<K, V>> {
        self.check_active(partition)?;
        self.table
            .core()
            .with_partition(partition, b"(clock)", |txn| {
                let (mut held, before) = self.take_windows(txn)?;
                held.clock.stream_time = held.clock.stream_time.max(time);
                let (closed, _) = self.settle(txn, held, before)?;
                let hold = self.hold_for(txn, &closed);
                Ok((closed, hold))
            })
    }

    /// The partition's clock and due times for a change, and the clock as last written: kept
    /// by the table partition since the last change, or built from its entries when it has
    /// none (see `due.rs`). [`settle`](Self::settle) puts them back, in the same box (not
    /// boxed anew per event).
    pub(super) fn take_windows(
        &self,
        txn: &mut PartitionTxn<'_>,
    ) -> Result<(Box<PartitionWindows>, Clock)> {
        let kept = txn
            .take_derived()
            .and_then(|kept| kept.downcast::<PartitionWindows>().ok());
        let mut held = match kept {
            Some(kept) => kept,
            None => Box::new(self.build_windows(txn)?),
        };
        let before = held.clock;
        // No-op but after a build: nothing is due before the first due time.
        held.clock.next_due = held.clock.next_due.min(held.due.first());
        Ok((held, before))
    }

    /// The due times of a partition's windows, from its entries: a window's close while that
    /// is after `closed_through`, else its expiry (what the updates that made the entries
    /// scheduled). Due entries an earlier version stored are deleted (their changelog records
    /// with them): the windows say the same.
    fn build_windows(&self, txn: &mut PartitionTxn<'_>) -> Result<PartitionWindows> {
        let clock = read_clock(self.name(), txn)?;
        let partition = txn.partition();
        let mut due = DueTimes::default();
        let (from, to) = layout::window_range();
        for (key, value) in txn.range(&from, Some(&to))? {
            let (user_key, window, _) = self.parse_entry(partition, &key, &value)?;
            let close_at = self.spec.close_ms(window);
            let at = if close_at > clock.closed_through {
                close_at
            } else {
                self.spec.expire_ms(window)
            };
            due.insert(at, key.slice_ref(user_key), window.start);
        }
        let (from, to) = layout::stored_due_range();
        for (key, _) in txn.range(&from, Some(&to))? {
            txn.put(key, None);
        }
        Ok(PartitionWindows { clock, due })
    }

    /// Looks at what is due when stream time reached the next due time, then writes the clock
    /// if it changed (`before`: as last written), and keeps the clock and due times with the
    /// partition for its next change; returns what closed and the clock. Call it last in a
    /// change: a change that fails before it leaves them to be built again from the entries.
    pub(super) fn settle(
        &self,
        txn: &mut PartitionTxn<'_>,
        mut held: Box<PartitionWindows>,
        before: Clock,
    ) -> Result<(Closes<K, V>, Clock)> {
        let PartitionWindows { clock, due } = &mut *held;
        let closed = if clock.stream_time < clock.next_due {
            Closes::default()
        } else if let Some(size) = self.uncollected_fixed_size() {
            Closes {
                list: Vec::new(),
                uncollected: self.run_due_uncollected(txn, clock, due, size),
            }
        } else {
            Closes {
                list: self.run_due(txn, clock, due)?,
                uncollected: 0,
            }
        };
        if *clock != before {
            txn.put(Clock::key(), Some(clock.encode()));
        }
        let clock = *clock;
        txn.keep_derived(held);
        Ok((closed, clock))
    }

    /// The size of the table's windows when they are fixed (tumbling, hopping) and nothing
    /// takes the windows that close (no close callback, no final results): then what is due
    /// needs no read (see [`run_due_uncollected`](Self::run_due_uncollected)).
    fn uncollected_fixed_size(&self) -> Option<i64> {
        if self.on_close.is_some() || self.emit_final.is_some() {
            return None;
        }
        match self.spec.cut() {
            Cut::Tumbling { size } | Cut::Hopping { size, .. } => Some(size),
            Cut::Sliding { .. } | Cut::Session { .. } => None,
        }
    }

    /// [`run_due`](Self::run_due) for fixed windows of `size` whose closes nobody takes: the
    /// same closes (counted), deletes and schedules, without reading an entry. A fixed window
    /// is never merged away, and each is held once in the due times (scheduled when its entry
    /// is made, again by its close, built once from the entries), so every one due is stored
    /// and its range follows from its start. Returns the number of windows closed.
    fn run_due_uncollected(
        &self,
        txn: &mut PartitionTxn<'_>,
        clock: &mut Clock,
        due: &mut DueTimes,
        size: i64,
    ) -> usize {
        let now = clock.stream_time;
        let mut closed = 0;
        for (user_key, start) in due.take_through(now) {
            let window = Window::ms(start, start.saturating_add(size));
            let (close_at, expire_at) = (self.spec.close_ms(window), self.spec.expire_ms(window));
            if close_at > clock.closed_through && close_at <= now {
                closed += 1;
            }
            if expire_at <= now {
                // Its key was stored, so it is not longer than 4 GiB.
                if let Some(key) = layout::window_key_of(&user_key, start) {
                    txn.put(key, None);
                }
            } else {
                let next = if close_at > now { close_at } else { expire_at };
                schedule(clock, due, &user_key, start, next);
            }
        }
        clock.closed_through = now;
        clock.next_due = due.first();
        closed
    }

    /// Looks at the windows whose due times stream time reached: closes those with
    /// `closed_through < close time <= stream time` (in close order), deletes those whose
    /// expiry passed, and schedules the others again at their next close or expiry. Sets
    /// `closed_through` and the next due time.
    fn run_due(
        &self,
        txn: &mut PartitionTxn<'_>,
        clock: &mut Clock,
        due: &mut DueTimes,
    ) -> Result<Vec<Closed<K, V>>> {
        let now = clock.stream_time;
        let partition = txn.partition();
        // The due windows, once each (a session may have several due times).
        let mut seen = HashSet::new();
        let mut windows = Vec::new();
        for (user_key, start) in due.take_through(now) {
            if !seen.insert((user_key.clone(), start)) {
                continue;
            }
            let prefix = layout::key_prefix(&user_key).unwrap_or_default();
            let key = layout::window_key(&prefix, start);
            // Gone: merged into another session, or deleted by an earlier due time.
            if let Some(value) = txn.get(&key)? {
                let window = self.parse_entry(partition, &key, &value)?.1;
                windows.push((user_key, prefix, key, window, value));
            }
        }
        // Close first (sliding windows read buckets that may expire in this same pass).
        let mut closing: Vec<_> = windows
            .iter()
            .filter(|w| {
                let close_at = self.spec.close_ms(w.3);
                close_at > clock.closed_through && close_at <= now
            })
            .collect();
        closing.sort_by_key(|(user_key, _, _, window, _)| {
            (self.spec.close_ms(*window), user_key.clone(), window.start)
        });
        let mut closed = Vec::with_capacity(closing.len());
        for (user_key, prefix, key, original, value) in closing {
            let window = original;
            let (window, value) = match self.spec.cut() {
                Cut::Sliding { size } => {
                    let window = Window::ms(window.end.saturating_sub(size), window.end);
                    let buckets = self.stored_windows(txn, prefix, window.start, window.end)?;
                    match self.fold(buckets.into_iter().map(|(_, v)| v)) {
                        Some(v) => (window, v),
                        None => (window, self.decode_entry(partition, key, value)?.1 .1),
                    }
                }
                _ => (*window, self.decode_entry(partition, key, value)?.1 .1),
            };
            let key = self.table.decode_key_in(partition, user_key)?;
            if let Some(encode) = &self.emit_final {
                // The final result goes out with this close's changelog records (see
                // `TableCore::set_outbound`), keyed in close order.
                let (record_key, record_value) = encode(&key, window, &value)?;
                let framed = outbound_record(record_key.as_deref(), &record_value)
                    .ok_or_else(|| self.oversized_key(partition))?;
                let entry =
                    layout::emit_key(self.spec.close_ms(*original), user_key, original.start)
                        .ok_or_else(|| self.oversized_key(partition))?;
                txn.put(entry, Some(framed));
            }
            closed.push(Closed {
                partition,
                key,
                window,
                value,
            });
        }
        for (user_key, _, key, window, _) in &windows {
            let (close_at, expire_at) = (self.spec.close_ms(*window), self.spec.expire_ms(*window));
            if expire_at <= now {
                txn.put(key.clone(), None);
            } else {
                let next = if close_at > now { close_at } else { expire_at };
                schedule(clock, due, user_key, window.start, next);
            }
        }
        clock.closed_through = now;
        clock.next_due = due.first();
        Ok(closed)
    }
}

/// The windows a change closed: those taken (for the close callback and final results), and
/// the number of those nobody takes (not read at all).
pub(super) struct Closes<K, V> {
    list: Vec<Closed<K, V>>,
    uncollected: usize,
}

impl<K, V> Default for Closes<K, V> {
    fn default() -> Self {
        Closes {
            list: Vec::new(),
            uncollected: 0,
        }
    }
}

impl<K, V> Closes<K, V> {
    /// How many windows closed.
    pub fn len(&self) -> usize {
        self.list.len() + self.uncollected
    }

    /// Whether none did.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What filing one update did, in its partition.
pub(super) struct Filed<K, V> {
    outcome: Outcome<V>,
    partition: i32,
    /// The partition's stream time before the update.
    stream_time: i64,
    closed: Closes<K, V>,
    /// Holds the partition's flushes until the close callback ran for `closed`.
    hold: Option<EffectHold>,
}

/// Windows closed by moving a clock, with the hold on the partition's flushes until their
/// callback ran.
type ClosedHeld<K, V> = (Closes<K, V>, Option<EffectHold>);

/// With [`LatePolicy::Log`], one late event in this many is logged as a warning.
const LOG_LATE_EVERY: u64 = 1_000;

/// Late events and delivering closed windows.
impl<K, V> WindowedTable<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Counts a late event and applies the policy.
    pub(super) fn reject_late(&self, partition: i32, time: i64, stream_time: i64) -> Result<()> {
        let late_events = self.shared.late_events.fetch_add(1, Ordering::Relaxed) + 1;
        let grace_ms = self.spec.grace_ms();
        match self.late {
            // The first, then one in LOG_LATE_EVERY: a burst of late events is not a log flood.
            LatePolicy::Log if late_events == 1 || late_events.is_multiple_of(LOG_LATE_EVERY) => {
                tracing::warn!(
                    table = self.name(),
                    partition,
                    time,
                    stream_time,
                    grace_ms,
                    late_events,
                    "event later than the grace period dropped: its windows are closed (raise the grace period to accept such events)"
                );
                Ok(())
            }
            LatePolicy::Drop | LatePolicy::Log => {
                tracing::debug!(
                    table = self.name(),
                    partition,
                    time,
                    stream_time,
                    "late event dropped"
                );
                Ok(())
            }
            LatePolicy::Fail => Err(Error::LateEvent {
                table: self.name().to_owned(),
                partition,
                time: Timestamp::from_millis(time),
                stream_time: Timestamp::from_millis(stream_time),
                grace: self.spec.grace(),
            }),
        }
    }

    /// Hands closed windows to a synchronous callback (outside any lock).
    pub(super) fn deliver(&self, closed: Closes<K, V>) {
        if let Some(OnClose::Sync(on_close)) = &self.on_close {
            for c in &closed.list {
                on_close(&c.key, c.window, &c.value);
            }
        }
    }

    /// Hands closed windows to the callback, awaiting an asynchronous one for each in turn.
    pub(super) async fn deliver_async(&self, closed: Closes<K, V>) -> Result<()> {
        match &self.on_close {
            Some(OnClose::Async(on_close)) => {
                for c in closed.list {
                    on_close(c.key, c.window, c.value).await?;
                }
                Ok(())
            }
            _ => {
                self.deliver(closed);
                Ok(())
            }
        }
    }

    /// A hold on the partition's flushes, taken under its lock with the closes it records,
    /// when a callback is to run for them: their closes are committed only after it.
    pub(super) fn hold_for(
        &self,
        txn: &PartitionTxn<'_>,
        closed: &Closes<K, V>,
    ) -> Option<EffectHold> {
        (self.on_close.is_some() && !closed.is_empty()).then(|| txn.hold_effects())
    }

    /// Refuses `what` when the close callback must be awaited (`instead` can).
    fn refuse_async(&self, call: &'static str, instead: &'static str) -> Result<()> {
        match &self.on_close {
            Some(OnClose::Async(_)) => Err(Error::NeedsAwait {
                table: self.name().to_owned(),
                call,
                instead,
            }),
            _ => Ok(()),
        }
    }

    fn oversized_key(&self, partition: i32) -> Error {
        Error::TableEncode {
            table: self.name().to_owned(),
            part: "key",
            reason: format!("a key of partition {partition} is longer than 4 GiB"),
        }
    }
}
