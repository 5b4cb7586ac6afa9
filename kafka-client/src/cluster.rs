//! What the client knows about the cluster: brokers, topic partitions and their leaders, and
//! one connection per broker, opened on demand and reopened with backoff after a failure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::backoff::Backoff;
use crate::config::ClientConfig;
use crate::conn::Connection;
use crate::error::{Error, KafkaCode, Result};

/// Metadata versions this client speaks (v1 is the first with controller id and racks).
const METADATA_VERSIONS: std::ops::RangeInclusive<i16> = 1..=12;

/// A broker as the cluster advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker's id (`node.id`).
    pub id: i32,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: i32,
    /// The broker's rack (`broker.rack`), if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition number.
    pub partition: i32,
    /// Broker id of the leader, or -1 while there is none.
    pub leader: i32,
    /// The leader's epoch: grows with every leader change; -1 if the broker does not say.
    pub leader_epoch: i32,
    /// Broker ids holding a copy, the preferred leader first.
    pub replicas: Vec<i32>,
    /// Broker ids of the in-sync replicas.
    pub isr: Vec<i32>,
}

/// A topic's partitions, ordered by partition number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// Whether the topic is internal to Kafka (`__consumer_offsets`, `__transaction_state`).
    pub internal: bool,
    /// The partitions, ordered by partition number.
    pub partitions: Vec<PartitionInfo>,
}

/// A snapshot of cluster metadata.
#[derive(Debug, Clone, Default)]
pub struct ClusterInfo {
    /// The cluster's id, if the broker reports one.
    pub cluster_id: Option<String>,
    /// Broker id of the active controller, or -1 if unknown.
    pub controller_id: i32,
    /// The live brokers.
    pub brokers: Vec<BrokerInfo>,
}

#[derive(Default)]
struct Cache {
    cluster: ClusterInfo,
    topics: HashMap<String, TopicInfo>,
}

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Connection>>,
    failures: u32,
    last_failure: Option<Instant>,
}

/// Shared by every component of one client (producer, consumer, admin).
pub(crate) struct Cluster {
    pub(crate) config: ClientConfig,
    cache: Mutex<Cache>,
    /// Moves on with every change of the cached topics: a producer keeps partition counts
    /// between changes instead of locking the cache per record.
    topics_generation: AtomicU64,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    refresh: tokio::sync::Mutex<()>,
}

impl Cluster {
    /// Connects to a bootstrap broker and loads the broker list.
    pub(crate) async fn connect(config: ClientConfig) -> Result<Arc<Cluster>> {
        let cluster = Arc::new(Cluster {
            config,
            cache: Mutex::default(),
            topics_generation: AtomicU64::new(0),
            slots: Mutex::default(),
            refresh: tokio::sync::Mutex::new(()),
        });
        cluster.refresh_metadata(&[], false).await?;
        Ok(cluster)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn info(&self) -> ClusterInfo {
        self.cache().cluster.clone()
    }

    pub(crate) fn topic(&self, topic: &str) -> Option<TopicInfo> {
        self.cache().topics.get(topic).cloned()
    }

    /// Changes whenever a cached topic is added, replaced or forgotten: a partition count
    /// read after loading generation `g` stays true while the generation is still `g`.
    pub(crate) fn topics_generation(&self) -> u64 {
        self.topics_generation.load(Ordering::Acquire)
    }

    /// Number of partitions of a cached topic, without copying its metadata.
    pub(crate) fn partition_count(&self, topic: &str) -> Option<usize> {
        self.cache().topics.get(topic).map(|t| t.partitions.len())
    }

    /// The leader broker id of a partition, if known and present.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let cache = self.cache();
        let p = cache
            .topics
            .get(topic)?
            .partitions
            .get(partition as usize)?;
        (p.leader >= 0).then_some(p.leader)
    }

