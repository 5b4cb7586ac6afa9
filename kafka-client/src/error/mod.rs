//! The crate's one error type, [`Error`], with the broker's error codes ([`KafkaCode`]) and the
//! request types ([`Api`]) it names.
//!
//! Every fallible call returns [`Result`]. Match on the variants you handle (the enum is
//! `#[non_exhaustive]`: keep a `_` arm) and ask the rest [`Error::is_retriable`],
//! [`Error::is_fenced`], [`Error::is_transaction_abortable`] or [`Error::is_config`] what to
//! do; [`Error::code`] gives the broker's code wherever one is nested.

use std::time::Duration;

mod apis;
mod codes;

pub use apis::Api;
pub use codes::KafkaCode;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the client, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from the network or a caller that do not form what they claim to be.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read (a response, a record batch, a header).
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A record batch whose stored CRC-32C does not match its contents.
    #[error("corrupt record batch at base offset {base_offset}: stored CRC {stored:#010x}, computed {computed:#010x}")]
    CorruptBatch {
        /// The batch's first offset.
        base_offset: i64,
        /// The CRC the batch carries.
        stored: u32,
        /// The CRC of the bytes received.
        computed: u32,
    },

    /// Compressing or decompressing a batch failed.
    #[error("{codec} compression failed: {reason}")]
    Compression {
        /// The codec (`gzip`, `snappy`, `lz4`, `zstd`).
        codec: &'static str,
        /// What the codec reported.
        reason: String,
    },

    /// The broker answered with a Kafka error code.
    #[error("broker error {code} ({retriable}) for {context}", retriable = if code.is_retriable() { "retriable" } else { "not retriable" })]
    Broker {
        /// The code the broker answered with.
        code: KafkaCode,
        /// The request and resource it concerned (`Produce orders/3`).
        context: String,
    },

    /// A socket error while talking to a broker.
    #[error("I/O error with broker {broker}: {source}")]
    Io {
        /// The broker's address or id.
        broker: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },

    /// The connection to a broker closed while requests were in flight.
    #[error("connection to broker {broker} closed: {reason}")]
    Disconnected {
        /// The broker's address or id.
        broker: String,
        /// Why the connection ended.
        reason: String,
    },

    /// No answer within the configured request timeout.
    #[error("{api} request to broker {broker} timed out after {after:?}")]
    Timeout {
        /// The request that got no answer.
        api: Api,
        /// The broker's address or id.
        broker: String,
        /// How long the client waited.
        after: Duration,
    },

    /// The broker does not support any version of an API we need.
    #[error("broker {broker} does not support {api} in any version this client speaks ({ours})")]
    UnsupportedVersion {
        /// The request the broker cannot serve.
        api: Api,
        /// The broker's address or id.
        broker: String,
        /// The versions this client speaks (`3..=13`).
        ours: String,
    },

    /// A topic or partition the cluster does not know.
    #[error("unknown topic or partition {topic}/{partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },

    /// A consumer's position is outside the partition's log and `auto_offset_reset` is `None`;
    /// the partition stays stopped until it is sought.
    #[error("offset {offset} is out of range for {topic}/{partition} and auto_offset_reset is None: seek to continue")]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The position the broker refused.
        offset: i64,
    },

    /// A consumer partition has no position and `auto_offset_reset` is `None`.
    #[error("no position for {topic}/{partition} and auto_offset_reset is None: seek to start")]
    NoPosition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },

    /// An operation on a partition that is not assigned to this consumer.
    #[error("{topic}/{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },

    /// A fetched record batch that cannot be read (CRC mismatch, broken framing, records that
    /// do not decode), still so after one refetch. `offset` is the batch's base offset. The
    /// consumer does not move past it: the partition stays at its position and every `recv`
    /// reports this until the partition is sought, paused or unassigned, so nothing past it
    /// is returned or committed. Not retriable.
    /// [`CorruptBatchPolicy::Skip`](crate::consumer::CorruptBatchPolicy::Skip) skips such
    /// batches instead.
    #[error("record batch of {topic}/{partition} at offset {offset} cannot be read, also after a refetch: {source}; the consumer stays before it: inspect the partition at that offset, then seek past the batch or skip such batches with CorruptBatchPolicy::Skip")]
    CorruptRecords {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The base offset of the unreadable batch.
        offset: i64,
        /// Why it cannot be read (a [`Error::CorruptBatch`] or [`Error::Malformed`]).
        #[source]
        source: std::sync::Arc<Error>,
    },

    /// The TLS handshake with a broker failed for a reason retrying will not fix (an
    /// untrusted or mismatched certificate, a refused client certificate).
    #[error("TLS with broker {broker} failed: {reason}")]
    Tls {
        /// The broker's address or id.
        broker: String,
        /// What the handshake reported, with what to check.
        reason: String,
    },

    /// The broker refused this client's SASL credentials or mechanism; not retried.
    #[error("SASL {mechanism} authentication with broker {broker} failed: {reason}")]
    Authentication {
        /// The broker's address or id.
        broker: String,
        /// The SASL mechanism tried (`SCRAM-SHA-512`).
        mechanism: String,
        /// What the broker or the exchange said.
        reason: String,
    },

    /// A broker URL that cannot be parsed.
    #[error("invalid broker URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: UrlProblem,
    },

    /// A setting (or two that must agree) that cannot work; the message says what to set.
    #[error("{setting}: {reason}")]
    InvalidSetting {
        /// The setting, as its builder method or field names it
        /// (`ProducerConfig::transaction_timeout`).
        setting: &'static str,
        /// Why it cannot work and what to set instead.
        reason: String,
    },

    /// The URL's security protocol authenticates with SASL but no credentials are set.
    #[error("security protocol {protocol} needs SASL credentials: set them with ClientConfig::with_sasl")]
    MissingSaslCredentials {
        /// The security protocol (`SASL_SSL`, `SASL_PLAINTEXT`).
        protocol: &'static str,
    },

    /// SASL credentials are set but the security protocol does not authenticate; they are not
    /// sent over plain TCP unless the URL says `sasl_plaintext://`.
    #[error("SASL credentials are set but the security protocol is {protocol}, which does not authenticate: use a sasl_ssl:// URL (or ClientConfig::with_tls), or sasl_plaintext:// to send them over plain TCP knowingly")]
    SaslWithoutSaslProtocol {
        /// The security protocol in effect (`PLAINTEXT`, `SSL`).
        protocol: &'static str,
    },

    /// A name this client does not know (a SASL mechanism, a compression type).
    #[error("unknown {kind} {name:?}: use {expected}")]
    UnknownName {
        /// What the name was meant to be (`SASL mechanism`).
        kind: &'static str,
        /// The name as given.
        name: String,
        /// The names accepted.
        expected: &'static str,
    },

    /// TLS settings that cannot be used (unreadable or invalid certificates or keys, a
    /// server name that is not one, a CPU the crypto provider cannot run on).
    #[error("TLS settings cannot be used: {reason}")]
    InvalidTls {
        /// What is wrong and what to do.
        reason: String,
    },

    /// A transactional operation on a producer without a transactional id.
    #[error(
        "{operation} needs a transactional producer: set ProducerConfig::with_transactional_id"
    )]
    NotTransactional {
        /// The operation called (`begin_transaction`).
        operation: &'static str,
    },

    /// A seek to a negative offset.
    #[error("seek {topic}/{partition}: offset {offset} is negative")]
    NegativeOffset {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset asked for.
        offset: i64,
    },

    /// The group coordinator chose a partition assignor this member does not have.
    #[error("group {group}: the coordinator chose assignor {assignor:?}, which this member does not have: give every member the same assignors")]
    UnknownAssignor {
        /// The consumer group.
        group: String,
        /// The assignor's name.
        assignor: String,
    },

    /// The producer or consumer was closed before the operation finished.
    #[error("client is closed")]
    Closed,

    /// A record larger than the producer may send in one request.
    #[error("record of {size} bytes exceeds max_request_size of {max} bytes")]
    RecordTooLarge {
        /// The record's encoded size.
        size: usize,
        /// The producer's `max_request_size`.
        max: usize,
    },

    /// A produced record was not acknowledged; shared by every record of its batch.
    #[error("delivery to {topic}/{partition} failed: {source}")]
    Delivery {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Why the batch was not acknowledged.
        #[source]
        source: std::sync::Arc<Error>,
    },

    /// A group operation (commit, heartbeat) was refused because this member's generation is
    /// no longer current (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS,
    /// FENCED_INSTANCE_ID): its partitions may already belong to another member, so the
    /// offsets were not committed. The member rejoins on its next `recv`.
    #[error("group {group}: {operation} refused with {code}: the group is rebalancing or this member was removed; it rejoins on the next recv and nothing was committed")]
    Rebalancing {
        /// The consumer group.
        group: String,
        /// The refused operation (`OffsetCommit`, `Heartbeat`).
        operation: &'static str,
        /// The code the coordinator answered with.
        code: KafkaCode,
    },

    /// A transactional producer was fenced: another producer with the same transactional id
    /// started (InitProducerId bumped the epoch; PRODUCER_FENCED, INVALID_PRODUCER_EPOCH), or
    /// the coordinator moved past this producer's epoch (under transaction version 1 also
    /// when it aborted a transaction open longer than `transaction_timeout`). Fatal: this
    /// producer can do nothing more; drop it (a new producer with the id may go on).
    #[error("transactional producer {transactional_id:?} was fenced: its epoch is no longer current (a newer producer with the same transactional_id took over, or the coordinator aborted its transaction after transaction_timeout and moved the epoch on); this producer is unusable, drop it and create a new one")]
    ProducerFenced {
        /// The producer's transactional id.
        transactional_id: String,
    },

    /// The open transaction cannot commit (a record of it was not delivered, the broker said
    /// TRANSACTION_ABORTABLE, the coordinator aborted it after `transaction_timeout`, or the
    /// consumer group refused its offsets because the group moved to a new generation:
    /// `source` is an [`Error::Rebalancing`] then, KIP-447 fencing). Call
    /// `abort_transaction`, then begin a new transaction.
    #[error("the transaction of producer {transactional_id:?} cannot commit: {source}; call abort_transaction, then begin a new one")]
    TransactionAbortable {
        /// The producer's transactional id.
        transactional_id: String,
        /// What made the transaction unable to commit.
        #[source]
        source: std::sync::Arc<Error>,
    },

    /// A record accepted inside a transaction that was aborted before it was sent.
    #[error("record not sent: the transaction of producer {transactional_id:?} was aborted")]
    TransactionAborted {
        /// The producer's transactional id.
        transactional_id: String,
    },

    /// A transactional operation called when the producer is not in a state for it (no
    /// transaction open, one already open, or a fatal error earlier).
    #[error("transactional producer {transactional_id:?}: {problem}")]
    TransactionState {
        /// The producer's transactional id.
        transactional_id: String,
        /// Which state the producer is in and what the call needs.
        problem: TxnStateProblem,
    },

    /// The cluster will not run transactions for this producer: the transactional id is not
    /// authorized (TRANSACTIONAL_ID_AUTHORIZATION_FAILED) or the brokers lack the
    /// transaction APIs. Fatal for this producer.
    #[error("transactional_id {transactional_id:?} cannot be used: {reason}")]
    TransactionsUnavailable {
        /// The producer's transactional id.
        transactional_id: String,
        /// Why (the broker's code, or the missing APIs).
        reason: String,
    },

    /// Retries ran out: the last error is kept.
    #[error("gave up after {attempts} attempts in {after:.1?}: {last}")]
    RetriesExhausted {
        /// How many times the operation was tried.
        attempts: u32,
        /// How long it was tried for.
        after: Duration,
        /// The error of the last attempt.
        last: Box<Error>,
    },
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

    /// Whether the error comes from settings or arguments that cannot work (a bad URL, a
    /// setting out of range, missing credentials): retrying will not help, changing the
    /// configuration will.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Error::InvalidUrl { .. }
                | Error::InvalidSetting { .. }
                | Error::MissingSaslCredentials { .. }
                | Error::SaslWithoutSaslProtocol { .. }
                | Error::UnknownName { .. }
                | Error::InvalidTls { .. }
                | Error::NotTransactional { .. }
                | Error::NegativeOffset { .. }
                | Error::UnknownAssignor { .. }
        )
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

