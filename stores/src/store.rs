//! The `Store` trait that every backend implements, and the types it speaks in.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::{Offset, Partition, Result, WriteBatch};

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Entries of one partition in ascending key order.
///
/// Items are results because a persistent backend reads pages lazily and a read can fail.
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<Entry>> + Send + 'a>;

/// Size of one partition, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStats {
    /// Number of keys.
    pub entries: u64,
    /// Bytes of keys and values as stored (redb: leaf bytes, without index overhead).
    pub bytes: u64,
}

/// Sizes of a whole store, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Every partition that holds data or an applied offset.
    pub partitions: BTreeMap<Partition, PartitionStats>,
    /// Size of the backing file, for backends that have one.
    pub file_bytes: Option<u64>,
}

impl StoreStats {
    /// Keys over all partitions.
    pub fn entries(&self) -> u64 {
        self.partitions.values().map(|p| p.entries).sum()
    }

    /// Key and value bytes over all partitions.
    pub fn bytes(&self) -> u64 {
        self.partitions.values().map(|p| p.bytes).sum()
    }
}

/// A partitioned key-value store over bytes that remembers, per partition, the changelog offset
/// its data corresponds to.
///
/// All writes go through [`apply`](Store::apply): the batch's writes and offsets become visible
/// (and, for persistent backends, reach the file) together or not at all. After a restart,
/// [`applied_offset`](Store::applied_offset) says where to resume reading the changelog, and the
/// data is exactly the changelog up to that offset.
///
/// Reads see only applied batches. The trait is object safe: hold it as `Box<dyn Store>` or
/// `Arc<dyn Store>`.
///
/// A store whose write or commit failed may have lost batches that [`apply`](Store::apply)
/// accepted before (a persistent backend groups them until a commit): it is *poisoned* and
/// refuses every later call, reads included, with [`Error::Poisoned`](crate::Error::Poisoned),
/// until it is reopened. Its data and applied offsets then agree again (the last durable
/// state), so the partitions resume their changelog from there.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The value of `key` in `partition`.
    fn get(&self, partition: Partition, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Calls `read` with the value of `key` in `partition` (`None`: no entry), where the
    /// backend can without copying it ([`MemoryStore`](crate::MemoryStore): under its read
    /// lock, so `read` must not use the store); by default on a [`get`](Store::get)'s copy.
    fn read_value(
        &self,
        partition: Partition,
        key: &[u8],
        read: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<()> {
        read(self.get(partition, key)?.as_deref());
        Ok(())
    }

    /// Entries of `partition` with keys within `start..end` (any bounds), in ascending key order.
    /// An empty or inverted range yields nothing.
    fn range(
        &self,
        partition: Partition,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Result<EntryIter<'_>>;

    /// Entries of `partition` whose keys start with `prefix`, in ascending key order.
    fn prefix(&self, partition: Partition, prefix: &[u8]) -> Result<EntryIter<'_>> {
        let end = prefix_end(prefix);
        let end = match &end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        self.range(partition, Bound::Included(prefix), end)
    }

    /// Every entry of `partition`, in ascending key order.
    fn iter(&self, partition: Partition) -> Result<EntryIter<'_>> {
        self.range(partition, Bound::Unbounded, Bound::Unbounded)
    }

    /// Applies every write and offset of `batch` as one atomic step.
    ///
    /// Persistent backends may make the step durable only at the next [`flush`](Store::flush);
    /// a crash before it loses whole batches, never part of one.
    fn apply(&self, batch: WriteBatch) -> Result<()>;

    /// The changelog offset last recorded for `partition`, if any.
    fn applied_offset(&self, partition: Partition) -> Result<Option<Offset>>;

    /// The changelog offsets recorded for every partition.
    fn applied_offsets(&self) -> Result<BTreeMap<Partition, Offset>>;

    /// Partitions that hold at least one key or an applied offset, ascending.
    fn partitions(&self) -> Result<Vec<Partition>>;

    /// Makes every batch applied so far durable (a durable commit). Call it when the consumer
    /// commits its offsets.
    fn flush(&self) -> Result<()>;

    /// `Ok` unless an earlier failure poisoned the store ([`Error::Poisoned`](crate::Error::Poisoned)).
    /// Cheap (no I/O): call it before work whose effects would outlive a failed store, such as
    /// writing a table's changelog or committing the offsets of the events that wrote to it.
    fn check_usable(&self) -> Result<()>;

    /// Removes a partition's data and applied offset, as one atomic step (when the partition is
    /// revoked and this worker will not keep a standby copy).
    fn drop_partition(&self, partition: Partition) -> Result<()>;

    /// Number of keys and bytes of one partition.
    fn partition_stats(&self, partition: Partition) -> Result<PartitionStats>;

    /// Sizes of every partition, and the file size if there is a file.
    fn stats(&self) -> Result<StoreStats>;
}

/// The smallest key greater than every key that starts with `prefix`, or `None` when there is
/// none (the prefix is empty or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

/// True when no key can lie within the bounds. `BTreeMap::range` panics on such ranges, so
/// backends check first.
pub(crate) fn is_empty_range(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e))
        | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_non_ff_byte() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn empty_ranges() {
        use Bound::*;
        assert!(is_empty_range(Included(b"b"), Included(b"a")));
        assert!(!is_empty_range(Included(b"a"), Included(b"a")));
        assert!(is_empty_range(Included(b"a"), Excluded(b"a")));
        assert!(is_empty_range(Excluded(b"a"), Excluded(b"a")));
        assert!(!is_empty_range(Unbounded, Excluded(b"")));
    }
}
