//! Applying the intercept rules to one request: the first rule that matches it, and counting
//! the uses of a rule. Reads the cluster state (topic ids, installed rules), which holds the
//! rules that `control` defines.

use kafka_protocol::messages::{ApiKey, RequestKind};

use crate::control::Action;
use crate::state::State;

/// A rule matched by a request.
#[derive(Debug)]
pub(crate) struct Matched {
    pub action: Action,
    /// The rule's partition filter.
    pub partition: Option<(String, i32)>,
    /// The rule, for [`use_once`] when the action counts only once it had an effect.
    pub rule: u64,
}

/// Finds the first rule matching a request and consumes one use of it, except for
/// `CorruptRecords`, which the caller counts with [`use_once`] once it damaged something.
pub(crate) fn take_action(
    state: &mut State,
    broker: i32,
    api_key: ApiKey,
    body: &RequestKind,
) -> Option<Matched> {
    let idx = state.intercepts.iter().position(|rule| {
        rule.api_key == api_key
            && rule.intercept.broker.is_none_or(|b| b == broker)
            && rule
                .intercept
                .partition
                .as_ref()
                .is_none_or(|(t, p)| touches(state, body, t, *p))
    })?;
    let rule = &state.intercepts[idx];
    let matched = Matched {
        action: rule.intercept.action.clone(),
        partition: rule.intercept.partition.clone(),
        rule: rule.id,
    };
    if !matches!(matched.action, Action::CorruptRecords { .. }) {
        use_once(state, matched.rule);
    }
    Some(matched)
}

/// Consumes one use of a rule (removing it when none is left), if it is still installed.
pub(crate) fn use_once(state: &mut State, rule: u64) {
    let Some(idx) = state.intercepts.iter().position(|r| r.id == rule) else {
        return;
    };
    if let Some(n) = state.intercepts[idx].intercept.times.as_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 {
            state.intercepts.remove(idx);
        }
    }
}

/// Whether a request names `topic`/`partition`.
fn touches(state: &State, body: &RequestKind, topic: &str, partition: i32) -> bool {
    let by_id = |id: &uuid::Uuid| state.topic_ids.get(id).is_some_and(|t| t == topic);
    match body {
        RequestKind::Produce(r) => r.topic_data.iter().any(|t| {
            (t.name.0.as_str() == topic || by_id(&t.topic_id))
                && t.partition_data.iter().any(|p| p.index == partition)
        }),
        RequestKind::Fetch(r) => r.topics.iter().any(|t| {
            (t.topic.0.as_str() == topic || by_id(&t.topic_id))
                && t.partitions.iter().any(|p| p.partition == partition)
        }),
        RequestKind::ListOffsets(r) => r.topics.iter().any(|t| {
            t.name.0.as_str() == topic
                && t.partitions.iter().any(|p| p.partition_index == partition)
        }),
        RequestKind::OffsetCommit(r) => r.topics.iter().any(|t| {
            (t.name.0.as_str() == topic || by_id(&t.topic_id))
                && t.partitions.iter().any(|p| p.partition_index == partition)
        }),
        RequestKind::OffsetFetch(r) => {
            let single =
                r.topics.iter().flatten().any(|t| {
                    t.name.0.as_str() == topic && t.partition_indexes.contains(&partition)
                });
            let multi = r
                .groups
                .iter()
                .flat_map(|g| g.topics.iter().flatten())
                .any(|t| {
                    (t.name.0.as_str() == topic || by_id(&t.topic_id))
                        && t.partition_indexes.contains(&partition)
                });
            single || multi
        }
        RequestKind::Metadata(r) => r
            .topics
            .iter()
            .flatten()
            .any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic)),
        RequestKind::CreatePartitions(r) => r.topics.iter().any(|t| t.name.0.as_str() == topic),
        RequestKind::AddPartitionsToTxn(r) => r
            .v3_and_below_topics
            .iter()
            .chain(r.transactions.iter().flat_map(|t| t.topics.iter()))
            .any(|t| t.name.0.as_str() == topic && t.partitions.contains(&partition)),
        RequestKind::TxnOffsetCommit(r) => r.topics.iter().any(|t| {
            t.name.0.as_str() == topic
                && t.partitions.iter().any(|p| p.partition_index == partition)
        }),
        RequestKind::DeleteTopics(r) => r.topic_names.iter().any(|t| t.0.as_str() == topic),
        _ => false,
    }
}
