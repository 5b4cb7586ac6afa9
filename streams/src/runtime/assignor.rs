//! The group assignor of apps with tables: partitions are handed out by number, every source
//! topic's partition `p` to one worker (so a table partition lives with its sources:
//! co-partitioning), sticky (a number stays with its owner), a dead owner's numbers going first
//! to a worker with a warm standby copy, and standby numbers placed on other workers.
//!
//! Members tell the leader what they hold and their advertised endpoint (`application_server`)
//! in their subscription's user data; the leader tells every member its standby numbers and
//! who holds every number (the router) in the assignment's user data. Format version 2 is the
//! byte `2` then JSON (see [`Wire`]); version 1, text `a=0,2;s=1` without endpoints, is still
//! read, and anything else counts as holding nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use kafka_client::group::{Assignment, Assignor, Subscription};
use kafka_client::TopicPartition;
use serde::{Deserialize, Serialize};

/// The first byte of user data in format version 2.
const VERSION: u8 = 2;

/// What this worker holds: active numbers and standby numbers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    pub active: BTreeSet<i32>,
    pub standby: BTreeSet<i32>,
}

/// Who holds one partition number: the active member's endpoint (`None` when that member
/// advertises none) and the endpoints of the members with a standby copy.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Holders {
    pub active: Option<String>,
    #[serde(default)]
    pub standbys: Vec<String>,
}

/// What the last assignment said about the whole group, for the router.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Routes {
    /// The group generation of the assignment.
    pub generation: i32,
    /// Holders by partition number; empty when the leader sent no routes (an older member).
    pub numbers: BTreeMap<i32, Holders>,
    /// Partition counts of the group's topics.
    pub topics: BTreeMap<String, i32>,
    /// Holders per topic and partition, when partitions are not handed out by number (apps
    /// without tables: see `range_routes`).
    pub partitions: BTreeMap<String, BTreeMap<i32, Holders>>,
}

/// User data in format version 2, after the version byte: a subscription carries `active`,
/// `standby` and `endpoint`; an assignment `active`, `standby`, `owners` and `topics` (of
/// `range_routes`: `topics` and `partitions`). Unknown fields are ignored, missing ones
/// empty, so that later versions can add fields.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Wire {
    #[serde(default)]
    active: BTreeSet<i32>,
    #[serde(default)]
    standby: BTreeSet<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    owners: BTreeMap<i32, Holders>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    topics: BTreeMap<String, i32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    partitions: BTreeMap<String, BTreeMap<i32, Holders>>,
}

impl Wire {
    /// A subscription's data carrying only an endpoint.
    pub(super) fn endpoint(endpoint: Option<String>) -> Wire {
        Wire {
            endpoint,
            ..Wire::default()
        }
    }

    /// An assignment's data carrying who holds each topic partition.
    pub(super) fn partitions(
        topics: BTreeMap<String, i32>,
        partitions: BTreeMap<String, BTreeMap<i32, Holders>>,
    ) -> Wire {
        Wire {
            topics,
            partitions,
            ..Wire::default()
        }
    }

    /// The member's advertised endpoint (a subscription's).
    pub(super) fn advertised(&self) -> Option<String> {
        self.endpoint.clone()
    }

    /// The routes an assignment's data says, in `generation`.
    pub(super) fn routes(self, generation: i32) -> Routes {
        Routes {
            generation,
            numbers: self.owners,
            topics: self.topics,
            partitions: self.partitions,
        }
    }

    pub(super) fn encode(&self) -> Bytes {
        let mut out = vec![VERSION];
        // Serializing plain maps and sets of numbers and strings cannot fail.
        serde_json::to_writer(&mut out, self).unwrap_or_default();
        Bytes::from(out)
    }

    /// Reads version 2, or version 1 (no endpoints, no routes); anything else (another
    /// client's or a newer incompatible format) is empty, with a warning.
    pub(super) fn decode(bytes: Option<&[u8]>) -> Wire {
        match bytes {
            None | Some([]) => Wire::default(),
            Some([VERSION, json @ ..]) => serde_json::from_slice(json).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "unreadable assignor user data: taken as empty");
                Wire::default()
            }),
            Some(text @ [b'a', ..]) => {
                let Placement { active, standby } = Placement::decode_v1(text);
                Wire {
                    active,
                    standby,
                    ..Wire::default()
                }
            }
            Some([version, ..]) => {
                tracing::warn!(
                    version,
                    "assignor user data of an unknown format: taken as empty"
                );
                Wire::default()
            }
        }
    }
}

