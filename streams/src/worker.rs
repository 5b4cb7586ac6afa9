//! The worker: one group consumer for the whole app (group `<app id>`), routing each record
//! to the agents of its topic, committing done offsets (every interval, on revocation, on
//! stop), and the graceful stop.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_client::admin::OffsetSpec;
use kafka_client::consumer::{AutoOffsetReset, ConsumerConfig, ConsumerRecord};
use kafka_client::group::{GroupConfig, GroupConsumer, RebalanceContext, RebalanceListener};
use kafka_client::TopicPartition;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use crate::agent::{Delivery, Started};
use crate::app::App;
use crate::error::Result;
use crate::offsets::PartitionAcks;

/// Where the records of one topic go.
struct Route {
    agents: Vec<Target>,
    /// Trackers by partition number, for the assigned partitions.
    partitions: Vec<Option<Arc<PartitionAcks>>>,
}

/// One agent's instances.
struct Target {
    name: String,
    senders: Vec<tokio::sync::mpsc::Sender<Delivery>>,
    next: usize,
    stopped: Arc<std::sync::atomic::AtomicBool>,
    warned: bool,
}

pub(crate) struct Worker {
    app: App,
    consumer: GroupConsumer,
    routes: HashMap<String, Route>,
    /// The [`Acks::epoch`](crate::offsets::Acks::epoch) the routes' trackers were read at.
    epoch: u64,
    tasks: Vec<JoinHandle<()>>,
    since_commit: usize,
}

impl Worker {
    /// Subscribes, sets up partitions and spawns the consumer loop.
    pub(crate) async fn start(app: App, agents: Vec<Started>) -> Result<JoinHandle<Result<()>>> {
        let conn = app.conn()?;
        let settings = app.settings();
        let reset = if settings.consumer_auto_offset_reset_earliest {
            AutoOffsetReset::Earliest
        } else {
            AutoOffsetReset::Latest
        };
        let group = GroupConfig::new(app.id())
            .with_auto_commit(false)
            .with_session_timeout(settings.broker_session_timeout)
            .with_heartbeat_interval(settings.broker_heartbeat_interval)
            .with_rebalance_timeout(settings.broker_rebalance_timeout);
        let mut consumer = GroupConsumer::new(
            conn.client.clone(),
            ConsumerConfig::default()
                .with_auto_offset_reset(reset)
                .with_fetch_max_wait(Duration::from_millis(100)),
            group,
        )
        .await?;
        consumer.set_listener(Listener { app: app.clone() });
        let mut routes: HashMap<String, Route> = HashMap::new();
        let mut tasks = Vec::new();
        for agent in agents {
            tasks.extend(agent.tasks);
            routes
                .entry(agent.topic)
                .or_insert_with(|| Route {
                    agents: Vec::new(),
                    partitions: Vec::new(),
                })
                .agents
                .push(Target {
                    name: agent.name,
                    senders: agent.senders,
                    next: 0,
                    stopped: agent.stopped,
                    warned: false,
                });
        }
        consumer.subscribe(routes.keys().cloned());
        let worker = Worker {
            app: app.clone(),
            consumer,
            routes,
            epoch: u64::MAX,
            tasks,
            since_commit: 0,
        };
        Ok(tokio::spawn(worker.run()))
    }

    async fn run(mut self) -> Result<()> {
        let mut stop = self.app.shared.stop.subscribe();
        let interval = self.app.settings().broker_commit_interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                biased;
                _ = stop.changed() => continue,
                _ = tick.tick() => self.commit().await,
                record = self.consumer.recv() => match record {
                    Ok(record) => {
                        if !self.dispatch(record, &mut stop).await {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "consumer error (it goes on)"),
                },
            }
        }
        self.finish().await
    }

    /// Hands a record to every agent of its topic; `false` if a stop came while waiting for
    /// room (the record then stays undone and is read again after a restart).
    async fn dispatch(
        &mut self,
        record: ConsumerRecord,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let epoch = self.app.conn().map_or(0, |c| c.acks.epoch());
        if epoch != self.epoch {
            self.refresh_routes(epoch);
        }
        let Some(route) = self.routes.get_mut(&*record.topic) else {
            return true;
        };
        let Some(Some(part)) = route.partitions.get(record.partition as usize) else {
            return true; // revoked meanwhile
        };
        let token = part.deliver(record.offset);
        let last = route.agents.len().saturating_sub(1);
        let mut record = Some(record);
        for (i, target) in route.agents.iter_mut().enumerate() {
            let rec = if i == last {
                record.take()
            } else {
                record.clone()
            };
            let Some(rec) = rec else { break };
            let delivery = Delivery {
                record: rec,
                ack: Some(token.clone()),
            };
            if !target.send(delivery, stop).await {
                return false;
            }
        }
        self.since_commit += 1;
        if self.since_commit >= self.app.settings().broker_commit_every {
            self.commit().await;
        }
        true
    }

    /// Re-reads which partitions are tracked after a rebalance.
    fn refresh_routes(&mut self, epoch: u64) {
        let Ok(conn) = self.app.conn() else { return };
        for route in self.routes.values_mut() {
            route.partitions.clear();
        }
        for tp in conn.acks.assigned() {
            if let (Some(route), Some(part)) =
                (self.routes.get_mut(&tp.topic), conn.acks.partition(&tp))
            {
                let i = tp.partition as usize;
                if route.partitions.len() <= i {
                    route.partitions.resize(i + 1, None);
                }
                route.partitions[i] = Some(part);
            }
        }
        self.epoch = epoch;
    }

    /// Commits the done offsets that moved since the last commit.
    async fn commit(&mut self) {
        self.since_commit = 0;
        let Ok(conn) = self.app.conn() else { return };
        let progress = conn.acks.progress();
        if progress.is_empty() {
            return;
        }
        match self.consumer.commit_offsets(progress.clone()).await {
            Ok(()) => {
                tracing::debug!(?progress, "committed");
                conn.acks.committed(&progress);
            }
            Err(e) => tracing::warn!(error = %e, "commit failed; the next one will retry"),
        }
    }

    /// The graceful stop: no more records; agents finish what they have; sends are
    /// acknowledged; done offsets are committed.
    async fn finish(mut self) -> Result<()> {
        self.routes.values_mut().for_each(|r| r.agents.clear()); // closes the agents' streams
        if self.app.shared.aborted.load(Ordering::Acquire) {
            // A simulated crash: no waiting, no commit, no LeaveGroup.
            self.tasks.iter().for_each(|t| t.abort());
            return Ok(());
        }
        let timeout = self.app.settings().worker_shutdown_timeout;
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let finished = tokio::time::timeout(timeout, futures::future::join_all(tasks)).await;
        if finished.is_err() {
            tracing::warn!(?timeout, "agents did not finish in time; their current events will be read again after a restart");
            aborts.iter().for_each(|a| a.abort());
        }
        if let Err(e) = tokio::time::timeout(timeout, self.app.flush()).await {
            tracing::warn!(error = %e, "sends were not acknowledged in time");
        }
        self.commit().await;
        // Leaving the group hands the partitions over at once (the listener commits again).
        if let Err(e) = self.consumer.close().await {
            tracing::warn!(error = %e, "leaving the group failed; it expires with the session");
        }
        tracing::info!(app = %self.app.id(), "worker stopped");
        Ok(())
    }
}

