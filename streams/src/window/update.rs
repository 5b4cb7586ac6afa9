//! Filing one event's update into its windows, in the locked partition of its key.

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::due::DueTimes;
use super::kind::{Cut, Window};
use super::layout::{self, Clock};
use super::windowed::WindowedTable;
use crate::error::Result;
use crate::table::PartitionTxn;

/// Has the window of `user_key` starting at `start` looked at when stream time reaches `at`
/// (a due time), and keeps `clock.next_due` the earliest of them.
pub(super) fn schedule(
    clock: &mut Clock,
    due: &mut DueTimes,
    user_key: &Bytes,
    start: i64,
    at: i64,
) {
    due.insert(at, user_key.clone(), start);
    clock.next_due = clock.next_due.min(at);
}

/// What an update did.
pub(super) enum Outcome<V> {
    /// The new value of the event's current window.
    Updated(V),
    /// Every window of the event had closed: nothing written.
    Late,
}

impl<K, V> WindowedTable<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Writes `window`'s entry under `key` (the caller built it for its read): the window's
    /// end and the encoded value framed in `scratch` (reused across an update's windows), then
    /// copied into one buffer of their size: one allocation per window written.
    fn put_window(
        &self,
        txn: &mut PartitionTxn<'_>,
        key: Bytes,
        window: Window,
        value: &V,
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        scratch.clear();
        layout::put_window_end(scratch, window.end);
        self.table.encode_value_into(value, scratch)?;
        txn.put(key, Some(Bytes::copy_from_slice(scratch)));
        Ok(())
    }

    /// Applies `f` to the windows of `time` for `user_key` (store prefix `prefix`), scheduling
    /// the close of each new window in `due`. Does not move stream time (the caller does,
    /// after).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn file(
        &self,
        txn: &mut PartitionTxn<'_>,
        clock: &mut Clock,
        due: &mut DueTimes,
        user_key: &Bytes,
        prefix: &BytesMut,
        time: i64,
        f: &mut dyn FnMut(&mut V),
    ) -> Result<Outcome<V>> {
        let stream_time = clock.stream_time;
        let mut scratch = Vec::with_capacity(64);
        let is_open = |w: Window| self.spec.close_ms(w) > stream_time;
        match self.spec.cut() {
            Cut::Tumbling { .. } | Cut::Hopping { .. } => {
                let windows = self.spec.cut().fixed_windows(time);
                let mut current = None;
                for w in windows.into_iter().filter(|w| is_open(*w)) {
                    let key = layout::window_key(prefix, w.start);
                    let partition = txn.partition();
                    // Decoded where it lies: no copy of the stored bytes.
                    let found = txn.read(&key, |v| {
                        v.map(|v| self.decode_entry(partition, &key, v).map(|e| e.1 .1))
                            .transpose()
                    })?;
                    let mut value = match found {
                        Some(v) => v,
                        None => {
                            schedule(clock, due, user_key, w.start, self.spec.close_ms(w));
                            self.table.default_value()?
                        }
                    };
                    f(&mut value);
                    self.put_window(txn, key, w, &value, &mut scratch)?;
                    // Windows come latest start first: the first is the current one.
                    current.get_or_insert(value);
                }
                Ok(current.map_or(Outcome::Late, Outcome::Updated))
            }
            Cut::Sliding { size } => {
                let bucket = Window::ms(time, time.saturating_add(1));
                if !is_open(bucket) {
                    return Ok(Outcome::Late);
                }
                let key = layout::window_key(prefix, time);
                let mut value = match txn.get(&key)? {
                    Some(v) => self.decode_entry(txn.partition(), &key, &v)?.1 .1,
                    None => {
                        let close_at = self.spec.close_ms(bucket);
                        schedule(clock, due, user_key, bucket.start, close_at);
                        self.table.default_value()?
                    }
                };
                f(&mut value);
                self.put_window(txn, key, bucket, &value, &mut scratch)?;
                let from = bucket.end.saturating_sub(size);
                let buckets = self.stored_windows(txn, prefix, from, bucket.end)?;
                let folded = self.fold(buckets.into_iter().map(|(_, v)| v));
                Ok(folded.map_or(Outcome::Late, Outcome::Updated))
            }
            Cut::Session { gap } => {
                // Open sessions within `gap` of the event join it (closed ones are final).
                let candidates = self.stored_windows(
                    txn,
                    prefix,
                    i64::MIN,
                    time.saturating_add(gap).saturating_add(1),
                )?;
                let mut session = Window::ms(time, time.saturating_add(1));
                let mut joined = Vec::new();
                let mut value: Option<V> = None;
                for (w, v) in candidates {
                    let near =
                        w.start.saturating_sub(gap) <= time && time < w.end.saturating_add(gap);
                    if !near || !is_open(w) {
                        continue;
                    }
                    session = Window::ms(session.start.min(w.start), session.end.max(w.end));
                    joined.push(w.start);
                    value = self.fold(value.into_iter().chain([v]));
                }
                if !is_open(session) {
                    return Ok(Outcome::Late);
                }
                let mut value = match value {
                    Some(v) => v,
                    None => self.table.default_value()?,
                };
                f(&mut value);
                // A session keeps its due entry while its start stays (a later close time is
                // found when it is due); a new start gets one. Merged-away entries are deleted
                // and their due entries dropped when due.
                if !joined.contains(&session.start) {
                    schedule(
                        clock,
                        due,
                        user_key,
                        session.start,
                        self.spec.close_ms(session),
                    );
                }
                for start in joined.into_iter().filter(|s| *s != session.start) {
                    txn.put(layout::window_key(prefix, start), None);
                }
                let key = layout::window_key(prefix, session.start);
                self.put_window(txn, key, session, &value, &mut scratch)?;
                Ok(Outcome::Updated(value))
            }
        }
    }
}
