//! A batch of writes, applied to a store as one atomic step.

use std::collections::BTreeMap;

use crate::{Offset, Partition};

/// One write in a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Set `key` to `value` in `partition`.
    Put {
        /// Target partition.
        partition: Partition,
        /// Key bytes.
        key: Vec<u8>,
        /// Value bytes.
        value: Vec<u8>,
    },
    /// Remove `key` from `partition` (a no-op if it is absent).
    Delete {
        /// Target partition.
        partition: Partition,
        /// Key bytes.
        key: Vec<u8>,
    },
}

impl BatchOp {
    /// The partition this write goes to.
    pub fn partition(&self) -> Partition {
        match self {
            BatchOp::Put { partition, .. } | BatchOp::Delete { partition, .. } => *partition,
        }
    }

    /// The key this write touches.
    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key, .. } => key,
        }
    }
}

/// Writes and changelog offsets that a [`Store`](crate::Store) applies all together or not at
/// all.
///
/// Writes are applied in the order they were added, so a later write to the same key wins.
/// [`set_offset`](Self::set_offset) records the changelog offset the writes came from; it is
/// stored in the same atomic step, so after a crash the store's applied offset always describes
/// exactly the data it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
    offsets: BTreeMap<Partition, Offset>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `ops` writes.
    pub fn with_capacity(ops: usize) -> Self {
        Self {
            ops: Vec::with_capacity(ops),
            offsets: BTreeMap::new(),
        }
    }

    /// Adds a put of `key` = `value` in `partition`.
    pub fn put(
        &mut self,
        partition: Partition,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> &mut Self {
        self.ops.push(BatchOp::Put {
            partition,
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a delete of `key` in `partition`.
    pub fn delete(&mut self, partition: Partition, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(BatchOp::Delete {
            partition,
            key: key.into(),
        });
        self
    }

    /// Records that this batch brings `partition` up to changelog offset `offset` (the offset of
    /// the last changelog record it contains; resume reading at `offset + 1`). Setting it again
    /// for the same partition replaces the earlier value.
    pub fn set_offset(&mut self, partition: Partition, offset: Offset) -> &mut Self {
        self.offsets.insert(partition, offset);
        self
    }

    /// The writes, in order.
    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// The changelog offsets this batch records, by partition.
    pub fn offsets(&self) -> &BTreeMap<Partition, Offset> {
        &self.offsets
    }

    /// Number of writes (offsets not counted).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch has neither writes nor offsets.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.offsets.is_empty()
    }

    /// Empties the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.offsets.clear();
    }

    /// Splits the batch into its writes and offsets.
    pub fn into_parts(self) -> (Vec<BatchOp>, BTreeMap<Partition, Offset>) {
        (self.ops, self.offsets)
    }
}
