//! A windowed stream-stream join over one table's store (`layout`): both sides' events are
//! buffered by key and event time; an event joins every buffered event of the other side of
//! its key within `within` of its time, under the partition's lock, so that of two events
//! arriving at once on both sides, the second to take the lock finds the first (each pair
//! once). Results are outbound entries of the table: they reach the output topic at the next
//! commit, before the buffers' changelog records, so an event commits only after its results
//! are acknowledged. Stream time (the largest event time of either side) closes an event's
//! window at `time + within + grace` (then a left or outer join emits it unmatched, if it
//! found no partner) and expires it at `time + 2 * within + grace` (when no event that is not
//! late can pair with it any more).

mod layout;
mod render;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::record::Event;
use crate::table::{outbound_record_at, PartitionTxn, RecordCheck, TableCore};

pub(crate) use layout::OUT_TAG;
use layout::{Clock, StoreKey};
pub(crate) use render::buffer_render;

/// Which input an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
}

/// Which unmatched events a join emits once their window closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinKind {
    /// None.
    Inner,
    /// The left side's.
    Left,
    /// Both sides'.
    Outer,
}

impl JoinKind {
    fn emits_unmatched(self, side: Side) -> bool {
        match self {
            JoinKind::Inner => false,
            JoinKind::Left => side == Side::Left,
            JoinKind::Outer => true,
        }
    }
}

/// Makes a result's record (key and value bytes) from the key and the values that met.
pub(crate) type Joiner<K, L, R> =
    Arc<dyn Fn(&K, Option<&L>, Option<&R>) -> Result<(Option<Bytes>, Bytes)> + Send + Sync>;

/// One windowed join, shared by the agents of its two sides.
pub(crate) struct JoinCore<K, L, R> {
    name: String,
    table: Arc<TableCore>,
    kind: JoinKind,
    within: i64,
    grace: i64,
    joiner: Joiner<K, L, R>,
    late: AtomicU64,
    skipped: AtomicU64,
    filed: AtomicU64,
}

/// With many late events, one in this many is logged as a warning.
const LOG_LATE_EVERY: u64 = 1_000;

