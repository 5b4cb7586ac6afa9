//! One handler per API (or per area), and the dispatcher that routes decoded requests to them.

pub(crate) mod admin;
pub(crate) mod api_versions;
pub(crate) mod errors;
pub(crate) mod fetch;
pub(crate) mod groups;
pub(crate) mod list_offsets;
pub(crate) mod metadata;
pub(crate) mod offsets;
pub(crate) mod produce;
pub(crate) mod producer_id;
pub(crate) mod txn;

use kafka_protocol::messages::{RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::state::Shared;

/// What a handler knows about the request's origin.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub shared: Shared,
    pub broker: i32,
    pub client_host: String,
}

/// Serves one request; `None` means no response is sent (Produce with acks=0).
pub(crate) async fn dispatch(
    ctx: &Ctx,
    header: &RequestHeader,
    body: RequestKind,
) -> Option<ResponseKind> {
    let v = header.request_api_version;
    let client_id = header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    Some(match body {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(ctx, &r, v)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(ctx, r, v)),
        RequestKind::Produce(r) => return produce::handle(ctx, r, v).map(ResponseKind::Produce),
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(ctx, r, v).await),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets::handle(ctx, r, v)),
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(ctx, r, v))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(groups::join(ctx, r, v, &client_id).await)
        }
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync(ctx, r, v).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(ctx, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(groups::leave(ctx, r, v)),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(groups::describe(ctx, r, v)),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list(ctx, r)),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offsets::commit(ctx, r, v)),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offsets::fetch(ctx, r, v)),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(admin::create_topics(ctx, r, v)),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(admin::delete_topics(ctx, r, v)),
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(admin::create_partitions(ctx, r))
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(admin::describe_configs(ctx, r, v))
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(producer_id::handle(ctx, r, v))
        }
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(txn::add_partitions(ctx, r, v))
        }
        RequestKind::AddOffsetsToTxn(r) => {
            ResponseKind::AddOffsetsToTxn(txn::add_offsets(ctx, r, v))
        }
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(txn::end(ctx, r, v)),
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(txn::offset_commit(ctx, r, v))
        }
        other => {
            // decode_request only lets through the APIs listed in api_versions::SUPPORTED.
            tracing::error!(request = ?std::mem::discriminant(&other), "request with no handler reached dispatch");
            return None;
        }
    })
}

pub(crate) fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}
