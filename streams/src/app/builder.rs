//! [`AppBuilder`]: the settings, URLs and codecs an app is made with, checked by `build`.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use stores::StoreUrl;
use tokio::sync::watch;

use crate::broker::BrokerUrl;
use crate::codec::{Codec, CodecRegistry};
use crate::declarations::Declarations;
use crate::error::{Error, Result};
use crate::settings::Settings;

use super::{App, Inner};

/// Builds an [`App`]; see [`App::builder`].
#[derive(Debug)]
pub struct AppBuilder {
    id: String,
    broker: String,
    store: String,
    settings: Settings,
    registry: CodecRegistry,
    errors: Vec<Error>,
}

impl AppBuilder {
    /// Broker URL: `kafka://host:port[,host:port]` (default `kafka://localhost:9092`, as in
    /// Faust), `PLAINTEXT://host:port`, or `mock://` for an embedded mock cluster (with the
    /// `mock` cargo feature).
    pub fn broker(mut self, url: &str) -> Self {
        self.broker = url.to_owned();
        self
    }

    /// Store URL for tables: `memory://` (the default) or `redb://DIR`.
    pub fn store(mut self, url: &str) -> Self {
        self.store = url.to_owned();
        self
    }

    /// Workers that keep a warm copy of each table partition (default 0, as Faust's
    /// `table_standby_replicas`); a table can set its own.
    pub fn table_standby_replicas(mut self, replicas: u32) -> Self {
        self.settings.table_standby_replicas = replicas;
        self
    }

    /// The tables' write cache in bytes per table on this worker (default 10 MiB, as Kafka
    /// Streams' `statestore.cache.max.bytes`): repeated writes of a key within a commit
    /// interval reach the changelog and the store once, at the commit; a cache over the bound
    /// commits early. 0 turns the cache off: one changelog record per write.
    pub fn table_cache_max_bytes(mut self, bytes: u64) -> Self {
        self.settings.table_cache_max_bytes = bytes;
        self
    }

    /// The page cache of each table's redb file in bytes (default: redb's own, 1 GiB per
    /// file). A redb table's resident memory follows its file up to this bound; a smaller
    /// cache costs reads from the file (the OS page cache) for tables larger than it.
    pub fn redb_cache_bytes(mut self, bytes: usize) -> Self {
        self.settings.redb_cache_bytes = Some(bytes);
        self
    }

    /// Names this worker in the group (Kafka's `group.instance.id`, static membership): a
    /// worker that restarts under the same name, after a crash say, gets its partitions back
    /// at once instead of after its old session expires. Give each worker its own name.
    pub fn worker_instance_id(mut self, id: &str) -> Self {
        self.settings.worker_instance_id = Some(id.to_owned());
        self
    }

