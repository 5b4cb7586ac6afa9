//! The app's consumer group seen from outside, for operators (the CLI's `status`): members
//! with their assignment, standby numbers and advertised endpoint (read with the table
//! assignor's decoder), and per source partition the committed offset, end and lag. Needs no
//! running worker: without one the group has no members and the lag comes from the commits.

use std::collections::{BTreeMap, BTreeSet};

use kafka_client::admin::OffsetSpec;
use kafka_client::TopicPartition;

use super::assignor::{advertised_endpoint, standby_numbers};
use super::Connection;
use crate::declarations::Declarations;
use crate::error::Result;

/// The app's consumer group now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupStatus {
    /// The group id (the app id).
    pub group: String,
    /// The coordinator's state: `Stable`, `PreparingRebalance`, `CompletingRebalance`,
    /// `Empty` (no worker runs) or `Dead` (the group never committed).
    pub state: String,
    /// The workers in the group.
    pub members: Vec<MemberStatus>,
    /// Every partition of every source topic of the app's agents.
    pub sources: Vec<SourceLag>,
    /// Every partition of every table: who holds it and whether it is recovered.
    pub tables: Vec<TableRecovery>,
}

/// One worker in the group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberStatus {
    /// The id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id` (`worker --instance-id`), for a static member.
    pub instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// The host it connects from, as the coordinator sees it.
    pub client_host: String,
    /// The `host:port` of its web server it advertises (`application_server`), if any.
    pub endpoint: Option<String>,
    /// The partitions it consumes.
    pub active: Vec<TopicPartition>,
    /// The table partition numbers it keeps standby copies of.
    pub standby: Vec<i32>,
    /// What its web server's `/ready` said.
    pub ready: Readiness,
}

/// A worker's readiness as its web server's `/ready` says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Readiness {
    /// Not asked or not answered: the worker advertises no endpoint, or its web server did
    /// not answer in time (the reason says which).
    Unknown {
        /// Why it is unknown.
        reason: String,
    },
    /// Every table partition it holds is recovered and it runs.
    Ready,
    /// It does not serve yet: joining, stopped, or partitions recovering.
    NotReady {
        /// Its state, when it is not running (`joining the group`); empty when it runs.
        state: String,
        /// The table partitions still recovering, as (table, partition).
        recovering: Vec<(String, i32)>,
    },
}

/// One source partition: how far the group's commits are behind its end.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceLag {
    /// The topic and partition.
    pub partition: TopicPartition,
    /// The member consuming it, if any.
    pub member_id: Option<String>,
    /// The group's committed offset (`None`: nothing committed).
    pub committed: Option<i64>,
    /// The partition's end offset (`None`: the broker did not say).
    pub end: Option<i64>,
    /// Records still to process: `end - committed`, or without a commit, from where a new
    /// worker starts (the log start under `auto_offset_reset` earliest, else the end).
    pub lag: Option<i64>,
}

/// One table partition: who holds it and whether it is recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableRecovery {
    /// The table.
    pub table: String,
    /// The partition number.
    pub partition: i32,
    /// The member that holds it active, if any.
    pub active: Option<String>,
    /// The members with a standby copy.
    pub standbys: Vec<String>,
    /// `recovered`, `recovering`, `unknown` (its worker's `/ready` not known) or `unassigned`.
    pub state: &'static str,
}

/// The group as its coordinator and the brokers describe it; every member's readiness is
/// [`Readiness::Unknown`] and every held table partition `unknown` until
/// [`with_readiness`](GroupStatus::with_readiness).
pub(crate) async fn group_status(decls: &Declarations, conn: &Connection) -> Result<GroupStatus> {
    let described = conn.admin.describe_group(&decls.id).await?;
    let members: Vec<MemberStatus> = described
        .members
        .into_iter()
        .map(|m| {
            let endpoint = m
                .subscription
                .as_ref()
                .and_then(|s| advertised_endpoint(s.user_data.as_deref()));
            let (mut active, standby) = match &m.assignment {
                Some(a) => (
                    a.partitions.clone(),
                    standby_numbers(a.user_data.as_deref()),
                ),
                None => (Vec::new(), BTreeSet::new()),
            };
            active.sort();
            let ready = Readiness::Unknown {
                reason: match endpoint {
                    Some(_) => "not asked".into(),
                    None => "no advertised endpoint (application_server)".into(),
                },
            };
            MemberStatus {
                member_id: m.member_id,
                instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                endpoint,
                active,
                standby: standby.into_iter().collect(),
                ready,
            }
        })
        .collect();
    let sources = source_lags(decls, conn, &members).await?;
    let mut status = GroupStatus {
        group: described.group,
        state: described.state,
        members,
        sources,
        tables: Vec::new(),
    };
    status.tables = table_recovery(decls, &status.members);
    Ok(status)
}

