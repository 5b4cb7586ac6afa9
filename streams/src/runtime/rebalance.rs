//! Ties rebalances to done-tracking: new partitions start tracking at their committed offset;
//! revoked ones finish their in-flight events and commit before they go.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_client::admin::{Admin, ListedOffset, OffsetSpec};
use kafka_client::group::{RebalanceContext, RebalanceListener};
use kafka_client::TopicPartition;
use tokio::sync::watch;

use super::commit::Committer;
use super::RunState;
use crate::error::Error;

/// How many times the start offsets of new partitions are asked for before the worker stops.
const START_OFFSET_ATTEMPTS: u32 = 5;

pub(crate) struct Listener {
    pub committer: Arc<Committer>,
    pub admin: Admin,
    pub earliest: bool,
    pub shutdown_timeout: Duration,
    pub state: watch::Sender<RunState>,
    /// Whether this worker leads the generation it joined last.
    pub leader: Arc<watch::Sender<bool>>,
}

impl Listener {
    async fn assigned(&self, ctx: &RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let acks = &self.committer.acks;
        // Partitions without a committed offset start where the reset policy says.
        let unknown: Vec<TopicPartition> = partitions
            .iter()
            .filter(|tp| ctx.position(tp).is_none())
            .cloned()
            .collect();
        let spec = if self.earliest {
            OffsetSpec::Earliest
        } else {
            OffsetSpec::Latest
        };
        let resolved = if unknown.is_empty() {
            Default::default()
        } else {
            match self.start_offsets(&unknown, spec).await {
                Ok(resolved) => resolved,
                Err(e) => {
                    // Without its start a partition's first commit could skip records.
                    self.committer.halt_unclaimed(e);
                    Default::default()
                }
            }
        };
        for tp in partitions {
            let start = ctx
                .position(tp)
                .or_else(|| resolved.get(tp).map(|o| o.offset))
                .unwrap_or(-1);
            tracing::info!(%tp, start, "partition assigned");
            acks.assign(tp.clone(), start);
        }
        self.committer.tables.assigned(partitions).await;
        self.committer.metrics().rebalanced();
        // Called after every completed rebalance: the generation just joined says who leads.
        self.lead(ctx.is_leader(), ctx.generation());
        self.state.send_modify(|s| {
            if let RunState::Running { rebalances } = s {
                *rebalances += 1;
            } else if matches!(s, RunState::Joining) {
                *s = RunState::Running { rebalances: 1 };
            }
        });
    }

    /// Where partitions with no committed offset start, per the reset policy; retried a few
    /// times (a leader moving), then an error.
    async fn start_offsets(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> crate::error::Result<HashMap<TopicPartition, ListedOffset>> {
        let mut pause = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let request = partitions.iter().map(|tp| (tp.clone(), spec)).collect();
            match self.admin.list_offsets(request).await {
                Ok(resolved) => return Ok(resolved),
                Err(e) if attempt < START_OFFSET_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "listing the start offsets of new partitions failed; retrying");
                }
                Err(e) => {
                    return Err(Error::StartOffsets {
                        partitions: partitions.to_vec(),
                        attempts: attempt,
                        source: e,
                    })
                }
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
            attempt += 1;
        }
    }

    /// Records whether this worker leads `generation`, logging a change.
    fn lead(&self, leads: bool, generation: i32) {
        if self.leader.send_replace(leads) != leads {
            match leads {
                true => tracing::info!(
                    generation,
                    "this worker leads the group: leader-only timers run here"
                ),
                false => tracing::info!(generation, "this worker no longer leads the group"),
            }
        }
    }

    async fn revoked(&self, ctx: &RebalanceContext<'_>, partitions: &[TopicPartition]) {
        // Until the next generation says otherwise, another member may lead.
        self.lead(false, ctx.generation());
        let acks = &self.committer.acks;
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        // The agents finish what they hold (bounded by the shutdown timeout).
        let mut pause = Duration::from_millis(1);
        while acks.in_flight(Some(partitions)) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        if self.committer.is_transactional() {
            // Exactly-once: the transaction commits everything up to here, with the
            // generation the group still has.
            let read_to: Vec<_> = partitions
                .iter()
                .filter_map(|tp| ctx.position(tp).map(|p| (tp.clone(), p)))
                .collect();
            if let Err(e) = self
                .committer
                .commit_transaction(ctx.group_metadata(), &read_to)
                .await
            {
                self.committer.halt_unclaimed(e);
            }
            self.revoke(partitions);
            return;
        }
        // The flush gets its own time: agents slow to finish must not leave it none.
        let flushed = tokio::time::timeout(
            self.shutdown_timeout,
            self.committer.ready(Some(partitions)),
        );
        match flushed.await {
            Ok(Ok(positions)) => {
                let positions = self.committer.sendable(positions);
                if !positions.is_empty() {
                    let started = tokio::time::Instant::now();
                    match ctx.commit_offsets(positions.clone()).await {
                        Ok(()) => {
                            self.committer.metrics().commit_succeeded(started);
                            self.committer.committed(&positions);
                        }
                        Err(e) => {
                            self.committer.metrics().commit_failed(started);
                            match self.committer.commit_failed(e) {
                                Ok(_) => {
                                    tracing::warn!("the new owner re-reads from the last commit")
                                }
                                Err(fatal) => self.committer.halt_unclaimed(fatal),
                            }
                        }
                    }
                }
            }
            // The committer halted: the worker stops with the error, nothing committed.
            Ok(Err(e)) => self.committer.halt_unclaimed(e),
            // A flush cut short leaves writes half-taken: stop rather than go on with them.
            Err(_) => self.committer.halt_unclaimed(Error::Timeout {
                what: "acknowledging the changelog writes and sends before a revocation".into(),
                after: self.shutdown_timeout,
            }),
        }
        self.revoke(partitions);
    }

    fn revoke(&self, partitions: &[TopicPartition]) {
        self.committer.metrics().forget_partitions(partitions);
        for tp in partitions {
            tracing::info!(%tp, "partition revoked");
            self.committer.acks.revoke(tp);
        }
        self.committer.tables.revoked(partitions);
    }

    fn lost(&self, partitions: &[TopicPartition]) {
        // Lost membership: another member may be leading already.
        self.lead(false, -1);
        // Exactly-once: the open transaction holds effects of the lost partitions' events,
        // which their new owner processes again: it must never commit.
        self.committer.lost(partitions);
        self.committer.metrics().forget_partitions(partitions);
        for tp in partitions {
            tracing::warn!(%tp, "partition lost without a commit; its uncommitted events will be read again by its new owner");
            self.committer.acks.revoke(tp);
        }
        self.committer.tables.revoked(partitions);
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
