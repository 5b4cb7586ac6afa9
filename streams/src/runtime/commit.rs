//! Committing done offsets: write the tables' pending changes to their changelogs and flush
//! the producer first, so that every record sent and every table write made while handling a
//! done event is acknowledged before its offset is committed. After a commit the tables'
//! stores are made durable.
//!
//! The first failure on that path halts the committer for good: a changelog write or a
//! record not delivered, a commit the broker refuses for good, a failed agent. From then on
//! nothing is committed by this worker (not on the timer, not on revocation, not at the stop),
//! and the worker stops; a restart resumes from the last commit and recovers the tables from
//! their changelogs.

use std::sync::{Arc, Mutex, MutexGuard};

use kafka_client::group::{ConsumerGroupMetadata, GroupConsumer};
use kafka_client::producer::Producer;
use kafka_client::TopicPartition;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::tables::Tables;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::offsets::Acks;
use crate::outbox::{flush_checked, Outbox};
use crate::table::{flush_partition, produce_flush, ProducedFlush, TableCore};

/// The worker's transactional producer (exactly-once) and its id.
pub(crate) struct Transactional {
    pub producer: Arc<Producer>,
    pub id: String,
    /// The producer's retries reported to the metrics so far.
    pub retries_seen: std::sync::atomic::AtomicU64,
}

impl Transactional {
    /// The error to stop or restart with: fenced when another producer took the id over (the
    /// worker stops), else an aborted transaction (the worker restarts).
    fn failed(&self, error: Error) -> Error {
        match error {
            // A failed store refuses every call until reopened: restarting the worker would
            // meet it again, so it stops the worker as under at-least-once.
            e @ (Error::Fenced { .. }
            | Error::TransactionAborted { .. }
            | Error::TableStore { .. }) => e,
            e if is_fenced(&e) => Error::Fenced {
                transactional_id: self.id.clone(),
                source: Box::new(e),
            },
            e => Error::TransactionAborted {
                transactional_id: self.id.clone(),
                source: Box::new(e),
            },
        }
    }
}

