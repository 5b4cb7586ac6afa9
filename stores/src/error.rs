//! The crate's one error type.

use std::path::PathBuf;

use crate::Partition;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a store.
///
/// Messages name the file, the operation and the partition involved, and for the errors an
/// operator has to act on (a locked or incompatible file), they say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store URL that is not `memory://`, `redb:///abs/dir` or `redb://rel/dir`.
    #[error("invalid store URL {url:?}: {reason} (expected memory://, redb:///absolute/dir or redb://relative/dir)")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A table name that cannot be used as a file name.
    #[error("invalid table name {name:?}: {reason}")]
    InvalidTableName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Another process (or another handle in this one) has the store file open.
    #[error(
        "store file {} is locked by another process: stop the other worker that uses this \
         store directory, or give this worker its own directory in the store URL",
        path.display()
    )]
    Locked {
        /// The locked file.
        path: PathBuf,
    },

    /// The file was written by a redb or store-layout version this build cannot read.
    #[error(
        "store file {} was written by an incompatible version ({detail}): delete the file to \
         rebuild the table from its changelog, or open it with the version that wrote it",
        path.display()
    )]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// What did not match.
        detail: String,
    },

    /// The file's contents are damaged or are not a store at all.
    #[error(
        "store file {} is corrupted ({detail}): delete the file to rebuild the table from its \
         changelog",
        path.display()
    )]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// What redb or this crate found.
        detail: String,
    },

    /// An I/O error outside redb (creating the store directory, for instance).
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Any other error reported by redb.
    #[error("redb error on {} while {op}{}: {source}", path.display(), fmt_partition(*partition))]
    Redb {
        /// The store file.
        path: PathBuf,
        /// What the store was doing.
        op: &'static str,
        /// The partition involved, if any.
        partition: Option<Partition>,
        /// The underlying error (boxed: redb's error is large).
        #[source]
        source: Box<redb::Error>,
    },

    /// An earlier write or commit failed (or a thread panicked while writing), so the store may
    /// have lost batches that were applied successfully before it: its reads would see older
    /// values. It refuses every later call, reads included, until it is reopened; the table's
    /// partitions then recover from their changelog from the last durable applied offset.
    #[error(
        "store {store} failed earlier ({cause}) and refuses every call until it is reopened{}: \
         restart the worker (reopening the store) and its partitions recover from their \
         changelog",
        fmt_lost(partitions)
    )]
    Poisoned {
        /// The store: `file PATH` for a redb store, `memory` for a memory store.
        store: String,
        /// The partitions whose writes since the last durable commit may be lost.
        partitions: Vec<Partition>,
        /// The failure that poisoned the store.
        cause: String,
    },
}

fn fmt_lost(partitions: &[Partition]) -> String {
    match partitions {
        [] => String::new(),
        [p] => format!(" (writes to partition {p} since its last durable commit may be lost)"),
        ps => {
            let ps: Vec<String> = ps.iter().map(ToString::to_string).collect();
            format!(
                " (writes to partitions {} since its last durable commit may be lost)",
                ps.join(", ")
            )
        }
    }
}

fn fmt_partition(partition: Option<Partition>) -> String {
    partition.map_or_else(String::new, |p| format!(" (partition {p})"))
}
