//! The tables' side of a worker: which table partitions it holds, recovering them from their
//! changelogs when they are assigned (without stopping the other partitions), and which source
//! partitions must wait meanwhile.
//!
//! A table partition follows the source partitions of the same number (co-partitioning). When
//! one is assigned it is `Recovering`: a task per partition reads its changelog from the
//! store's applied offset to the end taken at assignment, then reports back; the worker then
//! marks it active and resumes the source partitions of that number, which it paused right
//! after the rebalance. The changelog flushes happen in the committer.
//!
//! Standby replicas: the assignor tells this worker which numbers it keeps warm copies of; a
//! task per such table partition follows its changelog into the store (see `standby`), and is
//! stopped before the partition is recovered as active here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_client::admin::{Admin, OffsetSpec};
use kafka_client::consumer::Consumer;
use kafka_client::{ClientConfig, TopicPartition};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::assignor::Placement;
use super::bootstrap::{Bootstrapping, Bootstraps, JoinSource};
use super::standby::follow;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::table::{changelog_consumer_config, recover_partition, PartitionStatus, TableCore};

/// A recovery task's outcome, for the worker.
pub(crate) struct Recovered {
    table: usize,
    partition: i32,
    epoch: u64,
    outcome: Result<u64>,
}

/// One table partition being recovered.
struct Recovery {
    epoch: u64,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    /// Source partitions assigned to this worker.
    assigned: BTreeSet<TopicPartition>,
    /// (table, partition) -> its running recovery.
    recovering: BTreeMap<(usize, i32), Recovery>,
    /// Changelog records replayed per (table, partition) since start.
    replayed: BTreeMap<(usize, i32), u64>,
    /// (table, partition) -> the task following its changelog as a standby.
    followers: BTreeMap<(usize, i32), JoinHandle<()>>,
    /// Changelog records applied by standby followers per (table, partition) since start.
    followed: BTreeMap<(usize, i32), Arc<AtomicU64>>,
}

/// A table partition as `App::table_partitions` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePartition {
    /// The table's name.
    pub table: String,
    /// The partition number (of the table and its changelog).
    pub partition: i32,
    /// Recovering from the changelog, active (serving reads and writes), or a standby copy.
    pub status: PartitionStatus,
    /// Keys in the partition (for active partitions; the store's count otherwise).
    pub entries: u64,
    /// The last changelog offset the store applied.
    pub applied_offset: Option<i64>,
    /// Changelog records this worker replayed into the partition, recovering it, since it
    /// started.
    pub replayed: u64,
    /// Changelog records this worker applied following the partition as a standby.
    pub followed: u64,
}

/// The worker's tables.
pub(crate) struct Tables {
    cores: Vec<Arc<TableCore>>,
    client: ClientConfig,
    admin: Admin,
    state: Mutex<State>,
    epochs: AtomicU64,
    done: mpsc::UnboundedSender<Recovered>,
    /// This worker's numbers, as the assignor gave them.
    placement: Arc<Mutex<Placement>>,
    metrics: Arc<Metrics>,
    /// Notified when a table's write cache goes over its bound.
    cache_full: Arc<tokio::sync::Notify>,
    /// Joined stream partitions waiting for their tables to catch up with their sources.
    bootstraps: Bootstraps,
}

