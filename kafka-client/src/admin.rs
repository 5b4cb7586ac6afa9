//! The admin client: create and delete topics, add partitions, list offsets, describe the
//! cluster and topic configs.
//!
//! Controller-bound requests (CreateTopics, DeleteTopics, CreatePartitions) go to any broker:
//! KRaft brokers forward them to the controller. `NOT_CONTROLLER` and other retriable answers
//! are retried a bounded number of times with exponential backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{Cluster, ClusterInfo, TopicInfo};
use crate::config::ClientConfig;
use crate::error::{check_code, Error, KafkaCode, Result};
use crate::topic_partition::TopicPartition;

const CREATE_TOPICS_VERSIONS: std::ops::RangeInclusive<i16> = 2..=7;
const DELETE_TOPICS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=6;
const CREATE_PARTITIONS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;
const DESCRIBE_CONFIGS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=4;
const LIST_OFFSETS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=10;

/// Attempts for one admin or ListOffsets operation before giving up.
const MAX_ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Config resource type of a topic in DescribeConfigs.
const RESOURCE_TOPIC: i8 = 2;

/// A topic to create.
///
/// ```
/// # use kafka_client::admin::NewTopic;
/// let changelog = NewTopic::new("app-table-changelog", 8, 1).with_config("cleanup.policy", "compact");
/// assert_eq!(changelog.configs.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic's name.
    pub name: String,
    /// Number of partitions; -1 takes the broker's `num.partitions`.
    pub partitions: i32,
    /// Copies of each partition; -1 takes the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs such as `cleanup.policy=compact`, in order.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with no config overrides.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }

    /// Adds a config override.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// How [`Admin::create_topics_with`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreateTopicsOptions {
    /// Treat `TOPIC_ALREADY_EXISTS` as success (the existing topic is left as it is).
    pub ignore_existing: bool,
    /// Ask the broker to check the request without creating anything.
    pub validate_only: bool,
}

/// Which offset of a partition to look up (ListOffsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (the high watermark; the last stable offset for read_committed).
    Latest,
    /// The first offset whose timestamp is at or after this many milliseconds since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// The answer for one partition of a ListOffsets lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 when a timestamp lookup found no record at or after the timestamp.
    pub offset: i64,
    /// The timestamp of the record found by a timestamp lookup, else -1.
    pub timestamp: i64,
    /// Leader epoch of that offset, -1 when the broker does not say.
    pub leader_epoch: i32,
}

/// One topic config as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The config's name (`cleanup.policy`).
    pub name: String,
    /// `None` for sensitive values and unset configs.
    pub value: Option<String>,
    /// Whether the config cannot be changed for the topic.
    pub read_only: bool,
    /// Whether the value is the broker's default rather than set for this topic.
    pub is_default: bool,
    /// Whether the broker hides the value (passwords, keys).
    pub is_sensitive: bool,
}

/// The admin client. Cheap to clone; clones share connections.
///
/// ```no_run
/// # async fn demo() -> kafka_client::Result<()> {
/// use kafka_client::admin::{Admin, NewTopic};
/// use kafka_client::ClientConfig;
///
/// let admin = Admin::new(ClientConfig::new("127.0.0.1:9092")?).await?;
/// admin.create_topics(vec![NewTopic::new("clicks", 3, 1)]).await?;
/// let brokers = admin.describe_cluster().await?.brokers;
/// admin.delete_topics(vec!["clicks".to_owned()]).await?;
/// # let _ = brokers; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Admin {
    cluster: Arc<Cluster>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("bootstrap", &self.cluster.config.bootstrap)
            .finish()
    }
}

impl Admin {
    /// Connects to the cluster.
    pub async fn new(config: ClientConfig) -> Result<Admin> {
        Ok(Admin {
            cluster: Cluster::connect(config).await?,
        })
    }

    /// Creates topics and waits until the metadata shows each with a leader for every
    /// partition. An existing topic is an error whose [`Error::code`] is
    /// `Some(KafkaCode::TopicAlreadyExists)`; see [`create_topics_with`](Self::create_topics_with)
    /// to tolerate it.
    pub async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<()> {
        self.create_topics_with(topics, CreateTopicsOptions::default())
            .await
    }