    /// This worker's advertised `host:port`, where the other workers reach its web server
    /// (Kafka Streams' `application.server`; Faust's `web_host:web_port`). It goes into the
    /// group's assignment, so that every worker knows who owns which partition
    /// ([`App::router`]) and queries the owner of a key ([`App::query`]). A bad value fails
    /// [`build`](Self::build). Without it, a worker whose web server is on advertises the
    /// server's address (see [`web_host`](Self::web_host)).
    pub fn application_server(mut self, host_port: &str) -> Self {
        match host_port.parse() {
            Ok(endpoint) => self.settings.application_server = Some(endpoint),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Partitions of topics the app creates (default 8).
    pub fn topic_partitions(mut self, n: i32) -> Self {
        self.settings.topic_partitions = n;
        self
    }

    /// Replicas of topics the app creates (default 1).
    pub fn topic_replication_factor(mut self, n: i16) -> Self {
        self.settings.topic_replication_factor = n;
        self
    }

    /// How often done offsets are committed (default 2.8 s, as Faust).
    pub fn broker_commit_interval(mut self, every: Duration) -> Self {
        self.settings.broker_commit_interval = every;
        self
    }

    /// Commit also after this many events (default 10,000, as Faust; at-least-once only:
    /// under exactly-once the interval alone commits, each commit being a transaction).
    pub fn broker_commit_every(mut self, events: usize) -> Self {
        self.settings.broker_commit_every = events;
        self
    }

    /// Events buffered per agent instance (default 4096, as Faust).
    pub fn stream_buffer_maxsize(mut self, n: usize) -> Self {
        self.settings.stream_buffer_maxsize = n;
        self
    }

    /// How long a graceful stop waits for agents (default 30 s).
    pub fn worker_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.worker_shutdown_timeout = timeout;
        self
    }

    /// How long a silent worker keeps its partitions (default 60 s, as Faust); brokers
    /// accept 6 s and more by default.
    pub fn broker_session_timeout(mut self, timeout: Duration) -> Self {
        self.settings.broker_session_timeout = timeout;
        self
    }

    /// Time between heartbeats (default 3 s).
    pub fn broker_heartbeat_interval(mut self, every: Duration) -> Self {
        self.settings.broker_heartbeat_interval = every;
        self
    }

    /// How long a rebalance waits for workers to rejoin (default 60 s).
    pub fn broker_rebalance_timeout(mut self, timeout: Duration) -> Self {
        self.settings.broker_rebalance_timeout = timeout;
        self
    }

    /// How long an ask waits for its reply ([`Agent::ask`](crate::Agent::ask); default 30 s).
    pub fn reply_timeout(mut self, timeout: Duration) -> Self {
        self.settings.reply_timeout = timeout;
        self
    }

    /// Serves the worker's web pages (`/`, `/health`, `/ready`, `/table/<name>/`; default
    /// off, the CLI's `worker` turns it on) on [`web_port`](Self::web_port).
    pub fn web_enabled(mut self, enabled: bool) -> Self {
        self.settings.web_enabled = enabled;
        self
    }

    /// The web server's port (default 6066, Faust's; 0 picks a free one, see
    /// [`App::web_address`](crate::App::web_address)).
    pub fn web_port(mut self, port: u16) -> Self {
        self.settings.web_port = port;
        self
    }

    /// The address the web server binds (default `127.0.0.1`: this machine only; `0.0.0.0`
    /// for every interface, as Faust).
    pub fn web_bind(mut self, address: &str) -> Self {
        self.settings.web_bind = address.to_owned();
        self
    }

    /// The host other workers reach this worker's pages at (Faust's `web_host`). Unless an
    /// [`application_server`](Self::application_server) is given, a worker with its web server
    /// on advertises `web_host:<the port it listens on>` to the group, so that the others
    /// forward requests and queries for its keys there. Default: the bind address, or this
    /// machine's host name when the server binds every interface (`0.0.0.0`, `::`).
    pub fn web_host(mut self, host: &str) -> Self {
        self.settings.web_host = Some(host.to_owned());
        self
    }

    /// How long the producer gathers a batch (default 0, as Faust: lowest latency; a few
    /// milliseconds save a little CPU under load).
    pub fn producer_linger(mut self, linger: Duration) -> Self {
        self.settings.producer_linger = linger;
        self
    }

    /// How long admin calls (creating the app's topics, looking up offsets) wait out a cluster
    /// that is still settling, such as a new topic whose leader is being elected, before the
    /// call fails (default 60 s, as Kafka's `default.api.timeout.ms`).
    pub fn broker_api_timeout(mut self, timeout: Duration) -> Self {
        self.settings.broker_api_timeout = timeout;
        self
    }

    /// Where the group starts on partitions without a committed offset: `"earliest"` (the
    /// default, as Faust) or `"latest"`.
    pub fn consumer_auto_offset_reset(mut self, reset: &str) -> Self {
        match reset {
            "earliest" => self.settings.consumer_auto_offset_reset_earliest = true,
            "latest" => self.settings.consumer_auto_offset_reset_earliest = false,
            other => self.errors.push(Error::invalid_setting(
                "consumer_auto_offset_reset",
                format!("{other:?}"),
                "use \"earliest\" or \"latest\"",
            )),
        }
        self
    }

    /// Restarts the worker when an agent fails (returns an error or panics), up to
    /// `max_restarts` times in the app's life: every agent starts again from the last
    /// committed offsets (nothing past the failed event was committed) and the restart is
    /// logged. By default (0) the worker stops with `Error::AgentFailed`, as Faust's crashing
    /// supervisor. Agents registered with [`App::agent`] run once and cannot restart: declare
    /// them with [`App::agent_builder`] and `run`.
    pub fn restart_failed_agents(mut self, max_restarts: u32) -> Self {
        self.settings.restart_failed_agents = max_restarts;
        self
    }

    /// Skip source record batches that stay unreadable after a refetch (a CRC mismatch,
    /// records that do not decode) instead of stopping the worker with an error naming
    /// topic, partition and offset (the default, as Kafka's Java consumer). A skipped batch's
    /// events are never processed; each skip is logged as a warning with its offsets.
    pub fn consumer_skip_corrupt_batches(mut self, skip: bool) -> Self {
        self.settings.consumer_skip_corrupt_batches = skip;
        self
    }

    /// TLS settings for `ssl://` and `sasl_ssl://` brokers: a CA file, a client certificate
    /// (mutual TLS), a server name. Without it, TLS brokers are checked against the built-in
    /// web roots.
    pub fn broker_tls(mut self, tls: kafka_client::TlsConfig) -> Self {
        self.settings.broker_tls = Some(tls);
        self
    }

    /// SASL credentials (PLAIN, SCRAM-SHA-256/512) for `sasl_ssl://` and `sasl_plaintext://`
    /// brokers (Faust's `broker_credentials`). A `kafka://` broker with credentials is a
    /// configuration error: SASL over plain TCP takes an explicit `sasl_plaintext://`.
    pub fn broker_credentials(mut self, sasl: kafka_client::SaslConfig) -> Self {
        self.settings.broker_credentials = Some(sasl);
        self
    }

    /// `"at_least_once"` (the default) or `"exactly_once"` (Faust's `processing_guarantee`):
    /// under exactly-once, each commit interval's sends, table changelog writes and source
    /// offsets are one Kafka transaction, so a crash neither loses nor repeats an event's
    /// effects for read_committed readers. Needs a broker with transactions (Kafka 2.5+).
    pub fn processing_guarantee(mut self, guarantee: &str) -> Self {
        match crate::settings::ProcessingGuarantee::parse(guarantee) {
            Some(g) => self.settings.processing_guarantee = g,
            None => self.errors.push(Error::invalid_setting(
                "processing_guarantee",
                format!("{guarantee:?}"),
                "use \"at_least_once\" or \"exactly_once\"",
            )),
        }
        self
    }

    /// How long a transaction may stay open before the broker aborts it, under exactly-once
    /// (default 10 s, as Kafka Streams).
    pub fn transaction_timeout(mut self, timeout: Duration) -> Self {
        self.settings.transaction_timeout = timeout;
        self
    }

    /// Registers a codec under a name usable in serializer chains (`"json|mycodec"`).
    pub fn codec(mut self, name: &str, codec: impl Codec) -> Self {
        if let Err(e) = self.registry.register(name, Arc::new(codec)) {
            self.errors.push(e);
        }
        self
    }

    /// Checks the URLs and settings and makes the app. Nothing connects until it starts.
    pub fn build(self) -> Result<App> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(Error::invalid_setting(
                "id",
                format!("{:?}", self.id),
                "use letters, digits, '.', '_' and '-' (it names the group and topics)",
            ));
        }
        let broker = BrokerUrl::parse(&self.broker)?;
        let store = StoreUrl::parse(&self.store)?;
        let s = &self.settings;
        let positive = [
            ("topic_partitions", s.topic_partitions as i128),
            ("stream_buffer_maxsize", s.stream_buffer_maxsize as i128),
            ("broker_commit_every", s.broker_commit_every as i128),
        ];
        if let Some((name, value)) = positive.into_iter().find(|(_, v)| *v < 1) {
            return Err(Error::invalid_setting(name, value, "must be at least 1"));
        }
        if s.processing_guarantee == crate::settings::ProcessingGuarantee::ExactlyOnce
            && s.transaction_timeout <= s.broker_commit_interval
        {
            return Err(Error::invalid_setting(
                "transaction_timeout",
                format!("{:?}", s.transaction_timeout),
                format!(
                    "must be longer than broker_commit_interval ({:?}) under exactly-once: a \
                     transaction stays open for a commit interval, and the broker aborts it \
                     after transaction_timeout",
                    s.broker_commit_interval
                ),
            ));
        }
        let web = super::web::WebState::from_settings(&self.settings);
        Ok(App {
            inner: Arc::new(Inner {
                decls: Arc::new(Declarations::new(
                    self.id,
                    self.settings,
                    self.registry,
                    store,
                )),
                broker: Mutex::new(broker),
                conn: OnceLock::new(),
                connector: Mutex::new(None),
                runtime: Mutex::new(None),
                stop: watch::channel(false).0,
                web: Mutex::new(web),
            }),
        })
    }
}

impl App {
    /// Starts configuring an app; `id` is also its consumer group and the prefix of the topics
    /// it creates for itself.
    pub fn builder(id: &str) -> AppBuilder {
        AppBuilder {
            id: id.to_owned(),
            broker: "kafka://localhost:9092".to_owned(),
            store: "memory://".to_owned(),
            settings: Settings::default(),
            registry: CodecRegistry::default(),
            errors: Vec::new(),
        }
    }
}
