//! Bootstrapping the tables a stream joins with: before a joined stream partition's events
//! flow, the table it reads is brought up to what its source held when the partition was
//! assigned, as Kafka Streams does for a `GlobalKTable` (and, by timestamp, for a `KTable`).
//!
//! A table kept from a topic ([`TableBuilder::from_topic`](crate::TableBuilder::from_topic))
//! is written by its agent as that topic's records come, so on a backlog a joined stream
//! partition would otherwise race its table: its early events would miss table records
//! written before them. So when stream partition `X-p` of an agent joined with such a table
//! is assigned, the end offset `E` of the table's source partition `S-p` (the same number:
//! co-partitioning, and the assignor gives every topic's `p` to one worker) is looked up, and
//! `X-p` stays paused until every record of `S-p` below `E` is done (its table write made).
//! A changelog-backed table needs nothing more: its partition recovers to its changelog's end
//! before any source partition of its number flows (see `tables`). A global table kept from a
//! topic (a `join_global`): the stream partition waits for every partition of that topic this
//! worker reads; those other workers read reach this copy through the changelog, recovered
//! before anything flows, and are not waited for up to their source's end.
//!
//! Held events are not read, so nothing is delivered or committed for them; other partitions
//! flow. A revocation drops the partition's bootstrap (its next owner bootstraps again). An
//! end offset that cannot be looked up is retried with a pause, logged, and shown by `/ready`
//! as the table partition still recovering, with the reason.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_client::admin::{Admin, OffsetSpec};
use kafka_client::TopicPartition;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::declarations::Declarations;
use crate::offsets::Acks;

/// How often a waiting bootstrap says so in the log.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// A stream joined with a table kept from a topic: `stream`'s partition `p` waits for
/// `source`'s partition `p`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinSource {
    /// The topic the joined agent reads.
    pub stream: String,
    /// The joined table.
    pub table: String,
    /// The topic the table is kept from.
    pub source: String,
    /// A global table (joined through a key extractor): every partition of its source read
    /// on this worker is waited for.
    pub global: bool,
}

/// The joins whose stream partitions wait for their tables: those with a table kept from a
/// topic, unless
/// the join opted out (`JoinBuilder::bootstrap(false)`) or reads the table's own source.
pub(crate) fn join_sources(decls: &Declarations) -> Vec<JoinSource> {
    let tables = decls.tables().clone();
    let mut out: Vec<JoinSource> = Vec::new();
    for (_, stream, join) in decls.join_users() {
        if !join.bootstrap {
            continue;
        }
        let Some(core) = tables.iter().find(|c| c.name() == join.table) else {
            continue;
        };
        let Some(source) = core.spec().source_topic() else {
            continue;
        };
        if source == stream {
            continue;
        }
        let found = JoinSource {
            stream,
            table: join.table.clone(),
            source: source.to_owned(),
            global: core.spec().is_global(),
        };
        if !out.contains(&found) {
            out.push(found);
        }
    }
    out
}

/// One stream partition waiting for one table source partition.
struct Pending {
    table: String,
    source: TopicPartition,
    /// The source's end offset at assignment, once looked up.
    target: Option<i64>,
    /// Why the end offset is not known yet (the last failure).
    error: Option<String>,
    /// Where the source's records are done, as last seen.
    done: i64,
    since: Instant,
    reported: Instant,
    task: JoinHandle<()>,
}

/// A bootstrap under way, as `/ready` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bootstrapping {
    /// The held stream partition.
    pub stream: TopicPartition,
    /// The table it joins with.
    pub table: String,
    /// The partition of the table's source being read.
    pub source: TopicPartition,
    /// Where the source's records are done.
    pub done: i64,
    /// The end offset to reach, when known.
    pub target: Option<i64>,
    /// Why the target is not known yet.
    pub error: Option<String>,
}

/// The bootstraps of one worker.
pub(crate) struct Bootstraps {
    joins: Vec<JoinSource>,
    admin: Admin,
    /// (stream partition, source partition) -> its bootstrap.
    pending: Arc<Mutex<BTreeMap<(TopicPartition, TopicPartition), Pending>>>,
}

