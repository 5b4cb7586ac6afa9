//! The admin client: create and delete topics, add partitions, list offsets, describe the
//! cluster and topic configs, describe a consumer group and read its committed offsets.
//!
//! Controller-bound requests (CreateTopics, DeleteTopics, CreatePartitions) go to any broker:
//! KRaft brokers forward them to the controller. Answers that only wait for the cluster to
//! settle (`NOT_CONTROLLER`, a leader being elected or moving, a new topic's partitions not yet
//! loaded by their leader) are retried until
//! [`ClientConfig::default_api_timeout`](crate::ClientConfig::default_api_timeout) (60 s);
//! other retriable errors (I/O, an unknown topic) a few times (about 3 s), with exponential
//! backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::backoff::Backoff;
use crate::cluster::{Cluster, ClusterInfo, TopicInfo};
use crate::config::ClientConfig;
use crate::error::{check_code, Error, KafkaCode, Result};
use crate::group::coordinator::Coordinator;
use crate::group::GroupDescription;
use crate::list_offsets::{list_offsets, settles, AdminRetry};
pub use crate::list_offsets::{ListedOffset, OffsetSpec};
use crate::topic_partition::TopicPartition;

const CREATE_TOPICS_VERSIONS: std::ops::RangeInclusive<i16> = 2..=7;
const DELETE_TOPICS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=6;
const CREATE_PARTITIONS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;
const DESCRIBE_CONFIGS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=4;

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
        let mut backoff = self.retry("CreateTopics");
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
                            && (options.ignore_existing || backoff.attempts() > 1) => {}
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
        let mut backoff = self.retry("DeleteTopics");
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
                        if backoff.attempts() == 1 {
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
        let mut backoff = self.retry("CreatePartitions");
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
        let timeout = self.cluster.config.default_api_timeout;
        list_offsets(&self.cluster, 0, partitions, Some(timeout))
            .await
            .into_iter()
            .map(|(tp, r)| Ok((tp, r?)))
            .collect()
    }

    /// A consumer group as its coordinator describes it: state, assignor, and per member its
    /// ids, host, subscription and assignment (decoded, user data included). A group that does
    /// not exist is described as `Dead` with no members.
    ///
    /// ```no_run
    /// # async fn demo(admin: kafka_client::admin::Admin) -> kafka_client::Result<()> {
    /// let group = admin.describe_group("my-app").await?;
    /// for m in &group.members {
    ///     let owned = m.assignment.as_ref().map(|a| a.partitions.len()).unwrap_or(0);
    ///     println!("{} on {}: {owned} partitions", m.member_id, m.client_host);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let coordinator = Coordinator::new(self.cluster.clone(), group.to_owned());
        crate::group::describe::describe(&coordinator, group, self.deadline()).await
    }

    /// The offsets `group` committed for `partitions` (`None`: nothing committed), read from
    /// outside the group (OffsetFetch), waiting out offsets of open transactions until the
    /// request timeout.
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        let coordinator = Coordinator::new(self.cluster.clone(), group.to_owned());
        crate::group::offsets::fetch(&coordinator, group, partitions, self.deadline()).await
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
        let mut backoff = self.retry("DescribeConfigs");
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

    /// Retries of one operation, `what` in logs.
    fn retry(&self, what: &'static str) -> Retry {
        Retry {
            what,
            retry: AdminRetry::new(Some(self.cluster.config.default_api_timeout)),
        }
    }

    /// When a request started now must have been answered.
    fn deadline(&self) -> Instant {
        Instant::now() + self.cluster.config.request_timeout
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.cluster.config.request_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// Polls metadata until `ready` holds for the topic and every partition has a leader.
    async fn wait_for_topic(&self, topic: &str, ready: impl Fn(&TopicInfo) -> bool) -> Result<()> {
        let deadline = Instant::now() + self.cluster.config.request_timeout;
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
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
            backoff.sleep().await;
        }
    }

    /// Polls metadata until the topic is gone.
    async fn wait_until_gone(&self, topic: &str) -> Result<()> {
        let deadline = Instant::now() + self.cluster.config.request_timeout;
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
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
            backoff.sleep().await;
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

/// Retries of one admin operation (see [`AdminRetry`]): errors that only wait for the cluster
/// to settle until the default API timeout, other retriable errors a few times.
struct Retry {
    what: &'static str,
    retry: AdminRetry,
}

impl Retry {
    /// Attempts made so far, the current one included.
    fn attempts(&self) -> u32 {
        self.retry.attempts()
    }

    /// After a failed attempt: waits and returns `Ok` if another attempt may follow, else
    /// the error to give the caller.
    async fn again(&mut self, e: Error) -> Result<()> {
        if !e.is_retriable() {
            return Err(e);
        }
        let attempts = self.retry.attempts();
        if self.retry.retry(settles(&e)).await {
            tracing::debug!(what = self.what, attempts, error = %e, "retried");
            return Ok(());
        }
        Err(self.retry.exhausted(e))
    }
}