/// Committed offsets, ends and lag of every partition of the agents' source topics.
async fn source_lags(
    decls: &Declarations,
    conn: &Connection,
    members: &[MemberStatus],
) -> Result<Vec<SourceLag>> {
    let topics: BTreeSet<String> = decls
        .agent_summaries()
        .into_iter()
        .map(|a| a.topic)
        .collect();
    let mut tps = Vec::new();
    for topic in &topics {
        // A topic that was never created has nothing to lag behind.
        if let Ok(info) = conn.admin.describe_topic(topic).await {
            tps.extend(
                info.partitions
                    .iter()
                    .map(|p| TopicPartition::new(topic.clone(), p.partition)),
            );
        }
    }
    tps.sort();
    if tps.is_empty() {
        return Ok(Vec::new());
    }
    let committed = conn.admin.committed_offsets(&decls.id, &tps).await?;
    let ends = conn
        .admin
        .list_offsets(
            tps.iter()
                .map(|tp| (tp.clone(), OffsetSpec::Latest))
                .collect(),
        )
        .await?;
    // Without a commit, a worker starts at the log start (auto_offset_reset earliest) or at
    // the end (latest): the lag counts from there.
    let starts = if decls.settings.consumer_auto_offset_reset_earliest {
        let earliest = tps
            .iter()
            .map(|tp| (tp.clone(), OffsetSpec::Earliest))
            .collect();
        conn.admin.list_offsets(earliest).await?
    } else {
        ends.clone()
    };
    let owner: BTreeMap<&TopicPartition, &str> = members
        .iter()
        .flat_map(|m| m.active.iter().map(|tp| (tp, m.member_id.as_str())))
        .collect();
    Ok(tps
        .iter()
        .map(|tp| {
            let committed = committed.get(tp).copied().flatten();
            let end = ends.get(tp).map(|o| o.offset);
            let from = committed.or_else(|| starts.get(tp).map(|o| o.offset));
            SourceLag {
                member_id: owner.get(tp).map(|m| (*m).to_owned()),
                committed,
                end,
                lag: from.zip(end).map(|(c, e)| (e - c).max(0)),
                partition: tp.clone(),
            }
        })
        .collect())
}

/// Who holds each table partition: partition `p` of a table lives with partition `p` of its
/// sources (co-partitioning), and standbys by number.
fn table_recovery(decls: &Declarations, members: &[MemberStatus]) -> Vec<TableRecovery> {
    let mut out = Vec::new();
    for core in decls.tables().iter() {
        for p in 0..core.spec().partition_count() {
            let active = members
                .iter()
                .find(|m| m.active.iter().any(|tp| tp.partition == p))
                .map(|m| m.member_id.clone());
            let standbys = members
                .iter()
                .filter(|m| m.standby.contains(&p))
                .map(|m| m.member_id.clone())
                .collect();
            out.push(TableRecovery {
                table: core.name().to_owned(),
                partition: p,
                state: if active.is_some() {
                    "unknown"
                } else {
                    "unassigned"
                },
                active,
                standbys,
            });
        }
    }
    out
}

impl GroupStatus {
    /// Sets each member's readiness (by member id) and from it each table partition's state.
    pub(crate) fn with_readiness(mut self, ready: BTreeMap<String, Readiness>) -> GroupStatus {
        for m in &mut self.members {
            if let Some(r) = ready.get(&m.member_id) {
                m.ready = r.clone();
            }
        }
        for t in &mut self.tables {
            let Some(owner) = &t.active else { continue };
            let Some(member) = self.members.iter().find(|m| &m.member_id == owner) else {
                continue;
            };
            t.state = match &member.ready {
                Readiness::Unknown { .. } => "unknown",
                Readiness::Ready => "recovered",
                Readiness::NotReady { state, .. } if !state.is_empty() => "unknown",
                Readiness::NotReady { recovering, .. } => {
                    if recovering
                        .iter()
                        .any(|(table, p)| *table == t.table && *p == t.partition)
                    {
                        "recovering"
                    } else {
                        "recovered"
                    }
                }
            };
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, ready: Readiness) -> MemberStatus {
        MemberStatus {
            member_id: id.into(),
            instance_id: None,
            client_id: "app".into(),
            client_host: "/127.0.0.1".into(),
            endpoint: None,
            active: vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)],
            standby: vec![],
            ready,
        }
    }

    fn recovery(partition: i32, active: Option<&str>) -> TableRecovery {
        TableRecovery {
            table: "totals".into(),
            partition,
            active: active.map(str::to_owned),
            standbys: vec![],
            state: "unknown",
        }
    }

    #[test]
    fn table_partitions_take_their_state_from_their_workers_readiness() {
        let unknown = Readiness::Unknown {
            reason: "not asked".into(),
        };
        let status = GroupStatus {
            group: "g".into(),
            state: "Stable".into(),
            members: vec![member("a", unknown)],
            sources: vec![],
            tables: vec![
                recovery(0, Some("a")),
                recovery(1, Some("a")),
                recovery(2, None),
            ],
        };
        let states = |s: &GroupStatus| s.tables.iter().map(|t| t.state).collect::<Vec<_>>();
        let recovering = Readiness::NotReady {
            state: String::new(),
            recovering: vec![("totals".into(), 1)],
        };
        let asked = status
            .clone()
            .with_readiness(BTreeMap::from([("a".into(), recovering)]));
        assert_eq!(states(&asked), ["recovered", "recovering", "unknown"]);
        let joining = Readiness::NotReady {
            state: "joining the group".into(),
            recovering: vec![],
        };
        let asked = status
            .clone()
            .with_readiness(BTreeMap::from([("a".into(), joining)]));
        assert_eq!(states(&asked), ["unknown", "unknown", "unknown"]);
        let asked = status.with_readiness(BTreeMap::from([("a".into(), Readiness::Ready)]));
        assert_eq!(states(&asked), ["recovered", "recovered", "unknown"]);
    }
}
