//! The worker: one consumer for the whole app (the group `<app id>`), routing each record to
//! the agents of its topic, committing done offsets, and the graceful stop.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kafka_client::admin::OffsetSpec;
use kafka_client::consumer::{AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, Offset};
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
    consumer: Consumer,
    routes: HashMap<String, Route>,
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
        let consumer = Consumer::new(
            conn.client.clone(),
            ConsumerConfig::default()
                .with_auto_offset_reset(reset)
                .with_fetch_max_wait(Duration::from_millis(100)),
        )
        .await?;
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
        let mut worker = Worker {
            app: app.clone(),
            consumer,
            routes,
            tasks,
            since_commit: 0,
        };
        worker.assign_all().await?;
        Ok(tokio::spawn(worker.run()))
    }

    /// Assign mode: every partition of every topic an agent reads, from the group's committed
    /// offset (the reset policy without one).
    async fn assign_all(&mut self) -> Result<()> {
        let conn = self.app.conn()?;
        let mut tps = Vec::new();
        for topic in self.routes.keys() {
            let info = conn.admin.describe_topic(topic).await?;
            tps.extend(
                info.partitions
                    .iter()
                    .map(|p| TopicPartition::new(topic.clone(), p.partition)),
            );
        }
        let spec = if self.app.settings().consumer_auto_offset_reset_earliest {
            OffsetSpec::Earliest
        } else {
            OffsetSpec::Latest
        };
        let starts = conn
            .admin
            .list_offsets(tps.iter().map(|tp| (tp.clone(), spec)).collect())
            .await?;
        let assigned = tps
            .into_iter()
            .map(|tp| {
                let start = starts.get(&tp).map_or(0, |o| o.offset.max(0));
                (tp, start)
            })
            .collect();
        self.on_assigned(assigned);
        Ok(())
    }

    /// Rebalance hook: partitions given to this worker, with their start offsets.
    fn on_assigned(&mut self, partitions: Vec<(TopicPartition, i64)>) {
        let conn = match self.app.conn() {
            Ok(c) => c,
            Err(_) => return,
        };
        let mut assign = Vec::new();
        for (tp, start) in partitions {
            let part = conn.acks.assign(tp.clone(), start);
            if let Some(route) = self.routes.get_mut(&tp.topic) {
                let i = tp.partition as usize;
                if route.partitions.len() <= i {
                    route.partitions.resize(i + 1, None);
                }
                route.partitions[i] = Some(part);
            }
            tracing::debug!(%tp, start, "assigned");
            assign.push((tp, Some(Offset::At(start))));
        }
        self.consumer.incremental_assign(assign);
    }

    /// Rebalance hook: partitions taken away. Waits (bounded) for their in-flight events,
    /// commits them, and stops tracking them.
    #[allow(dead_code)] // called by group membership
    async fn on_revoked(&mut self, partitions: Vec<TopicPartition>) {
        let app = self.app.clone();
        let Ok(conn) = app.conn() else { return };
        self.consumer.incremental_unassign(&partitions);
        let deadline = tokio::time::Instant::now() + self.app.settings().worker_shutdown_timeout;
        while conn.acks.in_flight(Some(&partitions)) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.commit().await;
        for tp in &partitions {
            conn.acks.revoke(tp);
            if let Some(slot) = self
                .routes
                .get_mut(&tp.topic)
                .and_then(|r| r.partitions.get_mut(tp.partition as usize))
            {
                *slot = None;
            }
        }
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

    /// Commits the done offsets that moved. Needs consumer-group support in the client; until
    /// then progress is only logged.
    async fn commit(&mut self) {
        self.since_commit = 0;
        let Ok(conn) = self.app.conn() else { return };
        let progress = conn.acks.progress();
        if progress.is_empty() {
            return;
        }
        tracing::debug!(?progress, "done offsets (no group commit in assign mode)");
        conn.acks.committed(&progress);
    }

    /// The graceful stop: no more records; agents finish what they have; sends are
    /// acknowledged; done offsets are committed.
    async fn finish(mut self) -> Result<()> {
        self.routes.values_mut().for_each(|r| r.agents.clear()); // closes the agents' streams
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
        tracing::info!(app = %self.app.id(), "worker stopped");
        Ok(())
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
