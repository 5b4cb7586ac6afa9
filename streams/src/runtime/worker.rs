//! The worker loop: one group consumer for the whole app (group `<app id>`), routing each
//! record to its agents, committing done offsets (every interval, every N events, on
//! revocation, on stop), retrying what passes and stopping on what cannot work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::FutureExt;
use kafka_client::group::GroupConsumer;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::commit::{BackgroundCommit, Committer};
use super::failures::{classify, Backoff, Severity};
use super::idle::IdleServices;
use super::router::Router;
use super::services::Services;
use super::tables::Recovered;
use crate::error::{Error, Result};
use crate::settings::Settings;

/// Most records dispatched in one go before the loop looks at its timers and the stop signal.
pub(crate) const DISPATCH_RUN: usize = 512;

/// How often the loop looks whether a joined table caught up with its source.
const BOOTSTRAP_CHECK: std::time::Duration = std::time::Duration::from_millis(20);

/// A request to commit now, answered with the outcome (`App::commit`).
pub(crate) type CommitRequest = oneshot::Sender<Result<()>>;

/// What a worker receives from the rest of the runtime; handed to the next worker when it
/// restarts.
pub(crate) struct Queues {
    pub commit_requests: mpsc::Receiver<CommitRequest>,
    /// Table partitions whose recovery finished.
    pub recovered: mpsc::UnboundedReceiver<Recovered>,
}

pub(crate) struct Worker {
    pub group: String,
    pub consumer: GroupConsumer,
    pub router: Router,
    pub committer: Arc<Committer>,
    pub tasks: Vec<JoinHandle<()>>,
    /// Timers, crontabs and tasks, stopped with the agents.
    pub services: Services,
    /// Whether this worker leads its group (cleared when it stops).
    pub leader: Arc<watch::Sender<bool>>,
    pub settings: Settings,
    pub aborted: Arc<AtomicBool>,
    pub queues: Queues,
    /// The commit running beside the dispatch loop.
    pub background: BackgroundCommit,
    /// The tasks closing the windows of idle partitions.
    pub idle: IdleServices,
}

