//! The worker's Prometheus metrics, one registry per app (several apps share a test process).
//!
//! Built on `prometheus-client`: the families are registered once here; the runtime and the
//! stream layer resolve their label sets once (a handle per agent, topic or partition) and
//! then only bump atomics. Encoded on demand by [`Metrics::encode`] (`App::metrics_text`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use kafka_client::TopicPartition;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

mod sharded;

pub(crate) use sharded::{Counts, Shard, ShardedHistogram};

/// Label pairs of one series.
type Labels = Vec<(&'static str, String)>;

/// Seconds, from 100µs to about 100s (a factor of 4 per bucket).
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

/// [`latency_histogram`]'s buckets, counted by each agent instance (see [`sharded`]).
fn processing_histogram() -> ShardedHistogram {
    ShardedHistogram::new(exponential_buckets(0.0001, 4.0, 11))
}

/// Every metric of one app.
pub(crate) struct Metrics {
    registry: Registry,
    events_in: Family<Labels, Counter>,
    records_sent: Family<Labels, Counter>,
    processing: Family<Labels, ShardedHistogram, fn() -> ShardedHistogram>,
    commits: Counter,
    commit_failures: Counter,
    commit_latency: Histogram,
    consumer_lag: Family<Labels, Gauge>,
    /// The lag gauges of the assigned partitions, by topic and partition, for `/` to list.
    lags: Mutex<BTreeMap<(String, i32), Gauge>>,
    rebalances: Counter,
    recovery_remaining: Family<Labels, Gauge>,
    producer_errors: Counter,
    /// The highest delivery-failure count of the app's producer reported so far: the producer
    /// counts since it started, the counter moves by what is new.
    producer_errors_seen: AtomicU64,
    producer_retries: Counter,
    /// The app producer's retry count reported so far (as for `producer_errors_seen`).
    producer_retries_seen: AtomicU64,
    dead_letters: Family<Labels, Counter>,
    web_connections: Gauge,
    web_panics: Counter,
    table_keys: Family<Labels, Gauge>,
    late_events: Family<Labels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn partition_labels(tp: &TopicPartition) -> Labels {
    vec![
        ("topic", tp.topic.to_string()),
        ("partition", tp.partition.to_string()),
    ]
}

fn table_labels(table: &str, partition: i32) -> Labels {
    vec![
        ("table", table.to_owned()),
        ("partition", partition.to_string()),
    ]
}

impl Metrics {
    /// A registry with every family registered (names prefixed `streams_`).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("streams");
        let events_in = Family::<Labels, Counter>::default();
        registry.register(
            "events_in",
            "Events delivered to agents, per source topic and agent",
            events_in.clone(),
        );
        let records_sent = Family::<Labels, Counter>::default();
        registry.register(
            "records_sent",
            "Records handed to the producer, per destination topic",
            records_sent.clone(),
        );
        let processing =
            Family::<Labels, ShardedHistogram, fn() -> ShardedHistogram>::new_with_constructor(
                processing_histogram as fn() -> ShardedHistogram,
            );
        registry.register(
            "processing_seconds",
            "Time from an event's delivery to its agent until the agent released it, per agent",
            processing.clone(),
        );
        let commits = Counter::default();
        registry.register(
            "commits",
            "Offset commits (or transactions) that succeeded",
            commits.clone(),
        );
        let commit_failures = Counter::default();
        registry.register(
            "commit_failures",
            "Offset commits (or transactions) that failed",
            commit_failures.clone(),
        );
        let commit_latency = latency_histogram();
        registry.register(
            "commit_seconds",
            "Time an offset commit (or transaction commit) took, failed or not",
            commit_latency.clone(),
        );
        let consumer_lag = Family::<Labels, Gauge>::default();
        registry.register(
            "consumer_lag",
            "Records of an assigned partition not read yet: high watermark minus position",
            consumer_lag.clone(),
        );
        let rebalances = Counter::default();
        registry.register(
            "rebalances",
            "Completed rebalances that assigned partitions to this worker",
            rebalances.clone(),
        );
        let recovery_remaining = Family::<Labels, Gauge>::default();
        registry.register(
            "recovery_remaining_records",
            "Changelog records a recovering table partition has left to replay",
            recovery_remaining.clone(),
        );
        let producer_errors = Counter::default();
        registry.register(
            "producer_errors",
            "Records the app's producer failed to deliver",
            producer_errors.clone(),
        );
        let producer_retries = Counter::default();
        registry.register(
            "producer_retries",
            "Records the producers sent again after a retriable error (delivered or not)",
            producer_retries.clone(),
        );
        let dead_letters = Family::<Labels, Counter>::default();
        registry.register(
            "dead_letters",
            "Records that did not decode and went to a dead-letter topic, per source topic",
            dead_letters.clone(),
        );
        let web_connections = Gauge::default();
        registry.register(
            "web_connections",
            "Connections the worker's web server holds open",
            web_connections.clone(),
        );
        let web_panics = Counter::default();
        registry.register(
            "web_connection_panics",
            "Web server connections whose task panicked (each ended only itself)",
            web_panics.clone(),
        );
        let table_keys = Family::<Labels, Gauge>::default();
        registry.register(
            "table_keys",
            "Keys in an active table partition, read at each scrape",
            table_keys.clone(),
        );
        let late_events = Family::<Labels, Counter>::default();
        registry.register(
            "late_events",
            "Events a windowed table or windowed join dropped as later than its grace period, \
             per table (a join's: its buffer table), read at each scrape",
            late_events.clone(),
        );
        Metrics {
            registry,
            events_in,
            records_sent,
            processing,
            commits,
            commit_failures,
            commit_latency,
            consumer_lag,
            lags: Mutex::default(),
            rebalances,
            recovery_remaining,
            producer_errors,
            producer_errors_seen: AtomicU64::new(0),
            producer_retries,
            producer_retries_seen: AtomicU64::new(0),
            dead_letters,
            web_connections,
            web_panics,
            table_keys,
            late_events,
        }
    }

    /// The Prometheus text exposition (OpenMetrics) of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; the encoder only forwards fmt::Error.
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }

    /// The counter of events of `topic` delivered to `agent` (resolve once per route).
    pub fn events_in(&self, topic: &str, agent: &str) -> Counter {
        self.events_in.get_or_create_owned(&vec![
            ("topic", topic.to_owned()),
            ("agent", agent.to_owned()),
        ])
    }

    /// The counter of records sent to `topic` (resolve once per topic).
    pub fn records_sent(&self, topic: &str) -> Counter {
        self.records_sent
            .get_or_create_owned(&vec![("topic", topic.to_owned())])
    }

    /// The processing-latency histogram of `agent` (resolve once per agent).
    pub fn processing(&self, agent: &str) -> ShardedHistogram {
        self.processing
            .get_or_create_owned(&vec![("agent", agent.to_owned())])
    }

    /// A commit that began at `started` succeeded.
    pub fn commit_succeeded(&self, started: tokio::time::Instant) {
        self.commit_latency.observe(started.elapsed().as_secs_f64());
        self.commits.inc();
    }

    /// A commit that began at `started` failed.
    pub fn commit_failed(&self, started: tokio::time::Instant) {
        self.commit_latency.observe(started.elapsed().as_secs_f64());
        self.commit_failures.inc();
    }

    /// The lag of an assigned partition (at each commit tick, not per record).
    pub fn set_lag(&self, tp: &TopicPartition, lag: i64) {
        let mut lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        lags.entry((tp.topic.to_string(), tp.partition))
            .or_insert_with(|| self.consumer_lag.get_or_create_owned(&partition_labels(tp)))
            .set(lag);
    }

    /// Partitions no longer assigned have no lag here.
    pub fn forget_partitions(&self, tps: &[TopicPartition]) {
        let mut lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        for tp in tps {
            lags.remove(&(tp.topic.to_string(), tp.partition));
            self.consumer_lag.remove(&partition_labels(tp));
        }
    }

    /// The last lag of each assigned partition: topic, partition, records not read yet.
    pub fn lags(&self) -> Vec<(String, i32, i64)> {
        let lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        lags.iter()
            .map(|((topic, partition), gauge)| (topic.clone(), *partition, gauge.get()))
            .collect()
    }

    /// A rebalance assigned partitions to this worker.
    pub fn rebalanced(&self) {
        self.rebalances.inc();
    }

    /// The gauge of records a table partition has left to replay (resolve once per recovery).
    pub fn recovery_remaining(&self, table: &str, partition: i32) -> Gauge {
        self.recovery_remaining
            .get_or_create_owned(&table_labels(table, partition))
    }

    /// The app's producer has failed to deliver `failed` records since it started.
    pub fn producer_failures(&self, failed: u64) {
        let seen = self
            .producer_errors_seen
            .fetch_max(failed, Ordering::AcqRel);
        if failed > seen {
            self.producer_errors.inc_by(failed - seen);
        }
    }

    /// The app's producer has retried `retried` records since it started
    /// ([`Producer::retries`](kafka_client::producer::Producer::retries)).
    pub fn app_producer_retries(&self, retried: u64) {
        self.producer_retries_since(&self.producer_retries_seen, retried);
    }

    /// Another producer (a worker's transactional one) has retried `retried` records since it
    /// started; `seen` is what was reported of it so far, kept beside that producer.
    pub fn producer_retries_since(&self, seen: &AtomicU64, retried: u64) {
        let before = seen.fetch_max(retried, Ordering::AcqRel);
        if retried > before {
            self.producer_retries.inc_by(retried - before);
        }
    }

    /// A record of `topic` went to its dead-letter topic (rare: looked up each time).
    pub fn dead_lettered(&self, topic: &str) {
        self.dead_letters
            .get_or_create(&vec![("topic", topic.to_owned())])
            .inc();
    }

    /// The gauge of the web server's open connections (resolved once by the server).
    pub fn web_connections(&self) -> Gauge {
        self.web_connections.clone()
    }

    /// A web server connection's task panicked.
    pub fn web_connection_panicked(&self) {
        self.web_panics.inc();
    }

    /// The key count of an active table partition.
    pub fn set_table_keys(&self, table: &str, partition: i32, keys: u64) {
        self.table_keys
            .get_or_create(&table_labels(table, partition))
            .set(i64::try_from(keys).unwrap_or(i64::MAX));
    }

    /// The late-event count of a windowed table or join (counted since the worker started).
    pub fn set_late_events(&self, table: &str, late: u64) {
        let counter = self
            .late_events
            .get_or_create_owned(&vec![("table", table.to_owned())]);
        // A counter only moves up; concurrent scrapes each bring it to what they read.
        counter.inner().fetch_max(late, Ordering::Relaxed);
    }

    /// A table partition left this worker (or stopped being active).
    pub fn forget_table_partition(&self, table: &str, partition: i32) {
        self.table_keys.remove(&table_labels(table, partition));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_handles_feed_the_registry() {
        let m = Metrics::new();
        let events = m.events_in("orders", "count");
        events.inc();
        events.inc();
        m.producer_failures(3);
        m.producer_failures(3); // the same failures, seen again
        m.producer_failures(4);
        m.app_producer_retries(2);
        m.app_producer_retries(1); // an older read, late
        let worker = AtomicU64::new(0);
        m.producer_retries_since(&worker, 5);
        m.set_lag(&TopicPartition::new("orders", 1), 7);
        m.set_lag(&TopicPartition::new("orders", 0), 3);
        m.set_lag(&TopicPartition::new("orders", 1), 6);
        assert_eq!(
            m.lags(),
            vec![("orders".into(), 0, 3), ("orders".into(), 1, 6)]
        );
        let text = m.encode();
        assert!(
            text.contains(r#"streams_events_in_total{topic="orders",agent="count"} 2"#),
            "{text}"
        );
        assert!(text.contains("streams_producer_errors_total 4"), "{text}");
        assert!(text.contains("streams_producer_retries_total 7"), "{text}");
        assert!(
            text.contains(r#"streams_consumer_lag{topic="orders",partition="1"} 6"#),
            "{text}"
        );
        m.forget_partitions(&[TopicPartition::new("orders", 1)]);
        assert_eq!(m.lags(), vec![("orders".into(), 0, 3)]);
    }
}
