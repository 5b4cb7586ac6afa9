//! `MemoryStore`: a `BTreeMap` per partition behind one lock.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::order::key_order;
use crate::store::is_empty_range;
use crate::{
    BatchOp, Entry, EntryIter, Error, Offset, Partition, PartitionStats, Result, Store, StoreStats,
    WriteBatch,
};

/// Entries copied out per lock acquisition while scanning: scans never hold the lock across
/// calls to `next`, so a long scan does not stall writers.
const SCAN_CHUNK: usize = 256;

/// A stored key, ordered by [`key_order`] (the bytes' order, compared inline: a batch's inserts
/// and deletes compare ~29-byte keys with long shared prefixes); read by its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key(Vec<u8>);

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        key_order(&self.0, &other.0)
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

// The same order as the bytes' (`key_order` is `<[u8]>::cmp`), as `Borrow` requires.
impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Debug, Default)]
struct PartitionData {
    entries: BTreeMap<Key, Vec<u8>>,
    offset: Option<Offset>,
    /// Sum of key and value lengths, kept up to date so stats are O(1).
    bytes: u64,
}

impl PartitionData {
    fn is_vacant(&self) -> bool {
        self.entries.is_empty() && self.offset.is_none()
    }

    fn stats(&self) -> PartitionStats {
        PartitionStats {
            entries: self.entries.len() as u64,
            bytes: self.bytes,
        }
    }
}

/// A store that lives in memory only: fast, and empty again after a restart.
///
/// A batch is applied under one write lock, so readers see all of it or none of it. Scans copy
/// entries out in small chunks: they see every batch applied before they started and may see
/// batches applied while they run (they are not snapshots).
#[derive(Debug, Default)]
pub struct MemoryStore {
    partitions: RwLock<BTreeMap<Partition, PartitionData>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, BTreeMap<Partition, PartitionData>>> {
        self.partitions.read().map_err(|_| panicked())
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, BTreeMap<Partition, PartitionData>>> {
        self.partitions.write().map_err(|_| panicked())
    }
}

/// A thread panicked while it held the write lock, possibly half-way through a batch.
fn panicked() -> Error {
    Error::Poisoned {
        store: "memory".to_string(),
        partitions: Vec::new(),
        cause: "a thread panicked while writing to it".to_string(),
    }
}

impl Store for MemoryStore {
    fn get(&self, partition: Partition, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read()?
            .get(&partition)
            .and_then(|p| p.entries.get(key))
            .cloned())
    }

    fn read_value(
        &self,
        partition: Partition,
        key: &[u8],
        read: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<()> {
        let partitions = self.read()?;
        let value = partitions.get(&partition).and_then(|p| p.entries.get(key));
        read(value.map(Vec::as_slice));
        Ok(())
    }

    fn range(
        &self,
        partition: Partition,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Result<EntryIter<'_>> {
        if is_empty_range(start, end) {
            self.check_usable()?;
            return Ok(Box::new(std::iter::empty()));
        }
        Ok(Box::new(ChunkedScan {
            store: self,
            partition,
            next_start: start.map(<[u8]>::to_vec),
            end: end.map(<[u8]>::to_vec),
            buffer: Vec::new().into_iter(),
            exhausted: false,
        }))
    }

    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let (mut ops, offsets) = batch.into_parts();
        // Inserting in key order keeps the upper tree nodes in cache (measured: ~1.3x at 10,000
        // records a batch). The sort is stable: writes to one key keep their order.
        let order = |a: &BatchOp, b: &BatchOp| {
            a.partition()
                .cmp(&b.partition())
                .then_with(|| key_order(a.key(), b.key()))
        };
        if !ops.is_sorted_by(|a, b| order(a, b).is_le()) {
            ops.sort_by(order);
        }
        let mut partitions = self.write()?;
        for op in ops {
            match op {
                BatchOp::Put {
                    partition,
                    key,
                    value,
                } => {
                    let data = partitions.entry(partition).or_default();
                    let added = (key.len() + value.len()) as u64;
                    let key_len = key.len() as u64;
                    if let Some(old) = data.entries.insert(Key(key), value) {
                        data.bytes -= key_len + old.len() as u64;
                    }
                    data.bytes += added;
                }
                BatchOp::Delete { partition, key } => {
                    if let Some(data) = partitions.get_mut(&partition) {
                        let key = Key(key);
                        if let Some(old) = data.entries.remove(&key) {
                            data.bytes -= (key.0.len() + old.len()) as u64;
                        }
                    }
                }
            }
        }
        for (partition, offset) in offsets {
            partitions.entry(partition).or_default().offset = Some(offset);
        }
        // Deletes can leave a partition with nothing in it; forget it so `partitions()` agrees
        // with a persistent backend.
        partitions.retain(|_, data| !data.is_vacant());
        Ok(())
    }

