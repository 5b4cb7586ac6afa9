//! A group seen from outside (DescribeGroups): its state, members and what each subscribed to
//! and was assigned, for operators' tools. Read through [`Admin::describe_group`](crate::admin::Admin::describe_group).

use std::ops::RangeInclusive;

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::DescribedGroupMember;
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, GroupId};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::assignor::{Assignment, Subscription};
use super::coordinator::{backoff_until, classify, CodeClass, Coordinator};
use super::protocol::{decode_assignment, decode_subscription, PROTOCOL_TYPE};
use crate::error::{Error, KafkaCode, Result};

/// v6 answers GROUP_ID_NOT_FOUND for a group that does not exist (older versions: `Dead`).
const DESCRIBE_GROUPS_VERSIONS: RangeInclusive<i16> = 0..=6;

/// A consumer group as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// The group id.
    pub group: String,
    /// The coordinator's state name: `Stable`, `PreparingRebalance`, `CompletingRebalance`,
    /// `Empty` (no member, offsets kept) or `Dead` (no such group).
    pub state: String,
    /// The protocol type members joined with (`consumer` for consumer groups).
    pub protocol_type: String,
    /// The assignor the group agreed on (its name), empty while rebalancing.
    pub protocol: String,
    /// The members, in the coordinator's order.
    pub members: Vec<GroupMember>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupMember {
    /// The id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id`, for a static member.
    pub group_instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// The host it connects from, as the coordinator sees it (`/10.0.0.7`).
    pub client_host: String,
    /// Its subscription (topics and assignor user data), decoded when the group is a
    /// consumer group and the bytes are the consumer protocol's; `None` otherwise.
    pub subscription: Option<Subscription>,
    /// Its assignment (partitions and assignor user data), decoded alike; `None` while the
    /// group rebalances (empty) or when the bytes are not the consumer protocol's.
    pub assignment: Option<Assignment>,
}

/// Describes `group` at its coordinator, retrying coordinator moves until `deadline`.
pub(crate) async fn describe(
    coordinator: &Coordinator,
    group: &str,
    deadline: Instant,
) -> Result<GroupDescription> {
    let mut backoff = backoff_until(deadline);
    loop {
        let attempt = coordinator
            .send(
                ApiKey::DescribeGroups,
                DESCRIBE_GROUPS_VERSIONS,
                deadline,
                |_| {
                    DescribeGroupsRequest::default()
                        .with_groups(vec![GroupId(StrBytes::from_string(group.to_owned()))])
                },
            )
            .await;
        let response = match attempt {
            Ok((response, _)) => response,
            Err(e) if e.is_retriable() => {
                backoff.wait(e).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let described =
            response.groups.into_iter().next().ok_or_else(|| {
                Error::malformed("DescribeGroups response", "no group in the answer")
            })?;
        let code = match KafkaCode::try_from_code(described.error_code) {
            None => return Ok(description(group, described)),
            Some(KafkaCode::GroupIdNotFound) => return Ok(dead(group)),
            Some(code) => code,
        };
        let error = Error::broker(code, format!("DescribeGroups of group {group}"));
        match classify(code) {
            CodeClass::Refind => coordinator.mark_unknown(&code.to_string()),
            CodeClass::Retry => {}
            CodeClass::Other if code.is_retriable() => {}
            CodeClass::Other => return Err(error),
        }
        backoff.wait(error).await?;
    }
}

/// A group that does not exist, as versions before 6 describe it.
fn dead(group: &str) -> GroupDescription {
    GroupDescription {
        group: group.to_owned(),
        state: "Dead".into(),
        protocol_type: String::new(),
        protocol: String::new(),
        members: Vec::new(),
    }
}

fn description(
    group: &str,
    g: kafka_protocol::messages::describe_groups_response::DescribedGroup,
) -> GroupDescription {
    let consumer = g.protocol_type.as_str() == PROTOCOL_TYPE;
    GroupDescription {
        group: group.to_owned(),
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        members: g.members.into_iter().map(|m| member(m, consumer)).collect(),
    }
}

fn member(m: DescribedGroupMember, consumer: bool) -> GroupMember {
    let member_id = m.member_id.to_string();
    let group_instance_id = m.group_instance_id.map(|i| i.to_string());
    // Bytes of another protocol, or that do not decode, are left out rather than failing
    // the whole description: the member is still listed.
    let subscription = (consumer && !m.member_metadata.is_empty())
        .then(|| {
            decode_subscription(
                member_id.clone(),
                group_instance_id.clone(),
                m.member_metadata,
            )
            .map_err(
                |e| tracing::debug!(member = %member_id, error = %e, "undecodable subscription"),
            )
            .ok()
        })
        .flatten();
    let assignment = (consumer && !m.member_assignment.is_empty())
        .then(|| decoded_assignment(&member_id, m.member_assignment))
        .flatten();
    GroupMember {
        member_id,
        group_instance_id,
        client_id: m.client_id.to_string(),
        client_host: m.client_host.to_string(),
        subscription,
        assignment,
    }
}

fn decoded_assignment(member_id: &str, bytes: Bytes) -> Option<Assignment> {
    decode_assignment(bytes)
        .map_err(|e| tracing::debug!(member = %member_id, error = %e, "undecodable assignment"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::protocol::encode_assignment;
    use crate::TopicPartition;
    use kafka_protocol::messages::describe_groups_response::DescribedGroup;

    fn described(protocol_type: &str, assignment: Bytes) -> DescribedGroup {
        DescribedGroup::default()
            .with_group_state(StrBytes::from_static_str("Stable"))
            .with_protocol_type(StrBytes::from_string(protocol_type.to_owned()))
            .with_protocol_data(StrBytes::from_static_str("range"))
            .with_members(vec![DescribedGroupMember::default()
                .with_member_id(StrBytes::from_static_str("m-1"))
                .with_group_instance_id(Some(StrBytes::from_static_str("w1")))
                .with_client_id(StrBytes::from_static_str("app"))
                .with_client_host(StrBytes::from_static_str("/127.0.0.1"))
                .with_member_metadata(Bytes::from_static(b"\x00"))
                .with_member_assignment(assignment)])
    }

    #[test]
    fn consumer_members_are_decoded_and_other_bytes_left_out() {
        let given = Assignment {
            partitions: vec![TopicPartition::new("t", 1)],
            user_data: Some(Bytes::from_static(b"\x02{}")),
        };
        let bytes = encode_assignment(&given).unwrap();
        let d = description("g", described(PROTOCOL_TYPE, bytes.clone()));
        assert_eq!((d.state.as_str(), d.protocol.as_str()), ("Stable", "range"));
        let m = &d.members[0];
        assert_eq!(m.group_instance_id.as_deref(), Some("w1"));
        assert_eq!(m.assignment.as_ref(), Some(&given));
        // One byte is no subscription: left out, the member still listed.
        assert_eq!(m.subscription, None);
        // Another protocol's bytes are not read as the consumer protocol's.
        let d = description("g", described("connect", bytes));
        assert_eq!(d.members[0].assignment, None);
        assert_eq!(d.members[0].client_host, "/127.0.0.1");
    }
}
