//! The worker's idle-window service: for each windowed table with `close_idle_after`, a task
//! that checks the partitions this worker owns and closes the windows their idle time made
//! due (see `window::idle`). Started with the worker's agents, stopped with the worker; a
//! failure stops the worker through the committer, with nothing committed past it.

use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::commit::Committer;
use crate::clock::Clock;
use crate::error::{panic_message, Error};
use crate::table::{IdleCloser, PartitionStatus, TableCore};

/// The running idle tasks of one worker.
pub(crate) struct IdleServices {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl IdleServices {
    /// A task per table of `cores` that closes idle windows, reading wall time from `clock`.
    pub(crate) fn start(
        cores: &[Arc<TableCore>],
        clock: Clock,
        committer: &Arc<Committer>,
    ) -> Self {
        let (stop, stopping) = watch::channel(false);
        let tasks = cores
            .iter()
            .filter_map(|core| core.idle().map(|closer| (core.clone(), closer)))
            .map(|(core, closer)| {
                tokio::spawn(run(
                    core,
                    closer,
                    clock.clone(),
                    committer.clone(),
                    stopping.clone(),
                ))
            })
            .collect();
        IdleServices { stop, tasks }
    }

    /// Stops the tasks after the check each is running (a close callback under way finishes,
    /// so that its close may be committed); waits for them up to `timeout`, then aborts them.
    pub(crate) async fn stop(&mut self, timeout: std::time::Duration) {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(timeout, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!(?timeout, "idle window closes did not finish in time");
            aborts.iter().for_each(|a| a.abort());
        }
    }

    /// Cancels the tasks at once (a simulated crash).
    pub(crate) async fn abort(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
        futures::future::join_all(std::mem::take(&mut self.tasks)).await;
    }
}

/// Checks `core`'s owned partitions whenever one may have something due (at least every idle
/// interval) until stopped or failed.
async fn run(
    core: Arc<TableCore>,
    closer: IdleCloser,
    clock: Clock,
    committer: Arc<Committer>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let mut next = Instant::now() + closer.after;
        for partition in core.owned_partitions() {
            if *stopping.borrow() {
                return;
            }
            let check =
                std::panic::AssertUnwindSafe((closer.check)(partition, clock.now().as_millis()));
            let failure = match check.catch_unwind().await {
                Ok(Ok(check)) => {
                    next = next.min(check.next);
                    continue;
                }
                // Revoked (or recovering again) since it was listed: not ours to close.
                Ok(Err(_)) if core.status(partition) != Some(PartitionStatus::Active) => continue,
                Ok(Err(e)) => e,
                Err(panic) => {
                    tracing::error!(
                        table = core.name(),
                        partition,
                        panic = panic_message(&*panic),
                        "a close callback panicked"
                    );
                    Error::CloseCallbackFailed {
                        table: core.name().to_owned(),
                        partition,
                    }
                }
            };
            committer
                .agent_failed(Error::IdleCloseFailed {
                    table: core.name().to_owned(),
                    partition,
                    source: Box::new(failure),
                })
                .await;
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}
