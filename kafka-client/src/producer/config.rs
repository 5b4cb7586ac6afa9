//! Producer settings, named and defaulted like the Java client's.

use std::time::Duration;

use crate::protocol::record::Compression;

/// How many replicas must have a record before the broker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: fire and forget; offsets are unknown (reported as -1).
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=all`: every in-sync replica has it.
    All,
}

impl Acks {
    pub(crate) fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Producer settings. Defaults follow the Java client (`acks=all`, idempotence on,
/// `linger.ms=5`, `batch.size=16384`, `max.request.size=1048576`).
///
/// ```
/// # use kafka_client::producer::{Acks, ProducerConfig};
/// # use kafka_client::protocol::record::Compression;
/// let config = ProducerConfig::default()
///     .with_acks(Acks::Leader)
///     .with_batch_size(64 * 1024)
///     .with_compression(Compression::Lz4);
/// assert!(!config.idempotence_enabled()); // acks=1 turns the default idempotence off
/// ```
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// How many replicas must have a record before it counts as written.
    pub acks: Acks,
    /// How long a batch waits for more records before it is sent.
    pub linger: Duration,
    /// Target size in bytes of one partition's batch.
    pub batch_size: usize,
    /// Upper bound of one Produce request (and so of one record).
    pub max_request_size: usize,
    /// The codec for record batches.
    pub compression: Compression,
    /// `None` (the default) means on exactly when `acks` is `All`, as in Java.
    pub idempotence: Option<bool>,
    /// How long a record may take from `send` to acknowledgement, retries included.
    pub delivery_timeout: Duration,
    /// Pause before retrying a failed batch.
    pub retry_backoff: Duration,
    /// Batches of one partition in flight at once (at most 5 with idempotence).
    pub max_in_flight_per_partition: usize,
    /// Bytes of records accepted but not yet acknowledged; `send` waits beyond that.
    pub buffer_memory: usize,
    /// How long the broker may wait for replicas (`timeout_ms` of Produce).
    pub ack_timeout: Duration,
    /// Makes the producer transactional (`transactional.id`): `None` (the default) for a
    /// plain (idempotent) producer. The id names the producer across restarts: a new producer
    /// with the same id fences the older one and aborts its open transaction.
    pub transactional_id: Option<String>,
    /// How long a transaction may stay open before the coordinator aborts it
    /// (`transaction.timeout.ms`, 60 s as in Java; at most the broker's
    /// `transaction.max.timeout.ms`).
    pub transaction_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            max_request_size: 1024 * 1024,
            compression: Compression::None,
            idempotence: None,
            delivery_timeout: Duration::from_secs(120),
            retry_backoff: Duration::from_millis(100),
            max_in_flight_per_partition: 5,
            buffer_memory: 32 * 1024 * 1024,
            ack_timeout: Duration::from_secs(30),
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }
}

impl ProducerConfig {
    /// Sets [`acks`](Self::acks) (`All` keeps idempotence on; anything else turns the default off).
    pub fn with_acks(mut self, acks: Acks) -> Self {
        self.acks = acks;
        self
    }
    /// Sets [`linger`](Self::linger).
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }
    /// Sets [`batch_size`](Self::batch_size) in bytes.
    pub fn with_batch_size(mut self, bytes: usize) -> Self {
        self.batch_size = bytes;
        self
    }
    /// Sets [`max_request_size`](Self::max_request_size) in bytes.
    pub fn with_max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }
    /// Sets [`compression`](Self::compression).
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }
    /// Turns idempotence on or off explicitly (on needs `Acks::All`).
    pub fn with_idempotence(mut self, on: bool) -> Self {
        self.idempotence = Some(on);
        self
    }
    /// Sets [`delivery_timeout`](Self::delivery_timeout).
    pub fn with_delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }
    /// Sets [`buffer_memory`](Self::buffer_memory) in bytes.
    pub fn with_buffer_memory(mut self, bytes: usize) -> Self {
        self.buffer_memory = bytes;
        self
    }

    /// Makes the producer transactional under `id` (implies idempotence: acks must stay
    /// `All`). See [`Producer`](super::Producer) for the transaction methods.
    pub fn with_transactional_id(mut self, id: impl Into<String>) -> Self {
        self.transactional_id = Some(id.into());
        self
    }
    /// Sets [`transaction_timeout`](Self::transaction_timeout).
    pub fn with_transaction_timeout(mut self, timeout: Duration) -> Self {
        self.transaction_timeout = timeout;
        self
    }

    /// Whether this configuration produces idempotently (always, when transactional).
    pub fn idempotence_enabled(&self) -> bool {
        self.transactional_id.is_some() || self.idempotence.unwrap_or(self.acks == Acks::All)
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        let fail = |setting, reason: &str| {
            Err(crate::Error::InvalidSetting {
                setting,
                reason: reason.to_owned(),
            })
        };
        if let Some(id) = &self.transactional_id {
            if id.is_empty() {
                return fail("ProducerConfig::transactional_id", "must not be empty");
            }
            if self.acks != Acks::All || self.idempotence == Some(false) {
                return fail(
                    "ProducerConfig::transactional_id",
                    "needs idempotence and acks=all: use Acks::All and leave idempotence on",
                );
            }
            let ms = self.transaction_timeout.as_millis();
            if ms == 0 || ms > i32::MAX as u128 {
                return fail(
                    "ProducerConfig::transaction_timeout",
                    "must be between 1 ms and i32::MAX ms",
                );
            }
        }
        if self.idempotence == Some(true) && self.acks != Acks::All {
            return fail(
                "ProducerConfig::idempotence",
                "needs acks=all: use Acks::All or with_idempotence(false)",
            );
        }
        if self.idempotence_enabled() && !(1..=5).contains(&self.max_in_flight_per_partition) {
            return fail(
                "ProducerConfig::max_in_flight_per_partition",
                "idempotence allows 1 to 5 batches in flight per partition",
            );
        }
        if self.batch_size == 0 {
            return fail("ProducerConfig::batch_size", "must be positive");
        }
        if self.max_request_size < 128 {
            return fail(
                "ProducerConfig::max_request_size",
                "must be at least 128 bytes",
            );
        }
        Ok(())
    }
}
