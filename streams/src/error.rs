//! The crate's one error type.
//!
//! Convention: a variant that wraps a cause keeps it as its [`source()`](std::error::Error::source)
//! (typed, for programs that match on it) and prints its message once, inline, so that `{}`
//! alone tells the whole story; the variant's own text never restates what the source says
//! (a bad broker URL lists the accepted schemes once, in kafka-client's message). A reporter
//! that walks the chain of sources should therefore print the top error only. A cause that is
//! itself an [`Error`] is boxed (`Box<Error>`, or `Arc<Error>` where it is shared): downcast
//! the source to that type to match on it.

use std::fmt;
use std::sync::Arc;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any error a user's code hands over (an agent's or a demo's): everything `?` converts into
/// a `Box<dyn Error>` (`String`, `&str`, `std::io::Error`, [`Error`], `anyhow::Error`...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an agent instance failed (the source of [`Error::AgentFailed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentFailure {
    /// The agent returned this error; downcast it to get the agent's own type back.
    #[error(transparent)]
    Returned(BoxError),
    /// The agent panicked with this message (`(no message)` when the panic carried no text).
    #[error("panicked: {0}")]
    Panicked(String),
    /// One of the agent's sinks could not take a result.
    #[error("sink {sink}: {source}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
    /// The agent's body runs once (registered with `App::agent` or `run_once`) and cannot
    /// restart: declare it with `App::agent_builder(..).run(..)` to restart it.
    #[error("its body runs once and cannot restart: declare the agent with App::agent_builder(..).run(..) to restart it")]
    CannotRestart,
}

