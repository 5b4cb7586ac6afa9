//! Committed offsets: OffsetCommit (fenced by the member's generation) and OffsetFetch.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use tokio::time::Instant;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::coordinator::{backoff_until, classify, CodeClass, Coordinator};
use crate::error::{Error, KafkaCode, Result};
use crate::topic_partition::TopicPartition;

/// OffsetCommit v2 is the oldest Kafka 4 accepts; v10 addresses topics by id.
const OFFSET_COMMIT_VERSIONS: RangeInclusive<i16> = 2..=9;
/// OffsetFetch v8 batches groups; v10 addresses topics by id.
const OFFSET_FETCH_VERSIONS: RangeInclusive<i16> = 1..=9;

/// Who commits: the member and generation the offsets belong to. A commit with a generation
/// that is no longer current is refused by the coordinator, so a member that lost its
/// partitions can never move their offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generation {
    pub(crate) id: i32,
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
}

/// Whether a code means this member's generation is no longer valid.
pub(crate) fn is_fencing(code: KafkaCode) -> bool {
    matches!(
        code,
        KafkaCode::IllegalGeneration
            | KafkaCode::UnknownMemberId
            | KafkaCode::RebalanceInProgress
            | KafkaCode::FencedInstanceId
    )
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn grouped<T: Copy>(items: &[(TopicPartition, T)]) -> BTreeMap<&str, Vec<(i32, T)>> {
    let mut out: BTreeMap<&str, Vec<(i32, T)>> = BTreeMap::new();
    for (tp, v) in items {
        out.entry(tp.topic.as_str())
            .or_default()
            .push((tp.partition, *v));
    }
    out
}

/// Commits `offsets` (the next offset to read, per partition) as `generation`, retrying
/// coordinator moves and loads until `deadline`. Fencing codes give
/// [`Error::Rebalancing`]; nothing is retried then.
pub(crate) async fn commit(
    coordinator: &Coordinator,
    group: &str,
    generation: &Generation,
    offsets: &[(TopicPartition, i64)],
    deadline: Instant,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let by_topic = grouped(offsets);
    let mut backoff = backoff_until(deadline);
    loop {
        let attempt = coordinator
            .send(
                ApiKey::OffsetCommit,
                OFFSET_COMMIT_VERSIONS,
                deadline,
                |v| {
                    let mut r = OffsetCommitRequest::default()
                        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                        .with_generation_id_or_member_epoch(generation.id)
                        .with_member_id(StrBytes::from_string(generation.member_id.clone()))
                        .with_group_instance_id(None)
                        .with_topics(
                            by_topic
                                .iter()
                                .map(|(t, ps)| {
                                    OffsetCommitRequestTopic::default()
                                        .with_name(name(t))
                                        .with_partitions(
                                            ps.iter()
                                                .map(|&(p, offset)| {
                                                    OffsetCommitRequestPartition::default()
                                                        .with_partition_index(p)
                                                        .with_committed_offset(offset)
                                                        .with_committed_leader_epoch(-1)
                                                        .with_committed_metadata(Some(
                                                            StrBytes::default(),
                                                        ))
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        );
                    if v >= 7 {
                        r.group_instance_id =
                            generation.instance_id.clone().map(StrBytes::from_string);
                    }
                    r
                },
            )
            .await;
        let response = match attempt {
            Ok((r, _)) => r,
            Err(e) if e.is_retriable() => {
                backoff.wait(e).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        // The worst code of any partition decides.
        let mut failure: Option<(KafkaCode, String)> = None;
        for t in &response.topics {
            for p in &t.partitions {
                if let Some(code) = KafkaCode::try_from_code(p.error_code) {
                    let tp = format!("{}/{}", t.name.0, p.partition_index);
                    let worse = failure
                        .as_ref()
                        .is_none_or(|(c, _)| is_fencing(code) && !is_fencing(*c));
                    if worse {
                        failure = Some((code, tp));
                    }
                }
            }
        }
        let Some((code, tp)) = failure else {
            tracing::debug!(
                group,
                generation = generation.id,
                partitions = offsets.len(),
                "offsets committed"
            );
            return Ok(());
        };
        if is_fencing(code) {
            tracing::warn!(group, generation = generation.id, member = %generation.member_id, %code, "commit refused: stale generation");
            return Err(Error::Rebalancing {
                group: group.to_owned(),
                operation: "OffsetCommit",
                code,
            });
        }
        let error = Error::broker(code, format!("OffsetCommit of group {group} for {tp}"));
        match classify(code) {
            CodeClass::Refind => coordinator.mark_unknown(&code.to_string()),
            CodeClass::Retry => {}
            CodeClass::Other if code.is_retriable() => {}
            CodeClass::Other => return Err(error),
        }
        backoff.wait(error).await?;
    }
}

/// The committed offsets of `partitions` (`None`: nothing committed), waiting out unstable
/// offsets of open transactions, until `deadline`.
pub(crate) async fn fetch(
    coordinator: &Coordinator,
    group: &str,
    partitions: &[TopicPartition],
    deadline: Instant,
) -> Result<HashMap<TopicPartition, Option<i64>>> {
    let mut out = HashMap::new();
    if partitions.is_empty() {
        return Ok(out);
    }
    let items: Vec<(TopicPartition, ())> = partitions.iter().map(|tp| (tp.clone(), ())).collect();
    let by_topic = grouped(&items);
    let mut backoff = backoff_until(deadline);
    let group_id = || GroupId(StrBytes::from_string(group.to_owned()));
    loop {
        let attempt = coordinator
            .send(ApiKey::OffsetFetch, OFFSET_FETCH_VERSIONS, deadline, |v| {
                let indexes = |ps: &Vec<(i32, ())>| ps.iter().map(|(p, _)| *p).collect::<Vec<_>>();
                if v >= 8 {
                    OffsetFetchRequest::default()
                        .with_require_stable(true)
                        .with_groups(vec![OffsetFetchRequestGroup::default()
                            .with_group_id(group_id())
                            .with_member_id(None)
                            .with_member_epoch(-1)
                            .with_topics(Some(
                                by_topic
                                    .iter()
                                    .map(|(t, ps)| {
                                        OffsetFetchRequestTopics::default()
                                            .with_name(name(t))
                                            .with_partition_indexes(indexes(ps))
                                    })
                                    .collect(),
                            ))])
                } else {
                    OffsetFetchRequest::default()
                        .with_group_id(group_id())
                        .with_require_stable(v >= 7)
                        .with_topics(Some(
                            by_topic
                                .iter()
                                .map(|(t, ps)| {
                                    OffsetFetchRequestTopic::default()
                                        .with_name(name(t))
                                        .with_partition_indexes(indexes(ps))
                                })
                                .collect(),
                        ))
                }
            })
            .await;
        let (response, version) = match attempt {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                backoff.wait(e).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        // v8+ answers per group, older versions at the top level: the same topics and
        // partitions under different generated types, flattened alike.
        macro_rules! rows {
            ($topics:expr) => {
                $topics
                    .into_iter()
                    .flat_map(|t| {
                        let topic = t.name.0.to_string();
                        t.partitions.into_iter().map(move |p| {
                            (
                                topic.clone(),
                                p.partition_index,
                                p.committed_offset,
                                p.error_code,
                            )
                        })
                    })
                    .collect()
            };
        }
        // (group code, [(topic, partition, offset, code)])
        let (group_code, rows): (i16, Vec<(String, i32, i64, i16)>) = if version >= 8 {
            match response.groups.into_iter().next() {
                Some(g) => (g.error_code, rows!(g.topics)),
                None => {
                    return Err(Error::malformed(
                        "OffsetFetch response",
                        "no group in the answer",
                    ))
                }
            }
        } else {
            (response.error_code, rows!(response.topics))
        };
        let mut failure = KafkaCode::try_from_code(group_code).map(|c| (c, group.to_owned()));
        if failure.is_none() {
            for (topic, partition, offset, code) in rows {
                match KafkaCode::try_from_code(code) {
                    None => {
                        out.insert(
                            TopicPartition::new(topic, partition),
                            (offset >= 0).then_some(offset),
                        );
                    }
                    Some(code) => failure = Some((code, format!("{topic}/{partition}"))),
                }
            }
        }
        let Some((code, what)) = failure else {
            return Ok(out);
        };
        out.clear();
        let error = Error::broker(code, format!("OffsetFetch of group {group} for {what}"));
        match classify(code) {
            CodeClass::Refind => coordinator.mark_unknown(&code.to_string()),
            CodeClass::Retry => {}
            CodeClass::Other if code.is_retriable() || code == KafkaCode::UnstableOffsetCommit => {}
            CodeClass::Other => return Err(error),
        }
        backoff.wait(error).await?;
    }
}
