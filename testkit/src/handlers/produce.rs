//! Produce: validates each partition's batch (magic, CRC, idempotent sequence, transaction),
//! stamps its base offset, appends it and wakes long-polling fetches.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::ResponseError as E;

use super::{s, Ctx};
use kafka_client::protocol::record::{BatchHeader, RecordBatch, RecordBatches};

use crate::log::{decode_records, SequenceCheck};
use crate::state::{lock, State};
use crate::transactions::TxnState;

pub(crate) fn handle(ctx: &Ctx, req: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks = req.acks;
    let txn = Txn {
        id: req
            .transactional_id
            .as_ref()
            .map(|t| t.0.to_string())
            .filter(|t| !t.is_empty()),
        version,
    };
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
                (Some(name), _) => append(&mut st, ctx.broker, name, p.index, p.records, &txn),
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

/// What a Produce request says about its transaction.
struct Txn {
    /// The request's transactional id (v3+).
    id: Option<String>,
    version: i16,
}

/// Checks a transactional batch against the transaction coordinator: the producer's id and
/// epoch must be current, and the partition in its open transaction. Under transaction
/// version 2 a Produce v12+ naming its transactional id adds the partition itself (KIP-890);
/// otherwise a partition not added is INVALID_TXN_STATE.
fn check_transactional(
    st: &mut State,
    topic: &str,
    partition: i32,
    h: &BatchHeader,
    txn: &Txn,
) -> Result<(), i16> {
    let tid = match &txn.id {
        Some(t) => t.clone(),
        None => st
            .txns
            .by_producer(h.producer_id)
            .map(str::to_owned)
            .ok_or(E::InvalidProducerIdMapping.code())?,
    };
    let meta = st
        .txns
        .ids
        .get(&tid)
        .ok_or(E::InvalidProducerIdMapping.code())?;
    if meta.producer_id != h.producer_id {
        return Err(E::InvalidProducerIdMapping.code());
    }
    if meta.epoch != h.producer_epoch {
        return Err(E::InvalidProducerEpoch.code());
    }
    let key = (topic.to_owned(), partition);
    if meta.state == TxnState::Ongoing && meta.partitions.contains(&key) {
        return Ok(());
    }
    if txn.version >= 12 && txn.id.is_some() && st.settings.transaction_version >= 2 {
        return crate::txn::add_partitions(st, &tid, h.producer_id, h.producer_epoch, &[key], 5)
            .map_err(|code| {
                if code == E::ProducerFenced.code() {
                    E::InvalidProducerEpoch.code()
                } else {
                    code
                }
            });
    }
    tracing::warn!(
        topic,
        partition,
        transactional_id = %tid,
        "produce rejected: a transactional batch for a partition not in the transaction"
    );
    Err(E::InvalidTxnState.code())
}

/// Appends one partition's record set; returns (base offset, log start offset).
/// Kafka's default `max.message.bytes` (1 MiB plus a batch header).
const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;

fn append(
    st: &mut State,
    broker: i32,
    topic: &str,
    partition: i32,
    records: Option<bytes::Bytes>,
    txn: &Txn,
) -> Result<(i64, i64), i16> {
    let compacted = st.topics.get(topic).is_some_and(|t| t.is_compacted());
    let Some(log) = st.partition(topic, partition) else {
        return Err(E::UnknownTopicOrPartition.code());
    };
    if log.leader != broker {
        return Err(E::NotLeaderOrFollower.code());
    }
    let batches = split_batches(records.unwrap_or_default()).map_err(|reason| {
        tracing::warn!(topic, partition, error = %reason, "produce rejected: bad record batch");
        E::CorruptMessage.code()
    })?;
    let [batch] = batches.as_slice() else {
        tracing::warn!(
            topic,
            partition,
            batches = batches.len(),
            "produce rejected: v3+ requests carry exactly one batch per partition"
        );
        return Err(E::InvalidRecord.code());
    };
    let header = batch.header();
    // Kafka's per-topic limit on a batch (`max.message.bytes`; the broker's default).
    let max_bytes = st
        .topics
        .get(topic)
        .and_then(|t| t.configs.get("max.message.bytes"))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    if batch.as_bytes().len() > max_bytes {
        tracing::warn!(
            topic,
            partition,
            size = batch.as_bytes().len(),
            max_bytes,
            "produce rejected: batch over max.message.bytes"
        );
        return Err(E::MessageTooLarge.code());
    }
    if compacted && !header.is_control() {
        if let Some(recs) = decode_records(batch) {
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
    if header.is_transactional() && !header.is_control() {
        check_transactional(st, topic, partition, header, txn)?;
    }
    let Some(log) = st.partition_mut(topic, partition) else {
        return Err(E::UnknownTopicOrPartition.code());
    };
    match log.check_sequence(header) {
        SequenceCheck::Append => match log.append(header, batch.as_bytes()) {
            Ok(base) => Ok((base, log.log_start_offset)),
            Err(e) => {
                tracing::warn!(topic, partition, error = %e, "produce rejected: bad record batch");
                Err(E::CorruptMessage.code())
            }
        },
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

/// Splits a produced record set into whole batches, each with a valid length, magic, CRC,
/// codec and counts; a truncated trailing batch is an error here (it only happens in fetch
/// responses).
fn split_batches(records: bytes::Bytes) -> Result<Vec<RecordBatch>, String> {
    let mut iter = RecordBatches::new(records);
    let batches: Vec<RecordBatch> = iter
        .by_ref()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if iter.partial_trailing_bytes() > 0 {
        return Err(format!(
            "{} bytes after the last whole batch",
            iter.partial_trailing_bytes()
        ));
    }
    if let Some(b) = batches.iter().find(|b| b.header().last_offset_delta < 0) {
        return Err(format!(
            "negative last offset delta {}",
            b.header().last_offset_delta
        ));
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use kafka_client::protocol::record::{BatchBuilder, Compression};

    use super::split_batches;

    #[test]
    fn truncated_corrupt_and_negative_delta_record_sets_are_refused() {
        let mut b = BatchBuilder::new(Compression::None);
        b.append(0, None, Some(b"v"), &[]).unwrap();
        let good = b.build().unwrap();
        assert_eq!(split_batches(good.clone()).unwrap().len(), 1);
        assert!(split_batches(bytes::Bytes::new()).unwrap().is_empty());
        for cut in 1..good.len() {
            assert!(split_batches(good.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut two = good.to_vec();
        two.extend_from_slice(&good[..20]);
        assert!(split_batches(two.into()).is_err());
        let mut bad = good.to_vec();
        *bad.last_mut().unwrap() ^= 1;
        assert!(split_batches(bad.into()).is_err());
        let empty = BatchBuilder::new(Compression::None).build().unwrap();
        assert!(split_batches(empty)
            .unwrap_err()
            .contains("negative last offset delta"));
    }
}