/// The endpoint a member advertises in its subscription's user data (the CLI's `status`
/// reads the group from outside with the decoder the leader uses).
pub(crate) fn advertised_endpoint(subscription_user_data: Option<&[u8]>) -> Option<String> {
    Wire::decode(subscription_user_data).endpoint
}

/// The standby numbers a member's assignment user data gives it.
pub(crate) fn standby_numbers(assignment_user_data: Option<&[u8]>) -> BTreeSet<i32> {
    Wire::decode(assignment_user_data).standby
}

impl Placement {
    /// Reads version 1, `a=..;s=..`; anything else is an empty placement.
    fn decode_v1(bytes: &[u8]) -> Placement {
        let mut out = Placement::default();
        let Ok(text) = std::str::from_utf8(bytes) else {
            return out;
        };
        for part in text.split(';') {
            let (set, list) = match part.split_once('=') {
                Some(("a", list)) => (&mut out.active, list),
                Some(("s", list)) => (&mut out.standby, list),
                _ => continue,
            };
            set.extend(list.split(',').filter_map(|n| n.parse::<i32>().ok()));
        }
        out
    }
}

/// The assignor; `placement` is this worker's, shared with the runtime's tables.
/// `endpoint` is this worker's advertised `host:port`; `routes` what the last assignment said.
#[derive(Debug)]
pub(crate) struct TableAssignor {
    standby_replicas: usize,
    endpoint: Option<String>,
    placement: Arc<Mutex<Placement>>,
    routes: Arc<Mutex<Routes>>,
}

impl TableAssignor {
    pub(crate) fn new(
        standby_replicas: usize,
        endpoint: Option<String>,
    ) -> (TableAssignor, Arc<Mutex<Placement>>) {
        let placement = Arc::new(Mutex::new(Placement::default()));
        let assignor = TableAssignor {
            standby_replicas,
            endpoint,
            placement: placement.clone(),
            routes: Arc::default(),
        };
        (assignor, placement)
    }

    fn placement(&self) -> MutexGuard<'_, Placement> {
        self.placement.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The routes of the last assignment, shared with the runtime.
    pub(crate) fn routes(&self) -> Arc<Mutex<Routes>> {
        self.routes.clone()
    }
}

/// Who holds each number `0..numbers` once `placed`, by the members' advertised endpoints.
fn holders(
    placed: &BTreeMap<String, Placement>,
    endpoints: &BTreeMap<String, Option<String>>,
    numbers: i32,
) -> BTreeMap<i32, Holders> {
    let endpoint = |m: &String| endpoints.get(m).cloned().flatten();
    (0..numbers)
        .map(|p| {
            let active = placed
                .iter()
                .find(|(_, o)| o.active.contains(&p))
                .and_then(|(m, _)| endpoint(m));
            let standbys = placed
                .iter()
                .filter(|(_, o)| o.standby.contains(&p))
                .filter_map(|(m, _)| endpoint(m))
                .collect();
            (p, Holders { active, standbys })
        })
        .collect()
}

/// Assigns partition numbers `0..numbers` to `members` (sorted ids) given what each held.
/// Returns per member its (active, standby) numbers.
fn place(
    members: &BTreeMap<String, Placement>,
    numbers: i32,
    standby_replicas: usize,
) -> BTreeMap<String, Placement> {
    let mut out: BTreeMap<String, Placement> = members
        .keys()
        .map(|m| (m.clone(), Placement::default()))
        .collect();
    if members.is_empty() {
        return out;
    }
    let n = numbers.max(0) as usize;
    let capacity = n.div_ceil(members.len());
    let load = |out: &BTreeMap<String, Placement>, m: &str| out[m].active.len();
    let mut unplaced = Vec::new();
    // Sticky: a number stays with the member that held it, up to its fair share.
    for p in 0..numbers {
        let owner = members
            .iter()
            .find(|(m, held)| held.active.contains(&p) && load(&out, m) < capacity);
        match owner {
            Some((m, _)) => {
                out.get_mut(m).map(|o| o.active.insert(p));
            }
            None => unplaced.push(p),
        }
    }
    // The rest: to a member with a warm copy if it has room, else to the least loaded.
    for p in unplaced {
        let warm = members
            .iter()
            .filter(|(m, held)| held.standby.contains(&p) && load(&out, m) < capacity)
            .map(|(m, _)| m.clone())
            .next();
        let m = warm.unwrap_or_else(|| {
            out.iter()
                .min_by_key(|(m, o)| (o.active.len(), (*m).clone()))
                .map(|(m, _)| m.clone())
                .unwrap_or_default()
        });
        out.get_mut(&m).map(|o| o.active.insert(p));
    }
    // Standbys: on other members, those that had the copy first, then the least loaded.
    for p in 0..numbers {
        for _ in 0..standby_replicas.min(members.len() - 1) {
            let candidates = out
                .iter()
                .filter(|(_, o)| !o.active.contains(&p) && !o.standby.contains(&p));
            let pick = candidates
                .min_by_key(|(m, o)| {
                    let warm = members[m.as_str()].standby.contains(&p)
                        || members[m.as_str()].active.contains(&p);
                    (!warm, o.standby.len(), (*m).clone())
                })
                .map(|(m, _)| m.clone());
            if let Some(m) = pick {
                out.get_mut(&m).map(|o| o.standby.insert(p));
            }
        }
    }
    out
}

