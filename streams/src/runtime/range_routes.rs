//! The assignor of apps without tables: Kafka's `range`, under its name (so that members of
//! other clients, and workers of older versions, still share the group), which also carries
//! the router: each member's advertised endpoint in its subscription's user data, and who
//! holds every topic partition in each assignment's (the same format as the table assignor's,
//! `partitions` instead of `owners`). A leader that sends no such data (another client, an
//! older worker) leaves the router empty.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafka_client::group::{Assignment, Assignor, RangeAssignor, Subscription};

use super::assignor::{Holders, Routes, Wire};

/// `range`, telling every member who holds which partition.
#[derive(Debug)]
pub(crate) struct RangeRoutes {
    endpoint: Option<String>,
    routes: Arc<Mutex<Routes>>,
}

impl RangeRoutes {
    /// Advertises `endpoint`; each assignment's routes go to `routes`.
    pub(crate) fn new(endpoint: Option<String>, routes: Arc<Mutex<Routes>>) -> RangeRoutes {
        RangeRoutes { endpoint, routes }
    }
}

impl Assignor for RangeRoutes {
    fn name(&self) -> &str {
        RangeAssignor.name()
    }

    fn user_data(&self, _topics: &[String], _generation: i32) -> Option<Bytes> {
        // Nothing to say without an endpoint: the plain `range` subscription.
        self.endpoint
            .as_ref()
            .map(|_| Wire::endpoint(self.endpoint.clone()).encode())
    }

    fn assign(
        &self,
        members: &[Subscription],
        partitions: &BTreeMap<String, i32>,
    ) -> kafka_client::Result<BTreeMap<String, Assignment>> {
        let mut out = RangeAssignor.assign(members, partitions)?;
        let endpoints: BTreeMap<&str, Option<String>> = members
            .iter()
            .map(|m| {
                let wire = Wire::decode(m.user_data.as_deref());
                (m.member_id.as_str(), wire.advertised())
            })
            .collect();
        let mut held: BTreeMap<String, BTreeMap<i32, Holders>> = partitions
            .iter()
            .map(|(topic, &count)| {
                let unheld = (0..count).map(|p| (p, Holders::default())).collect();
                (topic.clone(), unheld)
            })
            .collect();
        for (member, assignment) in &out {
            let endpoint = endpoints.get(member.as_str()).cloned().flatten();
            for tp in &assignment.partitions {
                if let Some(holders) = held
                    .get_mut(&tp.topic)
                    .and_then(|t| t.get_mut(&tp.partition))
                {
                    holders.active = endpoint.clone();
                }
            }
        }
        let user_data = Wire::partitions(partitions.clone(), held).encode();
        for assignment in out.values_mut() {
            assignment.user_data = Some(user_data.clone());
        }
        Ok(out)
    }

    fn on_assignment(&self, assignment: &Assignment, generation: i32) {
        let given = Wire::decode(assignment.user_data.as_deref());
        *self.routes.lock().unwrap_or_else(|e| e.into_inner()) = given.routes(generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, data: Option<Bytes>) -> Subscription {
        Subscription {
            member_id: id.into(),
            group_instance_id: None,
            topics: vec!["t".into(), "u".into()],
            user_data: data,
            owned_partitions: vec![],
            generation: -1,
            rack: None,
        }
    }

    #[test]
    fn assigns_as_range_and_tells_every_member_who_holds_each_partition() {
        let routes = Arc::new(Mutex::new(Routes::default()));
        let leader = RangeRoutes::new(Some("a:1".into()), routes.clone());
        assert_eq!(leader.name(), "range");
        // b is a plain `range` member: no endpoint.
        let members = [sub("a", leader.user_data(&[], 0)), sub("b", None)];
        let counts = BTreeMap::from([("t".to_string(), 2), ("u".to_string(), 3)]);
        let out = leader.assign(&members, &counts).unwrap();
        let plain = RangeAssignor.assign(&members, &counts).unwrap();
        for (member, assignment) in &out {
            assert_eq!(assignment.partitions, plain[member].partitions);
        }
        leader.on_assignment(&out["b"], 7);
        let got = routes.lock().unwrap().clone();
        assert_eq!((got.generation, got.topics), (7, counts.clone()));
        assert!(got.numbers.is_empty());
        for (topic, &count) in &counts {
            assert_eq!(got.partitions[topic].len(), count as usize);
            for (p, holders) in &got.partitions[topic] {
                let a_holds = out["a"]
                    .partitions
                    .iter()
                    .any(|tp| tp.topic == *topic && tp.partition == *p);
                let expected = a_holds.then(|| "a:1".to_string());
                assert_eq!(holders.active, expected, "{topic}/{p}");
            }
        }
        // An assignment without routes (a leader of another client) empties them.
        leader.on_assignment(&Assignment::default(), 8);
        let got = routes.lock().unwrap().clone();
        assert_eq!(got.generation, 8);
        assert!(got.partitions.is_empty());
        let silent = RangeRoutes::new(None, routes);
        assert_eq!(silent.user_data(&[], 0), None);
    }
}
