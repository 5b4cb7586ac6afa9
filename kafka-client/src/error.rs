//! The crate's one error type.

use std::time::Duration;

pub use kafka_protocol::error::ResponseError as KafkaCode;
use kafka_protocol::messages::ApiKey;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the client, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bytes from the network or a caller that do not form what they claim to be.
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },

    /// A record batch whose stored CRC-32C does not match its contents.
    #[error("corrupt record batch at base offset {base_offset}: stored CRC {stored:#010x}, computed {computed:#010x}")]
    CorruptBatch {
        base_offset: i64,
        stored: u32,
        computed: u32,
    },

    /// Compressing or decompressing a batch failed.
    #[error("{codec} compression failed: {reason}")]
    Compression { codec: &'static str, reason: String },

    /// The broker answered with a Kafka error code.
    #[error("broker error {code} ({retriable}) for {context}", retriable = if code.is_retriable() { "retriable" } else { "not retriable" })]
    Broker { code: KafkaCode, context: String },

    /// A socket error while talking to a broker.
    #[error("I/O error with broker {broker}: {source}")]
    Io {
        broker: String,
        #[source]
        source: std::io::Error,
    },

    /// The connection to a broker closed while requests were in flight.
    #[error("connection to broker {broker} closed: {reason}")]
    Disconnected { broker: String, reason: String },

    /// No answer within the configured request timeout.
    #[error("{api:?} request to broker {broker} timed out after {after:?}")]
    Timeout {
        api: ApiKey,
        broker: String,
        after: Duration,
    },

    /// The broker does not support any version of an API we need.
    #[error("broker {broker} does not support {api:?} in any version this client speaks ({ours})")]
    UnsupportedVersion {
        api: ApiKey,
        broker: String,
        ours: String,
    },

    /// A topic or partition the cluster does not know.
    #[error("unknown topic or partition {topic}/{partition}")]
    UnknownPartition { topic: String, partition: i32 },

    /// A consumer's position is outside the partition's log and `auto_offset_reset` is `None`;
    /// the partition stays stopped until it is sought.
    #[error("offset {offset} is out of range for {topic}/{partition} and auto_offset_reset is None: seek to continue")]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        offset: i64,
    },

    /// A consumer partition has no position and `auto_offset_reset` is `None`.
    #[error("no position for {topic}/{partition} and auto_offset_reset is None: seek to start")]
    NoPosition { topic: String, partition: i32 },

    /// An operation on a partition that is not assigned to this consumer.
    #[error("{topic}/{partition} is not assigned to this consumer")]
    NotAssigned { topic: String, partition: i32 },

    /// A fetched record batch that cannot be read (CRC mismatch, broken framing, records that
    /// do not decode), still so after one refetch. `offset` is the batch's base offset. The
    /// consumer does not move past it: the partition stays at its position and every `recv`
    /// reports this until the partition is sought, paused or unassigned, so nothing past it
    /// is returned or committed. Not retriable.
    /// [`CorruptBatchPolicy::Skip`](crate::consumer::CorruptBatchPolicy::Skip) skips such
    /// batches instead.
    #[error("record batch of {topic}/{partition} at offset {offset} cannot be read, also after a refetch: {source}; the consumer stays before it: inspect the partition at that offset, then seek past the batch or skip such batches with CorruptBatchPolicy::Skip")]
    CorruptRecords {
        topic: String,
        partition: i32,
        offset: i64,
        #[source]
        source: std::sync::Arc<Error>,
    },

    /// The TLS handshake with a broker failed for a reason retrying will not fix (an
    /// untrusted or mismatched certificate, a refused client certificate).
    #[error("TLS with broker {broker} failed: {reason}")]
    Tls { broker: String, reason: String },

    /// The broker refused this client's SASL credentials or mechanism; not retried.
    #[error("SASL {mechanism} authentication with broker {broker} failed: {reason}")]
    Authentication {
        broker: String,
        mechanism: String,
        reason: String,
    },

    /// Settings that cannot work together, or an address that cannot be parsed.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The producer or consumer was closed before the operation finished.
    #[error("client is closed")]
    Closed,

    /// A record larger than the producer may send in one request.
    #[error("record of {size} bytes exceeds max_request_size of {max} bytes")]
    RecordTooLarge { size: usize, max: usize },

    /// A produced record was not acknowledged; shared by every record of its batch.
    #[error("delivery to {topic}/{partition} failed: {source}")]
    Delivery {
        topic: String,
        partition: i32,
        #[source]
        source: std::sync::Arc<Error>,
    },

    /// A group operation (commit, heartbeat) was refused because this member's generation is
    /// no longer current (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS,
    /// FENCED_INSTANCE_ID): its partitions may already belong to another member, so the
    /// offsets were not committed. The member rejoins on its next `recv`.
    #[error("group {group}: {operation} refused with {code}: the group is rebalancing or this member was removed; it rejoins on the next recv and nothing was committed")]
    Rebalancing {
        group: String,
        operation: &'static str,
        code: KafkaCode,
    },

    /// A transactional producer was fenced: another producer with the same transactional id
    /// started (InitProducerId bumped the epoch; PRODUCER_FENCED, INVALID_PRODUCER_EPOCH), or
    /// the coordinator moved past this producer's epoch (under transaction version 1 also
    /// when it aborted a transaction open longer than `transaction_timeout`). Fatal: this
    /// producer can do nothing more; drop it (a new producer with the id may go on).
    #[error("transactional producer {transactional_id:?} was fenced: its epoch is no longer current (a newer producer with the same transactional_id took over, or the coordinator aborted its transaction after transaction_timeout and moved the epoch on); this producer is unusable, drop it and create a new one")]
    ProducerFenced { transactional_id: String },

    /// The open transaction cannot commit (a record of it was not delivered, the broker said
    /// TRANSACTION_ABORTABLE, the coordinator aborted it after `transaction_timeout`, or the
    /// consumer group refused its offsets because the group moved to a new generation:
    /// `source` is an [`Error::Rebalancing`] then, KIP-447 fencing). Call
    /// `abort_transaction`, then begin a new transaction.
    #[error("the transaction of producer {transactional_id:?} cannot commit: {source}; call abort_transaction, then begin a new one")]
    TransactionAbortable {
        transactional_id: String,
        #[source]
        source: std::sync::Arc<Error>,
    },

    /// A record accepted inside a transaction that was aborted before it was sent.
    #[error("record not sent: the transaction of producer {transactional_id:?} was aborted")]
    TransactionAborted { transactional_id: String },

    /// A transactional operation called when the producer is not in a state for it (no
    /// transaction open, one already open, or a fatal error earlier).
    #[error("transactional producer {transactional_id:?}: {reason}")]
    TransactionState {
        transactional_id: String,
        reason: String,
    },

    /// The cluster will not run transactions for this producer: the transactional id is not
    /// authorized (TRANSACTIONAL_ID_AUTHORIZATION_FAILED) or the brokers lack the
    /// transaction APIs. Fatal for this producer.
    #[error("transactional_id {transactional_id:?} cannot be used: {reason}")]
    TransactionsUnavailable {
        transactional_id: String,
        reason: String,
    },

    /// Retries ran out: the last error is kept.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: Box<Error> },
}

