//! The transaction APIs: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn (at the transaction
//! coordinator) and TxnOffsetCommit (at the group coordinator). The state machine lives in
//! [`crate::txn`].

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError as E;

use super::groups;
use super::Ctx;
use crate::group::Committed;
use crate::state::{lock, State};

/// NOT_COORDINATOR (or COORDINATOR_NOT_AVAILABLE) when this broker is not the transaction
/// coordinator of `tid` (the same placement as groups: `State::coordinator_for`).
pub(crate) fn coordinator_error(st: &State, broker: i32, tid: &str) -> Option<i16> {
    match st.coordinator_for(tid) {
        None => Some(E::CoordinatorNotAvailable.code()),
        Some(b) if b != broker => Some(E::NotCoordinator.code()),
        Some(_) => None,
    }
}

/// Answers every partition of `topics` with an error code.
fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    mut code: impl FnMut(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|&p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(code(t.name.0.as_str(), p))
                        })
                        .collect(),
                )
        })
        .collect()
}

/// One transaction's AddPartitionsToTxn: per-partition results.
fn add_one(
    st: &mut State,
    broker: i32,
    (tid, producer_id, epoch): (&str, i64, i16),
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    if let Some(code) = coordinator_error(st, broker, tid) {
        return topic_results(topics, |_, _| code);
    }
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|&p| (t.name.0.to_string(), p)))
        .collect();
    if verify_only {
        let codes = crate::txn::verify_partitions(st, tid, producer_id, epoch, &partitions);
        let mut codes = codes.into_iter();
        return topic_results(topics, |_, _| codes.next().unwrap_or(0));
    }
    // As Kafka: unknown partitions fail with UNKNOWN_TOPIC_OR_PARTITION and the others with
    // OPERATION_NOT_ATTEMPTED; nothing is added.
    let unknown: Vec<&(String, i32)> = partitions
        .iter()
        .filter(|(t, p)| st.partition(t, *p).is_none())
        .collect();
    if !unknown.is_empty() {
        return topic_results(topics, |t, p| {
            if unknown.iter().any(|(ut, up)| ut == t && *up == p) {
                E::UnknownTopicOrPartition.code()
            } else {
                E::OperationNotAttempted.code()
            }
        });
    }
    let code = match crate::txn::add_partitions(st, tid, producer_id, epoch, &partitions, version) {
        Ok(()) => 0,
        Err(code) => {
            tracing::debug!(transactional_id = tid, code, "AddPartitionsToTxn refused");
            code
        }
    };
    topic_results(topics, |_, _| code)
}

pub(crate) fn add_partitions(
    ctx: &Ctx,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let mut st = lock(&ctx.shared);
    if version <= 3 {
        let results = add_one(
            &mut st,
            ctx.broker,
            (
                &req.v3_and_below_transactional_id.0,
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
            ),
            &req.v3_and_below_topics,
            false,
            version,
        );
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    let results = req
        .transactions
        .iter()
        .map(|t| {
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(add_one(
                    &mut st,
                    ctx.broker,
                    (&t.transactional_id.0, t.producer_id.0, t.producer_epoch),
                    &t.topics,
                    t.verify_only,
                    version,
                ))
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

pub(crate) fn add_offsets(
    ctx: &Ctx,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let mut st = lock(&ctx.shared);
    let tid = req.transactional_id.0.to_string();
    let group = req.group_id.0.to_string();
    let result = match coordinator_error(&st, ctx.broker, &tid) {
        Some(code) => Err(code),
        None if group.is_empty() => Err(E::InvalidGroupId.code()),
        None => crate::txn::add_offsets(
            &mut st,
            &tid,
            req.producer_id.0,
            req.producer_epoch,
            &group,
            version,
        ),
    };
    AddOffsetsToTxnResponse::default().with_error_code(result.err().unwrap_or(0))
}

pub(crate) fn end(ctx: &Ctx, req: EndTxnRequest, version: i16) -> EndTxnResponse {
    let mut st = lock(&ctx.shared);
    let tid = req.transactional_id.0.to_string();
    let result = match coordinator_error(&st, ctx.broker, &tid) {
        Some(code) => Err(code),
        None => crate::txn::end_txn(
            &mut st,
            &tid,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            version,
        ),
    };
    match result {
        Ok((id, epoch)) => EndTxnResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(code) => {
            tracing::debug!(transactional_id = %tid, code, commit = req.committed, "EndTxn refused");
            EndTxnResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

/// The checks of a TxnOffsetCommit against the transaction: the producer's id and epoch, and
/// that the group is in the transaction (added implicitly from v5, KIP-890).
fn check_txn(st: &mut State, req: &TxnOffsetCommitRequest, group: &str, version: i16) -> i16 {
    let tid = req.transactional_id.0.to_string();
    let Some(meta) = st.txns.ids.get(&tid) else {
        return E::InvalidProducerIdMapping.code();
    };
    if meta.producer_id != req.producer_id.0 {
        return E::InvalidProducerIdMapping.code();
    }
    if meta.epoch != req.producer_epoch {
        return crate::txn::fenced(version, 3);
    }
    let in_txn =
        meta.state == crate::transactions::TxnState::Ongoing && meta.groups.contains(group);
    if in_txn {
        return 0;
    }
    if version >= 5 {
        return match crate::txn::add_offsets(
            st,
            &tid,
            req.producer_id.0,
            req.producer_epoch,
            group,
            version,
        ) {
            Ok(()) => 0,
            Err(code) => code,
        };
    }
    tracing::debug!(transactional_id = %tid, group, "TxnOffsetCommit for a group not in the transaction");
    E::InvalidTxnState.code()
}

pub(crate) fn offset_commit(
    ctx: &Ctx,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let mut st = lock(&ctx.shared);
    let group_id = req.group_id.0.to_string();
    let mut code = groups::coordinator_error(&st, ctx.broker, &group_id).unwrap_or(0);
    if code == 0 {
        // KIP-447 (v3+): the member's generation, id and instance id are checked.
        if version >= 3 {
            code = match st.groups.groups.get(&group_id) {
                Some(g) => g.check_txn_commit(
                    &req.member_id,
                    req.group_instance_id.as_deref(),
                    req.generation_id,
                ),
                None if req.generation_id < 0 => 0,
                None => E::IllegalGeneration.code(),
            };
        }
    }
    if code == 0 {
        code = check_txn(&mut st, &req, &group_id, version);
    }
    if code != 0 {
        tracing::debug!(group = %group_id, code, "TxnOffsetCommit refused");
    }
    let producer_id = req.producer_id.0;
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
                    let code = if code != 0 {
                        code
                    } else if known.is_none_or(|n| p.partition_index < 0 || p.partition_index >= n)
                    {
                        E::UnknownTopicOrPartition.code()
                    } else {
                        let committed = Committed {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        };
                        st.groups
                            .group_mut(&group_id)
                            .pending_txn_offsets
                            .entry(producer_id)
                            .or_default()
                            .insert((name.clone(), p.partition_index), committed);
                        0
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