    /// [`create_topics`](Self::create_topics) with options. On failure, the first failing
    /// topic's error is returned (the others may have been created).
    ///
    /// ```no_run
    /// # async fn demo(admin: kafka_client::admin::Admin) -> kafka_client::Result<()> {
    /// use kafka_client::admin::{CreateTopicsOptions, NewTopic};
    /// let options = CreateTopicsOptions { ignore_existing: true, ..Default::default() };
    /// admin.create_topics_with(vec![NewTopic::new("clicks", 3, 1)], options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_topics_with(
        &self,
        topics: Vec<NewTopic>,
        options: CreateTopicsOptions,
    ) -> Result<()> {
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        let mut pending = topics;
        let mut first_error = None;
        let mut backoff = Backoff::new("CreateTopics");
        while !pending.is_empty() {
            let request = CreateTopicsRequest::default()
                .with_timeout_ms(self.timeout_ms())
                .with_validate_only(options.validate_only)
                .with_topics(pending.iter().map(creatable).collect());
            let response = match self
                .cluster
                .request_any(ApiKey::CreateTopics, CREATE_TOPICS_VERSIONS, |_| request)
                .await
            {
                Ok((response, _)) => response,
                Err(e) => {
                    backoff.again(e).await?;
                    continue;
                }
            };
            let mut last_retriable = None;
            let mut retry_later = Vec::new();
            for result in response.topics {
                let name = result.name.0.to_string();
                let context = || match &result.error_message {
                    Some(msg) => format!("create topic {name:?}: {msg}"),
                    None => format!("create topic {name:?}"),
                };
                match check_code(result.error_code, context) {
                    Ok(()) => {}
                    // A retried request may find what its lost first attempt created.
                    Err(e)
                        if e.code() == Some(KafkaCode::TopicAlreadyExists)
                            && (options.ignore_existing || backoff.attempts > 1) => {}
                    Err(e) if e.is_retriable() => {
                        retry_later.push(name);
                        last_retriable = Some(e);
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            pending.retain(|t| retry_later.contains(&t.name));
            if let Some(e) = last_retriable {
                backoff.again(e).await?;
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if options.validate_only {
            return Ok(());
        }
        for name in &names {
            self.wait_for_topic(name, |t| !t.partitions.is_empty())
                .await?;
        }
        Ok(())
    }

    /// Deletes topics and waits until the metadata no longer lists them. A missing topic is an
    /// error with code `UnknownTopicOrPartition`.
    pub async fn delete_topics(&self, names: Vec<String>) -> Result<()> {
        let mut pending = names.clone();
        let mut first_error = None;
        let mut backoff = Backoff::new("DeleteTopics");
        while !pending.is_empty() {
            let timeout_ms = self.timeout_ms();
            let build = |version: i16| {
                let request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
                if version >= 6 {
                    request.with_topics(
                        pending
                            .iter()
                            .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                            .collect(),
                    )
                } else {
                    request.with_topic_names(pending.iter().map(|n| topic_name(n)).collect())
                }
            };
            let response = match self
                .cluster
                .request_any(ApiKey::DeleteTopics, DELETE_TOPICS_VERSIONS, build)
                .await
            {
                Ok((response, _)) => response,
                Err(e) => {
                    backoff.again(e).await?;
                    continue;
                }
            };
            let mut last_retriable = None;
            let mut retry_later = Vec::new();
            for result in response.responses {
                let name = result.name.map(|n| n.0.to_string()).unwrap_or_default();
                let context = || match &result.error_message {
                    Some(msg) => format!("delete topic {name:?}: {msg}"),
                    None => format!("delete topic {name:?}"),
                };
                match check_code(result.error_code, context) {
                    Ok(()) => {}
                    // A retried request may find what its lost first attempt deleted.
                    Err(e) if e.code() == Some(KafkaCode::UnknownTopicOrPartition) => {
                        if backoff.attempts == 1 {
                            first_error.get_or_insert(e);
                        }
                    }
                    Err(e) if e.is_retriable() => {
                        retry_later.push(name);
                        last_retriable = Some(e);
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            pending.retain(|n| retry_later.contains(n));
            if let Some(e) = last_retriable {
                backoff.again(e).await?;
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        for name in &names {
            self.wait_until_gone(name).await?;
        }
        Ok(())
    }

    /// Grows a topic to `new_total` partitions and waits until the metadata shows them all
    /// with leaders. Kafka never shrinks a topic: a smaller count is an error
    /// (`InvalidPartitions`).
    pub async fn create_partitions(&self, topic: &str, new_total: i32) -> Result<()> {
        let mut backoff = Backoff::new("CreatePartitions");
        loop {
            let request = CreatePartitionsRequest::default()
                .with_timeout_ms(self.timeout_ms())
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(topic_name(topic))
                    .with_count(new_total)
                    .with_assignments(None)]);
            let result = self
                .cluster
                .request_any(ApiKey::CreatePartitions, CREATE_PARTITIONS_VERSIONS, |_| {
                    request
                })
                .await
                .and_then(|(response, _)| {
                    response.results.iter().try_for_each(|r| {
                        check_code(r.error_code, || match &r.error_message {
                            Some(msg) => format!("create partitions of {topic:?}: {msg}"),
                            None => format!("create partitions of {topic:?}"),
                        })
                    })
                });
            match result {
                Ok(()) => break,
                Err(e) => backoff.again(e).await?,
            }
        }
        self.wait_for_topic(topic, |t| t.partitions.len() >= new_total.max(0) as usize)
            .await
    }

    /// Looks up offsets, each at its partition's leader. Fails with the first partition that
    /// cannot be answered.
    ///
    /// ```no_run
    /// # async fn demo(admin: kafka_client::admin::Admin) -> kafka_client::Result<()> {
    /// use kafka_client::admin::OffsetSpec;
    /// use kafka_client::TopicPartition;
    /// let tp = TopicPartition::new("clicks", 0);
    /// let offsets = admin.list_offsets(vec![(tp.clone(), OffsetSpec::Latest)]).await?;
    /// println!("end of {tp}: {}", offsets[&tp].offset);
    /// # Ok(()) }
    /// ```
    pub async fn list_offsets(
        &self,
        partitions: Vec<(TopicPartition, OffsetSpec)>,
    ) -> Result<HashMap<TopicPartition, ListedOffset>> {
        list_offsets(&self.cluster, 0, partitions)
            .await
            .into_iter()
            .map(|(tp, r)| Ok((tp, r?)))
            .collect()
    }

    /// The brokers, controller and cluster id, freshly read from the cluster.
    pub async fn describe_cluster(&self) -> Result<ClusterInfo> {
        self.cluster.refresh_metadata(&[], false).await?;
        Ok(self.cluster.info())
    }

    /// A topic's partitions, leaders and replicas, freshly read from the cluster.
    pub async fn describe_topic(&self, topic: &str) -> Result<TopicInfo> {
        self.cluster.invalidate(topic);
        self.cluster
            .refresh_metadata(&[topic.to_owned()], false)
            .await?;
        self.cluster
            .topic(topic)
            .ok_or_else(|| Error::UnknownPartition {
                topic: topic.to_owned(),
                partition: -1,
            })
    }

    /// Every config of a topic (overrides and defaults), ordered by name.
    pub async fn describe_configs(&self, topic: &str) -> Result<Vec<ConfigEntry>> {
        let mut backoff = Backoff::new("DescribeConfigs");
        let results = loop {
            let request = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(StrBytes::from_string(topic.to_owned()))
                    .with_configuration_keys(None),
            ]);
            let result = self
                .cluster
                .request_any(ApiKey::DescribeConfigs, DESCRIBE_CONFIGS_VERSIONS, |_| {
                    request
                })
                .await
                .and_then(|(response, _)| {
                    for r in &response.results {
                        check_code(r.error_code, || match &r.error_message {
                            Some(msg) => format!("describe configs of topic {topic:?}: {msg}"),
                            None => format!("describe configs of topic {topic:?}"),
                        })?;
                    }
                    Ok(response.results)
                });
            match result {
                Ok(results) => break results,
                Err(e) => backoff.again(e).await?,
            }
        };
        let mut entries: Vec<ConfigEntry> = results
            .into_iter()
            .flat_map(|r| r.configs)
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                read_only: c.read_only,
                // Sources 4 (static broker config) and 5 (default) are not set on the topic.
                is_default: matches!(c.config_source, 4 | 5),
                is_sensitive: c.is_sensitive,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.cluster.config.request_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// Polls metadata until `ready` holds for the topic and every partition has a leader.
    async fn wait_for_topic(&self, topic: &str, ready: impl Fn(&TopicInfo) -> bool) -> Result<()> {
        let deadline = Instant::now() + self.cluster.config.request_timeout;
        let mut delay = Duration::from_millis(20);
        loop {
            self.cluster.invalidate(topic);
            match self
                .cluster
                .refresh_metadata(&[topic.to_owned()], false)
                .await
            {
                Ok(()) => {
                    if let Some(t) = self.cluster.topic(topic) {
                        if ready(&t) && t.partitions.iter().all(|p| p.leader >= 0) {
                            return Ok(());
                        }
                    }
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(topic, error = %e, "metadata refresh failed while waiting");
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    api: crate::error::Api::Metadata,
                    broker: format!("any (waiting for topic {topic:?} to be ready)"),
                    after: self.cluster.config.request_timeout,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    /// Polls metadata until the topic is gone.
    async fn wait_until_gone(&self, topic: &str) -> Result<()> {
        let deadline = Instant::now() + self.cluster.config.request_timeout;
        let mut delay = Duration::from_millis(20);
        loop {
            self.cluster.invalidate(topic);
            self.cluster
                .refresh_metadata(&[topic.to_owned()], false)
                .await?;
            if self.cluster.topic(topic).is_none() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    api: crate::error::Api::Metadata,
                    broker: format!("any (waiting for topic {topic:?} to be deleted)"),
                    after: self.cluster.config.request_timeout,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn creatable(topic: &NewTopic) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(topic_name(&topic.name))
        .with_num_partitions(topic.partitions)
        .with_replication_factor(topic.replication_factor)
        .with_configs(
            topic
                .configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect(),
        )
}

/// Bounded retries with exponential backoff for one admin operation. `NOT_CONTROLLER` and
/// connection errors are retriable.
struct Backoff {
    what: &'static str,
    attempts: u32,
    delay: Duration,
}

impl Backoff {
    fn new(what: &'static str) -> Self {
        Backoff {
            what,
            attempts: 1,
            delay: FIRST_BACKOFF,
        }
    }

    /// After a failed attempt: waits and returns `Ok` if another attempt may follow, else
    /// the error to give the caller.
    async fn again(&mut self, e: Error) -> Result<()> {
        if !e.is_retriable() {
            return Err(e);
        }
        if self.attempts >= MAX_ATTEMPTS {
            return Err(Error::RetriesExhausted {
                attempts: self.attempts,
                last: Box::new(e),
            });
        }
        tracing::debug!(what = self.what, attempts = self.attempts, error = %e, "retrying");
        tokio::time::sleep(self.delay).await;
        self.attempts += 1;
        self.delay = (self.delay * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

/// Looks up offsets at each partition's leader, refreshing metadata and retrying partitions
/// whose leader moved. Shared by the admin client and the consumer (seek and offset reset).
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    isolation_level: i8,
    requests: Vec<(TopicPartition, OffsetSpec)>,
) -> HashMap<TopicPartition, Result<ListedOffset>> {
    let mut out = HashMap::new();
    // One question per partition: the last one asked wins.
    let mut index: HashMap<TopicPartition, usize> = HashMap::new();
    let mut pending: Vec<(TopicPartition, OffsetSpec)> = Vec::with_capacity(requests.len());
    for (tp, spec) in requests {
        match index.get(&tp) {
            Some(&i) => pending[i].1 = spec,
            None => {
                index.insert(tp.clone(), pending.len());
                pending.push((tp, spec));
            }
        }
    }
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    while !pending.is_empty() {
        attempts += 1;
        let mut last_error: HashMap<TopicPartition, Error> = HashMap::new();
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, OffsetSpec, i32)>> = BTreeMap::new();
        let unknown: Vec<String> = pending
            .iter()
            .filter(|(tp, _)| cluster.leader(&tp.topic, tp.partition).is_none())
            .map(|(tp, _)| tp.topic.clone())
            .collect();
        if !unknown.is_empty() {
            let mut topics = unknown;
            topics.sort();
            topics.dedup();
            if let Err(e) = cluster.refresh_metadata(&topics, false).await {
                tracing::debug!(error = %e, "metadata refresh for ListOffsets failed");
            }
        }
        for (tp, spec) in std::mem::take(&mut pending) {
            match cluster.leader_and_epoch(&tp.topic, tp.partition) {
                Some((leader, epoch)) => {
                    by_leader.entry(leader).or_default().push((tp, spec, epoch))
                }
                None => {
                    let known = cluster.topic(&tp.topic).map(|t| t.partitions.len());
                    let error = Error::UnknownPartition {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                    };
                    if known.is_some_and(|n| tp.partition < 0 || tp.partition as usize >= n) {
                        out.insert(tp, Err(error));
                    } else {
                        last_error.insert(tp.clone(), error);
                        pending.push((tp, spec));
                    }
                }
            }
        }
        let requests = by_leader.into_iter().map(|(leader, parts)| async move {
            let result = list_offsets_at(cluster, leader, isolation_level, &parts).await;
            (parts, result)
        });
        for (parts, result) in futures::future::join_all(requests).await {
            match result {
                Err(e) => {
                    for (tp, spec, _) in parts {
                        if e.is_retriable() {
                            cluster.invalidate(&tp.topic);
                            last_error.insert(tp.clone(), clone_error(&e));
                            pending.push((tp, spec));
                        } else {
                            out.insert(tp, Err(clone_error(&e)));
                        }
                    }
                }
                Ok(mut answers) => {
                    for (tp, spec, _) in parts {
                        match answers.remove(&tp) {
                            Some(Ok(listed)) => {
                                out.insert(tp, Ok(listed));
                            }
                            Some(Err(e)) if e.is_retriable() => {
                                cluster.invalidate(&tp.topic);
                                last_error.insert(tp.clone(), e);
                                pending.push((tp, spec));
                            }
                            Some(Err(e)) => {
                                out.insert(tp, Err(e));
                            }
                            None => {
                                let e = Error::malformed(
                                    "ListOffsets response",
                                    format!("no answer for {tp}"),
                                );
                                out.insert(tp, Err(e));
                            }
                        }
                    }
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        if attempts >= MAX_ATTEMPTS {
            for (tp, _) in pending.drain(..) {
                let last = last_error.remove(&tp).unwrap_or(Error::UnknownPartition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                });
                out.insert(
                    tp,
                    Err(Error::RetriesExhausted {
                        attempts,
                        last: Box::new(last),
                    }),
                );
            }
            break;
        }
        tracing::debug!(partitions = pending.len(), attempts, "retrying ListOffsets");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    out
}

/// One ListOffsets request to `leader`; per-partition answers or errors.
async fn list_offsets_at(
    cluster: &Cluster,
    leader: i32,
    isolation_level: i8,
    parts: &[(TopicPartition, OffsetSpec, i32)],
) -> Result<HashMap<TopicPartition, Result<ListedOffset>>> {
    let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
    for (tp, spec, epoch) in parts {
        topics.entry(&tp.topic).or_default().push(
            ListOffsetsPartition::default()
                .with_partition_index(tp.partition)
                .with_current_leader_epoch(*epoch)
                .with_timestamp(spec.wire()),
        );
    }
    let timeout_ms = i32::try_from(cluster.config.request_timeout.as_millis()).unwrap_or(i32::MAX);
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_isolation_level(isolation_level)
        .with_timeout_ms(timeout_ms)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = cluster
        .request_to(leader, ApiKey::ListOffsets, LIST_OFFSETS_VERSIONS, |_| {
            request
        })
        .await?;
    let mut out = HashMap::new();
    for topic in response.topics {
        let name = topic.name.0.to_string();
        for p in topic.partitions {
            let tp = TopicPartition::new(name.clone(), p.partition_index);
            let result = check_code(p.error_code, || format!("ListOffsets for {tp}")).map(|()| {
                ListedOffset {
                    offset: p.offset,
                    timestamp: p.timestamp,
                    leader_epoch: p.leader_epoch,
                }
            });
            out.insert(tp, result);
        }
    }
    Ok(out)
}

/// A copy of an error for fanning one request failure out to several partitions. I/O
/// errors lose their source type but keep the message.
pub(crate) fn clone_error(e: &Error) -> Error {
    match e {
        Error::Broker { code, context } => Error::Broker {
            code: *code,
            context: context.clone(),
        },
        Error::Io { broker, source } => Error::Io {
            broker: broker.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::Disconnected { broker, reason } => Error::Disconnected {
            broker: broker.clone(),
            reason: reason.clone(),
        },
        Error::Timeout { api, broker, after } => Error::Timeout {
            api: *api,
            broker: broker.clone(),
            after: *after,
        },
        Error::UnknownPartition { topic, partition } => Error::UnknownPartition {
            topic: topic.clone(),
            partition: *partition,
        },
        Error::UnsupportedVersion { api, broker, ours } => Error::UnsupportedVersion {
            api: *api,
            broker: broker.clone(),
            ours: ours.clone(),
        },
        other => Error::malformed("error", other.to_string()),
    }
}