impl Error {
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn broker(code: KafkaCode, context: impl Into<String>) -> Self {
        Error::Broker {
            code,
            context: context.into(),
        }
    }

    /// Whether trying the same operation again (after a metadata refresh or a reconnect) may
    /// succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Broker { code, .. } => code.is_retriable(),
            Error::Io { .. } | Error::Disconnected { .. } | Error::Timeout { .. } => true,
            Error::UnknownPartition { .. } => true,
            Error::Delivery { source, .. } => source.is_retriable(),
            _ => false,
        }
    }

    /// Whether this producer was fenced by a newer one with the same transactional id (fatal:
    /// drop the producer). Also true for a delivery that failed for that reason.
    pub fn is_fenced(&self) -> bool {
        match self {
            Error::ProducerFenced { .. } => true,
            // INVALID_PRODUCER_EPOCH from a partition leader is not: the coordinator moved
            // the epoch on, after another producer took over or after aborting a transaction
            // that timed out. As in Java (KIP-588) it makes the transaction abortable, and
            // the abort learns from the coordinator which it was.
            Error::Broker { code, .. } => *code == KafkaCode::ProducerFenced,
            Error::Delivery { source, .. } => source.is_fenced(),
            Error::RetriesExhausted { last, .. } => last.is_fenced(),
            _ => false,
        }
    }

    /// Whether the open transaction must be aborted (`abort_transaction`), after which the
    /// producer can begin a new one. The contract follows Java's: after such an error abort
    /// and go on; after a fatal one ([`is_fenced`](Self::is_fenced),
    /// [`Error::TransactionsUnavailable`]) drop the producer.
    pub fn is_transaction_abortable(&self) -> bool {
        matches!(self, Error::TransactionAbortable { .. })
    }

    /// The Kafka error code, when the broker sent one.
    pub fn code(&self) -> Option<KafkaCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            Error::RetriesExhausted { last, .. } => last.code(),
            Error::Delivery { source, .. } => source.code(),
            Error::Rebalancing { code, .. } => Some(*code),
            Error::TransactionAbortable { source, .. } => source.code(),
            _ => None,
        }
    }
}

/// Turns a response's error code into `Ok(())` or a typed [`Error::Broker`].
pub fn check_code(code: i16, context: impl FnOnce() -> String) -> Result<()> {
    match KafkaCode::try_from_code(code) {
        None => Ok(()),
        Some(code) => Err(Error::broker(code, context())),
    }
}