impl Tables {
    pub(crate) fn new(
        cores: Vec<Arc<TableCore>>,
        client: ClientConfig,
        admin: Admin,
        placement: Arc<Mutex<Placement>>,
        metrics: Arc<Metrics>,
        cache_full: Arc<tokio::sync::Notify>,
        joins: Vec<JoinSource>,
    ) -> (Arc<Tables>, mpsc::UnboundedReceiver<Recovered>) {
        let (done, recovered) = mpsc::unbounded_channel();
        // Numbers this worker's stores already hold data of (a restarted redb worker) count as
        // warm copies, so that the assignor prefers to give them back.
        let warm: BTreeSet<i32> = cores
            .iter()
            .flat_map(|c| {
                (0..c.spec().partition_count())
                    .filter(|p| matches!(c.applied_offset(*p), Ok(Some(_))))
                    .collect::<Vec<_>>()
            })
            .collect();
        placement
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .standby
            .extend(warm);
        let tables = Tables {
            cores,
            client,
            bootstraps: Bootstraps::new(joins, admin.clone()),
            admin,
            state: Mutex::default(),
            epochs: AtomicU64::new(1),
            done,
            placement,
            metrics,
            cache_full,
        };
        (Arc::new(tables), recovered)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn cores(&self) -> &[Arc<TableCore>] {
        &self.cores
    }

    /// The cluster's admin client (changelog ends).
    pub(crate) fn admin(&self) -> &Admin {
        &self.admin
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.cores.is_empty()
    }

    /// Whether a table holds writes not yet flushed (such as windows an idle partition closed,
    /// with no source offset moving).
    pub(crate) fn has_unflushed(&self) -> bool {
        self.cores.iter().any(|c| c.has_unflushed())
    }

    /// Completes when a table's write cache is over its bound (`table_cache_max_bytes`), or
    /// was since the last call: the worker commits early, which flushes it.
    pub(crate) async fn cache_full(&self) {
        loop {
            self.cache_full.notified().await;
            // Flushed meanwhile (by a commit that was under way): not due any more.
            if self.cores.iter().any(|c| c.cache_over_bound()) {
                return;
            }
        }
    }

    /// Source partitions were assigned: take the table partitions of their numbers on, as
    /// recovering, and start their recoveries.
    pub(crate) async fn assigned(&self, partitions: &[TopicPartition]) {
        let (numbers, all): (Vec<i32>, Vec<TopicPartition>) = {
            let mut state = self.state();
            state.assigned.extend(partitions.iter().cloned());
            let all: Vec<TopicPartition> = state.assigned.iter().cloned().collect();
            (all.iter().map(|tp| tp.partition).collect(), all)
        };
        self.bootstraps.assigned(partitions, &all);
        for (i, core) in self.cores.iter().enumerate() {
            for p in core.spec().partitions_to_hold(&numbers) {
                let held = core.status(p).is_some();
                let running = self.state().recovering.contains_key(&(i, p));
                if held || running {
                    continue;
                }
                self.stop_follower(i, p).await;
                if let Err(e) = core.assign(p) {
                    tracing::error!(table = core.name(), partition = p, error = %e, "cannot take the table partition");
                    continue;
                }
                self.start_recovery(i, p);
            }
        }
        self.follow_standbys().await;
    }

    /// Starts following the changelogs of this worker's standby numbers and stops following
    /// the others.
    async fn follow_standbys(&self) {
        let standby = self
            .placement
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .standby
            .clone();
        for (i, core) in self.cores.iter().enumerate() {
            if core.spec().is_global() {
                continue; // followed while held (see `recovered`)
            }
            for p in 0..core.spec().partition_count() {
                let wanted = standby.contains(&p) && core.status(p).is_none();
                let following = self.state().followers.contains_key(&(i, p));
                if wanted && !following {
                    self.start_follower(i, p);
                } else if !wanted && following {
                    self.stop_follower(i, p).await;
                }
            }
        }
    }

    /// Starts following changelog partition `partition` of table `table` into its store.
    fn start_follower(&self, table: usize, partition: i32) {
        let core = self.cores[table].clone();
        let counter = self
            .state()
            .followed
            .entry((table, partition))
            .or_default()
            .clone();
        let client = self.client.clone();
        tracing::info!(table = core.name(), partition, "following the changelog");
        let task = tokio::spawn(async move {
            let name = core.name().to_owned();
            if let Err(e) = follow(core, client, partition, counter).await {
                tracing::error!(table = %name, partition, error = %e, "stopped following the changelog");
            }
        });
        if let Some(old) = self.state().followers.insert((table, partition), task) {
            old.abort();
        }
    }

    /// Stops following a changelog partition and waits until the follower is gone (it writes
    /// to the store the partition's recovery is about to write to).
    async fn stop_follower(&self, table: usize, partition: i32) {
        let task = self.state().followers.remove(&(table, partition));
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    fn start_recovery(&self, table: usize, partition: i32) {
        let epoch = self.epochs.fetch_add(1, Ordering::Relaxed);
        let core = self.cores[table].clone();
        let (client, admin, done) = (self.client.clone(), self.admin.clone(), self.done.clone());
        let remaining = self.metrics.recovery_remaining(core.name(), partition);
        let task = tokio::spawn(async move {
            let outcome = recover(&core, client, &admin, partition, &remaining).await;
            let _ = done.send(Recovered {
                table,
                partition,
                epoch,
                outcome,
            });
        });
        let old = self
            .state()
            .recovering
            .insert((table, partition), Recovery { epoch, task });
        if let Some(old) = old {
            old.task.abort();
        }
    }

    /// Source partitions were revoked or lost: let go of the table partitions no remaining
    /// source partition needs (their unflushed writes are forgotten: what reached the
    /// changelog is recovered by the next owner).
    pub(crate) fn revoked(&self, partitions: &[TopicPartition]) {
        let numbers: Vec<i32> = {
            let mut state = self.state();
            for tp in partitions {
                state.assigned.remove(tp);
            }
            state.assigned.iter().map(|tp| tp.partition).collect()
        };
        self.bootstraps.revoked(partitions);
        for (i, core) in self.cores.iter().enumerate() {
            let keep: BTreeSet<i32> = core
                .spec()
                .partitions_to_hold(&numbers)
                .into_iter()
                .collect();
            for p in 0..core.spec().partition_count() {
                if keep.contains(&p) {
                    continue;
                }
                if let Some(r) = self.state().recovering.remove(&(i, p)) {
                    r.task.abort();
                }
                if core.revoke(p) {
                    tracing::warn!(table = core.name(), partition = p, "table partition revoked with writes not yet in the changelog; their events are redelivered to the next owner");
                }
            }
        }
    }

    /// A recovery finished: marks its partition active (unless it was revoked meanwhile).
    /// An error when the table cannot be recovered (a changelog record that does not decode).
    pub(crate) fn recovered(&self, done: Recovered) -> Result<()> {
        let core = &self.cores[done.table];
        let mut state = self.state();
        match state.recovering.get(&(done.table, done.partition)) {
            Some(r) if r.epoch == done.epoch => {}
            _ => return Ok(()), // revoked or restarted since
        }
        state.recovering.remove(&(done.table, done.partition));
        let records = done.outcome?;
        *state
            .replayed
            .entry((done.table, done.partition))
            .or_default() += records;
        drop(state);
        core.set_active(done.partition)?;
        // A long recovery is not repeated after a crash that follows it.
        if records > 0 {
            core.flush_store()?;
        }
        if core.spec().is_global() {
            // Other workers write it too: keep reading what they write.
            self.start_follower(done.table, done.partition);
        }
        tracing::info!(
            table = core.name(),
            partition = done.partition,
            records,
            "table partition recovered"
        );
        Ok(())
    }

    /// Assigned source partitions whose events must wait: a table partition of their number
    /// is still recovering (every number while a global table recovers).
    pub(crate) fn blocked(&self) -> Vec<TopicPartition> {
        let state = self.state();
        let all = state
            .recovering
            .keys()
            .any(|(t, _)| self.cores[*t].spec().is_global());
        let numbers: BTreeSet<i32> = state.recovering.keys().map(|(_, p)| *p).collect();
        state
            .assigned
            .iter()
            .filter(|tp| all || numbers.contains(&tp.partition))
            .cloned()
            .collect()
    }

    /// Joined stream partitions whose tables have not caught up with their sources yet (see
    /// `bootstrap`); ends the bootstraps that are done. `read`: where the consumer reads a
    /// partition next.
    pub(crate) fn bootstrap_blocked(
        &self,
        acks: &crate::offsets::Acks,
        read: impl Fn(&TopicPartition) -> Option<i64>,
    ) -> Vec<TopicPartition> {
        self.bootstraps.blocked(acks, read)
    }

    /// Whether a joined stream partition waits for its table (the worker then looks again
    /// soon, as the table's source is done in the agents' tasks).
    pub(crate) fn bootstrapping(&self) -> bool {
        self.bootstraps.any()
    }

    /// The joined stream partitions waiting for their tables, for `/ready`.
    pub(crate) fn bootstraps(&self) -> Vec<Bootstrapping> {
        self.bootstraps.under_way()
    }

    /// Every held or followed table partition, for `App::table_partitions`.
    pub(crate) fn partitions(&self) -> Result<Vec<TablePartition>> {
        let mut out = Vec::new();
        let (replayed, followers, followed) = {
            let state = self.state();
            let followers: BTreeSet<(usize, i32)> = state.followers.keys().copied().collect();
            let followed: BTreeMap<(usize, i32), u64> = state
                .followed
                .iter()
                .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
                .collect();
            (state.replayed.clone(), followers, followed)
        };
        for (i, core) in self.cores.iter().enumerate() {
            for p in 0..core.spec().partition_count() {
                let status = match core.status(p) {
                    Some(status) => status,
                    None if followers.contains(&(i, p)) => PartitionStatus::Standby,
                    None => continue,
                };
                let entries = match status {
                    PartitionStatus::Active => core.partition_len(p)?,
                    _ => core.store()?.partition_stats(p)?.entries,
                };
                out.push(TablePartition {
                    table: core.name().to_owned(),
                    partition: p,
                    status,
                    entries,
                    applied_offset: core.applied_offset(p)?,
                    replayed: replayed.get(&(i, p)).copied().unwrap_or(0),
                    followed: followed.get(&(i, p)).copied().unwrap_or(0),
                });
            }
        }
        Ok(out)
    }

    /// `Ok` unless a table's store failed earlier ([`TableCore::check_store`]): then nothing
    /// may be committed any more and the worker stops; a restart reopens the store and
    /// recovers its partitions from the changelog. No I/O.
    pub(crate) fn check_stores(&self) -> Result<()> {
        self.cores.iter().try_for_each(|core| core.check_store())
    }

    /// Makes what the tables' stores applied durable (after a commit, and at a stop).
    pub(crate) fn flush_stores(&self) {
        for core in &self.cores {
            if let Err(e) = core.flush_store() {
                tracing::warn!(table = core.name(), error = %e, "making the table's store durable failed; after a crash it replays more of its changelog");
            }
        }
    }

    /// Sets the key-count gauge of every active table partition (from the store's count and
    /// the unflushed writes), and drops those of partitions no longer active here. Called per
    /// scrape (`App::metrics_text`), not on the write path.
    pub(crate) fn report_sizes(&self, metrics: &Metrics) {
        for core in &self.cores {
            if let Some(late) = core.late_events() {
                metrics.set_late_events(core.name(), late);
            }
            for p in 0..core.spec().partition_count() {
                if core.status(p) != Some(PartitionStatus::Active) {
                    metrics.forget_table_partition(core.name(), p);
                    continue;
                }
                match core.partition_len(p) {
                    Ok(keys) => metrics.set_table_keys(core.name(), p, keys),
                    Err(e) => {
                        tracing::debug!(table = core.name(), partition = p, error = %e, "no key count for the table partition's metric")
                    }
                }
            }
        }
    }

    /// Stops every recovery and follower (the worker is stopping) and waits until they are
    /// gone.
    pub(crate) async fn close(&self) {
        self.bootstraps.close();
        let tasks: Vec<JoinHandle<()>> = {
            let mut state = self.state();
            let recovering = std::mem::take(&mut state.recovering);
            let followers = std::mem::take(&mut state.followers);
            recovering
                .into_values()
                .map(|r| r.task)
                .chain(followers.into_values())
                .collect()
        };
        tasks.iter().for_each(JoinHandle::abort);
        futures::future::join_all(tasks).await;
    }
}

/// Recovers one partition, retrying what can pass (a broker restarting) with a pause; a
/// changelog record that does not decode ends it with the error.
async fn recover(
    core: &TableCore,
    client: ClientConfig,
    admin: &Admin,
    partition: i32,
    remaining: &Gauge,
) -> Result<u64> {
    let tp = TopicPartition::new(core.spec().changelog_topic(), partition);
    let mut pause = Duration::from_millis(100);
    loop {
        let attempt = async {
            let ends = admin
                .list_offsets(vec![(tp.clone(), OffsetSpec::Latest)])
                .await?;
            let end = ends.get(&tp).map_or(0, |o| o.offset);
            let mut consumer = Consumer::new(client.clone(), changelog_consumer_config()).await?;
            recover_partition(core, &mut consumer, partition, end, Some(remaining)).await
        };
        match attempt.await {
            Ok(records) => return Ok(records),
            // A store error does not pass: a failed store refuses every call until reopened.
            Err(
                e @ (Error::TableDecode { .. }
                | Error::TableStore { .. }
                | Error::InvalidSetting { .. }),
            ) => return Err(e),
            Err(e) if e.is_table_misuse() => return Err(e),
            Err(Error::Store(e)) => return Err(core.store_error(&[partition], e)),
            Err(e) => {
                tracing::warn!(table = core.name(), partition, error = %e, ?pause, "recovering the table partition failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}
