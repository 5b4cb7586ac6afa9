//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError as E;

use super::{s, Ctx};
use crate::state::lock;

/// Topic config defaults reported by DescribeConfigs (Kafka's defaults).
const TOPIC_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("delete.retention.ms", "86400000"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.type", "CreateTime"),
    ("min.compaction.lag.ms", "0"),
    ("min.insync.replicas", "1"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
];

/// Checks the values of the topic configs the mock knows, as the broker would; names it
/// does not know pass (Kafka has many more topic configs than the mock models).
fn validate_configs(configs: &BTreeMap<String, String>) -> Result<(), String> {
    for (name, value) in configs {
        let ok = match name.as_str() {
            "cleanup.policy" => value
                .split(',')
                .all(|p| matches!(p.trim(), "delete" | "compact")),
            "compression.type" => matches!(
                value.as_str(),
                "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd"
            ),
            "message.timestamp.type" => matches!(value.as_str(), "CreateTime" | "LogAppendTime"),
            n if n.ends_with(".ms") || n.ends_with(".bytes") || n == "min.insync.replicas" => {
                value.parse::<i64>().is_ok()
            }
            _ => true,
        };
        if !ok {
            return Err(format!("invalid value {value:?} for configuration {name}"));
        }
    }
    Ok(())
}

pub(crate) fn create_topics(
    ctx: &Ctx,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut st = lock(&ctx.shared);
    let brokers = st.brokers.len() as i16;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let mut r = CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_num_partitions(-1)
                .with_replication_factor(-1);
            let partitions = if t.num_partitions == -1 {
                st.settings.default_partitions
            } else {
                t.num_partitions
            };
            let rf = if t.replication_factor == -1 {
                1
            } else {
                t.replication_factor
            };
            if rf < 1 || rf > brokers {
                return r
                    .with_error_code(E::InvalidReplicationFactor.code())
                    .with_error_message(Some(s(format!(
                        "replication factor {rf} is not between 1 and the {brokers} brokers"
                    ))));
            }
            if !t.assignments.is_empty() {
                return r
                    .with_error_code(E::InvalidRequest.code())
                    .with_error_message(Some(s(
                        "manual replica assignments are not supported by the mock",
                    )));
            }
            let configs: BTreeMap<String, String> = t
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            let result = if let Err(msg) = validate_configs(&configs) {
                Err((E::InvalidConfig.code(), msg))
            } else if req.validate_only {
                match (
                    crate::state::valid_topic_name(&name),
                    st.topics.contains_key(&name),
                ) {
                    (Err(e), _) => Err((E::InvalidTopicException.code(), e)),
                    (_, true) => Err((
                        E::TopicAlreadyExists.code(),
                        format!("topic {name:?} already exists"),
                    )),
                    _ if partitions <= 0 => Err((
                        E::InvalidPartitions.code(),
                        format!("{partitions} partitions"),
                    )),
                    _ => Ok(uuid::Uuid::nil()),
                }
            } else {
                st.create_topic(&name, partitions, configs.clone())
            };
            match result {
                Err((code, msg)) => {
                    tracing::debug!(topic = %name, code, %msg, "create topic refused");
                    r.with_error_code(code).with_error_message(Some(s(msg)))
                }
                Ok(id) => {
                    r = r.with_topic_id(id);
                    if version >= 5 {
                        let all = TOPIC_DEFAULTS
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.to_string(),
                                    configs.get(*k).cloned().unwrap_or_else(|| v.to_string()),
                                )
                            })
                            .map(|(k, v)| {
                                CreatableTopicConfigs::default()
                                    .with_name(s(k))
                                    .with_value(Some(s(v)))
                                    .with_config_source(5)
                            })
                            .collect();
                        r = r
                            .with_num_partitions(partitions)
                            .with_replication_factor(rf)
                            .with_configs(Some(all));
                    }
                    r
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

pub(crate) fn delete_topics(
    ctx: &Ctx,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let mut st = lock(&ctx.shared);
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let name = name.or_else(|| st.topic_ids.get(&id).cloned());
            let r = DeletableTopicResult::default()
                .with_name(name.clone().map(|n| TopicName(s(n))))
                .with_topic_id(id);
            match name.and_then(|n| st.delete_topic(&n)) {
                Some(id) => r.with_topic_id(id),
                None if version >= 6 && r.name.is_none() => {
                    r.with_error_code(E::UnknownTopicId.code())
                }
                None => r.with_error_code(E::UnknownTopicOrPartition.code()),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

pub(crate) fn create_partitions(
    ctx: &Ctx,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut st = lock(&ctx.shared);
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let outcome = if req.validate_only {
                match st.topics.get(t.name.0.as_str()) {
                    None => Err((
                        E::UnknownTopicOrPartition.code(),
                        "no such topic".to_owned(),
                    )),
                    Some(topic) if t.count <= topic.partitions.len() as i32 => Err((
                        E::InvalidPartitions.code(),
                        format!("topic has {} partitions", topic.partitions.len()),
                    )),
                    Some(_) => Ok(()),
                }
            } else {
                st.add_partitions(&t.name.0, t.count)
            };
            match outcome {
                Ok(()) => r,
                Err((code, msg)) => r.with_error_code(code).with_error_message(Some(s(msg))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

pub(crate) fn describe_configs(
    ctx: &Ctx,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let st = lock(&ctx.shared);
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            let r = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let entries: Vec<(String, String, i8)> = match res.resource_type {
                2 => match st.topics.get(res.resource_name.as_str()) {
                    None => {
                        return r
                            .with_error_code(E::UnknownTopicOrPartition.code())
                            .with_error_message(Some(s("no such topic")))
                    }
                    Some(topic) => {
                        let mut all: BTreeMap<String, (String, i8)> = TOPIC_DEFAULTS
                            .iter()
                            .map(|(k, v)| (k.to_string(), (v.to_string(), 5)))
                            .collect();
                        for (k, v) in &topic.configs {
                            all.insert(k.clone(), (v.clone(), 1));
                        }
                        all.into_iter().map(|(k, (v, src))| (k, v, src)).collect()
                    }
                },
                4 => vec![
                    (
                        "auto.create.topics.enable".into(),
                        st.settings.auto_create_topics.to_string(),
                        4,
                    ),
                    (
                        "num.partitions".into(),
                        st.settings.default_partitions.to_string(),
                        4,
                    ),
                    ("group.initial.rebalance.delay.ms".into(), "0".into(), 4),
                    (
                        "group.min.session.timeout.ms".into(),
                        st.settings.min_session_timeout.as_millis().to_string(),
                        4,
                    ),
                    (
                        "group.max.session.timeout.ms".into(),
                        st.settings.max_session_timeout.as_millis().to_string(),
                        4,
                    ),
                ],
                other => {
                    return r
                        .with_error_code(E::InvalidRequest.code())
                        .with_error_message(Some(s(format!(
                            "resource type {other} is not supported"
                        ))))
                }
            };
            let wanted = res.configuration_keys.as_ref();
            let configs = entries
                .into_iter()
                .filter(|(k, _, _)| wanted.is_none_or(|w| w.iter().any(|x| x.as_str() == k)))
                .map(|(k, v, src)| {
                    let mut e = DescribeConfigsResourceResult::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                        .with_config_source(src);
                    if version >= 3 {
                        e = e.with_config_type(0);
                    }
                    e
                })
                .collect();
            r.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
