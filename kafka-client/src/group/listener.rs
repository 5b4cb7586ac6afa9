//! Rebalance callbacks: [`RebalanceListener`] and the [`RebalanceContext`] it gets, through
//! which a callback reads positions and commits before its partitions move.

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::committer::Committer;
use super::membership::GroupShared;
use crate::consumer::Consumer;
use crate::error::Result;
use crate::topic_partition::TopicPartition;

/// Called by [`GroupConsumer`](super::GroupConsumer) inside `recv` when its assignment
/// changes. Each callback is awaited before the rebalance goes on: a `revoked` callback that
/// finishes in-flight work, flushes state and commits runs before the partitions can reach
/// another member (under the eager protocol before JoinGroup; under the cooperative one
/// before the member rejoins to release them).
///
/// ```
/// use futures::future::BoxFuture;
/// use kafka_client::group::{RebalanceContext, RebalanceListener};
/// use kafka_client::TopicPartition;
///
/// struct CommitOnRevoke;
///
/// impl RebalanceListener for CommitOnRevoke {
///     fn on_partitions_revoked<'a>(
///         &'a mut self,
///         ctx: &'a RebalanceContext<'_>,
///         partitions: &'a [TopicPartition],
///     ) -> BoxFuture<'a, ()> {
///         Box::pin(async move {
///             // flush state for `partitions` here, then:
///             if let Err(e) = ctx.commit(partitions).await {
///                 eprintln!("commit before revocation failed: {e}");
///             }
///         })
///     }
/// }
/// ```
pub trait RebalanceListener: Send {
    /// Partitions newly assigned (their positions are initialised from committed offsets
    /// already). Called after every completed rebalance, possibly with none.
    fn on_partitions_assigned<'a>(
        &'a mut self,
        _ctx: &'a RebalanceContext<'_>,
        _partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Partitions about to be taken away while this member is still their owner: the last
    /// moment to commit them.
    fn on_partitions_revoked<'a>(
        &'a mut self,
        _ctx: &'a RebalanceContext<'_>,
        _partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Partitions this member lost without a chance to commit (session expired, fenced,
    /// poll timeout): another member may own them already, so commits would be refused.
    /// The default does nothing.
    fn on_partitions_lost<'a>(
        &'a mut self,
        _ctx: &'a RebalanceContext<'_>,
        _partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// A listener that does nothing.
#[derive(Debug, Default)]
pub struct NoopListener;

impl RebalanceListener for NoopListener {}

/// What a callback can see and do.
pub struct RebalanceContext<'c> {
    pub(crate) consumer: &'c Consumer,
    pub(crate) shared: &'c GroupShared,
    pub(crate) committer: &'c Committer,
}

impl RebalanceContext<'_> {
    /// The group id.
    pub fn group_id(&self) -> &str {
        self.shared.group()
    }

    /// This member's id.
    pub fn member_id(&self) -> String {
        self.shared.state().member_id.clone()
    }

    /// The current generation (-1 when not a member).
    pub fn generation(&self) -> i32 {
        self.shared.state().generation
    }

    /// Whether this member leads the current generation: the coordinator named it leader in
    /// the JoinGroup answer (its member id is the answer's leader id), so it computed this
    /// generation's assignment. Exactly one member of a generation is its leader; an
    /// application can run leader-only work from here, re-checked at every rebalance.
    pub fn is_leader(&self) -> bool {
        self.shared.state().leader
    }

    /// This member's group, generation and member id, for a transactional producer's
    /// offsets (see [`GroupConsumer::group_metadata`](super::GroupConsumer::group_metadata)).
    pub fn group_metadata(&self) -> super::ConsumerGroupMetadata {
        self.shared.group_metadata()
    }

    /// The next offset the application would read from a partition.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.consumer.position(tp)
    }

    /// Commits the current positions of `partitions` (those with a known position).
    pub async fn commit(&self, partitions: &[TopicPartition]) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64)> = partitions
            .iter()
            .filter_map(|tp| Some((tp.clone(), self.consumer.position(tp)?)))
            .collect();
        self.commit_offsets(offsets).await
    }

    /// Commits explicit offsets (the next offset to read, per partition).
    pub async fn commit_offsets(&self, offsets: Vec<(TopicPartition, i64)>) -> Result<()> {
        self.committer
            .commit(self.shared.generation(), offsets)
            .await
    }

    /// The committed offsets of `partitions`.
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        super::offsets::fetch(
            &self.shared.coordinator,
            self.shared.group(),
            partitions,
            tokio::time::Instant::now() + self.shared.request_timeout,
        )
        .await
    }
}
