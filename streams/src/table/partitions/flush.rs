//! The changelog flush protocol: pending writes taken into a [`PendingFlush`], produced by
//! the runtime, then applied to the store with their offset (or aborted); and changelog
//! records read back by recovery and standbys.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stores::WriteBatch;

use crate::error::{Error, Result};
use crate::table::pending::{ChangelogRecord, PartitionState, PartitionStatus};

use super::{lock, TableCore};

/// Writes of one partition taken for the changelog; hand it back to
/// [`TableCore::complete_flush`] once its records are acknowledged.
#[derive(Debug)]
#[must_use = "complete or abort the flush: its writes stay in flight until then"]
pub struct PendingFlush {
    partition: i32,
    id: u64,
    /// With the cache on and nothing outbound, the very writes in flight (shared, not copied).
    records: Arc<Vec<ChangelogRecord>>,
    /// Records for another topic made by the same writes (a windowed table's final results),
    /// each framed by [`outbound_record`]; they go out before the changelog records.
    outbound: Vec<Bytes>,
}

impl PendingFlush {
    /// The table partition, which is also the changelog partition to produce to.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The records to produce, one per key written since the last flush.
    pub fn records(&self) -> &[ChangelogRecord] {
        &self.records
    }

    /// The outbound records (key, value) to produce before the changelog records, in the
    /// order of their entry keys.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn outbound(&self) -> impl Iterator<Item = (Option<Bytes>, Bytes)> + '_ {
        self.outbound_timed().map(|(key, value, _)| (key, value))
    }

    /// [`outbound`](Self::outbound) with each record's timestamp, when its entry gave one
    /// ([`outbound_record_at`]; `None`: the producer's time).
    pub(crate) fn outbound_timed(
        &self,
    ) -> impl Iterator<Item = (Option<Bytes>, Bytes, Option<i64>)> + '_ {
        self.outbound.iter().filter_map(parse_outbound)
    }
}

/// Where a table's outbound entries go: entries whose key starts with `tag` are not table
/// state but records for `topic`, sent by the flush that carries the writes that made them.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub tag: u8,
    pub topic: String,
}

/// An outbound entry's value: `key length + 1 (u32, big endian; 0: no key) | key | value`;
/// with [`TIMED`] set in the length, a timestamp (i64, big endian) follows the length.
pub(crate) fn outbound_record(key: Option<&[u8]>, value: &[u8]) -> Option<Bytes> {
    frame(key, value, None)
}

/// An outbound entry's value for a record with its own timestamp (a stream-stream join's
/// result carries the later of its two events' times).
pub(crate) fn outbound_record_at(
    key: Option<&[u8]>,
    value: &[u8],
    timestamp: i64,
) -> Option<Bytes> {
    frame(key, value, Some(timestamp))
}

/// The length's flag for a timestamp after it (keys are shorter than 2 GiB).
const TIMED: u32 = 1 << 31;

fn frame(key: Option<&[u8]>, value: &[u8], timestamp: Option<i64>) -> Option<Bytes> {
    let len = match key {
        None => 0,
        Some(k) => u32::try_from(k.len()).ok()?.checked_add(1)?,
    };
    if len & TIMED != 0 {
        return None;
    }
    let mut buf = Vec::with_capacity(12 + key.map_or(0, <[u8]>::len) + value.len());
    match timestamp {
        None => buf.extend_from_slice(&len.to_be_bytes()),
        Some(ts) => {
            buf.extend_from_slice(&(len | TIMED).to_be_bytes());
            buf.extend_from_slice(&ts.to_be_bytes());
        }
    }
    buf.extend_from_slice(key.unwrap_or_default());
    buf.extend_from_slice(value);
    Some(Bytes::from(buf))
}

fn parse_outbound(framed: &Bytes) -> Option<(Option<Bytes>, Bytes, Option<i64>)> {
    let raw = u32::from_be_bytes(framed.get(..4)?.try_into().ok()?);
    let (len, timestamp, start) = if raw & TIMED != 0 {
        let ts = i64::from_be_bytes(framed.get(4..12)?.try_into().ok()?);
        ((raw & !TIMED) as usize, Some(ts), 12)
    } else {
        (raw as usize, None, 4)
    };
    match len.checked_sub(1) {
        None => Some((None, framed.slice(start..), timestamp)),
        Some(n) => {
            let end = start.checked_add(n).filter(|end| *end <= framed.len())?;
            Some((
                Some(framed.slice(start..end)),
                framed.slice(end..),
                timestamp,
            ))
        }
    }
}

