//! Consumer settings, named and defaulted like the Java client's.

use std::time::Duration;

/// Where to start when a partition has no position yet, or its position has left the log
/// (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AutoOffsetReset {
    /// The first offset still in the log.
    Earliest,
    /// The end of the log: only records produced from now on (Java's default).
    #[default]
    Latest,
    /// No automatic reset: the record stream yields
    /// [`Error::OffsetOutOfRange`](crate::Error::OffsetOutOfRange) or
    /// [`Error::NoPosition`](crate::Error::NoPosition) and the partition waits for a `seek`.
    None,
}

/// Which records of transactional producers a consumer sees (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Everything, including records of open and aborted transactions (Java's default).
    #[default]
    ReadUncommitted,
    /// Only committed records: fetches stop at the last stable offset and records of aborted
    /// transactions are dropped.
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire code (Fetch and ListOffsets `isolation_level`).
    pub(crate) fn code(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// What the consumer does with a fetched record batch it cannot read: a CRC-32C mismatch,
/// broken framing, or records that do not decode. Either way it first refetches the batch
/// once (the damage may have happened in transit); the policy applies when the batch is
/// still unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CorruptBatchPolicy {
    /// Stop the partition before the batch: `recv` returns
    /// [`Error::CorruptRecords`](crate::Error::CorruptRecords) naming topic, partition and
    /// offset, again on every call, until the partition is sought, paused or unassigned. Its
    /// position stays before the batch, so a commit cannot move past records nobody read
    /// (Java's consumer stops there too).
    #[default]
    Fail,
    /// Move past the batch: its records are lost to this consumer. Each skip is logged as a
    /// warning naming topic, partition and the skipped offsets, and counted in
    /// [`Consumer::corrupt_batches_skipped`](super::Consumer::corrupt_batches_skipped).
    /// A batch whose framing is broken cannot be skipped (where the next one starts is
    /// unknown): it fails as with `Fail`.
    Skip,
}

/// Consumer settings. Defaults follow the Java client; prefetching is bounded in bytes by
/// [`max_buffered_bytes`](Self::max_buffered_bytes).
///
/// CRC-32C checksums of fetched batches are always verified (Java's `check.crcs=true`); the
/// check is cheap next to decoding. What happens to a batch that fails it:
/// [`corrupt_batch_policy`](Self::corrupt_batch_policy).
///
/// ```
/// # use std::time::Duration;
/// # use kafka_client::consumer::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
/// let config = ConsumerConfig::default()
///     .with_auto_offset_reset(AutoOffsetReset::Earliest)
///     .with_isolation_level(IsolationLevel::ReadCommitted)
///     .with_fetch_max_wait(Duration::from_millis(100))
///     .with_max_buffered_bytes(8 * 1024 * 1024);
/// assert_eq!(config.fetch_min_bytes, 1);
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Bytes a broker should gather before answering a fetch (`fetch.min.bytes`).
    pub fetch_min_bytes: i32,
    /// Longest a broker waits for `fetch_min_bytes` (`fetch.max.wait.ms`).
    pub fetch_max_wait: Duration,
    /// Upper bound of one fetch response (`fetch.max.bytes`); a single batch larger than this
    /// is still returned, so a consumer never gets stuck.
    pub fetch_max_bytes: i32,
    /// Upper bound per partition in one fetch response (`max.partition.fetch.bytes`).
    pub max_partition_fetch_bytes: i32,
    /// Bytes of fetched but not yet consumed records held in memory, over all partitions. No
    /// fetch is sent while this is reached; one response may overshoot it by at most one
    /// response's size.
    pub max_buffered_bytes: usize,
    /// What to do without a valid position.
    pub auto_offset_reset: AutoOffsetReset,
    /// Which transactional records to return.
    pub isolation_level: IsolationLevel,
    /// First pause after a failed fetch or metadata lookup; doubles up to
    /// [`retry_backoff_max`](Self::retry_backoff_max).
    pub retry_backoff: Duration,
    /// Upper bound of the retry pause.
    pub retry_backoff_max: Duration,
    /// What to do with a batch that stays unreadable after a refetch (default: fail).
    pub corrupt_batch_policy: CorruptBatchPolicy,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
            max_buffered_bytes: 64 * 1024 * 1024,
            auto_offset_reset: AutoOffsetReset::default(),
            isolation_level: IsolationLevel::default(),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            corrupt_batch_policy: CorruptBatchPolicy::default(),
        }
    }
}

impl ConsumerConfig {
    /// Sets `fetch_min_bytes`.
    pub fn with_fetch_min_bytes(mut self, bytes: i32) -> Self {
        self.fetch_min_bytes = bytes;
        self
    }

    /// Sets `fetch_max_wait`.
    pub fn with_fetch_max_wait(mut self, wait: Duration) -> Self {
        self.fetch_max_wait = wait;
        self
    }

    /// Sets `fetch_max_bytes`.
    pub fn with_fetch_max_bytes(mut self, bytes: i32) -> Self {
        self.fetch_max_bytes = bytes;
        self
    }

    /// Sets `max_partition_fetch_bytes`.
    pub fn with_max_partition_fetch_bytes(mut self, bytes: i32) -> Self {
        self.max_partition_fetch_bytes = bytes;
        self
    }

    /// Sets the prefetch bound `max_buffered_bytes`.
    pub fn with_max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }

    /// Sets `auto_offset_reset`.
    pub fn with_auto_offset_reset(mut self, reset: AutoOffsetReset) -> Self {
        self.auto_offset_reset = reset;
        self
    }

    /// Sets `isolation_level`.
    pub fn with_isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = level;
        self
    }

    /// Sets the first and the largest retry pause.
    pub fn with_retry_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.retry_backoff = first;
        self.retry_backoff_max = max;
        self
    }

    /// Sets `corrupt_batch_policy`.
    pub fn with_corrupt_batch_policy(mut self, policy: CorruptBatchPolicy) -> Self {
        self.corrupt_batch_policy = policy;
        self
    }

    /// Rejects settings that cannot work.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |setting, reason: &str| {
            Err(crate::Error::InvalidSetting {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.fetch_max_bytes <= 0 {
            return bad("ConsumerConfig::fetch_max_bytes", "must be positive");
        }
        if self.max_partition_fetch_bytes <= 0 {
            return bad(
                "ConsumerConfig::max_partition_fetch_bytes",
                "must be positive",
            );
        }
        if self.max_buffered_bytes == 0 {
            return bad("ConsumerConfig::max_buffered_bytes", "must be positive");
        }
        if self.fetch_min_bytes < 0 {
            return bad("ConsumerConfig::fetch_min_bytes", "must not be negative");
        }
        if i32::try_from(self.fetch_max_wait.as_millis()).is_err() {
            return bad(
                "ConsumerConfig::fetch_max_wait",
                "does not fit in i32 milliseconds",
            );
        }
        Ok(())
    }
}
