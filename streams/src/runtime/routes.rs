//! Who owns which partition across the group (Faust's `/router/`, Kafka Streams' IQv2
//! metadata), as the last assignment told this worker, and the freshness of its standby copies,
//! for `App::router` and `App::query`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_client::admin::OffsetSpec;
use kafka_client::TopicPartition;
use serde::Serialize;

use super::Runtime;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::table::{PartitionStatus, TableCore};

/// Who holds one partition: the active owner's advertised endpoint and those of the workers
/// with a standby copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PartitionOwners {
    /// The partition number.
    pub partition: i32,
    /// The owner's endpoint; `None` when its worker advertises no `application_server`.
    pub active: Option<Endpoint>,
    /// The endpoints of the workers keeping a standby copy (workers without an endpoint are
    /// left out).
    pub standbys: Vec<Endpoint>,
}

/// A snapshot of who owns which partition of the app's topics and tables, from the group's
/// last assignment (updated at each rebalance), every worker named by the endpoint it
/// advertises. Serializes to JSON, as the web server's `/router/` (Faust's). Global tables
/// are left out: every worker holds all of them. Apps without tables list their source
/// topics' partitions only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Router {
    /// The group generation of the assignment (-1 before the first one).
    pub generation: i32,
    /// Per source topic, its partitions in order.
    pub topics: BTreeMap<String, Vec<PartitionOwners>>,
    /// Per (non-global) table, its partitions in order.
    pub tables: BTreeMap<String, Vec<PartitionOwners>>,
}

impl Router {
    /// Who holds partition `partition` of source topic `topic`, if known.
    pub fn topic_partition(&self, topic: &str, partition: i32) -> Option<&PartitionOwners> {
        self.topics
            .get(topic)?
            .iter()
            .find(|o| o.partition == partition)
    }

    /// Who holds partition `partition` of table `table`, if known.
    pub fn table_partition(&self, table: &str, partition: i32) -> Option<&PartitionOwners> {
        self.tables
            .get(table)?
            .iter()
            .find(|o| o.partition == partition)
    }
}

/// Where `App::query_with` may read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryOptions {
    /// Answer from this worker's standby copy when it is at most this many changelog records
    /// behind (changelog end − next offset to apply); `None` (the default): only the owner
    /// answers, as in Kafka Streams and Faust, which offer no explicit freshness trade.
    pub max_lag: Option<u64>,
    /// How long a query of another worker may take, connecting included (default 5 s).
    pub timeout: Duration,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            max_lag: None,
            timeout: Duration::from_secs(5),
        }
    }
}

impl QueryOptions {
    /// The default options with a staleness bound: a standby copy at most `records` behind
    /// may answer.
    pub fn max_lag(records: u64) -> Self {
        QueryOptions {
            max_lag: Some(records),
            ..QueryOptions::default()
        }
    }

    /// These options with another timeout for remote queries.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Which copy answered a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Owner {
    /// The partition's owner (this worker or the one the query was sent to).
    Active,
    /// This worker's standby copy.
    Standby,
}

/// A query's answer: the value (`None`: no such key) and how fresh it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Queried<V> {
    /// The key's value.
    pub value: Option<V>,
    /// Changelog records the answering copy had not applied yet (0 for the owner).
    pub lag: u64,
    /// Which copy answered.
    pub from: Owner,
}

impl<V> Queried<V> {
    /// An answer of the owner.
    pub(crate) fn active(value: Option<V>) -> Self {
        Queried {
            value,
            lag: 0,
            from: Owner::Active,
        }
    }
}

/// Endpoints parsed from the assignment's text; a bad one (a buggy member) is left out.
fn owners(partition: i32, holders: &super::assignor::Holders) -> PartitionOwners {
    PartitionOwners {
        partition,
        active: holders.active.as_deref().and_then(|e| e.parse().ok()),
        standbys: holders
            .standbys
            .iter()
            .filter_map(|e| e.parse().ok())
            .collect(),
    }
}

impl Runtime {
    /// The router as the last assignment said: by partition number with tables, by topic
    /// partition without; empty before it, or when the leader is an older worker (or another
    /// client) that sends no routes.
    pub(crate) fn router(&self) -> Router {
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if routes.numbers.is_empty() {
            // Apps without tables: routed per topic partition (or not at all).
            let topics = routes
                .partitions
                .iter()
                .map(|(topic, held)| {
                    let owners = held.iter().map(|(p, h)| owners(*p, h)).collect();
                    (topic.clone(), owners)
                })
                .collect();
            return Router {
                generation: routes.generation,
                topics,
                ..Router::default()
            };
        }
        let numbered = |count: i32| -> Vec<PartitionOwners> {
            (0..count)
                .filter_map(|p| routes.numbers.get(&p).map(|h| owners(p, h)))
                .collect()
        };
        let topics = routes
            .topics
            .iter()
            .map(|(t, n)| (t.clone(), numbered(*n)))
            .collect();
        let tables = self
            .tables
            .cores()
            .iter()
            .filter(|c| !c.spec().is_global())
            .map(|c| (c.name().to_owned(), numbered(c.spec().partition_count())))
            .collect();
        Router {
            generation: routes.generation,
            topics,
            tables,
        }
    }

    /// How many changelog records this worker's standby copy of `partition` of `table` has
    /// not applied yet; `None` when it keeps no standby copy of it.
    pub(crate) async fn standby_lag(
        &self,
        table: &Arc<TableCore>,
        partition: i32,
    ) -> Result<Option<u64>> {
        let standby = self.tables.partitions()?.iter().any(|p| {
            p.table == table.name()
                && p.partition == partition
                && p.status == PartitionStatus::Standby
        });
        if !standby {
            return Ok(None);
        }
        let tp = TopicPartition::new(table.spec().changelog_topic(), partition);
        let ends = self
            .tables
            .admin()
            .list_offsets(vec![(tp.clone(), OffsetSpec::Latest)])
            .await?;
        let end = ends.get(&tp).map_or(0, |o| o.offset);
        let next = table.applied_offset(partition)?.map_or(0, |o| o + 1);
        Ok(Some(end.saturating_sub(next).max(0) as u64))
    }
}
