//! The classic group coordinator: join and sync phases, generations, session expiry, static
//! membership, committed offsets. Member metadata and assignments pass through untouched.
//!
//! Pure state; handlers call in with the cluster lock held and await the returned receivers
//! without it. A background tick drives the time-based transitions.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use kafka_protocol::ResponseError as E;
use tokio::sync::oneshot;

/// Group states with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, Default)]
pub(crate) struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, group instance id, metadata): only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    /// A refusal: `code` for `member_id`, no generation.
    pub fn failed(code: i16, member_id: &str) -> Self {
        JoinResult {
            error: code,
            generation: -1,
            member_id: member_id.to_owned(),
            ..Default::default()
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    /// A refusal with `code`.
    pub fn failed(code: i16) -> Self {
        SyncResult {
            error: code,
            ..Default::default()
        }
    }
}

/// Either an answer now, or one to wait for.
pub(crate) enum Pending<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// What a JoinGroup carries.
#[derive(Debug, Clone)]
pub(crate) struct JoinParams {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a member without an id must first be told its id (MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
}

#[derive(Debug)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_seen: Instant,
    joined_seq: u64,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// Answers the member's waiting JoinGroup and SyncGroup with `code`: it is out of the
    /// group (or replaced), so nothing else will ever answer them.
    fn reject_waiters(&mut self, member_id: &str, code: i16) {
        if let Some(w) = self.join_waiter.take() {
            let _ = w.send(JoinResult::failed(code, member_id));
        }
        if let Some(w) = self.sync_waiter.take() {
            let _ = w.send(SyncResult::failed(code));
        }
    }
}

/// A committed offset.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// One consumer group.
#[derive(Debug)]
pub(crate) struct Group {
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    pending: HashMap<String, Instant>,
    statics: HashMap<String, String>,
    rebalance_deadline: Option<Instant>,
    pub offsets: BTreeMap<(String, i32), Committed>,
    /// Every offset committed, in the order the coordinator accepted them (for tests that
    /// check a whole run, such as "committed offsets never decrease").
    pub history: Vec<CommitRecord>,
    /// Offsets of open transactions, by producer id: committed when the transaction commits.
    pub pending_txn_offsets: PendingOffsets,
}

/// Pending transactional offsets of a group: producer id -> offsets that become the group's
/// committed offsets when the transaction commits.
pub(crate) type PendingOffsets = BTreeMap<i64, BTreeMap<(String, i32), Committed>>;

/// One offset the group coordinator accepted, as [`MockCluster::commit_history`](crate::MockCluster::commit_history) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    /// The committed partition's topic.
    pub topic: String,
    /// The committed partition.
    pub partition: i32,
    /// The committed offset: the next record the group will read.
    pub offset: i64,
    /// The member that committed it (empty for a simple, group-less commit).
    pub member_id: String,
    /// The generation the commit carried (-1 when it carried none).
    pub generation: i32,
}