impl Worker {
    /// Runs until stopped or failed; returns how, and the queues for a next worker.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) -> (Result<()>, Queues) {
        let interval = self.settings.broker_commit_interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut backoff = Backoff::default();
        let mut since_commit = 0usize;
        let outcome = loop {
            if *stop.borrow() {
                break Ok(());
            }
            // Group work (joins, rebalance callbacks) must not be cancelled midway, so it runs
            // here, outside the select; the select only polls for records.
            let worked = self.consumer.group_work().await;
            // A revocation that could not commit halted the committer: stop.
            if let Some(fatal) = self.committer.take_unclaimed() {
                break Err(self.first_failure(fatal).await);
            }
            if let Err(e) = worked {
                match self.on_consumer_error(e, &mut backoff, &mut stop).await {
                    Some(fatal) => break Err(fatal),
                    None => continue,
                }
            }
            self.pause_recovering();
            tokio::select! {
                biased;
                _ = stop.changed() => continue,
                _ = self.committer.halted() => {
                    if let Some(fatal) = self.committer.take_unclaimed() {
                        break Err(self.first_failure(fatal).await);
                    }
                }
                Some(done) = self.queues.recovered.recv() => {
                    if let Err(e) = self.committer.tables.recovered(done) {
                        break Err(e);
                    }
                }
                Some(reply) = self.queues.commit_requests.recv() => {
                    match self.commit().await {
                        Err(e) if self.committer.is_halted() => {
                            // The caller gets the error; the worker stops (or, for an aborted
                            // transaction, restarts) naming it.
                            let stopped = Error::CommitsStopped { cause: e.to_string() };
                            let stop_with = match &e {
                                Error::TransactionAborted { transactional_id, .. } => {
                                    Error::TransactionAborted {
                                        transactional_id: transactional_id.clone(),
                                        source: Box::new(stopped),
                                    }
                                }
                                Error::Fenced { transactional_id, .. } => Error::Fenced {
                                    transactional_id: transactional_id.clone(),
                                    source: Box::new(stopped),
                                },
                                _ => stopped,
                            };
                            let _ = reply.send(Err(e));
                            break Err(stop_with);
                        }
                        result => {
                            let _ = reply.send(result);
                        }
                    }
                }
                prepared = self.background.prepared(), if self.background.is_preparing() => {
                    match prepared {
                        Ok(positions) => self.background.commit(&self.consumer, &self.committer, positions),
                        Err(e) => break Err(e),
                    }
                }
                // A table's write cache over its bound is flushed early, by a commit (a
                // transaction under exactly-once): the commit protocol as ever.
                _ = self.committer.tables.cache_full() => {
                    since_commit = 0;
                    if let Err(e) = self.commit_due().await {
                        break Err(e);
                    }
                }
                // A joined stream partition waits for its table, whose source is done in the
                // agents' tasks: look again soon.
                _ = tokio::time::sleep(BOOTSTRAP_CHECK), if self.committer.tables.bootstrapping() => {}
                _ = tick.tick() => {
                    since_commit = 0;
                    self.report_lag();
                    if let Err(e) = self.commit_due().await {
                        break Err(e);
                    }
                }
                record = self.consumer.poll_record() => match record {
                    Ok(None) => continue, // group work is due
                    Ok(Some(record)) => {
                        backoff.succeeded();
                        // Records already fetched go out in a run, without a trip through the
                        // select (its timers read the clock) per record.
                        let mut next = Some(Ok(Some(record)));
                        let mut run = 0;
                        while let Some(Ok(Some(record))) = next.take() {
                            self.router.dispatch(record);
                            since_commit += 1;
                            run += 1;
                            if run < DISPATCH_RUN && since_commit < self.settings.broker_commit_every {
                                // The rest of the chunk without a group-state lock
                                // and a clock read per record; then the next chunk.
                                next = match self.consumer.next_in_run() {
                                    Some(record) => Some(Ok(Some(record))),
                                    None => self.consumer.poll_record().now_or_never(),
                                };
                            }
                        }
                        if !self.router.flush(&mut stop).await {
                            break Ok(());
                        }
                        if let Some(Err(e)) = next {
                            if let Some(fatal) = self.on_consumer_error(e, &mut backoff, &mut stop).await {
                                break Err(fatal);
                            }
                        }
                        // Under exactly-once only the interval commits (as Kafka Streams):
                        // each commit is a transaction, and a barrier.
                        if since_commit >= self.settings.broker_commit_every
                            && !self.committer.is_transactional()
                        {
                            since_commit = 0;
                            if let Err(e) = self.commit_due().await {
                                break Err(e);
                            }
                        }
                    }
                    Err(e) => {
                        if let Some(fatal) = self.on_consumer_error(e, &mut backoff, &mut stop).await {
                            break Err(fatal);
                        }
                    }
                },
            }
        };
        self.finish(outcome).await
    }

    /// Sets the lag of every assigned partition: its high watermark (from the last fetch)
    /// minus the position the consumer reads next. At each commit tick, not per record.
    fn report_lag(&self) {
        let consumer = self.consumer.consumer();
        let metrics = self.committer.metrics();
        for tp in self.consumer.assignment() {
            if let (Some(high), Some(position)) =
                (consumer.high_watermark(&tp), self.consumer.position(&tp))
            {
                metrics.set_lag(&tp, high.saturating_sub(position).max(0));
            }
        }
    }

    /// Pauses the source partitions whose table partitions are recovering, and the joined
    /// stream partitions whose tables have not caught up with their sources (see
    /// `bootstrap`), and resumes the others, so that only their events wait.
    fn pause_recovering(&mut self) {
        let mut blocked = self.committer.tables.blocked();
        let consumer = &self.consumer;
        let waiting = self
            .committer
            .tables
            .bootstrap_blocked(&self.committer.acks, |tp| consumer.position(tp));
        for tp in waiting {
            if !blocked.contains(&tp) {
                blocked.push(tp);
            }
        }
        let paused = self.consumer.consumer().paused();
        let resume: Vec<_> = paused.iter().filter(|tp| !blocked.contains(tp)).collect();
        let pause: Vec<_> = blocked.iter().filter(|tp| !paused.contains(tp)).collect();
        if !resume.is_empty() {
            tracing::debug!(?resume, "tables recovered: resuming");
            if let Err(e) = self.consumer.resume(resume) {
                tracing::warn!(error = %e, "cannot resume partitions");
            }
        }
        if !pause.is_empty() {
            tracing::debug!(?pause, "tables recovering: pausing");
            if let Err(e) = self.consumer.pause(pause) {
                tracing::warn!(error = %e, "cannot pause partitions");
            }
        }
    }

    /// Backs off on a retriable consumer error; the error to stop with on a fatal one.
    async fn on_consumer_error(
        &self,
        e: kafka_client::Error,
        backoff: &mut Backoff,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Error> {
        match classify(&e) {
            Severity::Retriable => {
                let pause = backoff.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                None
            }
            Severity::Fatal(hint) => Some(Error::Group {
                group: self.group.clone(),
                source: e,
                hint,
            }),
        }
    }

    /// Commits the done offsets that moved since the last commit and waits for the answer
    /// (for `App::commit` and the stop; the loop commits in the background). Any error is
    /// returned; the worker must stop when it halted the committer (see `Committer`), while a
    /// commit the group refused for now (a rebalance) is retried next time.
    async fn commit(&mut self) -> Result<()> {
        self.report_lag();
        if self.committer.is_transactional() {
            let read_to = self.read_positions();
            return self
                .committer
                .commit_transaction(self.consumer.group_metadata(), &read_to)
                .await;
        }
        // After what is under way, so that commits stay in order.
        self.background
            .settle(&self.consumer, &self.committer)
            .await?;
        let positions = self.committer.ready(None).await?;
        let positions = self.committer.sendable(positions);
        if positions.is_empty() {
            return Ok(());
        }
        let started = tokio::time::Instant::now();
        match self.consumer.commit_offsets(positions.clone()).await {
            Ok(()) => {
                tracing::debug!(?positions, "committed");
                self.committer.metrics().commit_succeeded(started);
                self.committer.committed(&positions);
                Ok(())
            }
            Err(e) => {
                self.committer.metrics().commit_failed(started);
                Err(self.committer.commit_failed(e).unwrap_or_else(|e| e))
            }
        }
    }

    /// The error to stop with, given the one that halted the committer behind the loop's back.
    /// When that one only names an earlier failure ([`Error::CommitsStopped`]) and a commit is
    /// being prepared in the background, the earlier failure is likely the preparation's own
    /// (a changelog write that failed): its result, which may not have arrived yet when an
    /// agent failed because of it, is the first failure and is what the worker stops with.
    async fn first_failure(&mut self, fatal: Error) -> Error {
        if matches!(fatal, Error::CommitsStopped { .. }) && self.background.is_preparing() {
            if let Err(first) = self.background.prepared().await {
                return first;
            }
        }
        fatal
    }

    /// A commit is due (interval, or events since the last): at-least-once prepares it in the
    /// background while events flow; exactly-once commits the transaction here, between two
    /// dispatches. An error when the worker must stop (or restart).
    async fn commit_due(&mut self) -> Result<()> {
        if !self.committer.is_transactional() {
            self.background.start(&self.committer);
            return Ok(());
        }
        match self.commit().await {
            Err(e) if self.committer.is_halted() => {
                Err(self.committer.take_unclaimed().unwrap_or(e))
            }
            Err(e) => {
                tracing::warn!(error = %e, "transaction commit failed; the next one retries");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// Where the consumer reads next in each assigned partition.
    fn read_positions(&self) -> Vec<(kafka_client::TopicPartition, i64)> {
        self.committer
            .acks
            .assigned()
            .into_iter()
            .filter_map(|tp| self.consumer.position(&tp).map(|p| (tp, p)))
            .collect()
    }

    /// The stop: no more records; agents finish what they have; sends are acknowledged;
    /// done offsets are committed (unless the committer halted on a failure); the group is
    /// left.
    async fn finish(mut self, outcome: Result<()>) -> (Result<()>, Queues) {
        self.router.close(); // closes the agents' streams
        self.services.stop();
        // A stopped worker leads nothing; a restarted one learns it again from its group.
        self.leader.send_replace(false);
        let services = self.services.take_tasks();
        self.tasks.extend(services);
        let timeout = self.settings.worker_shutdown_timeout;
        if self.aborted.load(Ordering::Acquire) {
            self.idle.abort().await;
        } else {
            self.idle.stop(timeout).await;
        }
        self.committer.tables.close().await;
        if self.aborted.load(Ordering::Acquire) {
            // A simulated crash: no commit, no LeaveGroup; the agents are cancelled (and gone,
            // with the table handles they hold, once this returns).
            let channel_agents = std::mem::take(&mut self.router.channel_agents);
            let tasks = std::mem::take(&mut self.tasks);
            let tasks: Vec<_> = tasks.into_iter().chain(channel_agents.tasks).collect();
            tasks.iter().for_each(|t| t.abort());
            self.background.abort();
            futures::future::join_all(tasks).await;
            return (outcome, self.queues);
        }
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(timeout, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!(?timeout, "agents did not finish in time; their current events will be read again after a restart");
            aborts.iter().for_each(|a| a.abort());
        }
        // Then the channel agents, which get what the topic agents sent them.
        let channel_agents = std::mem::take(&mut self.router.channel_agents);
        channel_agents.stops.iter().for_each(|s| {
            s.send_replace(true);
        });
        let aborts: Vec<_> = channel_agents
            .tasks
            .iter()
            .map(|t| t.abort_handle())
            .collect();
        if tokio::time::timeout(timeout, futures::future::join_all(channel_agents.tasks))
            .await
            .is_err()
        {
            tracing::warn!(
                ?timeout,
                "channel agents did not finish in time; the values left in their channels are lost"
            );
            aborts.iter().for_each(|a| a.abort());
        }
        let outcome = match self.committer.take_unclaimed() {
            Some(e) => outcome.and(Err(e)),
            None => outcome,
        };
        if self.committer.is_halted() {
            // Exactly-once: nothing of the open transaction may become visible.
            let _ = self.committer.abort_transaction().await;
        }
        // A failure that halted the committer refuses this commit too (and the one the
        // revocation below would make): nothing past it is committed.
        let outcome = match tokio::time::timeout(timeout, self.commit()).await {
            Ok(Err(e)) => outcome.and(Err(e)),
            Ok(Ok(())) => outcome,
            Err(_) => {
                tracing::warn!("sends were not acknowledged in time; nothing more committed");
                outcome
            }
        };
        self.committer.tables.flush_stores();
        // Leaving the group hands the partitions over at once (the listener commits again).
        // Bounded: after a broker outage queued commits could hold the stop for long.
        match tokio::time::timeout(timeout, self.consumer.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "leaving the group failed; it expires with the session")
            }
            Err(_) => tracing::warn!(
                ?timeout,
                "leaving the group took longer than worker_shutdown_timeout; it expires with the session"
            ),
        }
        (outcome, self.queues)
    }
}
