//! Moving a partition's stream time: closing the windows it passed (once each, in close
//! order) and deleting those that expired, with the clock written in the same partition.

use std::borrow::Borrow;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::kind::{Window, WindowKind};
use super::layout::{self, Clock};
use super::update::Outcome;
use super::windowed::{read_clock, Closed, WindowedTable};
use crate::error::Result;
use crate::table::PartitionTxn;

impl<K, V> WindowedTable<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Files an update at `time` for `key`, moves stream time and closes what it passed.
    /// `Ok(None)`: the event was late and the policy dropped it.
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
        let (bytes, partition, prefix) = self.encode_user_key(key)?;
        let (outcome, stream_time, closed) =
            self.table.core().with_partition(partition, &bytes, |txn| {
                let mut clock = read_clock(self.name(), txn)?;
                let before = clock;
                let outcome = self.file(txn, &mut clock, &prefix, time, f)?;
                if matches!(outcome, Outcome::Updated(_)) {
                    clock.stream_time = clock.stream_time.max(time);
                }
                let closed = self.settle(txn, &mut clock, before)?;
                Ok((outcome, before.stream_time, closed))
            })?;
        self.deliver(closed);
        match outcome {
            Outcome::Updated(v) => Ok(Some(v)),
            Outcome::Late => self
                .reject_late(partition, time, stream_time)
                .map(|()| None),
        }
    }

    /// Moves the stream time of `partition` to `time` if that is later, closing and deleting
    /// what it passed, as an event at `time` would. For partitions that see no events (the
    /// runtime may pass the wall clock when the user asks for it; nothing does by default).
    /// Returns the number of windows closed.
    pub fn advance(&self, partition: i32, time: i64) -> Result<usize> {
        let closed = self
            .table
            .core()
            .with_partition(partition, b"(clock)", |txn| {
                let mut clock = read_clock(self.name(), txn)?;
                let before = clock;
                clock.stream_time = clock.stream_time.max(time);
                self.settle(txn, &mut clock, before)
            })?;
        let count = closed.len();
        self.deliver(closed);
        Ok(count)
    }

    /// Scans when stream time reached the next due time, then writes the clock if it changed.
    fn settle(
        &self,
        txn: &mut PartitionTxn<'_>,
        clock: &mut Clock,
        before: Clock,
    ) -> Result<Vec<Closed<K, V>>> {
        let closed = if clock.stream_time >= clock.next_due {
            self.scan(txn, clock)?
        } else {
            Vec::new()
        };
        if *clock != before {
            txn.put(Clock::key(), Some(clock.encode()))?;
        }
        Ok(closed)
    }

    /// Closes every window with `closed_through < close time <= stream time` and deletes every
    /// entry whose expiry time passed; sets `closed_through` and the next due time.
    fn scan(&self, txn: &mut PartitionTxn<'_>, clock: &mut Clock) -> Result<Vec<Closed<K, V>>> {
        let now = clock.stream_time;
        let (lo, hi) = layout::all_windows();
        let entries = txn.range(lo, Some(hi))?;
        let partition = txn.partition();
        // Values are decoded only for the windows that close.
        let mut parsed = Vec::with_capacity(entries.len());
        let mut closing: Vec<(i64, usize)> = Vec::new();
        let mut expired = Vec::new();
        let mut next_due = i64::MAX;
        for (i, (k, v)) in entries.iter().enumerate() {
            let (user_key, window, bytes) = self.parse_entry(partition, k, v)?;
            let close_at = self.spec.close_at(window);
            let expire_at = self.spec.expire_at(window);
            if close_at > clock.closed_through && close_at <= now {
                closing.push((close_at, i));
            }
            if expire_at <= now {
                expired.push(k.clone());
            } else {
                next_due = next_due.min(if close_at > now { close_at } else { expire_at });
            }
            parsed.push((user_key, window, bytes));
        }
        // Close order: by close time, then key bytes, then start (entries are in key order).
        closing.sort_unstable();
        let decode = |i: usize| self.table.decode_value_in(partition, parsed[i].2);
        let mut closed = Vec::with_capacity(closing.len());
        for (_, i) in closing {
            let (user_key, window, _) = parsed[i];
            let (window, value) = match self.spec.kind() {
                WindowKind::Sliding { size } => {
                    let window = Window::new(window.end.saturating_sub(size), window.end);
                    // The key's buckets in the window: this entry and those just before it.
                    let first = (0..=i)
                        .rev()
                        .take_while(|&j| {
                            parsed[j].0 == user_key && parsed[j].1.start >= window.start
                        })
                        .last()
                        .unwrap_or(i);
                    let values = (first..=i).map(decode).collect::<Result<Vec<V>>>()?;
                    let folded = self.fold(values);
                    (window, folded.map_or_else(|| decode(i), Ok)?)
                }
                _ => (window, decode(i)?),
            };
            closed.push(Closed {
                partition,
                key: self.table.decode_key_in(partition, user_key)?,
                window,
                value,
            });
        }
        for key in expired {
            txn.put(key, None)?;
        }
        clock.closed_through = now;
        clock.next_due = next_due;
        Ok(closed)
    }
}
