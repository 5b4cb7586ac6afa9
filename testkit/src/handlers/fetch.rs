//! Fetch: whole stored batches from each requested partition, long-polling until `min_bytes`
//! are available or `max_wait_ms` passes. `read_committed` (isolation level 1) reads below the
//! last stable offset and gets the aborted transactions overlapping what it reads. No fetch sessions: every response is a full one
//! with session id 0, which Kafka clients accept (brokers do the same when their session cache
//! is full).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::ResponseError as E;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{s, Ctx};
use crate::state::{lock, State};

pub(crate) async fn handle(ctx: &Ctx, req: FetchRequest, version: i16) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let notifies = collect_notifies(ctx, &req, version);
    loop {
        let mut waits: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> =
            notifies.iter().map(|n| Box::pin(n.notified())).collect();
        for w in &mut waits {
            w.as_mut().enable();
        }
        let (response, bytes, errors) = build(&lock(&ctx.shared), ctx.broker, &req, version);
        if bytes >= req.min_bytes.max(0) as usize || errors || Instant::now() >= deadline {
            return response;
        }
        if waits.is_empty() {
            tokio::time::sleep_until(deadline).await;
        } else {
            let _ = tokio::time::timeout_at(deadline, futures::future::select_all(waits)).await;
        }
    }
}

fn topic_name(st: &State, name: &TopicName, id: &uuid::Uuid, version: i16) -> Option<String> {
    if version >= 13 {
        st.topic_ids.get(id).cloned()
    } else {
        Some(name.0.to_string())
    }
}

fn collect_notifies(ctx: &Ctx, req: &FetchRequest, version: i16) -> Vec<Arc<Notify>> {
    let st = lock(&ctx.shared);
    let mut out = Vec::new();
    for t in &req.topics {
        let Some(name) = topic_name(&st, &t.topic, &t.topic_id, version) else {
            continue;
        };
        for p in &t.partitions {
            if let Some(log) = st.partition(&name, p.partition) {
                out.push(log.notify.clone());
            }
        }
    }
    out
}

/// Builds the response from the current logs: (response, record bytes, any partition error).
fn build(
    st: &State,
    broker: i32,
    req: &FetchRequest,
    version: i16,
) -> (FetchResponse, usize, bool) {
    let mut total = 0usize;
    let mut errors = false;
    let max_bytes = if req.max_bytes <= 0 {
        usize::MAX
    } else {
        req.max_bytes as usize
    };
    let read_committed = req.isolation_level == 1;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = topic_name(st, &t.topic, &t.topic_id, version);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let mut out = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_aborted_transactions(read_committed.then(Vec::new))
                .with_records(Some(Bytes::new()));
            let log = match &name {
                None => Err(E::UnknownTopicId.code()),
                Some(n) => st
                    .partition(n, p.partition)
                    .ok_or(E::UnknownTopicOrPartition.code()),
            };
            let result = match log {
                Err(code) => Err((code, None)),
                Ok(log) => (|| {
                    if log.leader != broker || !st.is_running(broker) {
                        return Err((E::NotLeaderOrFollower.code(), Some(log)));
                    }
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch < log.leader_epoch {
                        return Err((E::FencedLeaderEpoch.code(), Some(log)));
                    }
                    if p.current_leader_epoch > log.leader_epoch {
                        return Err((E::UnknownLeaderEpoch.code(), Some(log)));
                    }
                    if p.fetch_offset < log.log_start_offset || p.fetch_offset > log.high_watermark
                    {
                        return Err((E::OffsetOutOfRange.code(), Some(log)));
                    }
                    let limit = (p.partition_max_bytes.max(0) as usize)
                        .min(max_bytes.saturating_sub(total));
                    let stable = log.last_stable_offset();
                    let up_to = if read_committed {
                        stable
                    } else {
                        log.high_watermark
                    };
                    let (records, end) = log.read(p.fetch_offset, limit, total == 0, up_to);
                    Ok((log, records, end))
                })(),
            };
            match result {
                Ok((log, records, end)) => {
                    total += records.len();
                    if read_committed {
                        let aborted = log
                            .aborted_between(p.fetch_offset, end)
                            .into_iter()
                            .map(|a| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(a.producer_id))
                                    .with_first_offset(a.first_offset)
                            })
                            .collect();
                        out = out.with_aborted_transactions(Some(aborted));
                    }
                    out = out
                        .with_high_watermark(log.high_watermark)
                        .with_last_stable_offset(log.last_stable_offset())
                        .with_log_start_offset(log.log_start_offset)
                        .with_records(Some(records));
                }
                Err((code, log)) => {
                    errors = true;
                    out = out.with_error_code(code);
                    if let (Some(log), true) = (log, version >= 12) {
                        let leader = st.live_leader(log).unwrap_or(-1);
                        out = out.with_current_leader(
                            LeaderIdAndEpoch::default()
                                .with_leader_id(BrokerId(leader))
                                .with_leader_epoch(log.leader_epoch),
                        );
                    }
                }
            }
            partitions.push(out);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(if version < 13 {
                    t.topic.clone()
                } else {
                    TopicName(s(name.unwrap_or_default()))
                })
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        errors,
    )
}

/// Flips the stored CRC of one record batch of each partition with records (only `only`,
/// when given): the batch holding offset `at`, or the first one. For the `CorruptRecords`
/// intercept. `name_of` maps topic ids (Fetch v13+) to names. Returns the damaged partitions
/// with the base offset of the damaged batch.
pub(crate) fn corrupt_records(
    response: &mut FetchResponse,
    only: Option<&(String, i32)>,
    at: Option<i64>,
    name_of: impl Fn(&uuid::Uuid) -> Option<String>,
) -> Vec<(String, i32, i64)> {
    let mut damaged = Vec::new();
    for topic in &mut response.responses {
        let name = if topic.topic.0.is_empty() {
            name_of(&topic.topic_id).unwrap_or_default()
        } else {
            topic.topic.0.to_string()
        };
        for p in &mut topic.partitions {
            if only.is_some_and(|(t, i)| *t != name || *i != p.partition_index) {
                continue;
            }
            let Some(records) = p.records.as_ref() else {
                continue;
            };
            let mut bytes = records.to_vec();
            if let Some(base) = flip_crc(&mut bytes, at) {
                p.records = Some(Bytes::from(bytes));
                damaged.push((name.clone(), p.partition_index, base));
            }
        }
    }
    damaged
}

/// Flips the CRC of the batch holding `at` (or the first batch); returns its base offset.
fn flip_crc(records: &mut [u8], at: Option<i64>) -> Option<i64> {
    // v2 batch header: base offset (8), length (4), leader epoch (4), magic (1), CRC (4),
    // attributes (2), last offset delta (4), ...
    const CRC_AT: usize = 17;
    const HEADER: usize = 61;
    let field = |b: &[u8], at: usize, n: usize| -> Option<i64> {
        let bytes = b.get(at..at + n)?;
        Some(bytes.iter().fold(0i64, |v, &x| (v << 8) | i64::from(x)))
    };
    let mut pos = 0;
    while records.len() >= pos + HEADER {
        let base = field(records, pos, 8)?;
        let length = field(records, pos + 8, 4)? as i32;
        let last = base.saturating_add(i64::from(field(records, pos + 23, 4)? as i32));
        if at.is_none_or(|o| base <= o && o <= last) {
            records[pos + CRC_AT] ^= 0xff;
            return Some(base);
        }
        pos += 12 + usize::try_from(length).ok().filter(|&l| l >= HEADER - 12)?;
    }
    None
}
