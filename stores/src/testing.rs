//! Test support, not part of the stable API (hidden from the docs): a redb storage backend
//! that fails on demand, for tests of what a [`RedbStore`](crate::RedbStore) and whatever sits
//! on it (the streams crate's tables) do after an I/O failure.
//!
//! ```
//! use stores::testing::FailingDisk;
//! use stores::{RedbOptions, RedbStore, Store, WriteBatch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("counts.redb");
//! let (disk, faults) = FailingDisk::open(&path)?;
//! let store = RedbStore::open_backend(&path, disk, RedbOptions::new())?;
//! faults.fail_after(0); // the disk breaks: the next write, resize or sync fails
//! let mut batch = WriteBatch::new();
//! batch.put(0, b"k".to_vec(), b"v".to_vec());
//! store.apply(batch)?; // grouped in memory: no I/O yet
//! assert!(store.flush().is_err()); // the durable commit fails
//! assert!(store.get(0, b"k").is_err()); // and the store refuses every later call
//! # Ok(())
//! # }
//! ```

use std::fs::OpenOptions;
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::BackendError;

/// The disk under a redb file: reads and locks go to the file; writes, resizes and syncs fail
/// once the [`DiskFaults`] handed out with it say so (a full or broken disk). Open the store
/// over it with [`RedbStore::open_backend`](crate::RedbStore::open_backend).
#[derive(Debug)]
pub struct FailingDisk {
    file: FileBackend,
    faults: DiskFaults,
}

/// The switch of a [`FailingDisk`]: how many more writes, resizes and syncs succeed. Clones
/// share it. Unlimited until told otherwise.
#[derive(Debug, Clone)]
pub struct DiskFaults {
    /// Writes, resizes and syncs left before they fail.
    budget: Arc<AtomicU64>,
    /// Syncs left before they fail (they spend `budget` too).
    syncs: Arc<AtomicU64>,
}

impl Default for DiskFaults {
    fn default() -> Self {
        Self {
            budget: Arc::new(AtomicU64::new(u64::MAX)),
            syncs: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }
}

impl DiskFaults {
    /// Writes, resizes and syncs fail once `n` more of them have been made.
    pub fn fail_after(&self, n: u64) {
        self.budget.store(n, Ordering::SeqCst);
    }

    /// Syncs (the end of every durable commit) fail once `n` more have been made; writes and
    /// resizes keep working.
    pub fn fail_syncs_after(&self, n: u64) {
        self.syncs.store(n, Ordering::SeqCst);
    }

    /// Every operation succeeds again (redb itself still refuses a file after a failure until
    /// it is reopened).
    pub fn heal(&self) {
        self.fail_after(u64::MAX);
        self.fail_syncs_after(u64::MAX);
    }

    fn spend(budget: &AtomicU64) -> io::Result<()> {
        budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
            .map(drop)
            .map_err(|_| io::Error::other("injected I/O failure"))
    }
}

impl FailingDisk {
    /// Opens (or creates) the file at `path`; the faults start unlimited.
    pub fn open(path: impl AsRef<Path>) -> io::Result<(Self, DiskFaults)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let faults = DiskFaults::default();
        let disk = FailingDisk {
            file: FileBackend::new(file).map_err(io::Error::other)?,
            faults: faults.clone(),
        };
        Ok((disk, faults))
    }
}

impl redb::StorageBackend for FailingDisk {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        DiskFaults::spend(&self.faults.budget)?;
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        DiskFaults::spend(&self.faults.syncs)?;
        DiskFaults::spend(&self.faults.budget)?;
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        DiskFaults::spend(&self.faults.budget)?;
        self.file.write(offset, data)
    }
    fn close(&self) -> io::Result<()> {
        self.file.close()
    }
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }
    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}
