//! Metadata: brokers, controller, topics and partition leaders; auto-creates topics when the
//! cluster and the request allow it. Like Apache Kafka (KRaft), the request that creates a
//! topic is answered with UNKNOWN_TOPIC_OR_PARTITION for it; the next one describes it.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError as E;
use uuid::Uuid;

use super::{s, Ctx};
use crate::state::{lock, State};

pub(crate) fn handle(ctx: &Ctx, req: MetadataRequest, version: i16) -> MetadataResponse {
    let mut st = lock(&ctx.shared);
    let names: Option<Vec<(Option<String>, Uuid)>> = match &req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.iter()
                .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let auto_create = version < 4 || req.allow_auto_topic_creation;
    let mut topics = Vec::new();
    match names {
        None => {
            let all: Vec<String> = st.topics.keys().cloned().collect();
            for name in all {
                topics.push(describe_topic(&st, &name));
            }
        }
        Some(list) => {
            for (name, id) in list {
                let name = match name {
                    Some(n) => n,
                    None => match st.topic_ids.get(&id) {
                        Some(n) => n.clone(),
                        None => {
                            topics.push(
                                MetadataResponseTopic::default()
                                    .with_topic_id(id)
                                    .with_error_code(E::UnknownTopicId.code()),
                            );
                            continue;
                        }
                    },
                };
                if let Err(reason) = crate::state::valid_topic_name(&name) {
                    tracing::debug!(topic = %name, %reason, "metadata for an invalid topic name");
                    topics.push(error_topic(&name, E::InvalidTopicException.code()));
                    continue;
                }
                if !st.topics.contains_key(&name) && auto_create && st.maybe_auto_create(&name) {
                    // As a KRaft broker does: the creation goes to the controller and this
                    // answer says UNKNOWN_TOPIC_OR_PARTITION; the client asks again.
                    tracing::debug!(topic = %name, "topic auto-created by a metadata request");
                    topics.push(error_topic(&name, E::UnknownTopicOrPartition.code()));
                    continue;
                }
                topics.push(describe_topic(&st, &name));
            }
        }
    }
    let brokers = st
        .brokers
        .iter()
        .filter(|b| b.running)
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(s(b.host.clone()))
                .with_port(b.port as i32)
        })
        .collect();
    let controller = st
        .brokers
        .iter()
        .find(|b| b.running)
        .map(|b| b.id)
        .unwrap_or(-1);
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(s(st.settings.cluster_id.clone())))
        .with_controller_id(BrokerId(controller))
        .with_topics(topics)
}

fn error_topic(name: &str, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(s(name))))
        .with_error_code(code)
}

fn describe_topic(st: &State, name: &str) -> MetadataResponseTopic {
    let Some(topic) = st.topics.get(name) else {
        return error_topic(name, E::UnknownTopicOrPartition.code());
    };
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let live = st.live_leader(p);
            MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_error_code(if live.is_some() {
                    0
                } else {
                    E::LeaderNotAvailable.code()
                })
                .with_leader_id(BrokerId(live.unwrap_or(-1)))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(vec![BrokerId(p.leader)])
                .with_isr_nodes(if live.is_some() {
                    vec![BrokerId(p.leader)]
                } else {
                    vec![]
                })
                .with_offline_replicas(if live.is_some() {
                    vec![]
                } else {
                    vec![BrokerId(p.leader)]
                })
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(s(name))))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}