impl<K, L, R> JoinCore<K, L, R>
where
    K: Serialize + DeserializeOwned,
    L: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    /// A join over `table` (which must send its [`OUT_TAG`] entries to the output topic);
    /// `within` and `grace` in milliseconds.
    pub fn new(
        name: &str,
        table: Arc<TableCore>,
        kind: JoinKind,
        within: i64,
        grace: i64,
        joiner: Joiner<K, L, R>,
    ) -> Self {
        JoinCore {
            name: name.to_owned(),
            table,
            kind,
            within,
            grace,
            joiner,
            late: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            filed: AtomicU64::new(0),
        }
    }

    /// Files an event of `side` (see [`file`](Self::file)).
    pub fn file_event<V: Serialize>(&self, side: Side, event: &Event<K, V>) -> Result<usize> {
        let value = self.encode("value", &event.value)?;
        let made = self.file(
            side,
            event.partition,
            event.key.as_ref(),
            event.timestamp,
            &value,
        )?;
        self.filed.fetch_add(1, Ordering::Relaxed);
        Ok(made)
    }

    /// Events filed (joined, late or skipped) on this worker.
    pub fn filed_events(&self) -> u64 {
        self.filed.load(Ordering::Relaxed)
    }

    /// Events dropped as later than the grace period.
    pub fn late_events(&self) -> u64 {
        self.late.load(Ordering::Relaxed)
    }

    /// Events skipped for having no key or no timestamp.
    pub fn skipped_events(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Files one event of `side` read from `partition`: joins it with the other side's
    /// buffered events, buffers it, and moves stream time (closing and expiring what it
    /// passed), all in one change of the locked partition. `value` is the event's value as
    /// JSON. Returns the number of results it made.
    pub fn file(
        &self,
        side: Side,
        partition: i32,
        key: Option<&K>,
        time: i64,
        value: &[u8],
    ) -> Result<usize> {
        let Some(key) = key else {
            return Ok(self.skip(side, partition, "it has no key"));
        };
        if time < 0 {
            return Ok(self.skip(side, partition, "it has no timestamp"));
        }
        let user_key = self.encode("key", key)?;
        let own = layout::key_prefix(side, &user_key).ok_or_else(|| self.oversized())?;
        let other = layout::key_prefix(side.other(), &user_key).ok_or_else(|| self.oversized())?;
        self.table.with_partition(partition, &user_key, |txn| {
            let mut clock = self.read_clock(txn)?;
            let before = clock;
            let bound = self.within.saturating_add(self.grace);
            if time < clock.stream_time.saturating_sub(bound) {
                self.reject_late(side, partition, time, clock.stream_time);
                return Ok(0);
            }
            clock.stream_time = clock.stream_time.max(time);
            // Probe the other side, marking the partners found.
            let (from, to) = layout::buffer_range(
                &other,
                time.saturating_sub(self.within),
                time.saturating_add(self.within),
            );
            let partners = txn.range(&from, Some(&to))?;
            let mut made = 0;
            for (partner_key, partner_value) in &partners {
                let Some(StoreKey::Buffer(partner)) = layout::parse_key(partner_key) else {
                    return Err(self.corrupt(partition, "a buffered event's key"));
                };
                let (matched, bytes) = layout::parse_buffer_value(partner_value)
                    .ok_or_else(|| self.corrupt(partition, "a buffered event's value"))?;
                let (l, r) = match side {
                    Side::Left => (value, &bytes[..]),
                    Side::Right => (&bytes[..], value),
                };
                self.emit(
                    txn,
                    &mut clock,
                    key,
                    Some(l),
                    Some(r),
                    time.max(partner.time),
                )?;
                made += 1;
                if !matched {
                    txn.put(
                        partner_key.clone(),
                        Some(layout::buffer_value(true, &bytes)),
                    );
                }
            }
            // Buffer the event, with its close (if it may be emitted unmatched) and expiry.
            let seq = clock.next_seq();
            let buffer = layout::buffer_key(&own, time, seq);
            txn.put(
                buffer.clone(),
                Some(layout::buffer_value(!partners.is_empty(), value)),
            );
            if partners.is_empty() && self.kind.emits_unmatched(side) {
                let at = time.saturating_add(bound).saturating_add(1);
                self.schedule(txn, &mut clock, at, layout::CLOSE, &buffer);
            }
            let expire = time
                .saturating_add(bound)
                .saturating_add(self.within)
                .saturating_add(1);
            self.schedule(txn, &mut clock, expire, layout::EXPIRE, &buffer);
            made += self.settle(txn, &mut clock)?;
            if clock != before {
                txn.put(Clock::key(), Some(clock.encode()));
            }
            Ok(made)
        })
    }

    fn schedule(
        &self,
        txn: &mut PartitionTxn<'_>,
        clock: &mut Clock,
        at: i64,
        what: u8,
        buffer: &[u8],
    ) {
        txn.put(layout::due_key(at, what, buffer), Some(Bytes::new()));
        clock.next_due = clock.next_due.min(at);
    }

    /// Runs the due entries stream time reached: emits the closed events still unmatched,
    /// deletes the expired ones (of any key: keys are decoded from the store).
    fn settle(&self, txn: &mut PartitionTxn<'_>, clock: &mut Clock) -> Result<usize> {
        if clock.stream_time < clock.next_due {
            return Ok(0);
        }
        let partition = txn.partition();
        let (from, to) = layout::due_through(clock.stream_time);
        let due = txn.range(&from, Some(&to))?;
        let mut made = 0;
        for (due_key, _) in due {
            txn.put(due_key.clone(), None);
            let Some(StoreKey::Due { what, buffer, .. }) = layout::parse_key(&due_key) else {
                return Err(self.corrupt(partition, "a due entry's key"));
            };
            let Some(stored) = txn.get(&buffer)? else {
                continue;
            };
            if what == layout::EXPIRE {
                txn.put(buffer, None);
                continue;
            }
            let (matched, bytes) = layout::parse_buffer_value(&stored)
                .ok_or_else(|| self.corrupt(partition, "a buffered event's value"))?;
            if matched {
                continue;
            }
            let Some(StoreKey::Buffer(event)) = layout::parse_key(&buffer) else {
                return Err(self.corrupt(partition, "a buffered event's key"));
            };
            let key: K = self.decode(partition, "key", event.user_key)?;
            let (l, r) = match event.side {
                Side::Left => (Some(&bytes[..]), None),
                Side::Right => (None, Some(&bytes[..])),
            };
            self.emit(txn, clock, &key, l, r, event.time)?;
            made += 1;
        }
        clock.next_due = match txn.first(&[layout::DUE_TAG], Some(&[layout::DUE_TAG + 1]))? {
            Some((key, _)) => match layout::parse_key(&key) {
                Some(StoreKey::Due { at, .. }) => at,
                _ => return Err(self.corrupt(partition, "a due entry's key")),
            },
            None => i64::MAX,
        };
        Ok(made)
    }

    /// Writes one result as an outbound entry, stamped `time`.
    fn emit(
        &self,
        txn: &mut PartitionTxn<'_>,
        clock: &mut Clock,
        key: &K,
        l: Option<&[u8]>,
        r: Option<&[u8]>,
        time: i64,
    ) -> Result<()> {
        let partition = txn.partition();
        let l: Option<L> = l
            .map(|b| self.decode(partition, "left value", b))
            .transpose()?;
        let r: Option<R> = r
            .map(|b| self.decode(partition, "right value", b))
            .transpose()?;
        let (record_key, record_value) = (self.joiner)(key, l.as_ref(), r.as_ref())?;
        let framed = outbound_record_at(record_key.as_deref(), &record_value, time)
            .ok_or_else(|| self.oversized())?;
        txn.put(layout::out_key(clock.next_seq()), Some(framed));
        Ok(())
    }

    fn read_clock(&self, txn: &PartitionTxn<'_>) -> Result<Clock> {
        match txn.get(&Clock::key())? {
            None => Ok(Clock::default()),
            Some(bytes) => Clock::decode(&bytes)
                .ok_or_else(|| self.corrupt(txn.partition(), "the clock entry")),
        }
    }

    fn skip(&self, side: Side, partition: i32, why: &str) -> usize {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(join = %self.name, ?side, partition, "event skipped: {why}");
        0
    }

    fn reject_late(&self, side: Side, partition: i32, time: i64, stream_time: i64) {
        let late = self.late.fetch_add(1, Ordering::Relaxed) + 1;
        if late == 1 || late.is_multiple_of(LOG_LATE_EVERY) {
            tracing::warn!(
                join = %self.name,
                ?side,
                partition,
                time,
                stream_time,
                within_ms = self.within,
                grace_ms = self.grace,
                late_events = late,
                "event later than the join's grace period dropped (raise the grace to accept such events)"
            );
        } else {
            tracing::debug!(join = %self.name, ?side, partition, time, stream_time, "late event dropped");
        }
    }

    fn encode<T: Serialize + ?Sized>(&self, part: &'static str, value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| Error::TableEncode {
            table: self.table.name().to_owned(),
            part,
            reason: e.to_string(),
        })
    }

    fn decode<T: DeserializeOwned>(
        &self,
        partition: i32,
        part: &'static str,
        bytes: &[u8],
    ) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| Error::TableDecode {
            table: self.table.name().to_owned(),
            partition,
            offset: None,
            part,
            reason: e.to_string(),
        })
    }

    fn corrupt(&self, partition: i32, what: &str) -> Error {
        Error::TableDecode {
            table: self.table.name().to_owned(),
            partition,
            offset: None,
            part: "key",
            reason: format!("{what} is not in the join's layout"),
        }
    }

    fn oversized(&self) -> Error {
        Error::TableEncode {
            table: self.table.name().to_owned(),
            part: "key",
            reason: "longer than 2 GiB".into(),
        }
    }
}

