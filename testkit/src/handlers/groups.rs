//! FindCoordinator and the classic group APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! DescribeGroups, ListGroups. The state machine lives in [`crate::group`].

use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError as E;

use super::{s, Ctx};
use crate::group::{JoinParams, JoinResult, Pending, SyncResult};
use crate::state::{lock, State};

/// NOT_COORDINATOR (or COORDINATOR_NOT_AVAILABLE) when this broker does not own the group.
pub(crate) fn coordinator_error(st: &State, broker: i32, group: &str) -> Option<i16> {
    if group.is_empty() {
        return Some(E::InvalidGroupId.code());
    }
    match st.coordinator_for(group) {
        None => Some(E::CoordinatorNotAvailable.code()),
        Some(b) if b != broker => Some(E::NotCoordinator.code()),
        Some(_) => None,
    }
}

pub(crate) fn find_coordinator(
    ctx: &Ctx,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let st = lock(&ctx.shared);
    let keys: Vec<String> = if version >= 4 {
        req.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![req.key.to_string()]
    };
    let answers: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            let c = Coordinator::default()
                .with_key(s(key.clone()))
                .with_node_id(BrokerId(-1))
                .with_host(s(""))
                .with_port(-1);
            if req.key_type != 0 && req.key_type != 1 {
                return c
                    .with_error_code(E::InvalidRequest.code())
                    .with_error_message(Some(s(format!(
                        "key type {} is not supported",
                        req.key_type
                    ))));
            }
            match st.coordinator_for(&key).and_then(|id| st.broker(id)) {
                Some(b) => c
                    .with_node_id(BrokerId(b.id))
                    .with_host(s(b.host.clone()))
                    .with_port(b.port as i32),
                None => c.with_error_code(E::CoordinatorNotAvailable.code()),
            }
        })
        .collect();
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(answers);
    }
    let c = answers.into_iter().next().unwrap_or_default();
    FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_error_message(if version >= 1 { c.error_message } else { None })
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port)
}

fn join_response(r: JoinResult, version: i16) -> JoinGroupResponse {
    let name = match (r.protocol_name, version >= 7) {
        (n, true) => n.map(s),
        (n, false) => Some(s(n.unwrap_or_default())),
    };
    JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_protocol_type(if version >= 7 {
            r.protocol_type.map(s)
        } else {
            None
        })
        .with_protocol_name(name)
        .with_leader(s(r.leader))
        .with_member_id(s(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|(id, inst, meta)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(s(id))
                        .with_group_instance_id(if version >= 5 { inst.map(s) } else { None })
                        .with_metadata(meta)
                })
                .collect(),
        )
}

pub(crate) async fn join(
    ctx: &Ctx,
    req: JoinGroupRequest,
    version: i16,
    client_id: &str,
) -> JoinGroupResponse {
    let group_id = req.group_id.0.to_string();
    let fail = |code: i16| join_response(JoinResult::failed(code, &req.member_id), version);
    let pending = {
        let mut st = lock(&ctx.shared);
        if let Some(code) = coordinator_error(&st, ctx.broker, &group_id) {
            return fail(code);
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if session < st.settings.min_session_timeout || session > st.settings.max_session_timeout {
            tracing::warn!(group = %group_id, session_timeout_ms = req.session_timeout_ms, "join rejected: session timeout outside the broker's bounds");
            return fail(E::InvalidSessionTimeout.code());
        }
        let rebalance = if req.rebalance_timeout_ms < 0 {
            session
        } else {
            Duration::from_millis(req.rebalance_timeout_ms as u64)
        };
        let params = JoinParams {
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
            client_id: client_id.to_owned(),
            client_host: format!("/{}", ctx.client_host),
            session_timeout: session,
            rebalance_timeout: rebalance,
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
            require_known_member_id: version >= 4,
        };
        let seq = st.groups.next_seq();
        st.groups
            .group_mut(&group_id)
            .join(params, seq, Instant::now())
    };
    match pending {
        Pending::Now(r) => join_response(r, version),
        Pending::Wait(rx) => match rx.await {
            Ok(r) => join_response(r, version),
            Err(_) => fail(E::UnknownMemberId.code()),
        },
    }
}

fn sync_response(r: SyncResult, version: i16) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_protocol_type(if version >= 5 {
            r.protocol_type.map(s)
        } else {
            None
        })
        .with_protocol_name(if version >= 5 {
            r.protocol_name.map(s)
        } else {
            None
        })
        .with_assignment(r.assignment)
}