/// Ties rebalances to done-tracking: new partitions start tracking at their committed offset;
/// revoked ones finish their in-flight events and commit before they go.
struct Listener {
    app: App,
}

impl Listener {
    async fn assigned(&self, ctx: &RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let Ok(conn) = self.app.conn() else { return };
        // Partitions without a committed offset start where the reset policy says.
        let unknown: Vec<TopicPartition> = partitions
            .iter()
            .filter(|tp| ctx.position(tp).is_none())
            .cloned()
            .collect();
        let spec = if self.app.settings().consumer_auto_offset_reset_earliest {
            OffsetSpec::Earliest
        } else {
            OffsetSpec::Latest
        };
        let resolved = if unknown.is_empty() {
            Default::default()
        } else {
            conn.admin
                .list_offsets(unknown.iter().map(|tp| (tp.clone(), spec)).collect())
                .await
                .unwrap_or_default()
        };
        for tp in partitions {
            let start = ctx
                .position(tp)
                .or_else(|| resolved.get(tp).map(|o| o.offset))
                .unwrap_or(-1);
            tracing::info!(%tp, start, "partition assigned");
            conn.acks.assign(tp.clone(), start);
        }
        self.app.shared.rebalances.send_modify(|n| *n += 1);
    }

    async fn revoked(&self, ctx: &RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let Ok(conn) = self.app.conn() else { return };
        let deadline = tokio::time::Instant::now() + self.app.settings().worker_shutdown_timeout;
        while conn.acks.in_flight(Some(partitions)) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Err(e) = tokio::time::timeout_at(deadline, self.app.flush()).await {
            tracing::warn!(error = %e, "sends not acknowledged before revocation");
        }
        let positions: Vec<(TopicPartition, i64)> = conn
            .acks
            .positions(Some(partitions))
            .into_iter()
            .filter(|(_, p)| *p >= 0)
            .collect();
        if let Err(e) = ctx.commit_offsets(positions.clone()).await {
            tracing::warn!(error = %e, "commit on revocation failed; the new owner re-reads from the last commit");
        }
        for tp in partitions {
            tracing::info!(%tp, "partition revoked");
            conn.acks.revoke(tp);
        }
    }

    fn lost(&self, partitions: &[TopicPartition]) {
        let Ok(conn) = self.app.conn() else { return };
        for tp in partitions {
            tracing::warn!(%tp, "partition lost without a commit; its uncommitted events will be read again by its new owner");
            conn.acks.revoke(tp);
        }
    }
}

impl RebalanceListener for Listener {
    fn on_partitions_assigned<'a>(
        &'a mut self,
        ctx: &'a RebalanceContext<'_>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.assigned(ctx, partitions))
    }

    fn on_partitions_revoked<'a>(
        &'a mut self,
        ctx: &'a RebalanceContext<'_>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.revoked(ctx, partitions))
    }

    fn on_partitions_lost<'a>(
        &'a mut self,
        _ctx: &'a RebalanceContext<'_>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.lost(partitions);
        Box::pin(async {})
    }
}

impl Target {
    /// Round-robin over the instances, skipping full ones; waits on one if all are full.
    async fn send(
        &mut self,
        mut delivery: Delivery,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        if self.stopped.load(Ordering::Acquire) {
            if !self.warned {
                tracing::warn!(agent = %self.name, "agent has stopped: its events stay uncommitted until it runs again");
                self.warned = true;
            }
            return true; // `delivery` drops poisoned
        }
        let n = self.senders.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            match self.senders[i].try_send(delivery) {
                Ok(()) => {
                    self.next = (i + 1) % n;
                    return true;
                }
                Err(TrySendError::Full(d)) | Err(TrySendError::Closed(d)) => delivery = d,
            }
        }
        let i = self.next;
        self.next = (i + 1) % n;
        tokio::select! {
            sent = self.senders[i].send(delivery) => {
                if sent.is_err() {
                    self.stopped.store(true, Ordering::Release);
                }
                true
            }
            _ = stop.wait_for(|s| *s) => false,
        }
    }
}
