//! Produce: validates each partition's batch (magic, CRC, idempotent sequence), stamps its
//! base offset, appends it and wakes long-polling fetches.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::ResponseError as E;

use super::{s, Ctx};
use crate::batch::{self, BatchError};
use crate::log::SequenceCheck;
use crate::state::{lock, State};

pub(crate) fn handle(ctx: &Ctx, req: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks = req.acks;
    let mut st = lock(&ctx.shared);
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = if version >= 13 {
            st.topic_ids.get(&topic.topic_id).cloned()
        } else {
            Some(topic.name.0.to_string())
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let mut r = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1);
            let outcome = match (&name, acks) {
                (None, _) => Err(E::UnknownTopicId.code()),
                (_, a) if !(-1..=1).contains(&a) => Err(E::InvalidRequiredAcks.code()),
                (Some(name), _) => append(&mut st, ctx.broker, name, p.index, p.records),
            };
            match outcome {
                Ok((base, start)) => r = r.with_base_offset(base).with_log_start_offset(start),
                Err(code) => r = r.with_error_code(code),
            }
            partitions.push(r);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(TopicName(s(name.unwrap_or_default())))
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    drop(st);
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// Appends one partition's record set; returns (base offset, log start offset).
fn append(
    st: &mut State,
    broker: i32,
    topic: &str,
    partition: i32,
    records: Option<bytes::Bytes>,
) -> Result<(i64, i64), i16> {
    let compacted = st.topics.get(topic).is_some_and(|t| t.is_compacted());
    let Some(log) = st.partition_mut(topic, partition) else {
        return Err(E::UnknownTopicOrPartition.code());
    };
    if log.leader != broker {
        return Err(E::NotLeaderOrFollower.code());
    }
    let records = records.unwrap_or_default();
    let batches = batch::split_batches(&records).map_err(|e| {
        tracing::warn!(topic, partition, error = %e, "produce rejected: bad record batch");
        match e {
            BatchError::Crc { .. } => E::CorruptMessage.code(),
            BatchError::Invalid(_) => E::CorruptMessage.code(),
        }
    })?;
    let [(header, raw)] = batches.as_slice() else {
        tracing::warn!(
            topic,
            partition,
            batches = batches.len(),
            "produce rejected: v3+ requests carry exactly one batch per partition"
        );
        return Err(E::InvalidRecord.code());
    };
    if compacted && !header.is_control() {
        if let Some(recs) = batch::records(raw) {
            if recs.iter().any(|r| r.key.is_none()) {
                tracing::warn!(
                    topic,
                    partition,
                    "produce rejected: a record without a key for a compacted topic"
                );
                return Err(E::InvalidRecord.code());
            }
        }
    }
    match log.check_sequence(header) {
        SequenceCheck::Append => Ok((log.append(header, raw), log.log_start_offset)),
        SequenceCheck::Duplicate(base) => {
            tracing::debug!(
                topic,
                partition,
                producer_id = header.producer_id,
                sequence = header.base_sequence,
                "duplicate batch: answering with its original offset"
            );
            Ok((base, log.log_start_offset))
        }
        SequenceCheck::OutOfOrder => {
            tracing::warn!(
                topic,
                partition,
                producer_id = header.producer_id,
                sequence = header.base_sequence,
                "out-of-order sequence"
            );
            Err(E::OutOfOrderSequenceNumber.code())
        }
        SequenceCheck::FencedEpoch => {
            tracing::warn!(
                topic,
                partition,
                producer_id = header.producer_id,
                epoch = header.producer_epoch,
                "stale producer epoch"
            );
            Err(E::InvalidProducerEpoch.code())
        }
    }
}
