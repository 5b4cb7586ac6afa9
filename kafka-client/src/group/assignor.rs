//! Partition assignors: the [`Assignor`] trait and the three standard ones under the names
//! Java and librdkafka use (`range`, `roundrobin`, `cooperative-sticky`), so members of
//! different clients can share a group.
//!
//! The group leader runs the assignor the coordinator chose (the first protocol every member
//! supports, by vote) over every member's subscription.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use crate::error::Result;
use crate::topic_partition::TopicPartition;

/// What one member sent when it joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The member's id, as the coordinator gave it.
    pub member_id: String,
    /// Set for static members.
    pub group_instance_id: Option<String>,
    /// Topics the member subscribes to.
    pub topics: Vec<String>,
    /// Assignor-specific bytes (see [`Assignor::user_data`]).
    pub user_data: Option<Bytes>,
    /// Partitions the member owns right now (cooperative rebalancing; empty under eager).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which the member got `owned_partitions`; -1 if unknown.
    pub generation: i32,
    /// The member's rack, if configured.
    pub rack: Option<String>,
}

/// What one member gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// The partitions the member is to consume.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific bytes for the member (e.g. standby placement).
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// An assignment of these partitions without user data.
    pub fn of(partitions: Vec<TopicPartition>) -> Self {
        Assignment {
            partitions,
            user_data: None,
        }
    }
}

/// How partitions move during a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RebalanceProtocol {
    /// Every member revokes everything before rejoining.
    Eager,
    /// Members keep what they own; only partitions that move are revoked, and they reach
    /// their new owner in a second rebalance (KIP-429).
    Cooperative,
}

/// A partition assignment strategy.
///
/// ```
/// use std::collections::BTreeMap;
/// use kafka_client::group::{Assignment, Assignor, Subscription};
/// use kafka_client::TopicPartition;
///
/// /// Gives every partition to the member with the smallest id.
/// #[derive(Debug)]
/// struct AllToFirst;
///
/// impl Assignor for AllToFirst {
///     fn name(&self) -> &str {
///         "all-to-first"
///     }
///     fn assign(
///         &self,
///         members: &[Subscription],
///         partitions: &BTreeMap<String, i32>,
///     ) -> kafka_client::Result<BTreeMap<String, Assignment>> {
///         let mut out: BTreeMap<String, Assignment> =
///             members.iter().map(|m| (m.member_id.clone(), Assignment::default())).collect();
///         if let Some(first) = out.values_mut().next() {
///             for (topic, &n) in partitions {
///                 first.partitions.extend((0..n).map(|p| TopicPartition::new(topic, p)));
///             }
///         }
///         Ok(out)
///     }
/// }
/// ```
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// The protocol name members agree on (`range`, `roundrobin`, `cooperative-sticky`...).
    fn name(&self) -> &str;

    /// Whether this assignor never gives a partition to a new owner while another member
    /// still owns it, which the cooperative protocol requires.
    fn supports_cooperative(&self) -> bool {
        false
    }

    /// Bytes sent in this member's subscription. `generation` is the member's current one.
    fn user_data(&self, _topics: &[String], _generation: i32) -> Option<Bytes> {
        None
    }

    /// Runs on the leader: one assignment per member of `members` (missing members get
    /// nothing). `partitions` holds the partition count of every topic any member subscribes
    /// to that exists.
    fn assign(
        &self,
        members: &[Subscription],
        partitions: &BTreeMap<String, i32>,
    ) -> Result<BTreeMap<String, Assignment>>;

    /// Runs on every member when its assignment arrives.
    fn on_assignment(&self, _assignment: &Assignment, _generation: i32) {}
}

/// Members in Java's `MemberInfo` order: static members by instance id first, then dynamic
/// members by member id.
fn java_order(members: &[Subscription]) -> Vec<&Subscription> {
    let mut sorted: Vec<&Subscription> = members.iter().collect();
    sorted.sort_by(|a, b| match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    });
    sorted
}

fn empty_assignments(members: &[Subscription]) -> BTreeMap<String, Assignment> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::default()))
        .collect()
}

