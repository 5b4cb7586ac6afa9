//! App settings, named after Faust's where they mean the same.

use std::time::Duration;

use crate::endpoint::Endpoint;

/// Tunables of an [`App`](crate::App); set them through [`AppBuilder`](crate::AppBuilder) and
/// read them back with [`App::settings`](crate::App::settings). Non-exhaustive: new settings
/// may come, so it is read here and built only by the builder (or [`Default`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Partitions of topics the app creates (Faust's `topic_partitions`).
    pub topic_partitions: i32,
    /// Replicas of topics the app creates (`topic_replication_factor`).
    pub topic_replication_factor: i16,
    /// Commit done offsets at least this often (`broker_commit_interval`).
    pub broker_commit_interval: Duration,
    /// ... and also after this many events were handed to agents (`broker_commit_every`;
    /// at-least-once only: under exactly-once each commit is a transaction, made on the
    /// interval alone, as Kafka Streams does).
    pub broker_commit_every: usize,
    /// Events buffered per agent instance before the consumer waits (`stream_buffer_maxsize`).
    pub stream_buffer_maxsize: usize,
    /// How long a graceful stop waits for agents to finish in-flight events.
    pub worker_shutdown_timeout: Duration,
    /// How long the producer gathers a batch (`producer_linger`; 0 by default, as Faust: under
    /// load batches form anyway while a request is in flight, and an event's outputs leave at
    /// once; 5 ms, Kafka's Java default, costs ~5 ms of latency for ~2% less CPU per event).
    pub producer_linger: Duration,
    /// How long a call to the cluster's admin API (creating topics, looking up offsets) waits
    /// out a cluster that is still settling (a leader or controller being elected) before it
    /// fails (`broker_api_timeout`; Kafka's `default.api.timeout.ms`, 60 s).
    pub broker_api_timeout: Duration,
    /// A worker that stops heartbeating for this long loses its partitions
    /// (`broker_session_timeout`; brokers accept 6 s and more by default).
    pub broker_session_timeout: Duration,
    /// Time between heartbeats (`broker_heartbeat_interval`).
    pub broker_heartbeat_interval: Duration,
    /// How long a rebalance waits for every worker to rejoin (`broker_rebalance_timeout`).
    pub broker_rebalance_timeout: Duration,
    /// Where a group with no committed offset starts: `true` is Faust's `earliest`.
    pub consumer_auto_offset_reset_earliest: bool,
    /// A source batch that stays unreadable after a refetch (CRC mismatch, undecodable) is
    /// skipped with a warning instead of stopping the worker (default `false`: stop, as
    /// Kafka's Java consumer does).
    pub consumer_skip_corrupt_batches: bool,
    /// How many times in the app's life a worker whose agent failed (returned an error or
    /// panicked) is restarted, every agent from the last committed offsets, before it stops
    /// with the error (default 0: stop at once, as Faust's crashing supervisor).
    pub restart_failed_agents: u32,
    /// TLS settings for `ssl://` and `sasl_ssl://` brokers (CA file, client certificate).
    pub broker_tls: Option<kafka_client::TlsConfig>,
    /// SASL credentials for `sasl_ssl://` and `sasl_plaintext://` brokers (Faust's
    /// `broker_credentials`).
    pub broker_credentials: Option<kafka_client::SaslConfig>,
    /// Workers that keep a warm copy of each table partition by following its changelog
    /// (Faust's `table_standby_replicas`, default 0).
    pub table_standby_replicas: u32,
    /// The tables' write cache, in bytes per table on this worker (Kafka Streams'
    /// `statestore.cache.max.bytes`, default 10 MiB): writes wait in it until the next commit,
    /// and the changelog and the store get one record per key and commit interval, its last
    /// write. A cache over the bound makes the worker commit early. 0 turns it off: every
    /// write becomes its own changelog record (still produced at the commit).
    pub table_cache_max_bytes: u64,
    /// The page cache of each table's redb file, in bytes (`None`, the default: redb's own,
    /// 1 GiB per file). Resident memory of a redb table grows with its file up to this; set it
    /// to bound a worker's memory when it holds large tables (see benches/MEMORY.md).
    pub redb_cache_bytes: Option<usize>,
    /// A stable name for this worker in the group (Kafka's `group.instance.id`, static
    /// membership): a worker restarted under the same name within the session timeout gets
    /// its partitions back at once, without waiting for its old session to expire.
    pub worker_instance_id: Option<String>,
    /// At-least-once (the default) or exactly-once processing (Faust's
    /// `processing_guarantee`); see [`ProcessingGuarantee`].
    pub processing_guarantee: ProcessingGuarantee,
    /// How long a transaction may stay open before the broker aborts it, under exactly-once
    /// (Kafka Streams' 10 s default for its producer's `transaction.timeout.ms`): a worker
    /// killed mid-transaction holds back read_committed readers of what it wrote at most this
    /// long, unless it restarts under the same `worker_instance_id` first.
    pub transaction_timeout: Duration,
    /// How long `Agent::ask` (and `map`, `join`...) waits for each reply (Faust's
    /// `reply_expires` plays this part there; default 30 s).
    pub reply_timeout: Duration,
    /// This worker's advertised `host:port` (Kafka Streams' `application.server`): the other
    /// workers learn it from the group and send table queries for keys this worker owns
    /// there (`App::query`, and the web server forwards requests there). `None` (the
    /// default): the web server's address when it is on (see `web_host`), else nothing.
    pub application_server: Option<Endpoint>,
    /// Whether the worker serves its web pages (`/`, `/health`, `/ready`, `/table/..`; see
    /// [`App::page`](crate::App::page)). Off by default for apps built in code (tests, demos); the CLI's
    /// `worker` turns it on unless given `--no-web`, as Faust's worker does.
    pub web_enabled: bool,
    /// The port the web server listens on (Faust's `web_port`, 6066; 0 picks a free one).
    pub web_port: u16,
    /// The address the web server binds (Faust's `web_bind`). `127.0.0.1` by default, not
    /// Faust's `0.0.0.0`: the pages show table contents and have no authentication, so
    /// reaching them from other machines is a choice to make (`--web-bind 0.0.0.0`).
    pub web_bind: String,
    /// The host other workers reach this one's pages at (Faust's `web_host`), advertised with
    /// the server's port when no `application_server` is given; `None`: the bind address, or
    /// this machine's host name when binding every interface.
    pub web_host: Option<String>,
}

