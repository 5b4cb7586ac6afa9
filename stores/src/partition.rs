//! The numbers every store speaks in: a changelog partition and an offset in it (below the
//! store, its batches and its errors, which all name them).

/// A table partition: the partition number of the changelog topic the data belongs to.
pub type Partition = i32;

/// A Kafka offset in the changelog topic.
pub type Offset = i64;