impl Bootstraps {
    pub(crate) fn new(joins: Vec<JoinSource>, admin: Admin) -> Self {
        Bootstraps {
            joins,
            admin,
            pending: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(TopicPartition, TopicPartition), Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Source partitions were assigned (`all`: every partition assigned here now): the
    /// joined stream partitions among them wait for their tables' sources, whose end
    /// offsets are looked up now. A co-partitioned table's source partition is the one of the
    /// stream partition's number; a global table's are all those of its source read here.
    pub(crate) fn assigned(&self, partitions: &[TopicPartition], all: &[TopicPartition]) {
        let now = Instant::now();
        for tp in partitions {
            for join in self.joins.iter().filter(|j| j.stream == tp.topic) {
                let sources: Vec<TopicPartition> = if join.global {
                    all.iter()
                        .filter(|s| s.topic == join.source)
                        .cloned()
                        .collect()
                } else {
                    vec![TopicPartition::new(join.source.clone(), tp.partition)]
                };
                for source in sources {
                    self.wait_for(tp, join, source, now);
                }
            }
        }
    }

    /// Makes stream partition `tp` wait for `source`.
    fn wait_for(
        &self,
        tp: &TopicPartition,
        join: &JoinSource,
        source: TopicPartition,
        now: Instant,
    ) {
        let key = (tp.clone(), source.clone());
        tracing::info!(stream = %tp, table = %join.table, %source, "joined stream partition waits for its table to catch up with its source");
        // Locked before the lookup starts, so that it finds its entry.
        let mut pending = self.lock();
        let task = self.look_up_end(key.clone());
        let entry = Pending {
            table: join.table.clone(),
            source,
            target: None,
            error: None,
            done: -1,
            since: now,
            reported: now,
            task,
        };
        if let Some(old) = pending.insert(key, entry) {
            old.task.abort();
        }
    }

    /// Looks the source's end offset up, retrying with a pause (logged, and kept for
    /// `/ready`) until it is known or the bootstrap is dropped.
    fn look_up_end(&self, key: (TopicPartition, TopicPartition)) -> JoinHandle<()> {
        let admin = self.admin.clone();
        let pending = self.pending.clone();
        tokio::spawn(async move {
            let source = key.1.clone();
            let mut pause = Duration::from_millis(100);
            loop {
                let looked = admin
                    .list_offsets(vec![(source.clone(), OffsetSpec::Latest)])
                    .await
                    .map(|ends| ends.get(&source).map_or(0, |o| o.offset));
                {
                    let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(entry) = pending.get_mut(&key) else {
                        return; // revoked meanwhile
                    };
                    match looked {
                        Ok(end) => {
                            entry.target = Some(end);
                            entry.error = None;
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(stream = %key.0, table = %entry.table, %source, error = %e, ?pause, "cannot look up the end of the joined table's source; the stream partition waits, retrying");
                            entry.error = Some(format!("looking up the end of {source}: {e}"));
                        }
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        })
    }

    /// Source partitions were revoked or lost: their bootstraps are dropped (the events
    /// were never read here; their next owner bootstraps them again).
    pub(crate) fn revoked(&self, partitions: &[TopicPartition]) {
        self.lock().retain(|(stream, _), p| {
            let keep = !partitions.contains(stream);
            if !keep {
                p.task.abort();
            }
            keep
        });
    }

    /// Whether a bootstrap is under way.
    pub(crate) fn any(&self) -> bool {
        !self.lock().is_empty()
    }

    /// Ends the bootstraps whose source is done up to its target, and returns the stream
    /// partitions that must still wait. `read` is where the consumer reads a partition next.
    pub(crate) fn blocked(
        &self,
        acks: &Acks,
        read: impl Fn(&TopicPartition) -> Option<i64>,
    ) -> Vec<TopicPartition> {
        let now = Instant::now();
        let mut pending = self.lock();
        pending.retain(|(stream, source), p| {
            let Some(target) = p.target else {
                return true;
            };
            let Some(part) = acks.partition(source) else {
                // Not assigned here (not co-partitioned after all): nothing can bring it up.
                p.error = Some(format!("{source} is not assigned to this worker"));
                return report(stream, p, now);
            };
            p.done = part.position();
            // Every delivered record done, and the consumer past the target (transaction
            // markers or compacted offsets at the end are never delivered).
            let read_past = read(source).is_some_and(|r| r >= target) && part.in_flight() == 0;
            if p.done >= target || read_past {
                tracing::info!(%stream, table = %p.table, %source, target, waited = ?now - p.since, "joined table caught up with its source: the stream partition flows");
                return false;
            }
            report(stream, p, now)
        });
        let mut out: Vec<TopicPartition> = pending.keys().map(|(s, _)| s.clone()).collect();
        out.dedup();
        out
    }

    /// The bootstraps under way.
    pub(crate) fn under_way(&self) -> Vec<Bootstrapping> {
        self.lock()
            .iter()
            .map(|((stream, source), p)| Bootstrapping {
                stream: stream.clone(),
                table: p.table.clone(),
                source: source.clone(),
                done: p.done,
                target: p.target,
                error: p.error.clone(),
            })
            .collect()
    }

    /// Stops every end-offset lookup (the worker stops).
    pub(crate) fn close(&self) {
        let mut pending = self.lock();
        pending.values().for_each(|p| p.task.abort());
        pending.clear();
    }
}

/// Logs a bootstrap still waiting, every [`REPORT_EVERY`]; keeps it.
fn report(stream: &TopicPartition, p: &mut Pending, now: Instant) -> bool {
    if now - p.reported >= REPORT_EVERY {
        p.reported = now;
        tracing::warn!(%stream, table = %p.table, source = %p.source, done = p.done, target = ?p.target, error = ?p.error, waited = ?now - p.since, "joined stream partition still waits for its table to catch up with its source");
    }
    true
}
