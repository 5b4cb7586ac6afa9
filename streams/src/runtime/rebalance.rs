//! Ties rebalances to done-tracking: new partitions start tracking at their committed offset;
//! revoked ones finish their in-flight events and commit before they go.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_client::admin::{Admin, OffsetSpec};
use kafka_client::group::{RebalanceContext, RebalanceListener};
use kafka_client::TopicPartition;
use tokio::sync::watch;

use super::commit::Committer;
use super::RunState;

pub(crate) struct Listener {
    pub committer: Arc<Committer>,
    pub admin: Admin,
    pub earliest: bool,
    pub shutdown_timeout: Duration,
    pub state: watch::Sender<RunState>,
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
            self.admin
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
            acks.assign(tp.clone(), start);
        }
        self.committer.tables.assigned(partitions).await;
        self.state.send_modify(|s| {
            if let RunState::Running { rebalances } = s {
                *rebalances += 1;
            } else if matches!(s, RunState::Joining) {
                *s = RunState::Running { rebalances: 1 };
            }
        });
    }

    async fn revoked(&self, ctx: &RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let acks = &self.committer.acks;
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        // The agents finish what they hold (bounded by the shutdown timeout).
        let mut pause = Duration::from_millis(1);
        while acks.in_flight(Some(partitions)) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        match tokio::time::timeout_at(deadline, self.committer.ready(Some(partitions))).await {
            Ok(Ok(positions)) if !positions.is_empty() => {
                match ctx.commit_offsets(positions.clone()).await {
                    Ok(()) => self.committer.committed(&positions),
                    Err(e) => tracing::warn!(error = %e, "commit on revocation failed; the new owner re-reads from the last commit"),
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "not committing on revocation"),
            Err(_) => tracing::warn!("sends not acknowledged before revocation; the new owner re-reads from the last commit"),
        }
        for tp in partitions {
            tracing::info!(%tp, "partition revoked");
            acks.revoke(tp);
        }
        self.committer.tables.revoked(partitions);
    }

    fn lost(&self, partitions: &[TopicPartition]) {
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