impl Assignor for TableAssignor {
    fn name(&self) -> &str {
        "streams-tables"
    }

    fn user_data(&self, _topics: &[String], _generation: i32) -> Option<Bytes> {
        let Placement { active, standby } = self.placement().clone();
        let wire = Wire {
            active,
            standby,
            endpoint: self.endpoint.clone(),
            ..Wire::default()
        };
        Some(wire.encode())
    }

    fn assign(
        &self,
        members: &[Subscription],
        partitions: &BTreeMap<String, i32>,
    ) -> kafka_client::Result<BTreeMap<String, Assignment>> {
        let mut held = BTreeMap::new();
        let mut endpoints = BTreeMap::new();
        for m in members {
            let wire = Wire::decode(m.user_data.as_deref());
            let placement = Placement {
                active: wire.active,
                standby: wire.standby,
            };
            held.insert(m.member_id.clone(), placement);
            endpoints.insert(m.member_id.clone(), wire.endpoint);
        }
        let numbers = partitions.values().copied().max().unwrap_or(0);
        let placed = place(&held, numbers, self.standby_replicas);
        let owners = holders(&placed, &endpoints, numbers);
        let mut out = BTreeMap::new();
        for m in members {
            let placement = placed.get(&m.member_id).cloned().unwrap_or_default();
            let mut tps = Vec::new();
            for topic in &m.topics {
                let count = partitions.get(topic).copied().unwrap_or(0);
                tps.extend(
                    placement
                        .active
                        .iter()
                        .filter(|p| **p < count)
                        .map(|p| TopicPartition::new(topic.clone(), *p)),
                );
            }
            let user_data = Some(
                Wire {
                    active: placement.active,
                    standby: placement.standby,
                    endpoint: None,
                    owners: owners.clone(),
                    topics: partitions.clone(),
                    partitions: BTreeMap::new(),
                }
                .encode(),
            );
            out.insert(
                m.member_id.clone(),
                Assignment {
                    partitions: tps,
                    user_data,
                },
            );
        }
        Ok(out)
    }

