//! Group membership, classic protocol: the member's state shared between the application
//! side and the heartbeat task, the JoinGroup / SyncGroup / Heartbeat / LeaveGroup requests,
//! and the heartbeat task itself (which also enforces the max poll interval).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;

use super::config::GroupConfig;
use super::coordinator::{backoff_until, classify, CodeClass, Coordinator};
use super::offsets::Generation;
use super::protocol::PROTOCOL_TYPE;
use crate::error::{Error, KafkaCode, Result};

const JOIN_GROUP_VERSIONS: RangeInclusive<i16> = 0..=9;
const SYNC_GROUP_VERSIONS: RangeInclusive<i16> = 0..=5;
const HEARTBEAT_VERSIONS: RangeInclusive<i16> = 0..=4;
const LEAVE_GROUP_VERSIONS: RangeInclusive<i16> = 0..=5;

/// Where the member is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not a member of any generation (never joined, left, or fenced).
    Unjoined,
    /// JoinGroup or SyncGroup in flight: no heartbeats.
    Joining,
    /// Has an assignment of `generation`; heartbeats flow.
    Stable,
}

/// The member's state.
#[derive(Debug)]
pub(crate) struct MemberState {
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    pub(crate) protocol: Option<String>,
    pub(crate) phase: Phase,
    pub(crate) leader: bool,
    /// A rebalance is needed (the coordinator said so, or our assignment is incomplete).
    pub(crate) rejoin: bool,
    /// Our partitions may already belong to others: call `lost`, not `revoked`, and do not
    /// commit them.
    pub(crate) lost: bool,
    /// An error that ends membership (FENCED_INSTANCE_ID and the like), for the application.
    pub(crate) fatal: Option<Error>,
    /// Partition counts the leader's last assignment was computed from.
    pub(crate) assigned_counts: BTreeMap<String, i32>,
    /// Topics subscribed to.
    pub(crate) topics: Vec<String>,
}

impl MemberState {
    /// Forgets the generation (and with `member` the member id too): the member must rejoin
    /// and treat its partitions as lost.
    pub(crate) fn reset(&mut self, member: bool, why: &str) {
        tracing::info!(member = %self.member_id, generation = self.generation, why, "member reset, will rejoin");
        if member {
            self.member_id.clear();
        }
        self.generation = -1;
        self.phase = Phase::Unjoined;
        self.leader = false;
        self.rejoin = true;
        self.lost = true;
    }
}

/// Whether the application is inside `recv` (polling) or has had control since some instant.
#[derive(Debug)]
pub(crate) struct PollClock {
    busy_since: Mutex<Option<Instant>>,
}

impl PollClock {
    fn new() -> Self {
        PollClock {
            busy_since: Mutex::new(Some(Instant::now())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Instant>> {
        self.busy_since.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the application as polling until the returned guard is dropped.
    pub(crate) fn enter(&self) -> PollGuard<'_> {
        *self.lock() = None;
        PollGuard(self)
    }

    /// A poll that returned at once: the application has control from now on (what entering
    /// and leaving a poll do).
    pub(crate) fn returned_now(&self) {
        *self.lock() = Some(Instant::now());
    }

    /// Whether the application has had control longer than `limit`.
    fn overdue(&self, limit: Duration) -> bool {
        self.lock().is_some_and(|since| since.elapsed() > limit)
    }
}

/// Ends a poll: from now on the application's time counts against the max poll interval.
pub(crate) struct PollGuard<'a>(&'a PollClock);

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        *self.0.lock() = Some(Instant::now());
    }
}

/// What the application side, the heartbeat task and the committer share.
pub(crate) struct GroupShared {
    pub(crate) config: GroupConfig,
    pub(crate) coordinator: Coordinator,
    state: Mutex<MemberState>,
    /// Wakes the application: a rebalance is needed or membership failed.
    pub(crate) app_wake: Notify,
    pub(crate) poll: PollClock,
    /// Request timeout of ordinary requests (heartbeats, commits).
    pub(crate) request_timeout: Duration,
}