/// Kafka's `range` assignor: per topic, consecutive ranges of partitions to the members
/// subscribed to it, the first `n % members` getting one more.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn assign(
        &self,
        members: &[Subscription],
        partitions: &BTreeMap<String, i32>,
    ) -> Result<BTreeMap<String, Assignment>> {
        let mut out = empty_assignments(members);
        let ordered = java_order(members);
        for (topic, &count) in partitions {
            let consumers: Vec<&&Subscription> = ordered
                .iter()
                .filter(|m| m.topics.iter().any(|t| t == topic))
                .collect();
            if consumers.is_empty() || count <= 0 {
                continue;
            }
            let n = consumers.len() as i32;
            let (per, extra) = (count / n, count % n);
            for (i, m) in consumers.iter().enumerate() {
                let i = i as i32;
                let start = per * i + i.min(extra);
                let len = per + i32::from(i < extra);
                if let Some(a) = out.get_mut(&m.member_id) {
                    a.partitions
                        .extend((start..start + len).map(|p| TopicPartition::new(topic, p)));
                }
            }
        }
        Ok(out)
    }
}

/// Kafka's `roundrobin` assignor: every partition of every subscribed topic, sorted, dealt
/// to the members in turn (skipping members not subscribed to its topic).
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        "roundrobin"
    }

    fn assign(
        &self,
        members: &[Subscription],
        partitions: &BTreeMap<String, i32>,
    ) -> Result<BTreeMap<String, Assignment>> {
        let mut out = empty_assignments(members);
        let ordered = java_order(members);
        if ordered.is_empty() {
            return Ok(out);
        }
        let mut next = 0usize;
        for (topic, &count) in partitions {
            if !ordered.iter().any(|m| m.topics.iter().any(|t| t == topic)) {
                continue;
            }
            for p in 0..count {
                // Advance to the next member subscribed to this topic.
                loop {
                    let m = ordered[next % ordered.len()];
                    next += 1;
                    if m.topics.iter().any(|t| t == topic) {
                        if let Some(a) = out.get_mut(&m.member_id) {
                            a.partitions.push(TopicPartition::new(topic, p));
                        }
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Kafka's `cooperative-sticky` assignor: balanced (member loads differ by at most one
/// when subscriptions are equal), sticky (a partition stays with its owner unless balance
/// needs it elsewhere), and cooperative: a partition that changes owner is withheld from its
/// new owner until the old owner has revoked it and rejoined.
///
/// Like Java's, it also writes the member's generation into its user data, for members of
/// older clients that do not read the generation from the subscription.
#[derive(Debug, Default)]
pub struct CooperativeStickyAssignor {
    _private: (),
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        "cooperative-sticky"
    }

    fn supports_cooperative(&self) -> bool {
        true
    }

    fn user_data(&self, _topics: &[String], generation: i32) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(&generation.to_be_bytes()))
    }

    fn assign(
        &self,
        members: &[Subscription],
        partitions: &BTreeMap<String, i32>,
    ) -> Result<BTreeMap<String, Assignment>> {
        let (mut sticky, owners) = sticky_assign(members, partitions);
        // Cooperative adjustment: a partition still owned by someone else waits a round.
        for (member, assigned) in sticky.iter_mut() {
            assigned.retain(|tp| owners.get(tp).is_none_or(|owner| owner == member));
        }
        Ok(sticky
            .into_iter()
            .map(|(m, tps)| (m, Assignment::of(tps.into_iter().collect())))
            .collect())
    }
}

/// A member's generation: the subscription's, or (older clients) the 4 bytes of user data.
fn member_generation(m: &Subscription) -> i32 {
    if m.generation >= 0 {
        return m.generation;
    }
    match m.user_data.as_deref() {
        Some([a, b, c, d]) => i32::from_be_bytes([*a, *b, *c, *d]),
        _ => -1,
    }
}

/// The sticky, balanced assignment and the valid current owner of each owned partition.
fn sticky_assign(
    members: &[Subscription],
    partitions: &BTreeMap<String, i32>,
) -> (
    BTreeMap<String, BTreeSet<TopicPartition>>,
    HashMap<TopicPartition, String>,
) {
    let subscribed: BTreeMap<&str, BTreeSet<&str>> = members
        .iter()
        .map(|m| {
            let topics = m
                .topics
                .iter()
                .map(String::as_str)
                .filter(|t| partitions.contains_key(*t))
                .collect();
            (m.member_id.as_str(), topics)
        })
        .collect();
    let exists = |tp: &TopicPartition| {
        partitions
            .get(&tp.topic)
            .is_some_and(|&n| tp.partition >= 0 && tp.partition < n)
    };

    // Who validly owns what: the claim of the highest generation wins; equal claims void.
    let mut claims: HashMap<TopicPartition, (i32, Option<&str>)> = HashMap::new();
    for m in members {
        let generation = member_generation(m);
        let topics = &subscribed[m.member_id.as_str()];
        for tp in &m.owned_partitions {
            if !exists(tp) || !topics.contains(tp.topic.as_str()) {
                continue;
            }
            match claims.get(tp) {
                None => {
                    claims.insert(tp.clone(), (generation, Some(&m.member_id)));
                }
                Some(&(g, _)) if generation > g => {
                    claims.insert(tp.clone(), (generation, Some(&m.member_id)));
                }
                Some(&(g, _)) if generation == g => {
                    tracing::warn!(%tp, generation, "partition claimed by two members of one generation");
                    claims.insert(tp.clone(), (g, None));
                }
                Some(_) => {}
            }
        }
    }
    let owners: HashMap<TopicPartition, String> = claims
        .into_iter()
        .filter_map(|(tp, (_, m))| Some((tp, m?.to_owned())))
        .collect();

    let mut assignment: BTreeMap<String, BTreeSet<TopicPartition>> = members
        .iter()
        .map(|m| (m.member_id.clone(), BTreeSet::new()))
        .collect();
    for (tp, m) in &owners {
        if let Some(set) = assignment.get_mut(m) {
            set.insert(tp.clone());
        }
    }
    let eligible = |topic: &str| -> Vec<String> {
        subscribed
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| (*m).to_owned())
            .collect()
    };
    let eligible_by_topic: BTreeMap<&str, Vec<String>> = partitions
        .keys()
        .map(|t| (t.as_str(), eligible(t)))
        .collect();

    // Unowned partitions go to the least loaded eligible member.
    for (topic, &count) in partitions {
        let candidates = &eligible_by_topic[topic.as_str()];
        for p in 0..count {
            let tp = TopicPartition::new(topic, p);
            if owners.contains_key(&tp) {
                continue;
            }
            if let Some(m) = candidates.iter().min_by_key(|m| (assignment[*m].len(), *m)) {
                if let Some(set) = assignment.get_mut(m) {
                    set.insert(tp);
                }
            }
        }
    }

    // Balance: move one partition at a time from a heavier member to an eligible member
    // with at least two fewer, until no such move exists.
    let total: usize = assignment.values().map(BTreeSet::len).sum();
    for _ in 0..=total {
        let mut by_load: Vec<(usize, String)> = assignment
            .iter()
            .map(|(m, s)| (s.len(), m.clone()))
            .collect();
        by_load.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let mut step: Option<(String, String, TopicPartition)> = None;
        'search: for (load, heavy) in &by_load {
            for tp in assignment[heavy].iter().rev() {
                let target = eligible_by_topic[tp.topic.as_str()]
                    .iter()
                    .filter(|m| *m != heavy)
                    .min_by_key(|m| (assignment[*m].len(), *m));
                if let Some(light) = target {
                    if assignment[light].len() + 1 < *load {
                        step = Some((heavy.clone(), light.clone(), tp.clone()));
                        break 'search;
                    }
                }
            }
        }
        let Some((from, to, tp)) = step else { break };
        if let Some(s) = assignment.get_mut(&from) {
            s.remove(&tp);
        }
        if let Some(s) = assignment.get_mut(&to) {
            s.insert(tp);
        }
    }
    (assignment, owners)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str], owned: &[(&str, i32)], generation: i32) -> Subscription {
        Subscription {
            member_id: id.into(),
            group_instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            user_data: None,
            owned_partitions: owned
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            generation,
            rack: None,
        }
    }

    fn tps(a: &Assignment) -> Vec<String> {
        a.partitions.iter().map(|tp| tp.to_string()).collect()
    }

    #[test]
    fn range_gives_consecutive_ranges_per_topic() {
        let members = vec![
            member("b", &["t", "u"], &[], -1),
            member("a", &["t"], &[], -1),
        ];
        let parts = BTreeMap::from([("t".to_string(), 5), ("u".to_string(), 2)]);
        let out = RangeAssignor.assign(&members, &parts).unwrap();
        assert_eq!(tps(&out["a"]), ["t/0", "t/1", "t/2"]);
        assert_eq!(tps(&out["b"]), ["t/3", "t/4", "u/0", "u/1"]);
    }

    #[test]
    fn range_orders_static_members_first() {
        let mut s = member("z", &["t"], &[], -1);
        s.group_instance_id = Some("i".into());
        let members = vec![member("a", &["t"], &[], -1), s];
        let parts = BTreeMap::from([("t".to_string(), 2)]);
        let out = RangeAssignor.assign(&members, &parts).unwrap();
        assert_eq!(tps(&out["z"]), ["t/0"]);
        assert_eq!(tps(&out["a"]), ["t/1"]);
    }

    #[test]
    fn roundrobin_deals_in_turn_skipping_unsubscribed() {
        let members = vec![
            member("a", &["t"], &[], -1),
            member("b", &["t", "u"], &[], -1),
        ];
        let parts = BTreeMap::from([("t".to_string(), 3), ("u".to_string(), 2)]);
        let out = RoundRobinAssignor.assign(&members, &parts).unwrap();
        assert_eq!(tps(&out["a"]), ["t/0", "t/2"]);
        assert_eq!(tps(&out["b"]), ["t/1", "u/0", "u/1"]);
    }

    #[test]
    fn sticky_balances_and_keeps_owned_partitions() {
        let a = CooperativeStickyAssignor::default();
        let parts = BTreeMap::from([("t".to_string(), 12)]);
        let first = a
            .assign(
                &[member("m1", &["t"], &[], -1), member("m2", &["t"], &[], -1)],
                &parts,
            )
            .unwrap();
        assert_eq!(first["m1"].partitions.len(), 6);
        assert_eq!(first["m2"].partitions.len(), 6);
        let owned = |m: &str| -> Vec<(String, i32)> {
            first[m]
                .partitions
                .iter()
                .map(|tp| (tp.topic.clone(), tp.partition))
                .collect()
        };
        let o1 = owned("m1");
        let o2 = owned("m2");
        fn as_ref(v: &[(String, i32)]) -> Vec<(&str, i32)> {
            v.iter().map(|(t, p)| (t.as_str(), *p)).collect()
        }
        let members = vec![
            member("m1", &["t"], &as_ref(&o1), 1),
            member("m2", &["t"], &as_ref(&o2), 1),
            member("m3", &["t"], &[], -1),
        ];
        // First round: m3 gets nothing yet (its partitions are still owned), the others keep 4.
        let second = a.assign(&members, &parts).unwrap();
        assert_eq!(second["m1"].partitions.len(), 4);
        assert_eq!(second["m2"].partitions.len(), 4);
        assert!(second["m3"].partitions.is_empty());
        for tp in &second["m1"].partitions {
            assert!(first["m1"].partitions.contains(tp), "sticky: {tp}");
        }
        // Second round, after revocation: m3 gets the 4 released partitions.
        let o1: Vec<(String, i32)> = second["m1"]
            .partitions
            .iter()
            .map(|tp| (tp.topic.clone(), tp.partition))
            .collect();
        let o2: Vec<(String, i32)> = second["m2"]
            .partitions
            .iter()
            .map(|tp| (tp.topic.clone(), tp.partition))
            .collect();
        let members = vec![
            member("m1", &["t"], &as_ref(&o1), 2),
            member("m2", &["t"], &as_ref(&o2), 2),
            member("m3", &["t"], &[], -1),
        ];
        let third = a.assign(&members, &parts).unwrap();
        assert_eq!(third["m3"].partitions.len(), 4);
        assert_eq!(third["m1"].partitions, second["m1"].partitions);
        let mut all: Vec<_> = third.values().flat_map(|a| a.partitions.clone()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 12);
    }

    #[test]
    fn sticky_resolves_conflicting_claims_by_generation() {
        let a = CooperativeStickyAssignor::default();
        let parts = BTreeMap::from([("t".to_string(), 2)]);
        let members = vec![
            member("old", &["t"], &[("t", 0), ("t", 1)], 1),
            member("new", &["t"], &[("t", 0)], 2),
        ];
        let (assignment, owners) = sticky_assign(&members, &parts);
        assert_eq!(owners[&TopicPartition::new("t", 0)], "new");
        assert_eq!(owners[&TopicPartition::new("t", 1)], "old");
        assert_eq!(assignment["new"].len(), 1);
        let out = a.assign(&members, &parts).unwrap();
        assert_eq!(tps(&out["new"]), ["t/0"]);
        assert_eq!(tps(&out["old"]), ["t/1"]);
    }

    #[test]
    fn generation_falls_back_to_user_data() {
        let mut m = member("m", &["t"], &[], -1);
        m.user_data = CooperativeStickyAssignor::default().user_data(&[], 7);
        assert_eq!(member_generation(&m), 7);
    }
}
