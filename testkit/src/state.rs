//! The cluster's shared state: brokers, topics and their partition logs, groups, producer ids,
//! intercepts and the request log. One mutex; never held across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use uuid::Uuid;

use crate::control::{InterceptRule, RequestRecord};
use crate::group::Coordinator;
use crate::ids::random_uuid;
use crate::log::PartitionLog;

/// Settings fixed when the cluster is built.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub default_partitions: i32,
    pub auto_create_topics: bool,
    pub cluster_id: String,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    /// TLS on every listener, when set.
    pub tls: Option<crate::security::MockTls>,
    /// SASL/PLAIN on every listener, when set.
    pub sasl: Option<crate::security::MockSasl>,
    /// The finalized `transaction.version` feature ApiVersions advertises (2 = KIP-890).
    pub transaction_version: i16,
    /// Kafka's `transaction.max.timeout.ms`.
    pub transaction_max_timeout_ms: i32,
}

/// A broker's address and whether it is serving.
#[derive(Debug, Clone)]
pub(crate) struct BrokerInfo {
    pub id: i32,
    /// The host Metadata and FindCoordinator advertise (`127.0.0.1`, or `mock-broker-<id>`
    /// in memory).
    pub host: String,
    pub port: u16,
    pub running: bool,
}

/// A topic: id, configs and partitions.
#[derive(Debug)]
pub(crate) struct Topic {
    pub id: Uuid,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<PartitionLog>,
}

impl Topic {
    pub fn is_compacted(&self) -> bool {
        self.configs
            .get("cleanup.policy")
            .is_some_and(|p| p.split(',').any(|p| p.trim() == "compact"))
    }
    pub fn delete_retention_ms(&self) -> i64 {
        self.configs
            .get("delete.retention.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(86_400_000)
    }
    /// The share of a log written since its last compaction at which the background cleaner
    /// compacts it again (Kafka's default 0.5).
    pub fn min_cleanable_dirty_ratio(&self) -> f64 {
        self.configs
            .get("min.cleanable.dirty.ratio")
            .and_then(|v| v.parse().ok())
            .filter(|r: &f64| (0.0..=1.0).contains(r))
            .unwrap_or(0.5)
    }
}

/// Everything the brokers share.
#[derive(Debug)]
pub(crate) struct State {
    pub settings: Settings,
    pub brokers: Vec<BrokerInfo>,
    pub topics: BTreeMap<String, Topic>,
    pub topic_ids: HashMap<Uuid, String>,
    pub groups: Coordinator,
    pub next_producer_id: i64,
    pub txns: crate::transactions::Transactions,
    pub intercepts: Vec<InterceptRule>,
    pub requests: Vec<RequestRecord>,
    next_leader: usize,
}

/// The handle every task holds.
pub(crate) type Shared = Arc<Mutex<State>>;

/// Locks the state, recovering from a poisoned lock (a panicking test thread must not take
/// the broker down with it).
pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kafka's rules for topic names.
pub(crate) fn valid_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is illegal"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters, the maximum is 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains illegal character {c:?}"
        ));
    }
    Ok(())
}

