//! Partitioned state stores over bytes for the streams framework's tables.
//!
//! A table partition's state is rebuilt from a changelog topic. Every store here keeps, per
//! partition, the changelog offset its data corresponds to, and writes that offset in the same
//! atomic step as the data (a [`WriteBatch`] applied with [`Store::apply`]). After a restart or a
//! crash the store therefore says exactly where to resume reading the changelog, with no full
//! replay and never half a batch.
//!
//! Backends:
//! - [`MemoryStore`]: a `BTreeMap` per partition; empty after a restart.
//! - [`RedbStore`]: one [redb](https://docs.rs/redb) file per table, a redb table per partition
//!   plus a table of applied offsets. Batches commit non-durably, grouped into one redb
//!   transaction until the next read (cheap), and [`Store::flush`] commits durably (an fsync);
//!   call it when the consumer commits.
//!
//! [`StoreUrl`] picks a backend from `memory://` or `redb://DIR`.
//!
//! # Example
//!
//! A table partition applies a changelog batch with the offset of its last record, then reads
//! its data and where to resume; the same code runs on either backend.
//!
//! ```
//! use std::sync::Arc;
//! use stores::{MemoryStore, Store, StoreUrl, WriteBatch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! // `redb://DIR` keeps each table in `DIR/<table>.redb`.
//! let redb = format!("redb://{}", dir.path().display()).parse::<StoreUrl>()?.open("word-counts")?;
//!
//! for store in [memory, redb] {
//!     // Changelog records at offsets 10 and 11 of partition 3, applied with their offset.
//!     let mut batch = WriteBatch::new();
//!     batch.put(3, b"apple".to_vec(), 2u64.to_be_bytes());
//!     batch.put(3, b"pear".to_vec(), 1u64.to_be_bytes());
//!     batch.set_offset(3, 11);
//!     store.apply(batch)?;
//!     store.flush()?; // durable now (a no-op in memory)
//!
//!     assert_eq!(store.get(3, b"pear")?, Some(1u64.to_be_bytes().to_vec()));
//!     let keys: Vec<Vec<u8>> = store.prefix(3, b"ap")?.map(|e| e.map(|(k, _)| k)).collect::<Result<_, _>>()?;
//!     assert_eq!(keys, vec![b"apple".to_vec()]);
//!     assert_eq!(store.applied_offset(3)?, Some(11)); // resume the changelog at 12
//!     assert_eq!(store.applied_offset(0)?, None); // never written: read it from the start
//! }
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod batch;
mod error;
mod memory;
mod order;
mod partition;
mod redb_store;
mod store;
mod table_name;
#[doc(hidden)]
pub mod testing;
mod url;

pub use batch::{BatchOp, WriteBatch};
pub use error::{Error, Result};
pub use memory::MemoryStore;
pub use order::key_order;
pub use partition::{Offset, Partition};
pub use redb_store::{RedbOptions, RedbStore};
pub use store::{prefix_end, Entry, EntryIter, PartitionStats, Store, StoreStats};
pub use url::StoreUrl;
