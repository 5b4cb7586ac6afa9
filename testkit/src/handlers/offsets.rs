//! OffsetCommit and OffsetFetch against the group coordinator's committed offsets. OffsetFetch
//! with require_stable (v7+) answers UNSTABLE_OFFSET_COMMIT for partitions with offsets pending
//! in an open transaction.

use tokio::time::Instant;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::ResponseError as E;

use super::groups::coordinator_error;
use super::{s, Ctx};
use crate::group::{CommitRecord, Committed};
use crate::state::{lock, State};

pub(crate) fn commit(ctx: &Ctx, req: OffsetCommitRequest, version: i16) -> OffsetCommitResponse {
    let mut st = lock(&ctx.shared);
    let group_id = req.group_id.0.to_string();
    let now = Instant::now();
    let group_code = match coordinator_error(&st, ctx.broker, &group_id) {
        Some(code) => code,
        None => {
            let generation = if version >= 1 {
                req.generation_id_or_member_epoch
            } else {
                -1
            };
            st.groups.group_mut(&group_id).check_commit(
                &req.member_id,
                req.group_instance_id.as_deref(),
                generation,
                now,
            )
        }
    };
    if group_code != 0 {
        tracing::debug!(group = %group_id, code = group_code, "offset commit rejected");
    }
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let known = st.topics.get(&name).map(|t| t.partitions.len() as i32);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if group_code != 0 {
                        group_code
                    } else if known.is_none_or(|n| p.partition_index < 0 || p.partition_index >= n)
                    {
                        E::UnknownTopicOrPartition.code()
                    } else {
                        let committed = Committed {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        };
                        let group = st.groups.group_mut(&group_id);
                        group
                            .offsets
                            .insert((name.clone(), p.partition_index), committed);
                        group.history.push(CommitRecord {
                            topic: name.clone(),
                            partition: p.partition_index,
                            offset: p.committed_offset,
                            member_id: req.member_id.to_string(),
                            generation: req.generation_id_or_member_epoch,
                        });
                        0
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Committed offsets of one group: (topic, [(partition, committed)]).
type Lookup = Vec<(String, Vec<(i32, Option<Committed>)>)>;

fn lookup(st: &State, group: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> Lookup {
    let g = st.groups.groups.get(group);
    match topics {
        Some(list) => list
            .into_iter()
            .map(|(t, parts)| {
                let found = parts
                    .into_iter()
                    .map(|p| (p, g.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned())))
                    .collect();
                (t, found)
            })
            .collect(),
        None => {
            let mut out: Lookup = Vec::new();
            for ((t, p), c) in g.map(|g| g.offsets.iter()).into_iter().flatten() {
                match out.last_mut() {
                    Some((last, v)) if last == t => v.push((*p, Some(c.clone()))),
                    _ => out.push((t.clone(), vec![(*p, Some(c.clone()))])),
                }
            }
            out
        }
    }
}

/// A group's committed offsets for the requested topics (every committed one when `None`) as
/// response topics, or the error code when this broker cannot answer for the group.
///
/// A macro because v0-7 and v8+ requests and responses have the same fields under different
/// generated types, with no trait in common. Nothing committed reads as offset -1, leader
/// epoch -1 and empty metadata, as on Kafka.
macro_rules! committed_topics {
    ($st:expr, $broker:expr, $group:expr, $requested:expr, $stable:expr, $topic:ident, $partition:ident) => {
        match coordinator_error($st, $broker, $group) {
            Some(code) => Err(code),
            None => {
                let requested = $requested.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let group = $st.groups.groups.get($group);
                let topics: Vec<$topic> = lookup($st, $group, requested)
                    .into_iter()
                    .map(|(t, parts)| {
                        let partitions = parts
                            .into_iter()
                            .map(|(p, c)| {
                                // require_stable: an offset an open transaction may still
                                // change is not answered (the client retries).
                                if $stable && group.is_some_and(|g| g.has_pending_txn_offset(&t, p))
                                {
                                    return $partition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_committed_leader_epoch(-1)
                                        .with_metadata(Some(s("")))
                                        .with_error_code(E::UnstableOffsetCommit.code());
                                }
                                let (offset, epoch, meta) = c
                                    .map_or((-1, -1, String::new()), |c| {
                                        (c.offset, c.leader_epoch, c.metadata.unwrap_or_default())
                                    });
                                $partition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(s(meta)))
                            })
                            .collect();
                        $topic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(partitions)
                    })
                    .collect();
                Ok(topics)
            }
        }
    };
}

pub(crate) fn fetch(ctx: &Ctx, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let st = lock(&ctx.shared);
    if version < 8 {
        let group_id = req.group_id.0.to_string();
        let out = OffsetFetchResponse::default();
        return match committed_topics!(
            &st,
            ctx.broker,
            &group_id,
            req.topics,
            req.require_stable,
            OffsetFetchResponseTopic,
            OffsetFetchResponsePartition
        ) {
            Ok(topics) => out.with_topics(topics),
            Err(code) => out.with_error_code(code),
        };
    }
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            let group_id = g.group_id.0.to_string();
            let out = OffsetFetchResponseGroup::default().with_group_id(g.group_id);
            match committed_topics!(
                &st,
                ctx.broker,
                &group_id,
                g.topics,
                req.require_stable,
                OffsetFetchResponseTopics,
                OffsetFetchResponsePartitions
            ) {
                Ok(topics) => out.with_topics(topics),
                Err(code) => out.with_error_code(code),
            }
        })
        .collect();
    OffsetFetchResponse::default().with_groups(groups)
}