pub(crate) async fn sync(ctx: &Ctx, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let group_id = req.group_id.0.to_string();
    let fail = |code: i16| sync_response(SyncResult::failed(code), version);
    let pending = {
        let mut st = lock(&ctx.shared);
        if let Some(code) = coordinator_error(&st, ctx.broker, &group_id) {
            return fail(code);
        }
        let Some(group) = st.groups.groups.get_mut(&group_id) else {
            return fail(E::UnknownMemberId.code());
        };
        if version >= 5 {
            let type_ok = req
                .protocol_type
                .as_ref()
                .is_none_or(|t| group.protocol_type.as_deref() == Some(t.as_str()));
            let name_ok = req.protocol_name.as_ref().is_none_or(|n| {
                group.protocol_name.is_none() || group.protocol_name.as_deref() == Some(n.as_str())
            });
            if !type_ok || !name_ok {
                return fail(E::InconsistentGroupProtocol.code());
            }
        }
        let assignments = req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect();
        group.sync(
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
            assignments,
            Instant::now(),
        )
    };
    match pending {
        Pending::Now(r) => sync_response(r, version),
        Pending::Wait(rx) => match rx.await {
            Ok(r) => sync_response(r, version),
            Err(_) => fail(E::RebalanceInProgress.code()),
        },
    }
}

pub(crate) fn heartbeat(ctx: &Ctx, req: HeartbeatRequest) -> HeartbeatResponse {
    let mut st = lock(&ctx.shared);
    let group_id = req.group_id.0.to_string();
    let code = match coordinator_error(&st, ctx.broker, &group_id) {
        Some(code) => code,
        None => match st.groups.groups.get_mut(&group_id) {
            None => E::UnknownMemberId.code(),
            Some(g) => g.heartbeat(
                &req.member_id,
                req.group_instance_id.as_deref(),
                req.generation_id,
                Instant::now(),
            ),
        },
    };
    HeartbeatResponse::default().with_error_code(code)
}

pub(crate) fn leave(ctx: &Ctx, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let mut st = lock(&ctx.shared);
    let group_id = req.group_id.0.to_string();
    if let Some(code) = coordinator_error(&st, ctx.broker, &group_id) {
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let now = Instant::now();
    let group = st.groups.groups.get_mut(&group_id);
    if version < 3 {
        let code = group
            .map(|g| g.leave(&req.member_id, None, now))
            .unwrap_or(E::UnknownMemberId.code());
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let Some(group) = group else {
        return LeaveGroupResponse::default().with_error_code(E::UnknownMemberId.code());
    };
    let members = req
        .members
        .iter()
        .map(|m| {
            let code = group.leave(&m.member_id, m.group_instance_id.as_deref(), now);
            MemberResponse::default()
                .with_member_id(m.member_id.clone())
                .with_group_instance_id(m.group_instance_id.clone())
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

pub(crate) fn describe(
    ctx: &Ctx,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let st = lock(&ctx.shared);
    let groups = req
        .groups
        .into_iter()
        .map(|gid| {
            let d = DescribedGroup::default()
                .with_group_id(gid.clone())
                .with_group_state(s("Dead"));
            if let Some(code) = coordinator_error(&st, ctx.broker, &gid.0) {
                return d.with_error_code(code);
            }
            let Some(g) = st.groups.groups.get(gid.0.as_str()) else {
                return if version >= 6 {
                    d.with_error_code(E::GroupIdNotFound.code())
                } else {
                    d
                };
            };
            let members = g
                .describe_members()
                .into_iter()
                .map(|(id, inst, client, host, meta, assignment)| {
                    DescribedGroupMember::default()
                        .with_member_id(s(id))
                        .with_group_instance_id(if version >= 4 { inst.map(s) } else { None })
                        .with_client_id(s(client))
                        .with_client_host(s(host))
                        .with_member_metadata(meta)
                        .with_member_assignment(assignment)
                })
                .collect();
            d.with_group_state(s(g.state.name()))
                .with_protocol_type(s(g.protocol_type.clone().unwrap_or_default()))
                .with_protocol_data(s(g.protocol_name.clone().unwrap_or_default()))
                .with_members(members)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub(crate) fn list(ctx: &Ctx, req: ListGroupsRequest) -> ListGroupsResponse {
    let st = lock(&ctx.shared);
    let groups = st
        .groups
        .groups
        .iter()
        .filter(|(id, _)| st.coordinator_for(id) == Some(ctx.broker))
        .filter(|(_, g)| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(g.state.name()))
        })
        .filter(|_| {
            req.types_filter.is_empty()
                || req
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case("classic"))
        })
        .map(|(id, g)| {
            ListedGroup::default()
                .with_group_id(GroupId(s(id.clone())))
                .with_protocol_type(s(g.protocol_type.clone().unwrap_or_default()))
                .with_group_state(s(g.state.name()))
                .with_group_type(s("classic"))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