/// Why a transactional call does not fit the producer's state ([`Error::TransactionState`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnStateProblem {
    /// `begin_transaction` while a transaction is open.
    AlreadyOpen,
    /// A call that needs an open transaction, before `begin_transaction`.
    NotOpen {
        /// The call (`send`, `commit_transaction`).
        operation: &'static str,
    },
    /// A call while the previous transaction is still being committed or aborted.
    Finishing {
        /// The call.
        operation: &'static str,
    },
    /// `commit_transaction` while the transaction is being aborted.
    CommitWhileAborting,
    /// The producer failed earlier with an error no transaction recovers from.
    FailedEarlier {
        /// That error, as it was reported.
        reason: String,
    },
}

impl std::fmt::Display for TxnStateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxnStateProblem::AlreadyOpen => f.write_str(
                "a transaction is already open: commit or abort it before beginning another",
            ),
            TxnStateProblem::NotOpen { operation } => write!(
                f,
                "{operation} needs an open transaction: call begin_transaction first"
            ),
            TxnStateProblem::Finishing { operation } => write!(
                f,
                "{operation} while the previous transaction is still being committed or aborted: finish that call first"
            ),
            TxnStateProblem::CommitWhileAborting => f.write_str(
                "commit_transaction while the transaction is being aborted: finish abort_transaction",
            ),
            TxnStateProblem::FailedEarlier { reason } => write!(
                f,
                "failed earlier and cannot be used any more ({reason}); drop it and create a new producer"
            ),
        }
    }
}