impl GroupShared {
    pub(crate) fn new(
        config: GroupConfig,
        coordinator: Coordinator,
        request_timeout: Duration,
    ) -> Self {
        GroupShared {
            config,
            coordinator,
            state: Mutex::new(MemberState {
                member_id: String::new(),
                generation: -1,
                protocol: None,
                phase: Phase::Unjoined,
                leader: false,
                rejoin: false,
                lost: false,
                fatal: None,
                assigned_counts: BTreeMap::new(),
                topics: Vec::new(),
            }),
            app_wake: Notify::new(),
            poll: PollClock::new(),
            request_timeout,
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, MemberState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn group(&self) -> &str {
        &self.config.group_id
    }

    /// The generation commits are made under.
    pub(crate) fn generation(&self) -> Generation {
        let st = self.state();
        Generation {
            id: st.generation,
            member_id: st.member_id.clone(),
            instance_id: self.config.group_instance_id.clone(),
        }
    }

    /// This member's identity for a transactional producer's offsets (KIP-447).
    pub(crate) fn group_metadata(&self) -> super::ConsumerGroupMetadata {
        let st = self.state();
        super::ConsumerGroupMetadata {
            group_id: self.config.group_id.clone(),
            generation_id: st.generation,
            member_id: st.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
        }
    }

    fn stable_generation(&self) -> Option<Generation> {
        let st = self.state();
        (st.phase == Phase::Stable && !st.member_id.is_empty()).then(|| Generation {
            id: st.generation,
            member_id: st.member_id.clone(),
            instance_id: self.config.group_instance_id.clone(),
        })
    }

    /// Reacts to a fencing code of a request made as `generation`: rejoin (REBALANCE_IN_PROGRESS)
    /// or reset (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID), unless the member moved on already.
    pub(crate) fn fenced(&self, generation: &Generation, code: KafkaCode, what: &str) {
        let mut st = self.state();
        if st.generation != generation.id || st.member_id != generation.member_id {
            return;
        }
        match code {
            KafkaCode::RebalanceInProgress => st.rejoin = true,
            KafkaCode::IllegalGeneration => st.reset(false, what),
            KafkaCode::UnknownMemberId => st.reset(true, what),
            KafkaCode::FencedInstanceId => {
                st.fatal = Some(Error::broker(
                    code,
                    format!(
                        "{what}: group {} has another member with instance id {:?}",
                        self.config.group_id, self.config.group_instance_id
                    ),
                ));
                st.phase = Phase::Unjoined;
            }
            _ => return,
        }
        drop(st);
        self.app_wake.notify_one();
    }

    /// The coordination deadline of ordinary requests.
    fn deadline(&self) -> Instant {
        Instant::now() + self.request_timeout
    }
}

/// The JoinGroup answer.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) generation: i32,
    pub(crate) member_id: String,
    pub(crate) protocol: String,
    pub(crate) leader: String,
    pub(crate) skip_assignment: bool,
    /// (member id, instance id, metadata): filled for the leader only.
    pub(crate) members: Vec<(String, Option<String>, Bytes)>,
}

/// Sends JoinGroup until it succeeds (coordinator moves, loads and MEMBER_ID_REQUIRED are
/// handled here) or fails for good.
pub(crate) async fn join(shared: &GroupShared, protocols: &[(String, Bytes)]) -> Result<Joined> {
    let cfg = &shared.config;
    let group = cfg.group_id.as_str();
    // A JoinGroup may wait a whole rebalance timeout for the other members.
    let mut backoff = backoff_until(Instant::now() + Duration::from_secs(365 * 24 * 3600));
    loop {
        let member_id = shared.state().member_id.clone();
        let attempt = shared
            .coordinator
            .send(
                ApiKey::JoinGroup,
                JOIN_GROUP_VERSIONS,
                shared.deadline(),
                |v| {
                    let mut r = JoinGroupRequest::default()
                        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                        .with_session_timeout_ms(millis(cfg.session_timeout))
                        .with_member_id(StrBytes::from_string(member_id.clone()))
                        .with_group_instance_id(None)
                        .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
                        .with_reason(None)
                        .with_protocols(
                            protocols
                                .iter()
                                .map(|(name, metadata)| {
                                    JoinGroupRequestProtocol::default()
                                        .with_name(StrBytes::from_string(name.clone()))
                                        .with_metadata(metadata.clone())
                                })
                                .collect(),
                        );
                    if v >= 1 {
                        r.rebalance_timeout_ms = millis(cfg.effective_rebalance_timeout());
                    }
                    if v >= 5 {
                        r.group_instance_id =
                            cfg.group_instance_id.clone().map(StrBytes::from_string);
                    }
                    r
                },
            )
            .await;
        let response = match attempt {
            Ok((r, _)) => r,
            Err(e) if e.is_retriable() => {
                tracing::debug!(group, error = %e, "JoinGroup failed, retrying");
                backoff.wait(e).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(code) = KafkaCode::try_from_code(response.error_code) else {
            let protocol = response
                .protocol_name
                .map(|p| p.to_string())
                .or_else(|| protocols.first().map(|(n, _)| n.clone()))
                .unwrap_or_default();
            return Ok(Joined {
                generation: response.generation_id,
                member_id: response.member_id.to_string(),
                protocol,
                leader: response.leader.to_string(),
                skip_assignment: response.skip_assignment,
                members: response
                    .members
                    .into_iter()
                    .map(|m| {
                        (
                            m.member_id.to_string(),
                            m.group_instance_id.map(|i| i.to_string()),
                            m.metadata,
                        )
                    })
                    .collect(),
            });
        };
        let error = Error::broker(code, format!("JoinGroup of group {group}"));
        match code {
            KafkaCode::MemberIdRequired => {
                tracing::debug!(group, member = %response.member_id, "member id assigned");
                shared.state().member_id = response.member_id.to_string();
                continue;
            }
            KafkaCode::UnknownMemberId => {
                shared.state().member_id.clear();
                continue;
            }
            KafkaCode::IllegalGeneration | KafkaCode::RebalanceInProgress => {}
            _ => match classify(code) {
                CodeClass::Refind => shared.coordinator.mark_unknown(&code.to_string()),
                CodeClass::Retry => {}
                CodeClass::Other if code.is_retriable() => {}
                CodeClass::Other => return Err(error),
            },
        }
        backoff.wait(error).await?;
    }
}

/// The outcome of one SyncGroup.
pub(crate) enum Synced {
    /// This member's assignment bytes.
    Assignment(Bytes),
    /// The generation is over (or the coordinator went away): join again.
    Rejoin(String),
}

/// Sends SyncGroup once. Failures that a rejoin fixes come back as [`Synced::Rejoin`].
pub(crate) async fn sync(
    shared: &GroupShared,
    joined: &Joined,
    assignments: Vec<(String, Bytes)>,
) -> Result<Synced> {
    let cfg = &shared.config;
    let group = cfg.group_id.as_str();
    let attempt = shared
        .coordinator
        .send(
            ApiKey::SyncGroup,
            SYNC_GROUP_VERSIONS,
            shared.deadline(),
            |v| {
                let mut r = SyncGroupRequest::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                    .with_generation_id(joined.generation)
                    .with_member_id(StrBytes::from_string(joined.member_id.clone()))
                    .with_group_instance_id(None)
                    .with_protocol_type(None)
                    .with_protocol_name(None)
                    .with_assignments(
                        assignments
                            .into_iter()
                            .map(|(member, bytes)| {
                                SyncGroupRequestAssignment::default()
                                    .with_member_id(StrBytes::from_string(member))
                                    .with_assignment(bytes)
                            })
                            .collect(),
                    );
                if v >= 3 {
                    r.group_instance_id = cfg.group_instance_id.clone().map(StrBytes::from_string);
                }
                if v >= 5 {
                    r.protocol_type = Some(StrBytes::from_static_str(PROTOCOL_TYPE));
                    r.protocol_name = Some(StrBytes::from_string(joined.protocol.clone()));
                }
                r
            },
        )
        .await;
    let response = match attempt {
        Ok((r, _)) => r,
        Err(e) if e.is_retriable() => return Ok(Synced::Rejoin(format!("SyncGroup failed: {e}"))),
        Err(e) => return Err(e),
    };
    let Some(code) = KafkaCode::try_from_code(response.error_code) else {
        return Ok(Synced::Assignment(response.assignment));
    };
    let mut st = shared.state();
    match code {
        KafkaCode::RebalanceInProgress => {}
        KafkaCode::IllegalGeneration => st.generation = -1,
        KafkaCode::UnknownMemberId => {
            st.generation = -1;
            st.member_id.clear();
        }
        _ => match classify(code) {
            CodeClass::Refind => shared.coordinator.mark_unknown(&code.to_string()),
            CodeClass::Retry => {}
            CodeClass::Other if code.is_retriable() => {}
            CodeClass::Other => {
                return Err(Error::broker(code, format!("SyncGroup of group {group}")))
            }
        },
    }
    Ok(Synced::Rejoin(format!("SyncGroup: {code}")))
}

/// Sends LeaveGroup for a dynamic member (static members keep their place, as in Java).
pub(crate) async fn leave(shared: &GroupShared, reason: &str) {
    let cfg = &shared.config;
    let member_id = {
        let mut st = shared.state();
        let id = st.member_id.clone();
        st.phase = Phase::Unjoined;
        st.generation = -1;
        if cfg.group_instance_id.is_none() {
            st.member_id.clear();
        }
        id
    };
    if member_id.is_empty() || cfg.group_instance_id.is_some() {
        return;
    }
    let group = cfg.group_id.as_str();
    let attempt = shared
        .coordinator
        .send(
            ApiKey::LeaveGroup,
            LEAVE_GROUP_VERSIONS,
            shared.deadline(),
            |v| {
                let r = LeaveGroupRequest::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.to_owned())));
                if v >= 3 {
                    let mut m = MemberIdentity::default()
                        .with_member_id(StrBytes::from_string(member_id.clone()))
                        .with_group_instance_id(None)
                        .with_reason(None);
                    if v >= 5 {
                        m.reason = Some(StrBytes::from_string(reason.to_owned()));
                    }
                    r.with_members(vec![m])
                } else {
                    r.with_member_id(StrBytes::from_string(member_id.clone()))
                }
            },
        )
        .await;
    match attempt {
        Ok((r, _)) if r.error_code == 0 => {
            tracing::info!(group, member = %member_id, reason, "left the group")
        }
        Ok((r, _)) => {
            tracing::warn!(group, member = %member_id, code = r.error_code, "LeaveGroup refused")
        }
        Err(e) => tracing::warn!(group, member = %member_id, error = %e, "LeaveGroup failed"),
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Sends one heartbeat as `generation` and applies the answer to the shared state. Returns
/// whether the coordinator answered (false: retry soon).
async fn heartbeat(shared: &GroupShared, generation: &Generation) -> bool {
    let cfg = &shared.config;
    let group = cfg.group_id.as_str();
    let send = shared.coordinator.send(
        ApiKey::Heartbeat,
        HEARTBEAT_VERSIONS,
        shared.deadline(),
        |v| {
            let mut r = HeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                .with_generation_id(generation.id)
                .with_member_id(StrBytes::from_string(generation.member_id.clone()))
                .with_group_instance_id(None);
            if v >= 3 {
                r.group_instance_id = generation.instance_id.clone().map(StrBytes::from_string);
            }
            r
        },
    );
    let response = match tokio::time::timeout(shared.request_timeout, send).await {
        Ok(Ok((r, _))) => r,
        Ok(Err(e)) => {
            tracing::debug!(group, error = %e, "heartbeat failed");
            return false;
        }
        Err(_) => {
            shared.coordinator.mark_unknown("heartbeat timed out");
            return false;
        }
    };
    let Some(code) = KafkaCode::try_from_code(response.error_code) else {
        return true;
    };
    tracing::debug!(group, generation = generation.id, member = %generation.member_id, %code, "heartbeat answer");
    match classify(code) {
        CodeClass::Refind => {
            shared.coordinator.mark_unknown(&code.to_string());
            false
        }
        CodeClass::Retry => false,
        CodeClass::Other => {
            if super::offsets::is_fencing(code) {
                shared.fenced(generation, code, "Heartbeat");
            } else {
                tracing::warn!(group, %code, "unexpected heartbeat error");
            }
            true
        }
    }
}

/// The heartbeat task: heartbeats every `heartbeat_interval` while the member is stable,
/// independent of the application; leaves the group when the application has not polled
/// within `max_poll_interval`; on the leader, watches subscribed topics' partition counts.
pub(crate) async fn heartbeat_task(shared: Arc<GroupShared>) {
    let cfg = &shared.config;
    let retry = (cfg.heartbeat_interval / 4).max(Duration::from_millis(20));
    let mut next_metadata_check = Instant::now() + cfg.metadata_refresh_interval;
    let mut wait = cfg.heartbeat_interval;
    loop {
        tokio::time::sleep(wait).await;
        wait = cfg.heartbeat_interval;
        let Some(generation) = shared.stable_generation() else {
            continue;
        };
        if shared.poll.overdue(cfg.max_poll_interval) {
            tracing::warn!(
                group = %cfg.group_id, member = %generation.member_id, generation = generation.id,
                max_poll_interval = ?cfg.max_poll_interval,
                "the application did not poll within max_poll_interval: leaving the group"
            );
            leave(&shared, "consumer poll timeout has expired").await;
            {
                let mut st = shared.state();
                st.rejoin = true;
                st.lost = true;
            }
            shared.app_wake.notify_one();
            continue;
        }
        if !heartbeat(&shared, &generation).await {
            wait = retry;
            continue;
        }
        if Instant::now() >= next_metadata_check {
            next_metadata_check = Instant::now() + cfg.metadata_refresh_interval;
            check_partition_counts(&shared).await;
        }
    }
}

/// On the leader: rebalance when a subscribed topic's partition count changed (or it
/// appeared) since the last assignment.
async fn check_partition_counts(shared: &GroupShared) {
    let (leader, topics, before) = {
        let st = shared.state();
        (st.leader, st.topics.clone(), st.assigned_counts.clone())
    };
    if !leader || topics.is_empty() {
        return;
    }
    let cluster = &shared.coordinator.cluster;
    if let Err(e) = cluster.refresh_metadata(&topics, false).await {
        tracing::debug!(group = %shared.group(), error = %e, "metadata check failed");
        return;
    }
    let now: BTreeMap<String, i32> = topics
        .iter()
        .filter_map(|t| Some((t.clone(), cluster.partition_count(t)? as i32)))
        .collect();
    if now != before {
        tracing::info!(group = %shared.group(), ?before, ?now, "subscribed partitions changed: rebalancing");
        shared.state().rejoin = true;
        shared.app_wake.notify_one();
    }
}
