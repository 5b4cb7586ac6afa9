//! ListOffsets routed to each partition's leader, with metadata refreshes and retries for
//! partitions whose leader moved. Below both the admin client ([`Admin::list_offsets`]) and
//! the consumer (seek, offset reset), which use it.
//!
//! [`Admin::list_offsets`]: crate::admin::Admin::list_offsets

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::backoff::Backoff;
use crate::cluster::Cluster;
use crate::error::{check_code, Error, KafkaCode, Result};
use crate::topic_partition::TopicPartition;

const LIST_OFFSETS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=10;

/// Attempts in all for retriable errors that do not wait for the cluster to settle (I/O, a
/// topic the metadata does not show): about 3 s of pauses.
const SHORT_ATTEMPTS: u32 = 6;

/// Retries of one admin operation or ListOffsets lookup.
///
/// Errors that only wait for the cluster to settle ([`settles`]: a leader being elected or
/// moving, a controller change, a new topic's partition its leader has not loaded yet) are
/// retried until a deadline when there is one (the admin client's
/// [`ClientConfig::default_api_timeout`](crate::ClientConfig::default_api_timeout), 60 s by
/// default as Java's `default.api.timeout.ms`), pauses doubling from 100 ms up to 1 s. Every
/// other retriable error (I/O, a topic the metadata does not show at all), and everything
/// without a deadline (the consumer's lookups, which it retries itself), gets
/// [`SHORT_ATTEMPTS`] attempts, pauses doubling from 100 ms up to 2 s: a topic that does not
/// exist is still an error within seconds.
pub(crate) struct AdminRetry {
    backoff: Backoff,
    deadline: bool,
    started: Instant,
    /// Failed attempts that count towards [`SHORT_ATTEMPTS`].
    short_failures: u32,
}

impl AdminRetry {
    /// Retries waiting up to `timeout` for the cluster to settle; `None`: bounded attempts only.
    pub(crate) fn new(timeout: Option<Duration>) -> Self {
        let started = Instant::now();
        let backoff = match timeout {
            Some(timeout) => Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
                .until(started + timeout),
            None => Backoff::new(Duration::from_millis(100), Duration::from_secs(2)),
        };
        AdminRetry {
            backoff,
            deadline: timeout.is_some(),
            started,
            short_failures: 0,
        }
    }

    /// Attempts made so far, the current one included.
    pub(crate) fn attempts(&self) -> u32 {
        self.backoff.attempts()
    }

    /// After a failed attempt whose errors all only wait for the cluster to settle
    /// (`settling`) or not: sleeps and returns `true` if another attempt may follow.
    pub(crate) async fn retry(&mut self, settling: bool) -> bool {
        if !settling || !self.deadline {
            self.short_failures += 1;
            if self.short_failures >= SHORT_ATTEMPTS {
                return false;
            }
        }
        self.backoff.retry().await
    }

    /// The error for the caller once no attempt may follow.
    pub(crate) fn exhausted(&self, last: Error) -> Error {
        Error::RetriesExhausted {
            attempts: self.attempts(),
            after: self.started.elapsed(),
            last: Box::new(last),
        }
    }
}

/// Whether `e` only says the cluster has not settled yet: a partition's leader being elected
/// or moving, the controller changing. An unknown topic is not among them: whether it is
/// depends on whether the metadata shows the topic (see [`list_offsets`]).
pub(crate) fn settles(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(
            KafkaCode::NotLeaderOrFollower
                | KafkaCode::LeaderNotAvailable
                | KafkaCode::NotController
                | KafkaCode::FencedLeaderEpoch
                | KafkaCode::UnknownLeaderEpoch
                | KafkaCode::OffsetNotAvailable
                | KafkaCode::ReplicaNotAvailable
                | KafkaCode::PreferredLeaderNotAvailable
        )
    ) && e.is_retriable()
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

/// Looks up offsets at each partition's leader, refreshing metadata and retrying partitions
/// whose leader moved. Shared by the admin client and the consumer (seek and offset reset).
///
/// With a `timeout` (the admin client's), partitions of a topic the metadata shows are
/// retried until it while their leader is unknown or answers that it is not (yet) the leader
/// or does not know the partition (a topic created a moment ago); see [`AdminRetry`].
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    isolation_level: i8,
    requests: Vec<(TopicPartition, OffsetSpec)>,
    timeout: Option<Duration>,
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
    let mut retry = AdminRetry::new(timeout);
    while !pending.is_empty() {
        let attempts = retry.attempts();
        // Whether every partition still pending only waits for the cluster to settle.
        let mut settling = true;
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
                        // A known topic's partition without a leader is being elected one; a
                        // topic the metadata does not show may not exist.
                        settling &= known.is_some();
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
        // Topics whose metadata proved stale, forgotten once every answer was read.
        let mut stale: Vec<String> = Vec::new();
        for (parts, result) in futures::future::join_all(requests).await {
            match result {
                Err(e) => {
                    for (tp, spec, _) in parts {
                        if e.is_retriable() {
                            settling &= settles(&e);
                            stale.push(tp.topic.clone());
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
                                // The leader the metadata named does not know the partition
                                // yet: a topic created a moment ago.
                                let loading = e.code() == Some(KafkaCode::UnknownTopicOrPartition)
                                    && cluster.partition_count(&tp.topic).is_some();
                                settling &= loading || settles(&e);
                                stale.push(tp.topic.clone());
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
        for topic in stale {
            cluster.invalidate(&topic);
        }
        if pending.is_empty() {
            break;
        }
        tracing::debug!(
            partitions = pending.len(),
            attempts,
            settling,
            "retrying ListOffsets"
        );
        if !retry.retry(settling).await {
            for (tp, _) in pending.drain(..) {
                let last = last_error.remove(&tp).unwrap_or(Error::UnknownPartition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                });
                out.insert(tp, Err(retry.exhausted(last)));
            }
            break;
        }
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
fn clone_error(e: &Error) -> Error {
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

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