impl TableCore {
    /// Moves the partition's pending writes into a flush (still visible to reads). `None` when
    /// nothing is pending or the partition is not held. (Tests; the runtime uses
    /// [`take_settled`](Self::take_settled).)
    #[cfg(test)]
    pub fn take_pending(&self, partition: i32) -> Option<PendingFlush> {
        let state = self.state(partition)?;
        let mut st = lock(&state);
        self.take_locked(partition, &mut st)
    }

    /// [`take_pending`](Self::take_pending) once no close callback of the partition is running
    /// (see `table::effects`), waiting up to `timeout` for them; an error if one failed (its
    /// close must not be committed) or is still running then.
    pub(crate) async fn take_settled(
        &self,
        partition: i32,
        timeout: Duration,
    ) -> Result<Option<PendingFlush>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_micros(100);
        loop {
            let Some(state) = self.state(partition) else {
                return Ok(None);
            };
            {
                let mut st = lock(&state);
                if st.effects.failed() {
                    return Err(Error::CloseCallbackFailed {
                        table: self.name().to_owned(),
                        partition,
                    });
                }
                if !st.effects.running() {
                    return Ok(self.take_locked(partition, &mut st));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "waiting for the on_window_close callbacks of table {} in partition \
                         {partition} to finish before flushing it (a close is committed only \
                         after its callback: make the callback quicker, or raise \
                         worker_shutdown_timeout)",
                        self.name()
                    ),
                    after: timeout,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(2));
        }
    }

    fn take_locked(&self, partition: i32, st: &mut PartitionState) -> Option<PendingFlush> {
        let id = self.next_flush_id.fetch_add(1, Ordering::Relaxed);
        let bytes = st.pending_bytes() as u64;
        let taken = st.take(id)?;
        self.uncache(bytes);
        let tag = self.outbound().map(|o| o.tag);
        let tagged = |key: &Bytes| tag.is_some() && key.first() == tag.as_ref();
        if taken.log.is_empty() && !taken.last.iter().any(|r| tagged(&r.key)) {
            // The records are the writes in flight, one per key: share them.
            return Some(PendingFlush {
                partition,
                id,
                records: taken.last,
                outbound: Vec::new(),
            });
        }
        let mut records = Vec::with_capacity(taken.last.len().max(taken.log.len()));
        let mut outbound = Vec::new();
        for ChangelogRecord { key, value } in taken.last.iter().cloned() {
            match value {
                Some(value) if tagged(&key) => outbound.push(value),
                // A deleted outbound entry: nothing to send, nothing to store.
                None if tagged(&key) => {}
                // The cache is off: the log below has every write.
                _ if !taken.log.is_empty() => {}
                value => records.push(ChangelogRecord { key, value }),
            }
        }
        // Outbound entries are sent once, as their last write, with the cache off too.
        for (key, value) in taken.log.into_iter().filter(|(k, _)| !tagged(k)) {
            records.push(ChangelogRecord { key, value });
        }
        Some(PendingFlush {
            partition,
            id,
            records: Arc::new(records),
            outbound,
        })
    }

    /// The flush's records are acknowledged, the last one at `last_offset`: applies them and
    /// that offset to the store in one atomic batch, then drops their overlay.
    ///
    /// `last_offset` is `None` when the producer could not say (a retried batch the broker
    /// reported as a duplicate): the writes are applied and the store's offset stays, so a
    /// recovery replays a little more, never less.
    ///
    /// If the flush was dropped meanwhile (the partition was revoked, reassigned or set back
    /// to recovering), nothing is applied and this is `Ok`: the records are in the changelog,
    /// where the partition's next recovery reads them, so the source offsets may be committed.
    pub fn complete_flush(&self, flush: PendingFlush, last_offset: Option<i64>) -> Result<()> {
        let dropped = || {
            tracing::debug!(
                table = self.name(),
                partition = flush.partition,
                "flush completed after its partition was revoked or reset: left to recovery"
            );
            Ok(())
        };
        let Some(state) = self.state(flush.partition) else {
            return dropped();
        };
        let mut st = lock(&state);
        if !st.is_in_flight(flush.id) {
            return dropped();
        }
        if st.oldest_in_flight() != Some(flush.id) {
            return Err(Error::FlushOutOfOrder {
                table: self.name().to_owned(),
                partition: flush.partition,
            });
        }
        if self.spec.is_global() {
            if let Some(offset) = last_offset {
                // Every worker writes a global table: its store takes the changelog in order,
                // through the follower, and this worker's writes stay visible until then.
                st.ack_oldest(offset);
                return Ok(());
            }
        }
        let partition = flush.partition;
        // The flush's records are the writes in flight themselves (the cache on, nothing
        // outbound): taken out of the partition, they are this batch's only holder, so their
        // buffers move into the store uncopied. Under the lock, so no read misses them in
        // between; if the store fails it refuses every read from then on (poisoned), so
        // none sees the store without them either.
        let shared = st.oldest_is(&flush.records);
        let records = match shared {
            true => {
                drop(flush);
                st.pop_oldest().unwrap_or_default()
            }
            false => flush.records,
        };
        let mut batch = WriteBatch::with_capacity(records.len());
        let mut add = |ChangelogRecord { key, value }: ChangelogRecord| {
            match value {
                Some(v) => batch.put(partition, key, v),
                None => batch.delete(partition, key),
            };
        };
        match Arc::try_unwrap(records) {
            Ok(records) => records.into_iter().for_each(&mut add),
            // Held elsewhere too (a flush that shares nothing): copied, as always.
            Err(records) => records.iter().cloned().for_each(&mut add),
        }
        if let Some(offset) = last_offset {
            batch.set_offset(partition, offset);
        }
        self.store()?
            .apply(batch)
            .map_err(|e| self.store_error(&[partition], e))?;
        if !shared {
            st.complete_oldest();
        }
        Ok(())
    }

    /// Producing a flush failed: forgets every unflushed write of the partition and sets it
    /// back to `Recovering`. Recover it, and seek its source back to the committed offset.
    pub fn abort_flush(&self, partition: i32) {
        if let Some(state) = self.state(partition) {
            let mut st = lock(&state);
            self.discard(&mut st);
            st.status = PartitionStatus::Recovering;
            // Recovery replays the events, and with them their close callbacks.
            st.effects = Default::default();
        }
        tracing::warn!(
            table = self.name(),
            partition,
            "changelog flush failed: the partition's unflushed writes are dropped; it recovers from its changelog and its events are redelivered"
        );
    }

    /// Applies changelog records read back (recovery, a standby or a global table following
    /// its changelog) to the store, `last` being the offset of the last; for a held partition,
    /// under its lock, dropping this worker's acknowledged writes the store now has.
    pub(crate) fn apply_replayed(
        &self,
        partition: i32,
        mut batch: WriteBatch,
        last: i64,
    ) -> Result<()> {
        batch.set_offset(partition, last);
        let failed = |e| self.store_error(&[partition], e);
        match self.state(partition) {
            Some(state) => {
                let mut st = lock(&state);
                self.store()?.apply(batch).map_err(failed)?;
                st.applied_through(last);
            }
            None => self.store()?.apply(batch).map_err(failed)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_records_round_trip_with_and_without_a_timestamp() {
        let plain = outbound_record(Some(b"k"), b"v").unwrap();
        assert_eq!(
            parse_outbound(&plain),
            Some((
                Some(Bytes::from_static(b"k")),
                Bytes::from_static(b"v"),
                None
            ))
        );
        let timed = outbound_record_at(Some(b"key"), b"value", -7).unwrap();
        assert_eq!(
            parse_outbound(&timed),
            Some((
                Some(Bytes::from_static(b"key")),
                Bytes::from_static(b"value"),
                Some(-7)
            ))
        );
        let keyless = outbound_record_at(None, b"v", 42).unwrap();
        assert_eq!(
            parse_outbound(&keyless),
            Some((None, Bytes::from_static(b"v"), Some(42)))
        );
        // Cut short: not a record.
        assert_eq!(parse_outbound(&timed.slice(..6)), None);
    }
}