    fn applied_offset(&self, partition: Partition) -> Result<Option<Offset>> {
        Ok(self.read()?.get(&partition).and_then(|p| p.offset))
    }

    fn applied_offsets(&self) -> Result<BTreeMap<Partition, Offset>> {
        Ok(self
            .read()?
            .iter()
            .filter_map(|(&p, data)| data.offset.map(|o| (p, o)))
            .collect())
    }

    fn partitions(&self) -> Result<Vec<Partition>> {
        Ok(self.read()?.keys().copied().collect())
    }

    fn flush(&self) -> Result<()> {
        self.read().map(drop)
    }

    fn check_usable(&self) -> Result<()> {
        self.read().map(drop)
    }

    fn drop_partition(&self, partition: Partition) -> Result<()> {
        self.write()?.remove(&partition);
        Ok(())
    }

    fn partition_stats(&self, partition: Partition) -> Result<PartitionStats> {
        Ok(self
            .read()?
            .get(&partition)
            .map(PartitionData::stats)
            .unwrap_or_default())
    }

    fn stats(&self) -> Result<StoreStats> {
        Ok(StoreStats {
            partitions: self
                .read()?
                .iter()
                .map(|(&p, data)| (p, data.stats()))
                .collect(),
            file_bytes: None,
        })
    }
}

/// A scan that re-takes the read lock for each chunk, resuming after the last key it returned.
struct ChunkedScan<'a> {
    store: &'a MemoryStore,
    partition: Partition,
    next_start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    buffer: std::vec::IntoIter<Entry>,
    exhausted: bool,
}

impl ChunkedScan<'_> {
    fn refill(&mut self) -> Result<()> {
        let start = self.next_start.as_ref().map(Vec::as_slice);
        let end = self.end.as_ref().map(Vec::as_slice);
        if is_empty_range(start, end) {
            self.exhausted = true;
            return Ok(());
        }
        let partitions = self.store.read()?;
        let chunk: Vec<Entry> = match partitions.get(&self.partition) {
            Some(data) => data
                .entries
                .range::<[u8], _>((start, end))
                .take(SCAN_CHUNK)
                .map(|(k, v)| (k.0.clone(), v.clone()))
                .collect(),
            None => Vec::new(),
        };
        drop(partitions);
        self.exhausted = chunk.len() < SCAN_CHUNK;
        if let Some((last, _)) = chunk.last() {
            self.next_start = Bound::Excluded(last.clone());
        }
        self.buffer = chunk.into_iter();
        Ok(())
    }
}

impl Iterator for ChunkedScan<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.buffer.next() {
            return Some(Ok(entry));
        }
        if self.exhausted {
            return None;
        }
        if let Err(e) = self.refill() {
            self.exhausted = true;
            return Some(Err(e));
        }
        self.buffer.next().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_crosses_chunk_boundaries() {
        let store = MemoryStore::new();
        let mut batch = WriteBatch::new();
        for i in 0..(SCAN_CHUNK as u32 * 3 + 7) {
            batch.put(0, i.to_be_bytes(), b"v".to_vec());
        }
        store.apply(batch).unwrap();
        let keys: Vec<u32> = store
            .iter(0)
            .unwrap()
            .map(|e| u32::from_be_bytes(e.unwrap().0.try_into().unwrap()))
            .collect();
        assert_eq!(keys, (0..(SCAN_CHUNK as u32 * 3 + 7)).collect::<Vec<_>>());
    }

    #[test]
    fn stats_track_overwrites_and_deletes() {
        let store = MemoryStore::new();
        let mut batch = WriteBatch::new();
        batch.put(1, b"k".to_vec(), b"vvv".to_vec());
        batch.put(1, b"k".to_vec(), b"v".to_vec());
        batch.put(1, b"x".to_vec(), b"yy".to_vec());
        batch.delete(1, b"x".to_vec());
        store.apply(batch).unwrap();
        assert_eq!(
            store.partition_stats(1).unwrap(),
            PartitionStats {
                entries: 1,
                bytes: 2
            }
        );
    }
}