/// Whether `error` comes from the producer being fenced (anywhere in its chain of causes: a
/// changelog write or a delivery that failed because of it).
pub(crate) fn is_fenced(error: &Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<kafka_client::Error>()
            .is_some_and(|k| k.is_fenced())
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Why the committer halted.
#[derive(Default)]
struct Halt {
    /// The first failure, as text (later refusals quote it).
    cause: Option<String>,
    /// The first failure itself, when no caller could return it (a revocation, an agent):
    /// the worker takes it and stops with it.
    unclaimed: Option<Error>,
}

/// Decides what may be committed, per the rule above.
pub(crate) struct Committer {
    pub acks: Arc<Acks>,
    outbox: Outbox,
    /// Under exactly-once, the worker's transactional producer: commits are transactions.
    transaction: Option<Transactional>,
    /// How long a transaction's commit waits for the agents to finish the events they hold.
    quiesce_timeout: std::time::Duration,
    pub tables: Arc<Tables>,
    /// One preparation at a time: table flushes of a partition must complete in the order
    /// they were taken (the worker's commits and a revocation's may overlap).
    preparing: tokio::sync::Mutex<()>,
    halt: Mutex<Halt>,
    /// Wakes the worker when a failure it did not see itself halted the committer.
    halted: Notify,
    /// Transactions this committer committed (exactly-once).
    transactions: std::sync::atomic::AtomicU64,
}

impl Committer {
    pub(crate) fn new(
        acks: Arc<Acks>,
        outbox: Outbox,
        tables: Arc<Tables>,
        transaction: Option<Transactional>,
        quiesce_timeout: std::time::Duration,
    ) -> Self {
        Committer {
            acks,
            outbox,
            transaction,
            quiesce_timeout,
            tables,
            preparing: tokio::sync::Mutex::new(()),
            halt: Mutex::default(),
            halted: Notify::new(),
            transactions: Default::default(),
        }
    }

    fn halt_state(&self) -> MutexGuard<'_, Halt> {
        self.halt.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Halts the committer on `error` (the first cause is kept); returns the error for the
    /// caller to report.
    pub(crate) fn halt(&self, error: Error) -> Error {
        let mut halt = self.halt_state();
        self.record(&halt, &error);
        halt.cause.get_or_insert_with(|| error.to_string());
        error
    }

    fn record(&self, halt: &Halt, error: &Error) {
        match &halt.cause {
            None => {
                tracing::error!(error = %error, "nothing more is committed by this worker; it stops")
            }
            Some(first) => {
                tracing::debug!(error = %error, first = %first, "a further failure after the committer halted")
            }
        }
    }

    /// Halts the committer on a failure no caller can return (a revocation's, an agent's, a
    /// background commit's); the worker stops with it ([`Self::take_unclaimed`]), or with the
    /// first failure when this one came after it.
    pub(crate) fn halt_unclaimed(&self, error: Error) {
        let mut halt = self.halt_state();
        self.record(&halt, &error);
        let text = error.to_string();
        // The first failure, or the first handed over by a caller that cannot return it (a
        // revocation's flush): it takes the place of any later one.
        let first = *halt.cause.get_or_insert_with(|| text.clone()) == text;
        if first {
            halt.unclaimed = Some(error);
        } else {
            halt.unclaimed.get_or_insert(error);
        }
        drop(halt);
        self.halted.notify_one();
    }

    /// Halts the committer on an agent's failure, once the commit being prepared (if any) is
    /// done: a changelog write that fails sets its table partition back to recovering before
    /// the preparation halts the committer, and an agent writing to that partition meanwhile
    /// fails because of it. The write's failure comes first, and the worker stops with it.
    pub(crate) async fn agent_failed(&self, error: Error) {
        let _after_preparation = self.preparing.lock().await;
        self.halt_unclaimed(error);
    }

    /// The failure the worker must stop with, if one halted the committer behind its back: the
    /// first one, or one after it naming it.
    pub(crate) fn take_unclaimed(&self) -> Option<Error> {
        let mut halt = self.halt_state();
        let error = halt.unclaimed.take()?;
        match &halt.cause {
            Some(first) if *first != error.to_string() => Some(Error::CommitsStopped {
                cause: first.clone(),
            }),
            _ => Some(error),
        }
    }

    /// Completes when [`Self::halt_unclaimed`] was called (for the worker's loop).
    pub(crate) async fn halted(&self) {
        self.halted.notified().await
    }

    /// An error if the committer halted: nothing may be committed any more.
    fn check(&self) -> Result<()> {
        match &self.halt_state().cause {
            None => Ok(()),
            Some(cause) => Err(Error::CommitsStopped {
                cause: cause.clone(),
            }),
        }
    }

    /// Writes every held table partition's pending changes to its changelog and applies them
    /// to the store once acknowledged. A partition whose write fails drops its unflushed
    /// writes: only a restart recovers them (from the changelog) and redelivers their events.
    async fn flush_tables(&self) -> Result<()> {
        if self.tables.is_empty() {
            return Ok(());
        }
        let producer = &*self.producer()?;
        let flushes = self.tables.cores().iter().flat_map(|core| {
            core.owned_partitions()
                .into_iter()
                .map(move |p| async move {
                    (
                        core,
                        p,
                        flush_partition(core, producer, p, self.quiesce_timeout).await,
                    )
                })
        });
        for (core, partition, outcome) in futures::future::join_all(flushes).await {
            if let Err(e) = outcome {
                if let Error::TableStore { .. }
                | Error::CloseCallbackFailed { .. }
                | Error::Timeout { .. } = e
                {
                    return Err(e); // it says what failed and what to do
                }
                return Err(Error::ChangelogWrite {
                    table: core.name().to_owned(),
                    changelog: core.spec().changelog_topic(),
                    partition,
                    source: Box::new(e),
                });
            }
        }
        Ok(())
    }

    /// The offsets in `positions` were committed: remember them, and make the tables' stores
    /// durable (a store behind its changelog only replays a little more after a crash).
    pub(crate) fn committed(&self, positions: &[(TopicPartition, i64)]) {
        self.acks.committed(positions);
        self.tables.flush_stores();
        // A store whose durable commit failed refuses every call now: stop at once rather than
        // at the next commit.
        if let Err(e) = self.tables.check_stores() {
            self.halt_unclaimed(e);
        }
    }

    /// Waits until every record accepted so far is acknowledged; an error if any of the
    /// app's records was not delivered (nothing may be committed then).
    pub(crate) async fn flush(&self) -> Result<()> {
        flush_checked(&*self.producer()?, self.outbox.metrics()).await
    }

    /// The app's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        self.outbox.metrics()
    }

    /// The producer that carries the worker's writes: the transactional one under
    /// exactly-once, else the app's.
    fn producer(&self) -> Result<Arc<Producer>> {
        match &self.transaction {
            Some(t) => Ok(t.producer.clone()),
            None => self.outbox.app_producer().cloned(),
        }
    }

    /// How many transactions this committer committed.
    pub(crate) fn transactions_committed(&self) -> u64 {
        self.transactions.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether commits are transactions (exactly-once).
    pub(crate) fn is_transactional(&self) -> bool {
        self.transaction.is_some()
    }

    /// The positions to commit now: the done offsets that moved (of `only`, if given), taken
    /// once earlier preparations are complete and before the flush that makes them safe. Any
    /// failure halts the committer.
    pub(crate) async fn ready(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        self.check()?;
        // Snapshot under the lock: a preparation that waited for another one must not hand
        // back positions older than those the other one committed.
        let _one_at_a_time = self.preparing.lock().await;
        self.check()?;
        // A store that failed may have lost writes: nothing more is committed, the worker stops.
        self.tables.check_stores().map_err(|e| self.halt(e))?;
        let positions = match only {
            None => self.acks.progress(),
            Some(tps) => self
                .acks
                .positions(Some(tps))
                .into_iter()
                .filter(|(_, p)| *p >= 0)
                .collect(),
        };
        // Nothing moved, but tables may still hold writes with their effects (windows closed
        // by an idle partition): those are flushed all the same.
        if positions.is_empty() && !self.tables.has_unflushed() {
            return Ok(positions);
        }
        let flushed = async {
            self.flush_tables().await?;
            self.flush().await
        };
        flushed.await.map_err(|e| self.halt(e))?;
        Ok(positions)
    }

    /// Exactly-once: commits the open transaction with everything this worker did since the
    /// last one, then opens the next. Only finished events may have their effects in it, so
    /// no event is dispatched while this runs (the caller is the worker's loop or its
    /// rebalance listener) and it waits for the agents to finish what they hold (at most
    /// `worker_shutdown_timeout`). Then the tables' pending writes go to their changelogs,
    /// every record is acknowledged, the source offsets join the transaction (with the
    /// group's generation: a worker the group moved on from cannot commit), EndTxn commits
    /// it, and only then do the stores apply the writes. `read_to` is where the consumer
    /// reads next in each partition (it may have stepped over transaction markers).
    ///
    /// Any failure halts the committer and aborts the transaction: the worker restarts from
    /// the last committed one (see `Error::TransactionAborted`), or stops when fenced.
    pub(crate) async fn commit_transaction(
        &self,
        group: ConsumerGroupMetadata,
        read_to: &[(TopicPartition, i64)],
    ) -> Result<()> {
        let Some(txn) = &self.transaction else {
            return Err(Error::Invariant {
                broken: "commit_transaction without exactly-once",
            });
        };
        self.check()?;
        let _one_at_a_time = self.preparing.lock().await;
        self.check()?;
        let started = Instant::now();
        if !self.quiesce().await.map_err(|e| self.halt(txn.failed(e)))? {
            return Ok(()); // an agent failed: it stops the worker, this transaction aborts
        }
        let producer = &*txn.producer;
        let outcome = async {
            self.tables.check_stores()?;
            for (tp, position) in read_to {
                self.acks.skip_to(tp, *position);
            }
            let positions = self.acks.progress();
            let flushes = self.produce_tables(producer).await?;
            // commit_transaction below flushes and checks every record of the transaction,
            // with typed errors (fenced, or abortable).
            if !positions.is_empty() {
                producer
                    .send_offsets_to_transaction(positions.clone(), &group)
                    .await?;
            }
            producer.commit_transaction().await?;
            Ok::<_, Error>((positions, flushes))
        };
        let outcome = outcome.await;
        self.metrics()
            .producer_retries_since(&txn.retries_seen, producer.retries());
        let (positions, flushes) = match outcome {
            Ok(done) => done,
            Err(e) => {
                // The abort tells whether another producer took the id over (fatal) or the
                // transaction merely failed (the worker restarts).
                self.metrics().commit_failed(started);
                let e = match (txn.failed(e), self.abort_transaction().await) {
                    (Error::TransactionAborted { .. }, Some(fenced)) => fenced,
                    (e, _) => e,
                };
                return Err(self.halt(e));
            }
        };
        // Committed: the stores take the writes, with the changelog offsets they came from.
        for (core, produced) in flushes {
            core.complete_flush(produced.flush, produced.last_offset)
                .map_err(|e| self.halt(e))?;
        }
        self.metrics().commit_succeeded(started);
        tracing::debug!(?positions, "transaction committed");
        self.transactions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.committed(&positions);
        producer
            .begin_transaction()
            .map_err(|e| self.halt(txn.failed(e.into())))
    }

    /// Waits until every event delivered to the agents is finished; `false` when one failed
    /// instead (the agent stops the worker: nothing may be committed).
    async fn quiesce(&self) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + self.quiesce_timeout;
        // Polled finely: every moment waited here is a moment no event flows.
        let mut pause = std::time::Duration::from_micros(100);
        while self.acks.in_flight(None) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: "waiting for the agents to finish the events they hold before a \
                           transaction commits (under exactly-once a transaction holds only \
                           finished events: release held events sooner, or raise \
                           worker_shutdown_timeout)"
                        .into(),
                    after: self.quiesce_timeout,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(2));
        }
        Ok(!self.acks.any_failed())
    }

    /// Produces every held table partition's pending writes into the open transaction; the
    /// stores apply them once it commits.
    async fn produce_tables(
        &self,
        producer: &Producer,
    ) -> Result<Vec<(&TableCore, ProducedFlush)>> {
        let cores = self.tables.cores();
        let flushes = cores.iter().flat_map(|core| {
            core.owned_partitions()
                .into_iter()
                .map(move |p| async move {
                    (
                        core,
                        p,
                        produce_flush(core, producer, p, self.quiesce_timeout).await,
                    )
                })
        });
        let mut produced = Vec::new();
        for (core, partition, outcome) in futures::future::join_all(flushes).await {
            match outcome {
                Ok(Some(flush)) => produced.push((&**core, flush)),
                Ok(None) => {}
                Err(
                    e @ (Error::TableStore { .. }
                    | Error::CloseCallbackFailed { .. }
                    | Error::Timeout { .. }),
                ) => return Err(e),
                Err(e) => {
                    return Err(Error::ChangelogWrite {
                        table: core.name().to_owned(),
                        changelog: core.spec().changelog_topic(),
                        partition,
                        source: Box::new(e),
                    })
                }
            }
        }
        Ok(produced)
    }

    /// Partitions were lost (this worker missed its session timeout). Under exactly-once the
    /// open transaction holds effects of their events, which their new owner processes again:
    /// the committer halts and the worker restarts, aborting it.
    pub(crate) fn lost(&self, partitions: &[TopicPartition]) {
        let Some(txn) = &self.transaction else { return };
        self.halt_unclaimed(Error::TransactionAborted {
            transactional_id: txn.id.clone(),
            source: Box::new(Error::PartitionsLost {
                partitions: partitions.to_vec(),
            }),
        });
    }

    /// Aborts the open transaction, if this worker has one (after a failure): bounded, best
    /// effort; a producer that cannot abort is replaced by the next worker's, whose start
    /// aborts it. Returns `Error::Fenced` when the coordinator says another producer took the
    /// transactional id over.
    pub(crate) async fn abort_transaction(&self) -> Option<Error> {
        let txn = self.transaction.as_ref()?;
        match tokio::time::timeout(self.quiesce_timeout, txn.producer.abort_transaction()).await {
            Ok(Ok(())) => tracing::info!(transactional_id = %txn.id, "transaction aborted"),
            Ok(Err(e)) if e.is_fenced() => {
                tracing::warn!(transactional_id = %txn.id, error = %e, "the transaction cannot be aborted: another producer took the transactional id over");
                return Some(Error::Fenced {
                    transactional_id: txn.id.clone(),
                    source: Box::new(e.into()),
                });
            }
            Ok(Err(e)) => {
                tracing::warn!(transactional_id = %txn.id, error = %e, "aborting the transaction failed; the next worker's start aborts it")
            }
            Err(_) => {
                tracing::warn!(transactional_id = %txn.id, "aborting the transaction timed out; the next worker's start aborts it")
            }
        }
        None
    }

    /// What of prepared `positions` may be sent now: partitions still assigned, at a position
    /// above their last commit (a commit never moves an offset backwards); none once halted.
    pub(crate) fn sendable(&self, positions: Positions) -> Positions {
        if self.check().is_err() {
            return Vec::new();
        }
        self.acks.committable(positions)
    }

    /// A commit request failed: `Err` with the error when it halts the committer (it cannot
    /// succeed by retrying), `Ok` with it when the next commit retries.
    pub(crate) fn commit_failed(&self, e: kafka_client::Error) -> Result<Error, Error> {
        let fatal = commit_is_fatal(&e);
        let error = Error::Commit { source: e };
        if fatal {
            return Err(self.halt(error));
        }
        tracing::warn!(error = %error, "commit failed; the next one retries");
        Ok(error)
    }

    /// Whether the committer halted.
    pub(crate) fn is_halted(&self) -> bool {
        self.check().is_err()
    }
}