    fn on_assignment(&self, assignment: &Assignment, generation: i32) {
        let given = Wire::decode(assignment.user_data.as_deref());
        let standby = given.standby.clone();
        *self.routes.lock().unwrap_or_else(|e| e.into_inner()) = given.routes(generation);
        let active = assignment
            .partitions
            .iter()
            .map(|tp| tp.partition)
            .collect();
        *self.placement() = Placement { active, standby };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(entries: &[(&str, &[i32], &[i32])]) -> BTreeMap<String, Placement> {
        entries
            .iter()
            .map(|(m, a, s)| {
                (
                    m.to_string(),
                    Placement {
                        active: a.iter().copied().collect(),
                        standby: s.iter().copied().collect(),
                    },
                )
            })
            .collect()
    }

    fn sub(id: &str, data: Option<Bytes>) -> Subscription {
        Subscription {
            member_id: id.into(),
            group_instance_id: None,
            topics: vec!["t".into()],
            user_data: data,
            owned_partitions: vec![],
            generation: -1,
            rack: None,
        }
    }

    #[test]
    fn user_data_round_trips_reads_version_1_and_ignores_foreign_bytes() {
        let wire = Wire {
            active: [0, 2].into(),
            standby: [1].into(),
            endpoint: Some("h:1".into()),
            ..Wire::default()
        };
        let bytes = wire.encode();
        assert_eq!(
            &bytes[..],
            b"\x02{\"active\":[0,2],\"standby\":[1],\"endpoint\":\"h:1\"}"
        );
        let back = Wire::decode(Some(&bytes));
        assert_eq!((back.active, back.standby), (wire.active, wire.standby));
        assert_eq!(back.endpoint.as_deref(), Some("h:1"));
        let v1 = Wire::decode(Some(b"a=0,2;s=1"));
        assert_eq!((v1.active, v1.standby), ([0, 2].into(), [1].into()));
        assert_eq!(v1.endpoint, None);
        for junk in [&b"\x00\x01junk"[..], b"\x02{not json", b"\x07{}"] {
            let w = Wire::decode(Some(junk));
            assert!(w.active.is_empty() && w.owners.is_empty(), "{junk:?}");
        }
        assert!(Wire::decode(None).active.is_empty());
    }

    #[test]
    fn status_reads_endpoints_and_standbys_as_members_send_them() {
        let (member, _) = TableAssignor::new(1, Some("h:1".into()));
        let data = member.user_data(&[], 0);
        assert_eq!(advertised_endpoint(data.as_deref()).as_deref(), Some("h:1"));
        assert_eq!(advertised_endpoint(Some(b"a=0;s=1")), None);
        let members = [sub("a", data), sub("b", None)];
        let out = member
            .assign(&members, &BTreeMap::from([("t".to_string(), 2)]))
            .unwrap();
        let standby = |m: &str| standby_numbers(out[m].user_data.as_deref());
        assert_eq!(standby("a").len() + standby("b").len(), 2);
        assert_eq!(standby_numbers(Some(b"a=;s=3")), [3].into());
    }

    #[test]
    fn the_leader_tells_every_member_who_holds_each_number() {
        let (leader, _) = TableAssignor::new(1, Some("a:1".into()));
        let a = leader.user_data(&[], 0);
        // b is an older member: version 1 data, no endpoint.
        let members = [sub("a", a), sub("b", Some(Bytes::from("a=;s=")))];
        let out = leader
            .assign(&members, &BTreeMap::from([("t".to_string(), 2)]))
            .unwrap();
        leader.on_assignment(&out["a"], 3);
        let routes = leader.routes().lock().unwrap().clone();
        assert_eq!(routes.generation, 3);
        assert_eq!(routes.topics, BTreeMap::from([("t".to_string(), 2)]));
        assert_eq!(routes.numbers.len(), 2);
        for (p, h) in &routes.numbers {
            let mine = out["a"].partitions.iter().any(|tp| tp.partition == *p);
            // a's numbers name a; b's name no endpoint, and a is their standby.
            if mine {
                assert_eq!(
                    h,
                    &Holders {
                        active: Some("a:1".into()),
                        standbys: vec![]
                    }
                );
            } else {
                assert_eq!(
                    h,
                    &Holders {
                        active: None,
                        standbys: vec!["a:1".into()]
                    }
                );
            }
        }
    }

    #[test]
    fn every_number_has_one_owner_and_standbys_elsewhere() {
        let members = held(&[("a", &[], &[]), ("b", &[], &[]), ("c", &[], &[])]);
        let out = place(&members, 8, 1);
        let mut owners = BTreeMap::new();
        for (m, p) in &out {
            assert!(p.active.len() <= 3, "{out:?}");
            for n in &p.active {
                assert!(owners.insert(*n, m.clone()).is_none(), "{out:?}");
                assert!(!p.standby.contains(n));
            }
        }
        assert_eq!(owners.len(), 8);
        let standbys: usize = out.values().map(|p| p.standby.len()).sum();
        assert_eq!(standbys, 8, "{out:?}");
    }

    #[test]
    fn numbers_stay_with_their_owner_and_a_dead_owners_go_to_its_standby() {
        // b died; it owned 1 and 3; c had a standby copy of 3, a of 1.
        let members = held(&[("a", &[0], &[1]), ("c", &[2], &[3])]);
        let out = place(&members, 4, 1);
        assert_eq!(out["a"].active, [0, 1].into());
        assert_eq!(out["c"].active, [2, 3].into());
        // New standbys: each number on the other worker.
        assert_eq!(out["a"].standby, [2, 3].into());
        assert_eq!(out["c"].standby, [0, 1].into());
    }

    #[test]
    fn a_lone_worker_gets_everything_and_no_standby() {
        let out = place(&held(&[("a", &[], &[])]), 3, 2);
        assert_eq!(out["a"].active, [0, 1, 2].into());
        assert!(out["a"].standby.is_empty());
    }
}