/// Checks a join table's changelog records, which recovery replays into the store: each key
/// in the layout, buffered values decoding as their side's type, the clock well formed.
pub(crate) fn record_check<K, L, R>() -> RecordCheck
where
    K: DeserializeOwned + 'static,
    L: DeserializeOwned + 'static,
    R: DeserializeOwned + 'static,
{
    Arc::new(|key, value| {
        let text = |e: serde_json::Error| e.to_string();
        match layout::parse_key(key) {
            Some(StoreKey::Clock) => match value {
                Some(v) if Clock::decode(v).is_none() => {
                    Err(("value", "not a join clock (24 bytes)".to_owned()))
                }
                _ => Ok(()),
            },
            Some(StoreKey::Buffer(event)) => {
                serde_json::from_slice::<K>(event.user_key).map_err(|e| ("key", text(e)))?;
                let Some(value) = value else { return Ok(()) };
                let (_, bytes) = layout::parse_buffer_value(&Bytes::copy_from_slice(value))
                    .ok_or(("value", "not a buffered event".to_owned()))?;
                match event.side {
                    Side::Left => serde_json::from_slice::<L>(&bytes).map(drop),
                    Side::Right => serde_json::from_slice::<R>(&bytes).map(drop),
                }
                .map_err(|e| ("value", text(e)))
            }
            Some(StoreKey::Due { .. }) => Ok(()),
            Some(StoreKey::Out) | None => {
                Err(("key", "not a key of a windowed join's store".to_owned()))
            }
        }
    })
}
