//! Reading a windowed table: the window of a time, a key's windows, every key's windows,
//! sliding buckets folded, a partition's clock.

use std::borrow::Borrow;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::kind::{Cut, Window};
use super::layout::{self, Clock, StoreKey};
use super::windowed::WindowedTable;
use crate::error::{Error, Result};
use crate::table::PartitionTxn;
use crate::timestamp::Timestamp;

impl<K, V> WindowedTable<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(super) fn encode_user_key<Q>(&self, key: &Q) -> Result<(Bytes, i32, bytes::BytesMut)>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let bytes = self.table.encode_key(key)?;
        let partition = self.table.core().partition_of(&bytes);
        let prefix = layout::key_prefix(&bytes).ok_or_else(|| Error::TableEncode {
            table: self.name().to_owned(),
            part: "key",
            reason: "longer than 4 GiB".into(),
        })?;
        Ok((bytes, partition, prefix))
    }

    /// The stored windows of a key with starts in `from..to`: (window as stored, value).
    pub(super) fn stored_windows(
        &self,
        txn: &PartitionTxn<'_>,
        prefix: &bytes::BytesMut,
        from: i64,
        to: i64,
    ) -> Result<Vec<(Window, V)>> {
        let start = layout::window_key(prefix, from);
        let end = layout::window_key(prefix, to);
        let mut out = Vec::new();
        for (k, v) in txn.range(&start, Some(&end))? {
            out.push(self.decode_entry(txn.partition(), &k, &v)?.1);
        }
        Ok(out)
    }

    /// A stored window entry: its user key bytes, then (window, value).
    pub(super) fn decode_entry<'k>(
        &self,
        partition: i32,
        key: &'k [u8],
        value: &[u8],
    ) -> Result<(&'k [u8], (Window, V))> {
        let (user_key, window, bytes) = self.parse_entry(partition, key, value)?;
        let value = self.table.decode_value_in(partition, bytes)?;
        Ok((user_key, (window, value)))
    }

    /// A stored window entry without decoding its value: user key bytes, window, value bytes.
    pub(super) fn parse_entry<'k, 'v>(
        &self,
        partition: i32,
        key: &'k [u8],
        value: &'v [u8],
    ) -> Result<(&'k [u8], Window, &'v [u8])> {
        let corrupt = |part, reason: &str| Error::TableDecode {
            table: self.name().to_owned(),
            partition,
            offset: None,
            part,
            reason: reason.to_owned(),
        };
        let Some(StoreKey::Window { user_key, start }) = layout::parse_key(key) else {
            return Err(corrupt("key", "not a window key"));
        };
        let (end, bytes) =
            layout::parse_value(value).ok_or_else(|| corrupt("value", "no window end"))?;
        Ok((user_key, Window::ms(start, end), bytes))
    }

    /// Folds values (earliest first) with the merge function.
    pub(super) fn fold(&self, values: impl IntoIterator<Item = V>) -> Option<V> {
        let mut values = values.into_iter();
        let mut acc = values.next()?;
        if let Some(merge) = &self.merge {
            for v in values {
                merge(&mut acc, v);
            }
        }
        Some(acc)
    }

    /// The value of the window of `time` read in a locked partition: the fixed window with
    /// the latest start holding it, the sliding window ending at it, or the session holding it.
    pub(super) fn read_at(
        &self,
        txn: &PartitionTxn<'_>,
        prefix: &bytes::BytesMut,
        time: i64,
    ) -> Result<Option<V>> {
        match self.spec.cut() {
            Cut::Tumbling { .. } | Cut::Hopping { .. } => {
                let Some(w) = self.spec.cut().current_window(time) else {
                    return Ok(None);
                };
                let key = layout::window_key(prefix, w.start);
                match txn.get(&key)? {
                    Some(v) => Ok(Some(self.decode_entry(txn.partition(), &key, &v)?.1 .1)),
                    None => Ok(None),
                }
            }
            Cut::Sliding { size } => {
                let from = time.saturating_add(1).saturating_sub(size);
                let buckets = self.stored_windows(txn, prefix, from, time.saturating_add(1))?;
                Ok(self.fold(buckets.into_iter().map(|(_, v)| v)))
            }
            Cut::Session { .. } => {
                let sessions =
                    self.stored_windows(txn, prefix, i64::MIN, time.saturating_add(1))?;
                Ok(sessions
                    .into_iter()
                    .find(|(w, _)| w.contains_ms(time))
                    .map(|(_, v)| v))
            }
        }
    }

    /// The value of `key` in the window of `time`.
    pub(super) fn value_at<Q>(&self, key: &Q, time: i64) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let (bytes, partition, prefix) = self.encode_user_key(key)?;
        self.table
            .core()
            .with_partition(partition, &bytes, |txn| self.read_at(txn, &prefix, time))
    }

    /// The value of `key` in the window of its partition's stream time (`None` before the
    /// partition's first event).
    pub(super) fn value_at_stream_time<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let (bytes, partition, prefix) = self.encode_user_key(key)?;
        self.table.core().with_partition(partition, &bytes, |txn| {
            let clock = read_clock(self.name(), txn)?;
            if clock.stream_time == i64::MIN {
                return Ok(None);
            }
            self.read_at(txn, &prefix, clock.stream_time)
        })
    }

    /// The windows of a key (store prefix `prefix`) starting in `from..to`, by start; sliding
    /// windows folded from their buckets.
    fn key_windows(
        &self,
        txn: &PartitionTxn<'_>,
        prefix: &bytes::BytesMut,
        from: i64,
        to: i64,
    ) -> Result<Vec<(Window, V)>> {
        let Cut::Sliding { size } = self.spec.cut() else {
            return self.stored_windows(txn, prefix, from, to);
        };
        // A bucket at t is the window [t + 1 - size, t + 1), folded with the buckets in it.
        let shift = size - 1;
        let buckets = self.stored_windows(txn, prefix, from, to.saturating_add(shift))?;
        let mut out = Vec::new();
        for (i, (bucket, _)) in buckets.iter().enumerate() {
            let window = Window::ms(bucket.start.saturating_sub(shift), bucket.end);
            if window.start < from || window.start >= to {
                continue;
            }
            let inside = buckets[..=i]
                .iter()
                .filter(|(b, _)| b.start >= window.start)
                .map(|(_, v)| v.clone());
            if let Some(v) = self.fold(inside) {
                out.push((window, v));
            }
        }
        Ok(out)
    }

    /// Every window of `key` starting in `from..to`, by start, with its value. For sliding
    /// windows, the windows of the key's event times, each with its folded value.
    /// `windows(&k, Timestamp::MIN, Timestamp::MAX)` lists them all.
    pub fn windows<Q>(&self, key: &Q, from: Timestamp, to: Timestamp) -> Result<Vec<(Window, V)>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let (bytes, partition, prefix) = self.encode_user_key(key)?;
        self.table.core().with_partition(partition, &bytes, |txn| {
            self.key_windows(txn, &prefix, from.as_millis(), to.as_millis())
        })
    }

    /// Every (key, window, value) held in the partitions this worker owns (Faust's
    /// `table.items()` on a windowed table): a snapshot, by partition, then key bytes, then
    /// window start. Closed windows are listed until they expire.
    pub fn items(&self) -> Result<Vec<(K, Window, V)>> {
        let mut items = Vec::new();
        for partition in self.table.owned_partitions() {
            self.table
                .core()
                .with_partition(partition, b"(items)", |txn| {
                    for user_key in self.partition_keys(txn)? {
                        let prefix = layout::key_prefix(&user_key).unwrap_or_default();
                        for (window, value) in self.key_windows(txn, &prefix, i64::MIN, i64::MAX)? {
                            // Decoded per window: keys need not be Clone.
                            let key = self.table.decode_key_in(partition, &user_key)?;
                            items.push((key, window, value));
                        }
                    }
                    Ok(())
                })?;
        }
        Ok(items)
    }

    /// The keys with at least one window in the partitions this worker owns (Faust's
    /// `table.keys()` gives (key, window) pairs: those are [`items`](Self::items)), once each,
    /// by partition then key bytes.
    pub fn keys(&self) -> Result<Vec<K>> {
        let mut keys = Vec::new();
        for partition in self.table.owned_partitions() {
            let user_keys = self
                .table
                .core()
                .with_partition(partition, b"(keys)", |txn| self.partition_keys(txn))?;
            for user_key in user_keys {
                keys.push(self.table.decode_key_in(partition, &user_key)?);
            }
        }
        Ok(keys)
    }

    /// The distinct user keys (encoded) with a window in a locked partition, in byte order.
    fn partition_keys(&self, txn: &PartitionTxn<'_>) -> Result<Vec<Bytes>> {
        let (from, to) = layout::window_range();
        let mut keys: Vec<Bytes> = Vec::new();
        for (k, _) in txn.range(&from, Some(&to))? {
            let Some(StoreKey::Window { user_key, .. }) = layout::parse_key(&k) else {
                continue;
            };
            if keys.last().is_none_or(|last| last.as_ref() != user_key) {
                keys.push(Bytes::copy_from_slice(user_key));
            }
        }
        Ok(keys)
    }

    /// The stream time of `partition` (the largest event time seen), `None` before any event.
    /// Fails unless this worker owns the partition and it is up to date.
    pub fn stream_time(&self, partition: i32) -> Result<Option<Timestamp>> {
        self.check_active(partition)?;
        let clock = self
            .table
            .core()
            .with_partition(partition, b"(clock)", |txn| read_clock(self.name(), txn))?;
        Ok((clock.stream_time != i64::MIN).then_some(Timestamp::from_millis(clock.stream_time)))
    }
}

/// The clock of a locked partition (a new one before its first event).
pub(super) fn read_clock(table: &str, txn: &PartitionTxn<'_>) -> Result<Clock> {
    match txn.get(&Clock::key())? {
        None => Ok(Clock::NEW),
        Some(bytes) => Clock::decode(&bytes).ok_or_else(|| Error::TableDecode {
            table: table.to_owned(),
            partition: txn.partition(),
            offset: None,
            part: "value",
            reason: "the window clock entry is not 24 bytes".into(),
        }),
    }
}
