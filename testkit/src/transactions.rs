//! What the transaction coordinator knows of each transactional id: its producer id and
//! epoch, its state, the partitions and groups of the open transaction. Plain data held by the
//! cluster state; `txn` makes the transitions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

/// Transaction states with Kafka's names (the Prepare* states are instantaneous here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnState {
    Empty,
    Ongoing,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }
}

/// One transactional id's metadata.
#[derive(Debug, Clone)]
pub(crate) struct TxnMeta {
    pub producer_id: i64,
    /// The producer id before the last rotation (epoch exhaustion), or -1.
    pub prev_producer_id: i64,
    pub epoch: i16,
    /// The epoch before the last bump, for retries (KIP-360); -1 when a new incarnation fenced it.
    pub last_epoch: i16,
    pub timeout: Duration,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub groups: BTreeSet<String>,
    /// When the open transaction started (its first partition or group).
    pub started: Option<Instant>,
}

/// The coordinator's state: every transactional id it knows.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    pub ids: BTreeMap<String, TxnMeta>,
}

impl Transactions {
    /// The transactional id whose current (or previous) producer id is `producer_id`.
    pub fn by_producer(&self, producer_id: i64) -> Option<&str> {
        self.ids
            .iter()
            .find(|(_, m)| m.producer_id == producer_id)
            .map(|(id, _)| id.as_str())
    }
}

/// A test-facing view of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionInfo {
    /// The transactional id.
    pub transactional_id: String,
    /// Its current producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// Kafka's state name: `Empty`, `Ongoing`, `CompleteCommit` or `CompleteAbort`.
    pub state: &'static str,
    /// The partitions of the open transaction.
    pub partitions: Vec<(String, i32)>,
    /// The groups whose offsets the open transaction commits.
    pub groups: Vec<String>,
    /// The transaction timeout the producer asked for.
    pub timeout: Duration,
}

impl TransactionInfo {
    pub(crate) fn of(tid: &str, m: &TxnMeta) -> Self {
        TransactionInfo {
            transactional_id: tid.to_owned(),
            producer_id: m.producer_id,
            producer_epoch: m.epoch,
            state: m.state.name(),
            partitions: m.partitions.iter().cloned().collect(),
            groups: m.groups.iter().cloned().collect(),
            timeout: m.timeout,
        }
    }
}