/// Everything that can go wrong in an app, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
        /// The broker URL tried.
        broker: String,
        /// The last connection failure.
        #[source]
        source: kafka_client::Error,
    },

    /// The consumer group refused the worker in a way retrying cannot fix.
    #[error("consumer group {group}: {source}; {hint}")]
    Group {
        /// The group (the app's id).
        group: String,
        /// The broker's refusal.
        #[source]
        source: kafka_client::Error,
        /// What to change.
        hint: &'static str,
    },

    /// A topic an agent reads does not exist and could not be created.
    #[error("topic {topic} does not exist and could not be created: create it, or let the app (CreateTopics permission, or auto.create.topics.enable on the brokers)")]
    MissingTopic {
        /// The topic's name.
        topic: String,
    },

    /// Records the app sent were accepted but not delivered. Nothing after them was
    /// committed, so a restart processes their events again.
    #[error("{records} record(s) sent by the app were not delivered (last: {}); the app stopped without committing their events: fix the cause and restart",
        last.as_ref().map_or_else(|| "unknown".to_owned(), ToString::to_string))]
    Delivery {
        /// How many records were not delivered.
        records: u64,
        /// The last of them to fail: its topic, partition and the Kafka error.
        #[source]
        last: Option<kafka_client::producer::DeliveryFailure>,
    },

    /// A table's pending writes could not be written to its changelog (a value over the
    /// producer's `max_request_size`, a partition the broker does not know, a refused write).
    /// Nothing past the events that made them was committed; a restart recovers the table
    /// from its changelog and processes those events again.
    #[error("table {table}: writing partition {partition} to its changelog {changelog} failed: {source}; the worker stopped without committing the events that wrote it: fix the cause and restart")]
    ChangelogWrite {
        /// The table.
        table: String,
        /// Its changelog topic.
        changelog: String,
        /// The table (and changelog) partition.
        partition: i32,
        /// What failed: the write's delivery or the producer.
        #[source]
        source: Box<Error>,
    },

    /// The broker refused to commit the app's offsets.
    #[error("committing offsets failed: {source}")]
    Commit {
        /// The broker's refusal.
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
        /// The worker's transactional id.
        transactional_id: String,
        /// Why the transaction could not commit.
        #[source]
        source: Box<Error>,
    },

    /// Under exactly-once, the worker's transactional producer could not start: the brokers
    /// do not support transactions, or refuse the transactional id.
    #[error("exactly-once (processing_guarantee \"exactly_once\") needs a transactional producer, and transactional id {transactional_id} could not start: {source}; check that the brokers support transactions (Kafka 2.5+) and that the app may use transactional ids starting with its id (TransactionalId ACLs), or use \"at_least_once\"")]
    Transactional {
        /// The transactional id that could not start.
        transactional_id: String,
        /// The broker's refusal.
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
        /// The fenced transactional id.
        transactional_id: String,
        /// The failure that revealed it.
        #[source]
        source: Box<Error>,
    },

    /// An earlier failure stopped this worker's commits: nothing after it is committed.
    #[error("this worker commits nothing more since an earlier failure ({cause}): restart it; it resumes from its last commit")]
    CommitsStopped {
        /// The failure that stopped the commits, as text: the error itself went to the call
        /// that met it (`App::commit`, the worker's stop), and every later refusal quotes it.
        cause: String,
    },

    /// Where newly assigned partitions with no committed offset start could not be listed.
    #[error("cannot list where {} newly assigned partition(s) start ({partitions:?}) after {attempts} attempts: {source}; the worker stopped without committing them: check the brokers and restart", partitions.len())]
    StartOffsets {
        /// The partitions whose start was asked.
        partitions: Vec<kafka_client::TopicPartition>,
        /// How many times it was asked.
        attempts: u32,
        /// The last failure.
        #[source]
        source: kafka_client::Error,
    },

    /// An agent returned an error (or panicked). The worker stops, as Faust's crashing
    /// supervisor does; the agent's current events are not committed.
    #[error("agent {agent} (instance {instance}) failed: {source}; the worker stopped without committing its current events: fix the agent and restart")]
    AgentFailed {
        /// The agent's name.
        agent: String,
        /// Which of its concurrent instances failed.
        instance: usize,
        /// The error it returned, or its panic.
        #[source]
        source: AgentFailure,
    },

    /// A timer, crontab or task declared under a name another one of the app already has
    /// ([`App::timer`](crate::App::timer), [`App::crontab`](crate::App::crontab),
    /// [`App::task`](crate::App::task)): logs, metrics and failures name them, so each needs
    /// its own.
    #[error("{kind} {name}: the name is already taken by a {taken_by} of this app; give each timer, crontab and task its own name")]
    DuplicateService {
        /// What was declared: `timer`, `crontab` or `task`.
        kind: &'static str,
        /// The name.
        name: String,
        /// What was declared under that name before: `timer`, `crontab` or `task`.
        taken_by: &'static str,
    },

    /// A timer was declared with a zero interval
    /// ([`App::timer`](crate::App::timer)).
    #[error("timer {timer}: the interval is zero; give it a positive Duration")]
    InvalidInterval {
        /// The timer's name.
        timer: String,
    },

    /// A crontab timer's expression does not parse, or never fires
    /// ([`App::crontab`](crate::App::crontab)).
    #[error("crontab {timer}: invalid cron expression {expression:?}: {reason}; use five fields (minute hour day-of-month month day-of-week), such as \"*/5 * * * *\"")]
    InvalidCron {
        /// The timer's name.
        timer: String,
        /// The expression as given.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A crontab timer names a time zone the IANA database does not know
    /// ([`CrontabBuilder::timezone`](crate::CrontabBuilder::timezone)).
    #[error("crontab {timer}: unknown time zone {zone:?}; use an IANA name such as \"UTC\" or \"Europe/Paris\"")]
    UnknownTimeZone {
        /// The timer's name.
        timer: String,
        /// The zone as given.
        zone: String,
    },

    /// A timer, crontab or task declared with `stop_app_on_error` failed (returned an error
    /// or panicked): the worker stopped, as for a failed agent.
    #[error("timer {timer} failed: {source}; the worker stopped (stop_app_on_error): fix the timer and restart")]
    TimerFailed {
        /// The timer's (or task's) name.
        timer: String,
        /// The error it returned, or its panic.
        #[source]
        source: AgentFailure,
    },

    /// Something took longer than allowed.
    #[error("timed out after {after:?} {what}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after: std::time::Duration,
    },

    /// One of the worker's tasks ended abnormally (a bug: please report it with the log).
    #[error("the {task} task {}", match panic { Some(m) => format!("panicked: {m}"), None => "was cancelled".into() })]
    TaskFailed {
        /// Which task (`worker`, `commit`...).
        task: &'static str,
        /// Its panic message; `None` if it was cancelled.
        panic: Option<String>,
    },

    /// The worker stopped while this call waited on it; the error it stopped with is what
    /// [`App::run`](crate::App::run) or [`App::shutdown`](crate::App::shutdown) returns.
    #[error("the worker has stopped: see the error it stopped with (App::run / App::shutdown, or the log)")]
    WorkerStopped,

    /// A send into an in-memory channel after the app stopped: a channel lives only while its
    /// app runs (values in it are not durable).
    #[error("channel {channel} is closed: the app stopped (a channel lives only while its app runs; send to a topic to keep values across restarts)")]
    ChannelClosed {
        /// The channel's name.
        channel: String,
    },

    /// Partitions were lost (this worker missed its session timeout); their new owner
    /// processes their uncommitted events.
    #[error("partitions {partitions:?} were lost (this worker missed its session timeout); their new owner processes their uncommitted events")]
    PartitionsLost {
        /// The lost partitions.
        partitions: Vec<kafka_client::TopicPartition>,
    },

    /// An internal invariant does not hold (a bug: please report it with the log).
    #[error("internal error: {broken}; please report it")]
    Invariant {
        /// What does not hold.
        broken: &'static str,
    },

    /// The embedded `mock://` cluster could not start.
    #[error("cannot start the embedded mock cluster: {source}")]
    MockCluster {
        /// Why.
        #[source]
        source: BoxError,
    },

    /// `reset` could not reset the group's committed offsets (nothing was deleted).
    #[error("cannot reset the committed offsets of group {group}: {source}; stop every worker of the app first; nothing was deleted")]
    ResetOffsets {
        /// The app's group.
        group: String,
        /// The broker's refusal.
        #[source]
        source: kafka_client::Error,
    },

    /// The demo given to [`App::run_until`](crate::App::run_until) (or the CLI's `demo`) failed.
    #[error("demo failed: {source}")]
    Demo {
        /// The demo's error.
        #[source]
        source: BoxError,
    },

    /// Reading or writing the terminal failed (the CLI's confirmation prompt).
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A command line the CLI parsed but could not read into its commands.
    #[error("command line: {source}")]
    CommandLine {
        /// The parser's error.
        #[source]
        source: BoxError,
    },

    /// The CLI's `demo` command on an app declared without one.
    #[error("this app has no demo: use `worker` (or declare one with App::main_with_demo)")]
    NoDemo,

    /// The CLI's `send` refused a key or value that does not decode as its topic's declared
    /// type (or breaks its validation rules): a worker could not read it. Nothing was sent.
    #[error("{part} does not decode as the topic's {part} type ({topic}): {}{reason} \
        (fix it, or send it as given with --raw)",
        field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
    SendRefused {
        /// The topic.
        topic: String,
        /// `key` or `value`.
        part: &'static str,
        /// The path of the failing field (`items[2].amount`), when the type says.
        field: Option<String>,
        /// What the codec, the type or its validation rules said.
        reason: String,
    },

    /// The worker's web server cannot listen on its address (a port in use by another worker
    /// on this machine, say).
    #[error("web server: cannot listen on {address}: {source} (another process uses the port? give this worker its own with --web-port N or App::builder(..).web_port(n), or turn the server off with --no-web)")]
    WebBind {
        /// The address, `host:port`.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A user page ([`App::page`](crate::App::page)) that cannot be served at its path.
    #[error("web page {path:?}: {reason}")]
    WebPage {
        /// The path given.
        path: String,
        /// Why it cannot be served, and what to do.
        reason: String,
    },

    /// A CLI command stopped by Ctrl-C (exit code 130).
    #[error("interrupted (Ctrl-C) after sending {sent} record(s)")]
    Interrupted {
        /// Records sent and acknowledged before the interrupt.
        sent: u64,
    },

    /// A broker URL kafka-client cannot parse (its message names the URL and what is accepted;
    /// `mock://` is accepted too with the `mock` feature).
    #[error("broker: {source}")]
    BrokerUrl {
        /// kafka-client's parse error.
        #[source]
        source: kafka_client::Error,
    },

    /// A `mock://` broker URL that cannot work.
    #[error("broker {url:?}: {reason}")]
    MockBroker {
        /// The URL.
        url: String,
        /// What to change.
        reason: &'static str,
    },

    /// Broker credentials set for a plain-TCP broker URL (`kafka://`), which would send them
    /// unprotected.
    #[error("broker {broker} is plain TCP without SASL but broker_credentials are set: use sasl_ssl:// (with broker_tls), or sasl_plaintext:// to send them over plain TCP knowingly")]
    CredentialsWithoutSasl {
        /// The broker URL.
        broker: String,
    },

    /// A SASL broker URL (`sasl_ssl://`, `sasl_plaintext://`) without credentials.
    #[error("broker {broker} authenticates with SASL: give credentials with AppBuilder::broker_credentials")]
    MissingCredentials {
        /// The broker URL.
        broker: String,
    },

    /// A setting with a value that cannot work.
    #[error("{name} = {value}: {reason}")]
    InvalidSetting {
        /// The setting (the builder method's name, or the variable's).
        name: String,
        /// The value given.
        value: String,
        /// Why it cannot work and what to give instead.
        reason: String,
    },

    /// An operation refused while the app runs.
    #[error("cannot {action} while the app runs: stop it first")]
    AlreadyRunning {
        /// What was refused (`start the app`, `change the broker`, `reset the app`).
        action: &'static str,
    },

    /// A codec registered under a name serializer chains cannot name.
    #[error("codec name {name:?} must be non-empty and without '|'")]
    InvalidCodecName {
        /// The name given.
        name: String,
    },

    /// A serializer chain names a codec nobody registered.
    #[error("unknown codec {name:?}: known codecs are {}; register others with AppBuilder::codec", known.join(", "))]
    UnknownCodec {
        /// The unknown name.
        name: String,
        /// The registered names.
        known: Vec<String>,
    },

    /// A topic's key or value serializer chain that cannot be used.
    #[error("topic {topic}: {part} serializer: {source}")]
    TopicSerializer {
        /// The topic.
        topic: String,
        /// `key` or `value`.
        part: &'static str,
        /// Why the chain cannot be used.
        #[source]
        source: Arc<Error>,
    },

    /// A record that its topic's codecs or type cannot read.
    #[error("cannot decode the {part} of {topic}/{partition}@{offset}{}: {reason}",
        field.as_deref().map(|f| format!(" at field `{f}`")).unwrap_or_default())]
    Decode {
        /// The record's topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// `key` or `value`.
        part: &'static str,
        /// The path of the failing field (`items[2].amount`), when the type says.
        field: Option<String>,
        /// What the codec or the type said.
        reason: String,
    },

    /// A value that cannot be encoded for its topic.
    #[error("cannot encode a {part} for topic {topic}: {reason}")]
    Encode {
        /// The topic.
        topic: String,
        /// `key` or `value`.
        part: &'static str,
        /// What the codec said.
        reason: String,
    },

    /// A codec failed on its own terms (bad base64, not JSON...). Wrapped into
    /// [`Error::Decode`]/[`Error::Encode`] with the record's context before it reaches users.
    #[error("codec {codec}: {reason}")]
    Codec {
        /// The codec's name.
        codec: String,
        /// What it said.
        reason: String,
    },

    /// A record whose fields decoded but broke a rule of its type ([`crate::Validate`]).
    #[error("invalid field `{field}`: {reason}")]
    Validation {
        /// The field.
        field: String,
        /// The rule it broke.
        reason: String,
    },

    /// A table key whose partition this worker does not own (not assigned, or still
    /// recovering from its changelog).
    #[error("table {table}: key {key} belongs to partition {partition}, which this worker {reason}: key the stream by the table's key (group_by) first")]
    TableNotOwned {
        /// The table.
        table: String,
        /// The encoded key, as text (lossy, shortened).
        key: String,
        /// The key's partition.
        partition: i32,
        /// `does not own` or `does not own yet (still recovering from the changelog)`.
        reason: &'static str,
    },

    /// `App::query` of a key whose partition's owner cannot be reached: refused, closed,
    /// or no answer within the query's timeout.
    #[error("table {table}: the owner of partition {partition} at {endpoint} is unavailable: {reason}; retry after the group rebalanced (App::router shows the new owner), or query with a max_lag to read a standby copy")]
    PeerUnavailable {
        /// The table.
        table: String,
        /// The key's partition.
        partition: i32,
        /// The owner's advertised `host:port`.
        endpoint: String,
        /// What failed (connect error, timeout).
        reason: String,
    },

    /// `App::query`: the owner of the key's partition answered, but not as agreed (a status
    /// other than 200 or 404, or a body that is not `{"key": .., "value": ..}` of the table's
    /// value type).
    #[error("table {table}: the owner at {endpoint} answered the query badly: {reason}; is a worker of the same app (and version) serving /table/<name>/<key>/ there?")]
    PeerResponse {
        /// The table.
        table: String,
        /// The owner's advertised `host:port`.
        endpoint: String,
        /// What was wrong.
        reason: String,
    },

    /// `App::query` of a key whose partition this worker does not own and whose owner it
    /// cannot name: not started, between rebalances, or the owner advertises no endpoint.
    #[error("table {table}: no known endpoint owns partition {partition}: {reason}; give every worker its web server (web_enabled) or an AppBuilder::application_server and retry once the group settled")]
    NoRoute {
        /// The table.
        table: String,
        /// The key's partition.
        partition: i32,
        /// Why: no assignment yet, or the owner has no `application_server`.
        reason: String,
    },

    /// A table key or value that cannot be encoded with the table's codecs; nothing was written.
    #[error("table {table}: cannot encode a {part}: {reason}")]
    TableEncode {
        /// The table.
        table: String,
        /// `key` or `value`.
        part: &'static str,
        /// What the codec said.
        reason: String,
    },

    /// Table data that does not decode: a changelog record during recovery (with its offset) or
    /// an entry of the store.
    #[error("table {table}: cannot decode the {part} of {} in partition {partition}: {reason}",
        offset.map(|o| format!("changelog record at offset {o}")).unwrap_or_else(|| "a stored entry".into()))]
    TableDecode {
        /// The table.
        table: String,
        /// The partition.
        partition: i32,
        /// The changelog offset, for records read during recovery.
        offset: Option<i64>,
        /// `key` or `value`.
        part: &'static str,
        /// What the codec said.
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
        /// The table.
        table: String,
        /// The partitions the failed call was about, or that may have lost writes (empty when
        /// no partition is involved).
        partitions: Vec<i32>,
        /// The store's error.
        #[source]
        source: stores::Error,
    },

    /// A table's key or value serializer chain that cannot be used.
    #[error("table {table}: {part} serializer {chain:?}: {source}")]
    TableSerializer {
        /// The table.
        table: String,
        /// `key` or `value`.
        part: &'static str,
        /// The chain given.
        chain: String,
        /// Why it cannot be used.
        #[source]
        source: Box<Error>,
    },

    /// A table declaration with a setting that cannot work (partitions, name, window size...).
    #[error("table {table}: {reason}")]
    TableSetting {
        /// The table.
        table: String,
        /// The setting (`partitions`, `name`, `size`, `grace`, `expires`...).
        setting: &'static str,
        /// Why it cannot work and what to give instead.
        reason: String,
    },

    /// A windowed stream-stream join with a setting that cannot work.
    #[error("stream join {join}: {setting}: {reason}")]
    JoinSetting {
        /// The join.
        join: String,
        /// The setting (`within`, `grace`...).
        setting: &'static str,
        /// Why it cannot work and what to give instead.
        reason: String,
    },

    /// The two topics of a windowed stream-stream join have different partition counts, so
    /// events of one key would land in different partitions and never meet.
    #[error("stream join {join}: topic {left} has {left_partitions} partitions but topic {right} has {right_partitions}: both sides of a join must have the same partition count and key (co-partitioning); recreate one topic with the other's count, or re-partition one side through a topic with that count (AgentBuilder::through)")]
    StreamJoinNotCoPartitioned {
        /// The join.
        join: String,
        /// The left topic.
        left: String,
        /// The right topic.
        right: String,
        /// The left topic's partition count.
        left_partitions: usize,
        /// The right topic's partition count.
        right_partitions: usize,
    },

    /// A table declared twice in one app.
    #[error("table {table} declared twice: declare a table once and clone its handle")]
    DuplicateTable {
        /// The table.
        table: String,
    },

    /// A missing key read from a table without a default value.
    #[error("table {table}: a missing key has no default value: give the table one with Table::with_default (Faust's default=int)")]
    NoDefault {
        /// The table.
        table: String,
    },

    /// A table and a topic that updates it (or its changelog) have different partition counts.
    #[error("table {table}: {topic} has {found} partitions but the table has {wanted}: a table and the topics that update it must have the same partition count (co-partitioning); declare the table with .partitions({found}) or recreate the topic")]
    CoPartitioning {
        /// The table.
        table: String,
        /// The topic, and how it relates to the table.
        topic: String,
        /// The topic's partition count.
        found: usize,
        /// The table's.
        wanted: i32,
    },

    /// A stream-table join whose stream and table have different partition counts: an event
    /// would not find its key's table partition on its worker.
    #[error("agent {agent} joins topic {stream} ({stream_partitions} partitions) with table {table} ({table_partitions} partitions): a stream-table join needs both co-partitioned (the same partition count, keyed alike); give the table .partitions({stream_partitions}), recreate the topic, or make the table global and use join_global")]
    JoinNotCoPartitioned {
        /// The joining agent.
        agent: String,
        /// The stream's topic (after any group_by, its repartition topic).
        stream: String,
        /// The table.
        table: String,
        /// The stream topic's partition count.
        stream_partitions: usize,
        /// The table's.
        table_partitions: i32,
    },

    /// A stream-global-table join (`join_global`) with a table that is not global.
    #[error("agent {agent} joins topic {stream} with table {table} through a key extractor, but {table} is not global: declare it with .global() (every worker holds every partition), or key the stream by the table's key (group_by) and use join")]
    JoinTableNotGlobal {
        /// The joining agent.
        agent: String,
        /// The stream's topic.
        stream: String,
        /// The table.
        table: String,
    },

    /// A join's key extractor found no table key in an event (it returned `None`); the event
    /// goes through the decode-error policy.
    #[error("topic {stream} partition {partition} offset {offset}: the key extractor of the join with table {table} gave no key for this event; fix the producer or the extractor (the decode-error policy decides what happens to the event)")]
    JoinKey {
        /// The stream's topic.
        stream: String,
        /// The event's partition.
        partition: i32,
        /// The event's offset.
        offset: i64,
        /// The table.
        table: String,
    },

    /// The table value an event joins with does not decode; the event goes through the
    /// decode-error policy.
    #[error("topic {stream} partition {partition} offset {offset}: its join with table {table} read a table value that does not decode ({reason}); fix what writes the table or its value type (the decode-error policy decides what happens to the event)")]
    JoinDecode {
        /// The stream's topic.
        stream: String,
        /// The event's partition.
        partition: i32,
        /// The event's offset.
        offset: i64,
        /// The table.
        table: String,
        /// What the table's codec said.
        reason: String,
    },

    /// A global table's changelog lost records its copy had not read yet.
    #[error("table {table}: offset {offset} of changelog partition {partition} is no longer in the changelog (records deleted by retention or DeleteRecords before this worker read them, or the topic recreated): this worker's copy of the global table stopped following it; restart the worker to rebuild it")]
    ChangelogGap {
        /// The global table.
        table: String,
        /// The changelog partition.
        partition: i32,
        /// The offset the copy had reached.
        offset: i64,
    },

    /// A partition number outside the table's partitions.
    #[error(
        "table {table}: partition {partition} does not exist: the table has {count} (0..{count})"
    )]
    NoSuchPartition {
        /// The table.
        table: String,
        /// The partition asked for.
        partition: i32,
        /// The table's partition count.
        count: i32,
    },

    /// A table partition this worker does not hold as an active, up-to-date partition.
    #[error("table {table}: partition {partition} is {state} on this worker: {hint}")]
    PartitionNotActive {
        /// The table.
        table: String,
        /// The partition.
        partition: i32,
        /// `not assigned`, `still recovering`, `a standby copy`...
        state: &'static str,
        /// What to do.
        hint: &'static str,
    },

    /// A table partition asked to recover while it is active (or has unflushed writes).
    #[error("table {table}: partition {partition} is active: revoke or reassign it before recovering it")]
    PartitionActive {
        /// The table.
        table: String,
        /// The partition.
        partition: i32,
    },

    /// Flushes of a table partition completed out of the order they were taken.
    #[error("table {table}: partition {partition}: flushes must complete in the order they were taken: abort_flush and recover the partition")]
    FlushOutOfOrder {
        /// The table.
        table: String,
        /// The partition.
        partition: i32,
    },

    /// A table that cannot send records when flushed (detached or global tables).
    #[error("table {table}: only a table in an app that is not global can send records when it is flushed (use on_window_close in a detached table)")]
    TableCannotSend {
        /// The table.
        table: String,
    },

    /// The two tables of a table-table join have different partition counts: a key's
    /// partition differs between them, so no worker holds both sides of a key.
    #[error("join {join}: table {left} has {left_partitions} partitions and table {right} has {right_partitions}: a table-table join needs both sides co-partitioned (the same partition count and key codec); give both tables the same partitions, or join through a foreign key (join_on)")]
    TableJoinNotCoPartitioned {
        /// The join (its result table).
        join: String,
        /// The left table.
        left: String,
        /// The right table.
        right: String,
        /// The left table's partition count.
        left_partitions: i32,
        /// The right table's.
        right_partitions: i32,
    },

    /// A join declared with tables it cannot join (global, of another app, with another key
    /// codec), or a setting it cannot work with.
    #[error("join {join} of tables {left} and {right}: {reason}")]
    TableJoinSetting {
        /// The join (its result table).
        join: String,
        /// The left table.
        left: String,
        /// The right table.
        right: String,
        /// What is wrong and what to do.
        reason: String,
    },

    /// A join could not read one side's value (it does not decode with the table's codec) or
    /// write its result; the write that triggered it is not committed.
    #[error("join {join}: {side} table {table}: {source}")]
    TableJoinFailed {
        /// The join (its result table).
        join: String,
        /// `left` or `right`.
        side: &'static str,
        /// The table on that side.
        table: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },

    /// An `on_window_close` callback failed (returned an error or panicked) after its window
    /// closed: the close is not committed, nor anything after it in the partition; a restart
    /// replays the events that closed it and runs the callback again.
    #[error("table {table}: an on_window_close callback failed in partition {partition} (the agent's error says why); nothing past it is committed: fix the callback and restart, the close runs again")]
    CloseCallbackFailed {
        /// The windowed table.
        table: String,
        /// The partition whose close it was.
        partition: i32,
    },

    /// Closing the windows of an idle partition (`close_idle_after`) failed: a close callback
    /// returned an error or panicked, or the table's store failed. The worker stops with
    /// nothing committed past it; a restart checks the partition again.
    #[error("table {table}: closing the windows of idle partition {partition} failed: {source}; nothing past it is committed: fix the cause and restart")]
    IdleCloseFailed {
        /// The windowed table.
        table: String,
        /// The idle partition.
        partition: i32,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },

    /// A synchronous call on a windowed table whose `on_window_close` callback is async: it
    /// cannot await the callback, so it refused and changed nothing.
    #[error("table {table}: {call} cannot await the on_window_close_async callback: call {instead}(..).await instead")]
    NeedsAwait {
        /// The windowed table.
        table: String,
        /// The synchronous call (`update`, `advance`).
        call: &'static str,
        /// Its async counterpart.
        instead: &'static str,
    },

    /// An event later than its windows' grace period (with [`LatePolicy::Fail`](crate::LatePolicy)).
    #[error("table {table}: an event at {time} is too late: its windows in partition {partition} closed (stream time {stream_time} is past their end plus the {grace:?} grace period); raise the grace period to accept such events")]
    LateEvent {
        /// The windowed table.
        table: String,
        /// The table partition of the event's key.
        partition: i32,
        /// The event's time.
        time: crate::timestamp::Timestamp,
        /// The partition's stream time when the event came.
        stream_time: crate::timestamp::Timestamp,
        /// The table's grace period.
        grace: std::time::Duration,
    },

    /// An agent's sinks were added before `AgentBuilder::yields` changed its result type, so
    /// they would never get a result.
    #[error("agent {agent}: sinks {sinks:?} were added before yields::<T>() changed the result type and would get nothing; add them after yields")]
    SinksBeforeYields {
        /// The agent's name.
        agent: String,
        /// The sinks' names.
        sinks: Vec<String>,
    },

    /// An agent was asked (`ask`, `map`, `join`...) but has no results to reply with: it was
    /// declared with `run`.
    #[error("agent {agent} cannot reply: it was declared with run, whose body has no results; declare it with AgentBuilder::process (its results are the replies) to ask it")]
    AgentCannotReply {
        /// The agent's name.
        agent: String,
    },

    /// An agent did not reply to a request in time.
    #[error("agent {agent} did not reply within {timeout:?}: check that a worker of the app runs and that the agent yields a result for every request (or raise reply_timeout / use ask_with_timeout)")]
    ReplyTimeout {
        /// The agent's name.
        agent: String,
        /// How long the asker waited.
        timeout: std::time::Duration,
    },

    /// The agent failed (returned an error or panicked) on this request: its worker stopped
    /// without committing the request, as with [`Error::AgentFailed`].
    #[error("agent {agent} failed on this request: {reason}; its worker stopped (see its log) and reads the request again after a restart")]
    AgentFailedRequest {
        /// The agent's name.
        agent: String,
        /// How it failed, as the agent's worker reported it.
        reason: String,
    },

    /// An agent's reply does not decode as the type the asker expects.
    #[error("agent {agent} replied with a value that does not decode as the reply type: {source}; ask with the agent's result type")]
    ReplyDecode {
        /// The agent's name.
        agent: String,
        /// Why the JSON did not decode.
        #[source]
        source: serde_json::Error,
    },

    /// A table's store file is locked by a running worker, so this process (the CLI's `tables`
    /// or `reset`) cannot read or empty it.
    #[error(
        "the store {} is held by a running worker: stop that worker first, or give the \
         workers an application_server (AppBuilder::application_server) so that `tables \
         --table NAME --key KEY` and `--partition N` ask the worker that owns the partition; \
         `status` shows the group",
        path.display()
    )]
    StoreHeld {
        /// The locked store file.
        path: std::path::PathBuf,
    },

    /// A table name the app does not declare (the CLI's `tables --table`).
    #[error("no table named {table:?}: the app declares {}", if known.is_empty() { "no table".to_owned() } else { known.join(", ") })]
    UnknownTable {
        /// The name given.
        table: String,
        /// The tables the app declares.
        known: Vec<String>,
    },

    /// A key given as text (the CLI's `tables --key`) that the table's key codec does not
    /// decode.
    #[error("table {table}: key {key:?} does not decode with the table's key codec {codec:?}: {reason}; give the key as that codec's text")]
    KeyDoesNotDecode {
        /// The table.
        table: String,
        /// The key as given.
        key: String,
        /// The key codec chain.
        codec: String,
        /// Why it does not decode.
        reason: String,
    },

    /// A key without a value in the table (the CLI's `tables --key`).
    #[error("table {table} has no value for key {key:?}")]
    KeyNotFound {
        /// The table.
        table: String,
        /// The key as given.
        key: String,
    },

    /// An operation that needs a running app (sending, the CLI's `send`) before `start`.
    #[error("the app is not running: call App::start (or run/main) first")]
    NotStarted,

    /// A test harness's app did not settle (every event processed and committed) in time.
    #[error("the app did not settle within {after:?} (virtual time under paused tokio time): {}; see the workers' log, or raise HarnessBuilder::settle_timeout if a session timeout outlasts it", pending.join("; "))]
    NotSettled {
        /// How long settling waited.
        after: std::time::Duration,
        /// What was still pending, one line each.
        pending: Vec<String>,
    },

    /// A test harness has no such worker, or it is not running.
    #[error("cannot {action}: worker {worker} {state} (the harness has {workers} worker slots; restart a killed or stopped one with Harness::restart)")]
    Worker {
        /// The worker's index.
        worker: usize,
        /// What was asked.
        action: &'static str,
        /// What it is: `does not exist`, `is not running`, `is running`.
        state: &'static str,
        /// Worker slots in the harness.
        workers: usize,
    },

    /// A worker of a test harness stopped on an error.
    #[error("worker {worker} stopped on an error: {reason}")]
    WorkerFailed {
        /// The worker's index.
        worker: usize,
        /// The error that stopped it.
        reason: String,
    },
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

    /// A setting `name` whose `value` cannot work, and why.
    pub fn invalid_setting(
        name: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidSetting {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// A table used in a way retrying cannot fix (the variants that replaced `Table { reason }`).
    pub(crate) fn is_table_misuse(&self) -> bool {
        matches!(
            self,
            Error::TableSerializer { .. }
                | Error::TableSetting { .. }
                | Error::JoinSetting { .. }
                | Error::StreamJoinNotCoPartitioned { .. }
                | Error::DuplicateTable { .. }
                | Error::NoDefault { .. }
                | Error::CoPartitioning { .. }
                | Error::ChangelogGap { .. }
                | Error::NoSuchPartition { .. }
                | Error::PartitionNotActive { .. }
                | Error::PartitionActive { .. }
                | Error::FlushOutOfOrder { .. }
                | Error::TableCannotSend { .. }
                | Error::NeedsAwait { .. }
                | Error::TableJoinNotCoPartitioned { .. }
                | Error::TableJoinSetting { .. }
        )
    }

    /// A task that ended abnormally (`join` of its handle failed).
    pub(crate) fn task(task: &'static str, e: tokio::task::JoinError) -> Self {
        let panic = e
            .try_into_panic()
            .ok()
            .map(|p| panic_message(&*p).to_owned());
        Error::TaskFailed { task, panic }
    }
}

/// The text a panic carried (`(no message)` if it was not a string).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