impl State {
    pub fn new(settings: Settings, brokers: Vec<BrokerInfo>) -> Self {
        State {
            settings,
            brokers,
            topics: BTreeMap::new(),
            topic_ids: HashMap::new(),
            groups: Coordinator::default(),
            next_producer_id: 1000,
            txns: crate::transactions::Transactions::default(),
            intercepts: Vec::new(),
            requests: Vec::new(),
            next_leader: 0,
        }
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerInfo> {
        self.brokers.iter().find(|b| b.id == id)
    }

    pub fn is_running(&self, id: i32) -> bool {
        self.broker(id).is_some_and(|b| b.running)
    }

    /// Creates a topic; leaders are spread round-robin over the brokers.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Uuid, (i16, String)> {
        use kafka_protocol::ResponseError as E;
        valid_topic_name(name).map_err(|r| (E::InvalidTopicException.code(), r))?;
        if self.topics.contains_key(name) {
            return Err((
                E::TopicAlreadyExists.code(),
                format!("topic {name:?} already exists"),
            ));
        }
        if partitions <= 0 {
            return Err((
                E::InvalidPartitions.code(),
                format!("{partitions} partitions: must be at least 1"),
            ));
        }
        if partitions > 100_000 {
            return Err((
                E::InvalidPartitions.code(),
                format!("{partitions} partitions is too many for the mock"),
            ));
        }
        let id = random_uuid();
        let start = self.next_leader;
        self.next_leader += 1;
        let n = self.brokers.len().max(1);
        let parts = (0..partitions as usize)
            .map(|p| {
                PartitionLog::new(self.brokers.get((start + p) % n).map(|b| b.id).unwrap_or(0))
            })
            .collect();
        self.topics.insert(
            name.to_owned(),
            Topic {
                id,
                configs,
                partitions: parts,
            },
        );
        self.topic_ids.insert(id, name.to_owned());
        tracing::debug!(topic = name, partitions, "topic created");
        Ok(id)
    }

    /// Adds partitions to a topic, up to `total`.
    pub fn add_partitions(&mut self, name: &str, total: i32) -> Result<(), (i16, String)> {
        use kafka_protocol::ResponseError as E;
        let n = self.brokers.len().max(1);
        let ids: Vec<i32> = self.brokers.iter().map(|b| b.id).collect();
        let Some(topic) = self.topics.get_mut(name) else {
            return Err((
                E::UnknownTopicOrPartition.code(),
                format!("topic {name:?} does not exist"),
            ));
        };
        let have = topic.partitions.len() as i32;
        if total <= have {
            return Err((
                E::InvalidPartitions.code(),
                format!("topic {name:?} has {have} partitions; asked for {total}"),
            ));
        }
        if total > 100_000 {
            return Err((
                E::InvalidPartitions.code(),
                format!("{total} partitions is too many for the mock"),
            ));
        }
        for p in have..total {
            topic.partitions.push(PartitionLog::new(
                ids.get(p as usize % n).copied().unwrap_or(0),
            ));
        }
        Ok(())
    }

    /// Deletes a topic and the committed offsets for it; wakes fetches waiting on it.
    pub fn delete_topic(&mut self, name: &str) -> Option<Uuid> {
        let topic = self.topics.remove(name)?;
        self.topic_ids.remove(&topic.id);
        for p in &topic.partitions {
            p.notify.notify_waiters();
        }
        self.groups.forget_topic(name);
        Some(topic.id)
    }

    /// Auto-creates a topic if the cluster allows it.
    pub fn maybe_auto_create(&mut self, name: &str) -> bool {
        if self.topics.contains_key(name) {
            return true;
        }
        if !self.settings.auto_create_topics {
            return false;
        }
        let partitions = self.settings.default_partitions;
        self.create_topic(name, partitions, BTreeMap::new()).is_ok()
    }

    /// The broker coordinating a group or transactional id: a stable hash over the brokers,
    /// moving to the next running broker when that one is stopped (like a new leader for the
    /// internal topic's partition).
    pub fn coordinator_for(&self, key: &str) -> Option<i32> {
        let n = self.brokers.len();
        if n == 0 {
            return None;
        }
        // Java's String.hashCode, so the choice is stable across runs.
        let h = key
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
        let start = (h as i64).rem_euclid(n as i64) as usize;
        (0..n)
            .map(|i| &self.brokers[(start + i) % n])
            .find(|b| b.running)
            .map(|b| b.id)
    }

    /// The serving leader of a partition, or None when its broker is stopped.
    pub fn live_leader(&self, log: &PartitionLog) -> Option<i32> {
        self.is_running(log.leader).then_some(log.leader)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionLog> {
        self.topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)
    }

    pub fn partition_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionLog> {
        self.topics
            .get_mut(topic)?
            .partitions
            .get_mut(usize::try_from(partition).ok()?)
    }
}