impl Group {
    fn new() -> Self {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            rebalance_deadline: None,
            offsets: BTreeMap::new(),
            history: Vec::new(),
            pending_txn_offsets: BTreeMap::new(),
        }
    }

    /// (member id, instance id, client id, client host, metadata of the chosen protocol, assignment)
    #[allow(clippy::type_complexity)]
    pub fn describe_members(&self) -> Vec<(String, Option<String>, String, String, Bytes, Bytes)> {
        self.members
            .iter()
            .map(|(id, m)| {
                let meta = self
                    .protocol_name
                    .as_ref()
                    .and_then(|p| m.protocols.iter().find(|(n, _)| n == p))
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                (
                    id.clone(),
                    m.instance_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    meta,
                    m.assignment.clone(),
                )
            })
            .collect()
    }

    fn new_member_id(&self, client_id: &str, instance: Option<&str>) -> String {
        let prefix = instance.unwrap_or(client_id);
        format!("{prefix}-{}", crate::ids::random_uuid().hyphenated())
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        // Some protocol must be supported by every member and the newcomer.
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn prepare_rebalance(&mut self, now: Instant, why: &str) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::failed(E::RebalanceInProgress.code()));
                }
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        tracing::debug!(
            generation = self.generation,
            why,
            "group preparing rebalance"
        );
        self.state = GroupState::PreparingRebalance;
        self.rebalance_deadline = Some(now + timeout);
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state == GroupState::PreparingRebalance && self.all_joined() {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.join_waiter.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            tracing::info!(member = %id, "member removed: did not rejoin before the rebalance timeout");
            self.remove_member(&id);
        }
        self.pending.clear();
        self.generation += 1;
        self.rebalance_deadline = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            return;
        }
        self.protocol_name = self.choose_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self
                .members
                .iter()
                .min_by_key(|(_, m)| m.joined_seq)
                .map(|(id, _)| id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone();
        let listing: Vec<(String, Option<String>, Bytes)> = self
            .members
            .iter()
            .map(|(id, m)| {
                let meta = m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                (id.clone(), m.instance_id.clone(), meta)
            })
            .collect();
        for (id, m) in self.members.iter_mut() {
            m.assignment = Bytes::new();
            m.last_seen = now;
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult {
                    error: 0,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: protocol.clone(),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        listing.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
        tracing::debug!(generation = self.generation, members = self.members.len(), %leader, "join phase complete");
    }

    fn choose_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0usize, *c)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                if let Some(v) = votes.iter_mut().find(|(_, c)| *c == name) {
                    v.0 += 1;
                }
            }
        }
        // Most votes; on a tie, the earliest in the first member's preference order.
        let best = votes.iter().map(|v| v.0).max()?;
        votes.iter().find(|v| v.0 == best).map(|v| v.1.clone())
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            if let Some(instance) = &m.instance_id {
                if self.statics.get(instance).is_some_and(|x| x == id) {
                    self.statics.remove(instance);
                }
            }
            m.reject_waiters(id, E::UnknownMemberId.code());
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
    }

    /// After members left: rebalance the rest, or become Empty.
    fn members_left(&mut self, now: Instant, why: &str) {
        match self.state {
            GroupState::Empty => {}
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, why);
                self.maybe_complete_join(now);
            }
        }
    }

    fn check_member(&self, member_id: &str, instance: Option<&str>) -> Result<(), i16> {
        if let Some(instance) = instance {
            if let Some(current) = self.statics.get(instance) {
                if current != member_id {
                    return Err(E::FencedInstanceId.code());
                }
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(E::UnknownMemberId.code());
        }
        Ok(())
    }

    pub fn join(&mut self, p: JoinParams, seq: u64, now: Instant) -> Pending<JoinResult> {
        tracing::debug!(member = %p.member_id, instance = ?p.instance_id, client = %p.client_id, state = self.state.name(), generation = self.generation, "join");
        let fail =
            |code: E, member_id: &str| Pending::Now(JoinResult::failed(code.code(), member_id));
        if !self.supports(&p.protocol_type, &p.protocols) {
            return fail(E::InconsistentGroupProtocol, &p.member_id);
        }
        let mut member_id = p.member_id.clone();
        let mut is_new = false;
        if member_id.is_empty() {
            member_id = self.new_member_id(&p.client_id, p.instance_id.as_deref());
            if let Some(instance) = &p.instance_id {
                if let Some(old) = self.statics.get(instance).cloned() {
                    // A static member came back: it takes over the old member's place.
                    if let Some(mut m) = self.members.remove(&old) {
                        m.reject_waiters(&old, E::FencedInstanceId.code());
                        // As Kafka: no rebalance unless the group's selected protocol
                        // would change (member metadata such as a generation in the
                        // subscription may differ from the last join).
                        let unchanged = self
                            .protocol_name
                            .as_ref()
                            .is_some_and(|name| p.protocols.iter().any(|(n, _)| n == name));
                        m.last_seen = now;
                        m.session_timeout = p.session_timeout;
                        m.rebalance_timeout = p.rebalance_timeout;
                        m.protocols = p.protocols.clone();
                        self.members.insert(member_id.clone(), m);
                        self.statics.insert(instance.clone(), member_id.clone());
                        if self.leader.as_deref() == Some(old.as_str()) {
                            self.leader = Some(member_id.clone());
                        }
                        if self.state == GroupState::Stable
                            && unchanged
                            && self.leader.as_deref() != Some(member_id.as_str())
                        {
                            return Pending::Now(self.follower_join(member_id));
                        }
                        return self.register_join(member_id, now, true);
                    }
                }
                self.statics.insert(instance.clone(), member_id.clone());
            } else if p.require_known_member_id {
                self.pending
                    .insert(member_id.clone(), now + p.session_timeout);
                return fail(E::MemberIdRequired, &member_id);
            }
            is_new = true;
        } else if self.pending.remove(&member_id).is_some() {
            is_new = true;
        } else if let Err(code) = self.check_member(&member_id, p.instance_id.as_deref()) {
            return Pending::Now(JoinResult::failed(code, &member_id));
        }
        if is_new {
            if self.members.is_empty() {
                self.protocol_type = Some(p.protocol_type.clone());
            }
            self.members.insert(
                member_id.clone(),
                Member {
                    instance_id: p.instance_id.clone(),
                    client_id: p.client_id.clone(),
                    client_host: p.client_host.clone(),
                    session_timeout: p.session_timeout,
                    rebalance_timeout: p.rebalance_timeout,
                    protocols: p.protocols.clone(),
                    assignment: Bytes::new(),
                    last_seen: now,
                    joined_seq: seq,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
            return self.register_join(member_id, now, true);
        }
        // A known member rejoining.
        let m = self.members.get_mut(&member_id).expect("checked above");
        let changed = m.protocols != p.protocols;
        m.protocols = p.protocols;
        m.session_timeout = p.session_timeout;
        m.rebalance_timeout = p.rebalance_timeout;
        m.last_seen = now;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance if !changed && !is_leader => {
                Pending::Now(self.follower_join(member_id))
            }
            _ => self.register_join(member_id, now, changed || is_leader),
        }
    }

    /// The answer to a follower that rejoins without changing anything: the current
    /// generation at once, no rebalance (only the leader gets the member list).
    fn follower_join(&self, member_id: String) -> JoinResult {
        JoinResult {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id,
            members: Vec::new(),
        }
    }

    fn register_join(
        &mut self,
        member_id: String,
        now: Instant,
        rebalance: bool,
    ) -> Pending<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(&member_id) {
            if let Some(old) = m.join_waiter.replace(tx) {
                let _ = old.send(JoinResult::failed(E::UnknownMemberId.code(), &member_id));
            }
        }
        if self.state != GroupState::PreparingRebalance
            && (rebalance || self.state == GroupState::Empty)
        {
            self.prepare_rebalance(now, "member joined or changed");
        }
        self.maybe_complete_join(now);
        Pending::Wait(rx)
    }

    pub fn sync(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Pending<SyncResult> {
        let fail = |code: i16| Pending::Now(SyncResult::failed(code));
        if let Err(code) = self.check_member(member_id, instance) {
            return fail(code);
        }
        if generation != self.generation {
            return fail(E::IllegalGeneration.code());
        }
        match self.state {
            GroupState::Empty => fail(E::UnknownMemberId.code()),
            GroupState::PreparingRebalance => fail(E::RebalanceInProgress.code()),
            GroupState::Stable => {
                let m = &self.members[member_id];
                Pending::Now(SyncResult {
                    error: 0,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment: m.assignment.clone(),
                })
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.sync_waiter = Some(tx);
                    m.last_seen = now;
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, m) in self.members.iter_mut() {
                        m.assignment = given.remove(id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    for m in self.members.values_mut() {
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(SyncResult {
                                error: 0,
                                protocol_type: self.protocol_type.clone(),
                                protocol_name: self.protocol_name.clone(),
                                assignment: m.assignment.clone(),
                            });
                        }
                    }
                    tracing::debug!(generation = self.generation, "group stable");
                }
                Pending::Wait(rx)
            }
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if let Err(code) = self.check_member(member_id, instance) {
            return code;
        }
        if generation != self.generation {
            return E::IllegalGeneration.code();
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_seen = now;
        }
        match self.state {
            GroupState::PreparingRebalance => E::RebalanceInProgress.code(),
            GroupState::Empty => E::UnknownMemberId.code(),
            _ => 0,
        }
    }

    /// Removes one member (by id, or by instance id when the id is empty).
    pub fn leave(&mut self, member_id: &str, instance: Option<&str>, now: Instant) -> i16 {
        let id = match (member_id.is_empty(), instance) {
            (true, Some(inst)) => match self.statics.get(inst) {
                Some(id) => id.clone(),
                None => return E::UnknownMemberId.code(),
            },
            _ => {
                if let Err(code) = self.check_member(member_id, instance) {
                    return code;
                }
                member_id.to_owned()
            }
        };
        self.remove_member(&id);
        self.members_left(now, "member left");
        0
    }

    /// Checks an OffsetCommit's member and generation.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if generation < 0 && member_id.is_empty() && self.state == GroupState::Empty {
            return 0;
        }
        if let Err(code) = self.check_member(member_id, instance) {
            return code;
        }
        if generation != self.generation {
            return E::IllegalGeneration.code();
        }
        if self.state == GroupState::CompletingRebalance {
            return E::RebalanceInProgress.code();
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_seen = now;
        }
        0
    }

    /// Checks a TxnOffsetCommit's member, instance and generation (KIP-447). A commit without
    /// group metadata (generation -1, no member id, no instance id) is accepted, as Kafka does
    /// for producers that only name the group; unlike OffsetCommit, a group in
    /// CompletingRebalance accepts transactional commits.
    pub fn check_txn_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> i16 {
        if generation < 0 && member_id.is_empty() && instance.is_none() {
            return 0;
        }
        if let Err(code) = self.check_member(member_id, instance) {
            return code;
        }
        if generation != self.generation {
            return E::IllegalGeneration.code();
        }
        0
    }

    /// Whether an open transaction has offsets pending for a partition.
    pub fn has_pending_txn_offset(&self, topic: &str, partition: i32) -> bool {
        self.pending_txn_offsets
            .values()
            .any(|o| o.contains_key(&(topic.to_owned(), partition)))
    }

    fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.join_waiter.is_none()
                    && m.sync_waiter.is_none()
                    && m.last_seen + m.session_timeout <= now
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            tracing::info!(member = %id, "member session expired");
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.members_left(now, "session expired");
        }
        if self.state == GroupState::PreparingRebalance
            && self.rebalance_deadline.is_some_and(|d| d <= now)
        {
            self.complete_join(now);
        } else {
            self.maybe_complete_join(now);
        }
    }
}

