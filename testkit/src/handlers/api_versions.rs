//! ApiVersions: the API keys and version ranges this mock serves.

use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::{s, Ctx};
use crate::state::lock;

/// The feature clients read to choose the transaction protocol (KIP-890: 2 = epoch bump per
/// transaction, partitions added by Produce v12+, no AddOffsetsToTxn).
const TRANSACTION_VERSION: &str = "transaction.version";

/// Every API served, with the versions implemented (min, max).
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// The version range served for an API, if it is served.
pub(crate) fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, lo, hi)| (lo, hi))
}

fn listing() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|&(k, lo, hi)| {
            ApiVersion::default()
                .with_api_key(k as i16)
                .with_min_version(lo)
                .with_max_version(hi)
        })
        .collect()
}

/// ApiVersions: the APIs, and from v3 the `transaction.version` feature (supported 0-2,
/// finalized at the cluster's setting). The finalized features epoch is 1: Java clients record
/// finalized features only from an epoch above -1.
pub(crate) fn handle(ctx: &Ctx, _req: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    let response = ApiVersionsResponse::default().with_api_keys(listing());
    if version < 3 {
        return response;
    }
    let tv = lock(&ctx.shared).settings.transaction_version;
    response
        .with_supported_features(vec![SupportedFeatureKey::default()
            .with_name(s(TRANSACTION_VERSION))
            .with_min_version(0)
            .with_max_version(2)])
        .with_finalized_features_epoch(1)
        .with_finalized_features(if tv > 0 {
            vec![FinalizedFeatureKey::default()
                .with_name(s(TRANSACTION_VERSION))
                .with_min_version_level(tv)
                .with_max_version_level(tv)]
        } else {
            Vec::new()
        })
}

/// Kafka's answer to an ApiVersions request at a version it does not know: a v0 response
/// with UNSUPPORTED_VERSION and the supported ranges, so the client can retry lower.
pub(crate) fn unsupported() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(kafka_protocol::ResponseError::UnsupportedVersion.code())
        .with_api_keys(listing())
}