/// What a crash may do to an event's effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProcessingGuarantee {
    /// An event's effects (sends, table updates) happen at least once: a worker that dies
    /// between writing them and committing the event's offset repeats them after restart
    /// (Faust's and Kafka Streams' default).
    #[default]
    AtLeastOnce,
    /// Each event's effects are committed exactly once, in one Kafka transaction per commit
    /// interval with the event's source offset (Kafka Streams' `exactly_once_v2`); readers
    /// must read committed (`isolation.level=read_committed`) to see only committed output.
    ExactlyOnce,
}

impl ProcessingGuarantee {
    /// Parses Faust's names: `"at_least_once"` or `"exactly_once"`.
    pub fn parse(name: &str) -> Option<ProcessingGuarantee> {
        match name {
            "at_least_once" => Some(ProcessingGuarantee::AtLeastOnce),
            "exactly_once" | "exactly_once_v2" => Some(ProcessingGuarantee::ExactlyOnce),
            _ => None,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            topic_partitions: 8,
            topic_replication_factor: 1,
            broker_commit_interval: Duration::from_millis(2800),
            broker_commit_every: 10_000,
            stream_buffer_maxsize: 4096,
            worker_shutdown_timeout: Duration::from_secs(30),
            producer_linger: Duration::ZERO,
            broker_api_timeout: Duration::from_secs(60),
            consumer_auto_offset_reset_earliest: true,
            consumer_skip_corrupt_batches: false,
            restart_failed_agents: 0,
            broker_session_timeout: Duration::from_secs(60),
            broker_heartbeat_interval: Duration::from_secs(3),
            broker_rebalance_timeout: Duration::from_secs(60),
            broker_tls: None,
            broker_credentials: None,
            table_standby_replicas: 0,
            table_cache_max_bytes: 10 << 20,
            redb_cache_bytes: None,
            worker_instance_id: None,
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            transaction_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(30),
            application_server: None,
            web_enabled: false,
            web_port: 6066,
            web_bind: "127.0.0.1".into(),
            web_host: None,
        }
    }
}
