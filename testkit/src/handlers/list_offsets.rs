//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4) and
//! earliest pending upload (-5, both the log start here), or the first offset at a timestamp.
//! With isolation level 1 (read_committed), latest is the last stable offset and timestamp
//! lookups see only offsets below it, as on Kafka.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError as E;

use super::Ctx;
use crate::state::lock;

pub(crate) fn handle(ctx: &Ctx, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let st = lock(&ctx.shared);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let Some(log) = st.partition(&t.name.0, p.partition_index) else {
                        return r.with_error_code(E::UnknownTopicOrPartition.code());
                    };
                    if log.leader != ctx.broker {
                        return r.with_error_code(E::NotLeaderOrFollower.code());
                    }
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch < log.leader_epoch {
                        return r.with_error_code(E::FencedLeaderEpoch.code());
                    }
                    if p.current_leader_epoch > log.leader_epoch {
                        return r.with_error_code(E::UnknownLeaderEpoch.code());
                    }
                    let stable = log.last_stable_offset();
                    let read_committed = req.isolation_level == 1;
                    let (offset, ts) = match p.timestamp {
                        -1 if read_committed => (stable, -1),
                        -1 => (log.high_watermark, -1),
                        -2 | -4 | -5 => (log.log_start_offset, -1),
                        -3 => log.max_timestamp().unwrap_or((-1, -1)),
                        ts => log
                            .offset_for_timestamp(ts)
                            .filter(|&(o, _)| !read_committed || o < stable)
                            .unwrap_or((-1, -1)),
                    };
                    r = r.with_offset(offset).with_timestamp(ts);
                    if version >= 4 {
                        r = r.with_leader_epoch(log.leader_epoch);
                    }
                    r
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