/// All groups of the cluster.
#[derive(Debug, Default)]
pub(crate) struct Coordinator {
    pub groups: BTreeMap<String, Group>,
    seq: u64,
}

impl Coordinator {
    pub fn group_mut(&mut self, id: &str) -> &mut Group {
        self.groups.entry(id.to_owned()).or_insert_with(Group::new)
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn tick(&mut self, now: Instant) {
        for g in self.groups.values_mut() {
            g.tick(now);
        }
    }

    pub fn forget_topic(&mut self, topic: &str) {
        for g in self.groups.values_mut() {
            g.offsets.retain(|(t, _), _| t != topic);
            for pending in g.pending_txn_offsets.values_mut() {
                pending.retain(|(t, _), _| t != topic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(member: &str) -> JoinParams {
        JoinParams {
            member_id: member.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
            require_known_member_id: true,
        }
    }

    #[tokio::test]
    async fn member_id_required_then_join_then_sync() {
        let mut g = Group::new();
        let now = Instant::now();
        let Pending::Now(r) = g.join(params(""), 1, now) else {
            panic!("expected MEMBER_ID_REQUIRED")
        };
        assert_eq!(r.error, E::MemberIdRequired.code());
        let Pending::Wait(rx) = g.join(params(&r.member_id), 2, now) else {
            panic!("expected wait")
        };
        let j = rx.await.unwrap();
        assert_eq!(
            (j.error, j.generation, j.leader.as_str()),
            (0, 1, r.member_id.as_str())
        );
        assert_eq!(j.members.len(), 1);
        let Pending::Wait(rx) = g.sync(
            &j.member_id,
            None,
            1,
            vec![(j.member_id.clone(), Bytes::from_static(b"a"))],
            now,
        ) else {
            panic!("expected wait")
        };
        assert_eq!(&rx.await.unwrap().assignment[..], b"a");
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(
            g.heartbeat(&j.member_id, None, 0, now),
            E::IllegalGeneration.code()
        );
        assert_eq!(g.heartbeat("nope", None, 1, now), E::UnknownMemberId.code());
        assert_eq!(g.heartbeat(&j.member_id, None, 1, now), 0);
    }

    /// A static follower that comes back with other subscription bytes (Java puts the
    /// generation in them) but the same protocol causes no rebalance, as on Kafka.
    #[tokio::test]
    async fn static_member_rejoin_with_new_metadata_keeps_the_generation() {
        let mut g = Group::new();
        let now = Instant::now();
        let join = |instance: &str, member: &str, meta: &'static [u8]| JoinParams {
            instance_id: Some(instance.into()),
            protocols: vec![("range".into(), Bytes::from_static(meta))],
            ..params(member)
        };
        // "a" alone: generation 1, stable.
        let Pending::Wait(rx) = g.join(join("a", "", b"gen0"), 1, now) else {
            panic!("static members join directly")
        };
        let a = rx.await.unwrap();
        let _ = g.sync(&a.member_id, Some("a"), a.generation, vec![], now);
        // "b" joins, "a" rejoins: generation 2 with both.
        let Pending::Wait(b_rx) = g.join(join("b", "", b"gen0"), 2, now) else {
            panic!("the join waits for the rebalance")
        };
        let Pending::Wait(a_rx) = g.join(join("a", &a.member_id, b"gen1"), 1, now) else {
            panic!("the leader's rejoin completes the join phase")
        };
        let (a, b) = (a_rx.await.unwrap(), b_rx.await.unwrap());
        assert_eq!((a.generation, b.generation), (2, 2));
        assert_eq!(a.leader, a.member_id);
        let assignments = vec![
            (a.member_id.clone(), Bytes::from_static(b"for a")),
            (b.member_id.clone(), Bytes::from_static(b"for b")),
        ];
        let _ = g.sync(&b.member_id, Some("b"), 2, Vec::new(), now);
        let _ = g.sync(&a.member_id, Some("a"), 2, assignments, now);
        assert_eq!(g.state, GroupState::Stable);
        // "b" restarts (no member id) with new subscription bytes.
        let Pending::Now(again) = g.join(join("b", "", b"gen2"), 3, now) else {
            panic!("a known static member with the same protocol is answered at once")
        };
        assert_eq!((again.error, again.generation), (0, 2));
        assert_eq!(g.state, GroupState::Stable);
    }
}