/// What is wrong with a broker URL ([`Error::InvalidUrl`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlProblem {
    /// A scheme that names no security protocol.
    UnsupportedScheme {
        /// The scheme as given.
        scheme: String,
    },
    /// A TLS or SASL scheme where only plain addresses are parsed
    /// ([`parse_bootstrap`](crate::config::parse_bootstrap)).
    SecureScheme {
        /// The scheme as given.
        scheme: String,
    },
    /// Addresses with different schemes: one security protocol applies to all brokers.
    MixedSchemes,
    /// An address that is not `host:port`.
    NotHostPort {
        /// The address as given.
        address: String,
    },
    /// No address at all.
    NoAddress,
}

impl std::fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlProblem::UnsupportedScheme { scheme } => write!(
                f,
                "unsupported scheme {scheme:?}: use kafka://, ssl://, sasl_ssl:// or sasl_plaintext://"
            ),
            UrlProblem::SecureScheme { scheme } => write!(
                f,
                "scheme {scheme:?} is not plain TCP: TLS and SASL URLs go through ClientConfig::new or parse_broker_url"
            ),
            UrlProblem::MixedSchemes => {
                f.write_str("it mixes security protocols: give one scheme for all brokers")
            }
            UrlProblem::NotHostPort { address } => write!(f, "address {address:?} is not host:port"),
            UrlProblem::NoAddress => f.write_str("it has no broker address"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientConfig;

    #[test]
    fn a_bad_broker_url_is_said_once() {
        let err = ClientConfig::new("https://h:1").unwrap_err();
        assert!(err.is_config());
        assert!(
            matches!(&err, Error::InvalidUrl { url, reason: UrlProblem::UnsupportedScheme { scheme } }
                if url == "https://h:1" && scheme == "https"),
            "{err:?}"
        );
        let text = err.to_string();
        assert_eq!(
            text,
            "invalid broker URL \"https://h:1\": unsupported scheme \"https\": \
             use kafka://, ssl://, sasl_ssl:// or sasl_plaintext://"
        );
        assert_eq!(text.matches("kafka://").count(), 1, "{text}");
        assert_eq!(text.matches("invalid").count(), 1, "{text}");
        assert!(
            std::error::Error::source(&err).is_none(),
            "nothing said again below"
        );
    }

    #[test]
    fn a_bad_address_names_the_url_as_written() {
        let err = ClientConfig::new("ssl://h:1,nohost").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidUrl { url, reason: UrlProblem::NotHostPort { address } }
                if url == "ssl://h:1,nohost" && address == "nohost"),
            "{err:?}"
        );
    }

    #[test]
    fn broker_codes_round_trip_and_unknown_codes_are_kept() {
        let err = check_code(6, || "Produce orders/0".into()).unwrap_err();
        assert_eq!(err.code(), Some(KafkaCode::NotLeaderOrFollower));
        assert!(err.is_retriable());
        assert_eq!(
            err.to_string(),
            "broker error NotLeaderOrFollower (6) (retriable) for Produce orders/0"
        );
        assert!(check_code(0, || unreachable!()).is_ok());

        let err = check_code(9999, || "Fetch".into()).unwrap_err();
        let code = err.code().unwrap();
        assert_eq!(code.code(), 9999);
        assert_eq!(code.name(), None);
        assert!(!err.is_retriable());
        assert_eq!(code.to_string(), "unknown error code 9999");
        assert_eq!(format!("{code:?}"), "KafkaCode(9999)");
        assert_eq!(i16::from(KafkaCode::ProducerFenced), 90);
        assert_eq!(format!("{:?}", KafkaCode::ProducerFenced), "ProducerFenced");
    }

    /// Our table names every code the protocol crate decodes, with the same retriability, so
    /// no broker answer changes meaning by passing through our type.
    #[test]
    fn the_code_table_matches_the_wire_protocol() {
        use kafka_protocol::error::ResponseError;
        for wire in -1..=i16::from(KafkaCode::ShareSessionLimitReached) + 5 {
            let ours = KafkaCode::try_from_code(wire);
            let theirs = ResponseError::try_from_code(wire);
            assert_eq!(
                ours.map(KafkaCode::code),
                theirs.map(|c| c.code()),
                "{wire}"
            );
            if let (Some(ours), Some(theirs)) = (ours, theirs) {
                assert_eq!(ours.is_retriable(), theirs.is_retriable(), "{wire}");
                let known = !matches!(theirs, ResponseError::Unknown(_));
                assert_eq!(ours.name().is_some(), known, "{wire}");
                if known {
                    assert_eq!(ours.name(), Some(theirs.to_string().as_str()), "{wire}");
                }
            }
        }
    }

    #[test]
    fn apis_are_named_by_key() {
        use kafka_protocol::messages::ApiKey;
        for key in ApiKey::iter() {
            let api = Api::of(key);
            assert_eq!(api.key(), key as i16);
            assert_eq!(api.to_string(), format!("{key:?}"));
        }
        let err = Error::Timeout {
            api: Api::Produce,
            broker: "b1".into(),
            after: Duration::from_secs(1),
        };
        assert_eq!(
            err.to_string(),
            "Produce request to broker b1 timed out after 1s"
        );
        assert_eq!(Api::from_key(999).name(), None);
    }
}
