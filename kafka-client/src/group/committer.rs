//! The committer task: every commit of a member (sync, async, auto) goes through one queue,
//! so commits reach the coordinator in the order they were made and a later commit never
//! overtakes an earlier one.

use std::sync::Arc;
use tokio::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::membership::GroupShared;
use super::offsets::{self, Generation};
use crate::error::{Error, Result};
use crate::topic_partition::TopicPartition;

struct Job {
    offsets: Vec<(TopicPartition, i64)>,
    /// Taken when the commit was asked for, not when it is sent: a commit asked for in an
    /// old generation is refused rather than applied to partitions that moved since.
    generation: Generation,
    reply: Option<oneshot::Sender<Result<()>>>,
}

/// The queue's sending side.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::UnboundedSender<Job>,
}

impl Committer {
    /// Starts the task.
    pub(crate) fn start(shared: Arc<GroupShared>) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Committer { tx }, tokio::spawn(run(shared, rx)))
    }

    /// A committer whose queue is closed: every commit fails with [`Error::Closed`].
    pub(crate) fn closed() -> Committer {
        let (tx, _) = mpsc::unbounded_channel();
        Committer { tx }
    }

    /// Queues a commit; the returned future resolves when the coordinator answered. Dropping
    /// the future does not cancel the commit.
    pub(crate) fn commit(
        &self,
        generation: Generation,
        offsets: Vec<(TopicPartition, i64)>,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let (reply, rx) = oneshot::channel();
        let queued = self.tx.send(Job {
            offsets,
            generation,
            reply: Some(reply),
        });
        async move {
            queued.map_err(|_| Error::Closed)?;
            rx.await.map_err(|_| Error::Closed)?
        }
    }

    /// Queues a commit nobody waits for (auto-commit); failures are logged.
    pub(crate) fn commit_in_background(
        &self,
        generation: Generation,
        offsets: Vec<(TopicPartition, i64)>,
    ) {
        let _ = self.tx.send(Job {
            offsets,
            generation,
            reply: None,
        });
    }
}

async fn run(shared: Arc<GroupShared>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        let deadline = Instant::now() + shared.request_timeout;
        let result = offsets::commit(
            &shared.coordinator,
            shared.group(),
            &job.generation,
            &job.offsets,
            deadline,
        )
        .await;
        if let Err(Error::Rebalancing { code, .. }) = &result {
            shared.fenced(&job.generation, *code, "OffsetCommit");
        }
        match job.reply {
            Some(reply) => {
                let _ = reply.send(result);
            }
            None => {
                if let Err(e) = result {
                    tracing::warn!(group = %shared.group(), generation = job.generation.id, error = %e, "auto-commit failed");
                }
            }
        }
    }
}
