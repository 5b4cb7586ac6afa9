//! The group assignor of apps with tables: partitions are handed out by number, every source
//! topic's partition `p` to one worker (so a table partition lives with its sources:
//! co-partitioning), sticky (a number stays with its owner), a dead owner's numbers going first
//! to a worker with a warm standby copy, and standby numbers placed on other workers.
//!
//! Members tell the leader what they hold in their subscription's user data, and learn their
//! standby numbers from their assignment's user data, both as text: `a=0,2;s=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use kafka_client::group::{Assignment, Assignor, Subscription};
use kafka_client::TopicPartition;

/// What this worker holds: active numbers and standby numbers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    pub active: BTreeSet<i32>,
    pub standby: BTreeSet<i32>,
}

impl Placement {
    fn encode(&self) -> Bytes {
        let list =
            |set: &BTreeSet<i32>| set.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        Bytes::from(format!(
            "a={};s={}",
            list(&self.active),
            list(&self.standby)
        ))
    }

    /// Reads `a=..;s=..`; anything else (another client's bytes) is an empty placement.
    fn decode(bytes: Option<&[u8]>) -> Placement {
        let mut out = Placement::default();
        let Some(text) = bytes.and_then(|b| std::str::from_utf8(b).ok()) else {
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
#[derive(Debug)]
pub(crate) struct TableAssignor {
    standby_replicas: usize,
    placement: Arc<Mutex<Placement>>,
}

impl TableAssignor {
    pub(crate) fn new(standby_replicas: usize) -> (TableAssignor, Arc<Mutex<Placement>>) {
        let placement = Arc::new(Mutex::new(Placement::default()));
        let assignor = TableAssignor {
            standby_replicas,
            placement: placement.clone(),
        };
        (assignor, placement)
    }

    fn placement(&self) -> MutexGuard<'_, Placement> {
        self.placement.lock().unwrap_or_else(|e| e.into_inner())
    }
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
        Some(self.placement().encode())
    }

    fn assign(
        &self,
        members: &[Subscription],
        partitions: &BTreeMap<String, i32>,
    ) -> kafka_client::Result<BTreeMap<String, Assignment>> {
        let held: BTreeMap<String, Placement> = members
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    Placement::decode(m.user_data.as_deref()),
                )
            })
            .collect();
        let numbers = partitions.values().copied().max().unwrap_or(0);
        let placed = place(&held, numbers, self.standby_replicas);
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
            let user_data = Some(placement.encode());
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

    fn on_assignment(&self, assignment: &Assignment, _generation: i32) {
        let given = Placement::decode(assignment.user_data.as_deref());
        let active = assignment
            .partitions
            .iter()
            .map(|tp| tp.partition)
            .collect();
        *self.placement() = Placement {
            active,
            standby: given.standby,
        };
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

    #[test]
    fn placement_round_trips_and_ignores_foreign_bytes() {
        let p = Placement {
            active: [0, 2].into(),
            standby: [1].into(),
        };
        assert_eq!(p.encode(), Bytes::from("a=0,2;s=1"));
        assert_eq!(Placement::decode(Some(&p.encode())), p);
        assert_eq!(
            Placement::decode(Some(b"\x00\x01junk")),
            Placement::default()
        );
        assert_eq!(Placement::decode(None), Placement::default());
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