    /// The leader broker id and leader epoch of a partition, if known and present (the
    /// consumer sends the epoch with fetches so a stale leader is fenced).
    pub(crate) fn leader_and_epoch(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        let cache = self.cache();
        let p = cache
            .topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)?;
        (p.leader >= 0).then_some((p.leader, p.leader_epoch))
    }

    /// Partitions of a topic, fetching metadata when it is not cached. With
    /// `allow_auto_create` the broker may create it (as the Java producer lets it).
    pub(crate) async fn topic_or_fetch(
        &self,
        topic: &str,
        allow_auto_create: bool,
    ) -> Result<TopicInfo> {
        if let Some(t) = self.topic(topic) {
            return Ok(t);
        }
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
        let deadline = Instant::now() + self.config.request_timeout;
        loop {
            match self
                .refresh_metadata(&[topic.to_owned()], allow_auto_create)
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    tracing::debug!(topic, error = %e, "metadata refresh failed, retrying");
                }
                Err(e) => return Err(e),
            }
            if let Some(t) = self.topic(topic) {
                return Ok(t);
            }
            if Instant::now() >= deadline {
                return Err(Error::UnknownPartition {
                    topic: topic.to_owned(),
                    partition: -1,
                });
            }
            backoff.sleep().await;
        }
    }

    /// Asks any broker for metadata of `topics` (all brokers, no topics when empty) and
    /// merges it into the cache. Concurrent refreshes are serialised.
    pub(crate) async fn refresh_metadata(
        &self,
        topics: &[String],
        allow_auto_create: bool,
    ) -> Result<()> {
        let _one_at_a_time = self.refresh.lock().await;
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::Metadata, METADATA_VERSIONS)?;
        let request = MetadataRequest::default()
            .with_topics(Some(
                topics
                    .iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                    })
                    .collect(),
            ))
            .with_allow_auto_topic_creation(allow_auto_create);
        let response = match conn.request(&request, version).await {
            Ok(r) => r,
            Err(e) => {
                conn.close("metadata request failed");
                return Err(e);
            }
        };
        self.merge(response);
        Ok(())
    }

    fn merge(&self, response: MetadataResponse) {
        let mut cache = self.cache();
        cache.cluster = ClusterInfo {
            cluster_id: response.cluster_id.map(|s| s.to_string()),
            controller_id: response.controller_id.0,
            brokers: response
                .brokers
                .into_iter()
                .map(|b| BrokerInfo {
                    id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.map(|r| r.to_string()),
                })
                .collect(),
        };
        for topic in response.topics {
            let Some(name) = topic.name.map(|n| n.0.to_string()) else {
                continue;
            };
            match KafkaCode::try_from_code(topic.error_code) {
                None => {}
                Some(code) => {
                    tracing::debug!(topic = %name, %code, "metadata has no usable partitions");
                    cache.topics.remove(&name);
                    continue;
                }
            }
            let mut partitions: Vec<PartitionInfo> = topic
                .partitions
                .into_iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.into_iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.into_iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            // A gap in partition numbers would break index-by-partition lookups.
            if partitions
                .iter()
                .enumerate()
                .any(|(i, p)| p.partition != i as i32)
            {
                tracing::warn!(topic = %name, "metadata lists partitions with gaps; ignored");
                continue;
            }
            cache.topics.insert(
                name.clone(),
                TopicInfo {
                    name,
                    internal: topic.is_internal,
                    partitions,
                },
            );
        }
        // After the change, under the lock: whoever reads this generation reads the cache
        // after it too.
        self.topics_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets a topic so the next lookup asks the cluster again (after NOT_LEADER and such).
    pub(crate) fn invalidate(&self, topic: &str) {
        let mut cache = self.cache();
        cache.topics.remove(topic);
        self.topics_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The connection to broker `id`, opening it if needed.
    pub(crate) async fn broker(&self, id: i32) -> Result<Arc<Connection>> {
        let mut broker = self.broker_info(id);
        if broker.is_none() {
            self.refresh_metadata(&[], false).await?;
            broker = self.broker_info(id);
        }
        // A leader or coordinator id that fresher metadata no longer lists: the broker stopped
        // or left. Retriable (the caller looks the leader or coordinator up again), like any
        // other broker it cannot reach; not a configuration error.
        let broker = broker.ok_or_else(|| Error::Disconnected {
            broker: id.to_string(),
            reason: "it is not in the cluster metadata (stopped or gone); retried after a \
                     metadata refresh"
                .into(),
        })?;
        self.connection(
            &broker.address(),
            format!("{}@{}", broker.id, broker.address()),
        )
        .await
    }

    fn broker_info(&self, id: i32) -> Option<BrokerInfo> {
        self.cache()
            .cluster
            .brokers
            .iter()
            .find(|b| b.id == id)
            .cloned()
    }

    /// Any live connection: a broker already connected, else a known broker, else bootstrap.
    pub(crate) async fn any_connection(&self) -> Result<Arc<Connection>> {
        let live = {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.values().cloned().collect::<Vec<_>>()
        };
        for slot in live {
            if let Ok(slot) = slot.try_lock() {
                if let Some(conn) = slot.conn.as_ref().filter(|c| !c.is_closed()) {
                    return Ok(conn.clone());
                }
            }
        }
        let mut candidates: Vec<(String, String)> = self
            .cache()
            .cluster
            .brokers
            .iter()
            .map(|b| (b.address(), format!("{}@{}", b.id, b.address())))
            .collect();
        candidates.extend(
            self.config
                .bootstrap
                .iter()
                .map(|a| (a.clone(), format!("bootstrap@{a}"))),
        );
        let mut last = None;
        for (address, label) in candidates {
            match self.connection(&address, label).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::InvalidSetting {
            setting: "ClientConfig::bootstrap",
            reason: "no broker address known: give at least one host:port".into(),
        }))
    }

    /// The pooled connection to `address`, reconnecting with exponential backoff.
    async fn connection(&self, address: &str, label: String) -> Result<Arc<Connection>> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(address.to_owned()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(conn) = slot.conn.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        if let Some(last) = slot.last_failure {
            let backoff = Backoff::new(
                self.config.reconnect_backoff,
                self.config.reconnect_backoff_max,
            )
            .delay_after(slot.failures);
            let wait = (last + backoff).saturating_duration_since(Instant::now());
            tokio::time::sleep(wait).await;
        }
        match Connection::connect(address, label.clone(), &self.config).await {
            Ok(conn) => {
                let conn = Arc::new(conn);
                slot.conn = Some(conn.clone());
                slot.failures = 0;
                slot.last_failure = None;
                tracing::debug!(broker = %label, "connected");
                Ok(conn)
            }
            Err(e) => {
                slot.conn = None;
                slot.failures += 1;
                slot.last_failure = Some(Instant::now());
                tracing::warn!(broker = %label, error = %e, failures = slot.failures, "connect failed");
                Err(e)
            }
        }
    }

    /// Sends one request to broker `id` at the best common version, building it for that
    /// version with `build`.
    pub(crate) async fn request_to<R: Request>(
        &self,
        id: i32,
        api: ApiKey,
        ours: std::ops::RangeInclusive<i16>,
        build: impl FnOnce(i16) -> R,
    ) -> Result<R::Response> {
        let conn = self.broker(id).await?;
        let version = conn.version(api, ours)?;
        conn.request(&build(version), version).await
    }

    /// Like [`Cluster::request_to`] on any broker.
    pub(crate) async fn request_any<R: Request>(
        &self,
        api: ApiKey,
        ours: std::ops::RangeInclusive<i16>,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(R::Response, i16)> {
        let conn = self.any_connection().await?;
        let version = conn.version(api, ours)?;
        Ok((conn.request(&build(version), version).await?, version))
    }
}
