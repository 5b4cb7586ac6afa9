//! Error responses for intercepts: the response an API would send with `code` in each of its
//! error fields, built from the request so every topic and partition is answered.

use kafka_protocol::messages::*;

use super::s;

/// The response to `body` with `code` everywhere; `None` for APIs without error fields.
pub(crate) fn error_response(body: &RequestKind, version: i16, code: i16) -> Option<ResponseKind> {
    use kafka_protocol::messages::*;
    Some(match body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(ApiVersionsResponse::default().with_error_code(code)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(MetadataResponse::default().with_topics(
            r.topics
                .iter()
                .flatten()
                .map(|t| metadata_response::MetadataResponseTopic::default().with_name(t.name.clone()).with_topic_id(t.topic_id).with_error_code(code))
                .collect(),
        )),
        RequestKind::Produce(r) => ResponseKind::Produce(
            ProduceResponse::default().with_responses(
                r.topic_data
                    .iter()
                    .map(|t| {
                        produce_response::TopicProduceResponse::default().with_name(t.name.clone()).with_topic_id(t.topic_id).with_partition_responses(
                            t.partition_data
                                .iter()
                                .map(|p| produce_response::PartitionProduceResponse::default().with_index(p.index).with_error_code(code).with_base_offset(-1).with_log_append_time_ms(-1))
                                .collect(),
                        )
                    })
                    .collect(),
            ),
        ),
        RequestKind::Fetch(r) => ResponseKind::Fetch(
            FetchResponse::default().with_error_code(if version >= 7 && r.topics.is_empty() { code } else { 0 }).with_responses(
                r.topics
                    .iter()
                    .map(|t| {
                        fetch_response::FetchableTopicResponse::default().with_topic(t.topic.clone()).with_topic_id(t.topic_id).with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    fetch_response::PartitionData::default()
                                        .with_partition_index(p.partition)
                                        .with_error_code(code)
                                        .with_high_watermark(-1)
                                        .with_last_stable_offset(-1)
                                        .with_log_start_offset(-1)
                                        .with_records(Some(Default::default()))
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            ),
        ),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(
            ListOffsetsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        list_offsets_response::ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| list_offsets_response::ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index).with_error_code(code).with_offset(-1).with_timestamp(-1))
                                .collect(),
                        )
                    })
                    .collect(),
            ),
        ),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(
            OffsetCommitResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        offset_commit_response::OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_topic_id(t.topic_id).with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| offset_commit_response::OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code))
                                .collect(),
                        )
                    })
                    .collect(),
            ),
        ),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(if version >= 8 {
            OffsetFetchResponse::default().with_groups(
                r.groups.iter().map(|g| offset_fetch_response::OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone()).with_error_code(code)).collect(),
            )
        } else {
            OffsetFetchResponse::default().with_error_code(if version >= 2 { code } else { 0 }).with_topics(
                r.topics
                    .iter()
                    .flatten()
                    .map(|t| {
                        offset_fetch_response::OffsetFetchResponseTopic::default().with_name(t.name.clone()).with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|p| {
                                    offset_fetch_response::OffsetFetchResponsePartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(-1)
                                        .with_error_code(code)
                                        .with_metadata(Some(s("")))
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            )
        }),
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(if version >= 4 {
            FindCoordinatorResponse::default().with_coordinators(
                r.coordinator_keys
                    .iter()
                    .map(|k| find_coordinator_response::Coordinator::default().with_key(k.clone()).with_node_id(BrokerId(-1)).with_port(-1).with_host(s("")).with_error_code(code))
                    .collect(),
            )
        } else {
            FindCoordinatorResponse::default().with_error_code(code).with_node_id(BrokerId(-1)).with_port(-1)
        }),
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1)
                .with_member_id(r.member_id.clone())
                .with_protocol_name(if version >= 7 { None } else { Some(s("")) }),
        ),
        RequestKind::SyncGroup(_) => ResponseKind::SyncGroup(SyncGroupResponse::default().with_error_code(code)),
        RequestKind::Heartbeat(_) => ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(code)),
        RequestKind::LeaveGroup(_) => ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(code)),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(
            DescribeGroupsResponse::default().with_groups(
                r.groups.iter().map(|g| describe_groups_response::DescribedGroup::default().with_group_id(g.clone()).with_group_state(s("Dead")).with_error_code(code)).collect(),
            ),
        ),
        RequestKind::ListGroups(_) => ResponseKind::ListGroups(ListGroupsResponse::default().with_error_code(code)),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(
            CreateTopicsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| create_topics_response::CreatableTopicResult::default().with_name(t.name.clone()).with_error_code(code).with_num_partitions(-1).with_replication_factor(-1))
                    .collect(),
            ),
        ),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(
            DeleteTopicsResponse::default().with_responses(if version >= 6 {
                r.topics.iter().map(|t| delete_topics_response::DeletableTopicResult::default().with_name(t.name.clone()).with_topic_id(t.topic_id).with_error_code(code)).collect()
            } else {
                r.topic_names.iter().map(|n| delete_topics_response::DeletableTopicResult::default().with_name(Some(n.clone())).with_error_code(code)).collect()
            }),
        ),
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(
            CreatePartitionsResponse::default()
                .with_results(r.topics.iter().map(|t| create_partitions_response::CreatePartitionsTopicResult::default().with_name(t.name.clone()).with_error_code(code)).collect()),
        ),
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(
            DescribeConfigsResponse::default().with_results(
                r.resources
                    .iter()
                    .map(|res| describe_configs_response::DescribeConfigsResult::default().with_resource_type(res.resource_type).with_resource_name(res.resource_name.clone()).with_error_code(code))
                    .collect(),
            ),
        ),
        RequestKind::InitProducerId(_) => ResponseKind::InitProducerId(InitProducerIdResponse::default().with_error_code(code).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)),
        RequestKind::AddPartitionsToTxn(r) => {
            let topics = |ts: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic]| -> Vec<add_partitions_to_txn_response::AddPartitionsToTxnTopicResult> {
                ts.iter()
                    .map(|t| {
                        add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(
                            t.partitions.iter().map(|&p| add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default().with_partition_index(p).with_partition_error_code(code)).collect(),
                        )
                    })
                    .collect()
            };
            ResponseKind::AddPartitionsToTxn(if version >= 4 {
                AddPartitionsToTxnResponse::default().with_error_code(code).with_results_by_transaction(
                    r.transactions.iter().map(|t| add_partitions_to_txn_response::AddPartitionsToTxnResult::default().with_transactional_id(t.transactional_id.clone()).with_topic_results(topics(&t.topics))).collect(),
                )
            } else {
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics(&r.v3_and_below_topics))
            })
        }
        RequestKind::AddOffsetsToTxn(_) => ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code)),
        RequestKind::EndTxn(_) => ResponseKind::EndTxn(EndTxnResponse::default().with_error_code(code).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)),
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(
            TxnOffsetCommitResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        txn_offset_commit_response::TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(
                            t.partitions.iter().map(|p| txn_offset_commit_response::TxnOffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)).collect(),
                        )
                    })
                    .collect(),
            ),
        ),
        _ => return None,
    })
}
