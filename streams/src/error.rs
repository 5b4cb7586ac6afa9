//! The crate's one error type.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in an app, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kafka client failed (connection, broker answer, closed producer...).
    #[error("kafka: {0}")]
    Kafka(#[from] kafka_client::Error),

    /// A state store failed.
    #[error("store: {0}")]
    Store(#[from] stores::Error),

    /// The brokers could not be reached (after the client's connect timeout and retries).
    #[error("cannot reach the brokers at {broker}: {source}; is Kafka running there? (--broker / App::builder(..).broker(..) picks another)")]
    Connect {
        broker: String,
        #[source]
        source: kafka_client::Error,
    },

    /// The consumer group refused the worker in a way retrying cannot fix.
    #[error("consumer group {group}: {source}; {hint}")]
    Group {
        group: String,
        #[source]
        source: kafka_client::Error,
        /// What to change.
        hint: &'static str,
    },

    /// A topic an agent reads does not exist and could not be created.
    #[error("topic {topic} does not exist and could not be created: create it, or let the app (CreateTopics permission, or auto.create.topics.enable on the brokers)")]
    MissingTopic { topic: String },

    /// Records the app sent were accepted but not delivered. Nothing after them was
    /// committed, so a restart processes their events again.
    #[error("{records} record(s) sent by the app were not delivered (last: {reason}); the app stopped without committing their events: fix the cause and restart")]
    Delivery { records: u64, reason: String },

    /// A table's pending writes could not be written to its changelog (a value over the
    /// producer's `max_request_size`, a partition the broker does not know, a refused write).
    /// Nothing past the events that made them was committed; a restart recovers the table
    /// from its changelog and processes those events again.
    #[error("table {table}: writing partition {partition} to its changelog {changelog} failed: {source}; the worker stopped without committing the events that wrote it: fix the cause and restart")]
    ChangelogWrite {
        table: String,
        changelog: String,
        partition: i32,
        #[source]
        source: Box<Error>,
    },

    /// The broker refused to commit the app's offsets.
    #[error("committing offsets failed: {source}")]
    Commit {
        #[source]
        source: kafka_client::Error,
    },

    /// An earlier failure stopped this worker's commits (see the log for it, or the error the
    /// worker stopped with): nothing after it is committed.
    /// Under exactly-once, a transaction could not commit (a record not delivered, the group
    /// moved on to a new generation, the broker aborted it): it was aborted, and the worker
    /// starts again from the last committed transaction.
    #[error("transaction {transactional_id} aborted: {source}; nothing of it is visible to read_committed readers, and the worker resumes from the last committed transaction")]
    TransactionAborted {
        transactional_id: String,
        #[source]
        source: Box<Error>,
    },

    /// Under exactly-once, the worker's transactional producer could not start: the brokers
    /// do not support transactions, or refuse the transactional id.
    #[error("exactly-once (processing_guarantee \"exactly_once\") needs a transactional producer, and transactional id {transactional_id} could not start: {source}; check that the brokers support transactions (Kafka 2.5+) and that the app may use transactional ids starting with its id (TransactionalId ACLs), or use \"at_least_once\"")]
    Transactional {
        transactional_id: String,
        #[source]
        source: kafka_client::Error,
    },

    /// Under exactly-once, this worker's producer was fenced: a newer producer took its
    /// transactional id over, or the broker aborted a transaction that outlived
    /// `transaction_timeout`. Nothing more of it is committed; the worker restarts with a new
    /// producer (at most 10 times in a row without a committed transaction, then it stops
    /// with this error).
    #[error("transactional id {transactional_id} was fenced ({source}): a worker with the same worker_instance_id took it over, or a transaction outlived transaction_timeout; nothing more of it is committed")]
    Fenced {
        transactional_id: String,
        #[source]
        source: Box<Error>,
    },

    #[error("this worker commits nothing more since an earlier failure ({cause}): restart it; it resumes from its last commit")]
    CommitsStopped { cause: String },

    /// Where newly assigned partitions with no committed offset start could not be listed.
    #[error("cannot list where {} newly assigned partition(s) start ({partitions:?}) after {attempts} attempts: {source}; the worker stopped without committing them: check the brokers and restart", partitions.len())]
    StartOffsets {
        partitions: Vec<kafka_client::TopicPartition>,
        attempts: u32,
        #[source]
        source: kafka_client::Error,
    },

    /// An agent returned an error (or panicked). The worker stops, as Faust's crashing
    /// supervisor does; the agent's current events are not committed.
    #[error("agent {agent} (instance {instance}) failed: {reason}; the worker stopped without committing its current events: fix the agent and restart")]
    AgentFailed {
        agent: String,
        instance: usize,
        reason: String,
    },

    /// Something took longer than allowed.
    #[error("timed out after {after:?} {what}")]
    Timeout {
        what: String,
        after: std::time::Duration,
    },

    /// The worker failed in a way none of the other variants describe (a task panicked).
    #[error("worker: {0}")]
    Runtime(String),

    /// Settings or URLs that cannot work; the message says what to change.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A record that its topic's codecs or type cannot read.
    #[error("cannot decode the {part} of {topic}/{partition}@{offset}{}: {reason}",
        field.as_deref().map(|f| format!(" at field `{f}`")).unwrap_or_default())]
    Decode {
        topic: String,
        partition: i32,
        offset: i64,
        /// `key` or `value`.
        part: &'static str,
        /// The path of the failing field (`items[2].amount`), when the type says.
        field: Option<String>,
        reason: String,
    },

    /// A value that cannot be encoded for its topic.
    #[error("cannot encode a {part} for topic {topic}: {reason}")]
    Encode {
        topic: String,
        part: &'static str,
        reason: String,
    },

    /// A codec failed on its own terms (bad base64, not JSON...). Wrapped into
    /// [`Error::Decode`]/[`Error::Encode`] with the record's context before it reaches users.
    #[error("codec {codec}: {reason}")]
    Codec { codec: String, reason: String },

    /// A record whose fields decoded but broke a rule of its type ([`crate::Validate`]).
    #[error("invalid field `{field}`: {reason}")]
    Validation { field: String, reason: String },

    /// A table key whose partition this worker does not own (not assigned, or still
    /// recovering from its changelog).
    #[error("table {table}: key {key} belongs to partition {partition}, which this worker {reason}: key the stream by the table's key (group_by) first")]
    TableNotOwned {
        table: String,
        /// The encoded key, as text (lossy, shortened).
        key: String,
        partition: i32,
        /// `does not own` or `does not own yet (still recovering from the changelog)`.
        reason: &'static str,
    },

    /// A table key or value that cannot be encoded with the table's codecs; nothing was written.
    #[error("table {table}: cannot encode a {part}: {reason}")]
    TableEncode {
        table: String,
        /// `key` or `value`.
        part: &'static str,
        reason: String,
    },

    /// Table data that does not decode: a changelog record during recovery (with its offset) or
    /// an entry of the store.
    #[error("table {table}: cannot decode the {part} of {} in partition {partition}: {reason}",
        offset.map(|o| format!("changelog record at offset {o}")).unwrap_or_else(|| "a stored entry".into()))]
    TableDecode {
        table: String,
        partition: i32,
        /// The changelog offset, for records read during recovery.
        offset: Option<i64>,
        /// `key` or `value`.
        part: &'static str,
        reason: String,
    },

    /// A table's store failed (a write, a commit or a read). A store whose write or commit
    /// failed refuses every later call until it is reopened (`source` is then
    /// [`stores::Error::Poisoned`]): nothing is committed past the failure, and a restarted
    /// worker reopens the store and recovers the partitions from their changelog.
    #[error(
        "table {table}{}: {source}{}",
        fmt_partitions(partitions),
        store_advice(source)
    )]
    TableStore {
        table: String,
        /// The partitions the failed call was about, or that may have lost writes (empty when
        /// no partition is involved).
        partitions: Vec<i32>,
        #[source]
        source: stores::Error,
    },

    /// A table used in a way it cannot work (no default value, a flush out of order...); the
    /// message says what to do.
    #[error("table {table}: {reason}")]
    Table { table: String, reason: String },

    /// An event later than its windows' grace period (with [`LatePolicy::Fail`](crate::LatePolicy)).
    #[error("table {table}: an event at {time} is too late: its windows in partition {partition} closed (stream time {stream_time} is past their end plus the {grace:?} grace period); raise the grace period to accept such events")]
    LateEvent {
        /// The windowed table.
        table: String,
        /// The table partition of the event's key.
        partition: i32,
        /// The event's time.
        time: crate::Timestamp,
        /// The partition's stream time when the event came.
        stream_time: crate::Timestamp,
        /// The table's grace period.
        grace: std::time::Duration,
    },

    /// An operation that needs a running app (sending, the CLI's `send`) before `start`.
    #[error("the app is not running: call App::start (or run/main) first")]
    NotStarted,
}

fn fmt_partitions(partitions: &[i32]) -> String {
    match partitions {
        [] => String::new(),
        [p] => format!(" partition {p}"),
        ps => {
            let ps: Vec<String> = ps.iter().map(ToString::to_string).collect();
            format!(" partitions {}", ps.join(", "))
        }
    }
}

fn store_advice(source: &stores::Error) -> &'static str {
    match source {
        // It says what to do.
        stores::Error::Poisoned { .. } => "; nothing was committed past the failure",
        _ => {
            "; nothing is committed past a failed store: restart the worker and the partition \
              recovers from its changelog"
        }
    }
}

impl Error {
    /// A validation failure of `field`.
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }
}