/// Whether a failed OffsetCommit can never succeed by retrying. The group moving (a
/// rebalance, a new generation, a coordinator change) and the network pass: the next commit
/// retries. A refusal (authorization, an invalid request) does not.
fn commit_is_fatal(e: &kafka_client::Error) -> bool {
    use kafka_client::{Error as K, KafkaCode as C};
    match e {
        K::Rebalancing { .. } | K::Closed => false,
        K::RetriesExhausted { last, .. } => commit_is_fatal(last),
        K::Tls { .. } | K::Authentication { .. } | K::UnsupportedVersion { .. } => true,
        _ if e.is_config() => true,
        _ => match e.code() {
            Some(C::IllegalGeneration | C::UnknownMemberId | C::RebalanceInProgress) => false,
            Some(code) => !code.is_retriable(),
            None => false,
        },
    }
}

/// A commit that runs beside the worker's dispatch loop, so that events keep flowing while the
/// producer is flushed and the broker answers: [`Committer::ready`] in a task, then the commit
/// request (the group consumer sends commits in the order they were made), then
/// [`Committer::committed`]. One preparation at a time; commits follow each other in order.
/// Positions to commit: the next offset to read, per partition.
pub(crate) type Positions = Vec<(TopicPartition, i64)>;

#[derive(Default)]
pub(crate) struct BackgroundCommit {
    preparing: Option<JoinHandle<Result<Positions>>>,
    committing: Vec<JoinHandle<()>>,
}

