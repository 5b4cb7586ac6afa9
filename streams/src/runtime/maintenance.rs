//! Operations on an app's state while no worker runs: what the local table stores hold against
//! their changelogs (the CLI's `tables`), and starting over (the CLI's `reset`). Both open the
//! local stores, and refuse with [`Error::StoreHeld`] while a worker on this machine holds them.

use std::collections::BTreeSet;

use kafka_client::admin::OffsetSpec;
use kafka_client::consumer::ConsumerConfig;
use kafka_client::group::{GroupConfig, GroupConsumer};
use kafka_client::TopicPartition;

use super::Connection;
use crate::declarations::Declarations;
use crate::error::{Error, Result};

/// A table partition in this machine's store, against its changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredPartition {
    /// The table's name.
    pub table: String,
    /// The partition number (of the table and its changelog).
    pub partition: i32,
    /// Keys in the local store.
    pub entries: u64,
    /// The last changelog offset the store applied.
    pub applied_offset: Option<i64>,
    /// The changelog's end offset, when the broker could tell.
    pub changelog_end: Option<i64>,
}

impl StoredPartition {
    /// Changelog records a worker starting now would replay into this store (at most: some
    /// offsets may have been compacted away).
    pub fn to_replay(&self) -> Option<i64> {
        let end = self.changelog_end?;
        Some((end - self.applied_offset.map_or(0, |o| o + 1)).max(0))
    }
}

/// Opens the stores of every declared table (already open when this process runs the worker):
/// a store a running worker holds locked is [`Error::StoreHeld`].
pub(crate) fn open_stores(decls: &Declarations) -> Result<()> {
    for core in decls.tables().iter() {
        match core.open_store() {
            Err(Error::Store(stores::Error::Locked { path })) => {
                return Err(Error::StoreHeld { path })
            }
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Every partition of every declared table as the local stores hold it; changelog ends from
/// the broker when `conn` is given and answers.
pub(crate) async fn stored_partitions(
    decls: &Declarations,
    conn: Option<&Connection>,
) -> Result<Vec<StoredPartition>> {
    open_stores(decls)?;
    let cores = decls.tables().clone();
    let mut out = Vec::new();
    for core in &cores {
        let n = core.spec().partition_count();
        let tps: Vec<TopicPartition> = (0..n)
            .map(|p| TopicPartition::new(core.spec().changelog_topic(), p))
            .collect();
        let ends = match conn {
            Some(conn) => conn
                .admin
                .list_offsets(
                    tps.iter()
                        .map(|tp| (tp.clone(), OffsetSpec::Latest))
                        .collect(),
                )
                .await
                .unwrap_or_default(),
            None => Default::default(),
        };
        for tp in &tps {
            let p = tp.partition;
            out.push(StoredPartition {
                table: core.name().to_owned(),
                partition: p,
                entries: core.store()?.partition_stats(p)?.entries,
                applied_offset: core.applied_offset(p)?,
                changelog_end: ends.get(tp).map(|o| o.offset),
            });
        }
    }
    Ok(out)
}

/// Starts the app over, as Kafka Streams' reset tool does: the group's committed offsets of
/// its source topics go back to where a new group starts (internal topics to their end, so
/// old re-partitioned records are not read twice), the tables' changelog topics are deleted
/// (recreated empty at the next start) and the local stores emptied. Refused while a worker
/// of the app runs (the group then rejects the commit), before anything is deleted. Returns
/// what it did, one line each.
pub(crate) async fn reset(decls: &Declarations, conn: &Connection) -> Result<Vec<String>> {
    // Refused while a worker on this machine holds the stores, before changing anything.
    open_stores(decls)?;
    let mut done = Vec::new();
    let sources: BTreeSet<String> = decls
        .agent_summaries()
        .into_iter()
        .map(|a| a.topic)
        .collect();
    let mut offsets = Vec::new();
    for topic in &sources {
        let Ok(info) = conn.admin.describe_topic(topic).await else {
            continue; // never created: nothing committed
        };
        let internal = decls.catalog.get(topic).is_some_and(|s| s.internal);
        let spec = if internal || !decls.settings.consumer_auto_offset_reset_earliest {
            OffsetSpec::Latest
        } else {
            OffsetSpec::Earliest
        };
        let tps: Vec<(TopicPartition, OffsetSpec)> = info
            .partitions
            .iter()
            .map(|p| (TopicPartition::new(topic.clone(), p.partition), spec))
            .collect();
        let listed = conn.admin.list_offsets(tps).await?;
        let mut listed: Vec<(TopicPartition, i64)> =
            listed.into_iter().map(|(tp, o)| (tp, o.offset)).collect();
        listed.sort();
        done.push(format!(
            "committed offsets of {topic} set to its {}",
            if spec == OffsetSpec::Latest {
                "end"
            } else {
                "start"
            }
        ));
        offsets.extend(listed);
    }
    if !offsets.is_empty() {
        let group = GroupConfig::new(&decls.id).with_auto_commit(false);
        let consumer =
            GroupConsumer::new(conn.client.clone(), ConsumerConfig::default(), group).await?;
        if let Err(e) = consumer.commit_offsets(offsets).await {
            return Err(Error::ResetOffsets {
                group: decls.id.clone(),
                source: e,
            });
        }
    }
    let cores = decls.tables().clone();
    let changelogs: Vec<String> = cores.iter().map(|c| c.spec().changelog_topic()).collect();
    for topic in changelogs {
        match conn.admin.delete_topics(vec![topic.clone()]).await {
            Ok(()) => done.push(format!("deleted changelog topic {topic}")),
            Err(e) => done.push(format!("changelog topic {topic} not deleted: {e}")),
        }
    }
    for core in &cores {
        for p in 0..core.spec().partition_count() {
            core.store()?.drop_partition(p)?;
        }
        core.store()?.flush()?;
        done.push(format!("emptied the local store of table {}", core.name()));
    }
    Ok(done)
}