impl BackgroundCommit {
    /// Starts preparing a commit, unless one is being prepared.
    pub(crate) fn start(&mut self, committer: &Arc<Committer>) {
        if self.preparing.is_none() {
            let committer = committer.clone();
            self.preparing = Some(tokio::spawn(async move { committer.ready(None).await }));
        }
        self.committing.retain(|t| !t.is_finished());
    }

    pub(crate) fn is_preparing(&self) -> bool {
        self.preparing.is_some()
    }

    /// The prepared positions, once ready (pending while nothing is prepared); an error when
    /// the app must stop (a record not delivered).
    pub(crate) async fn prepared(&mut self) -> Result<Positions> {
        let Some(task) = self.preparing.as_mut() else {
            return std::future::pending().await;
        };
        let outcome = task.await;
        self.preparing = None;
        outcome.unwrap_or_else(|e| Err(Error::task("commit", e)))
    }

    /// Sends the commit of prepared `positions`; it completes in the background.
    pub(crate) fn commit(
        &mut self,
        consumer: &GroupConsumer,
        committer: &Arc<Committer>,
        positions: Positions,
    ) {
        // Checked here, in the worker's loop, where rebalances also run: a revocation that
        // committed further since the positions were taken cannot be undone by them.
        let positions = committer.sendable(positions);
        if positions.is_empty() {
            return;
        }
        let started = Instant::now();
        let request = consumer.commit_offsets_async(positions.clone());
        let committer = committer.clone();
        self.committing.push(tokio::spawn(async move {
            match request.await {
                Ok(()) => {
                    tracing::debug!(?positions, "committed");
                    committer.metrics().commit_succeeded(started);
                    committer.committed(&positions);
                }
                Err(e) => {
                    committer.metrics().commit_failed(started);
                    if let Err(fatal) = committer.commit_failed(e) {
                        committer.halt_unclaimed(fatal);
                    }
                }
            }
        }));
    }

    /// Drops what is under way (a simulated crash).
    pub(crate) fn abort(&mut self) {
        if let Some(task) = self.preparing.take() {
            task.abort();
        }
        self.committing.drain(..).for_each(|t| t.abort());
    }

    /// Completes what is under way: the preparation (committed then) and the commits sent.
    pub(crate) async fn settle(
        &mut self,
        consumer: &GroupConsumer,
        committer: &Arc<Committer>,
    ) -> Result<()> {
        if self.is_preparing() {
            let positions = self.prepared().await?;
            self.commit(consumer, committer, positions);
        }
        for task in self.committing.drain(..) {
            let _ = task.await;
        }
        Ok(())
    }
}
