//! One worker: the group consumer, routing records to agents, the committer, rebalances, and
//! the agents' tasks. Reads the declarations; user code reaches it only through the outbox.

mod assignor;
mod bootstrap;
mod commit;
mod connection;
mod failures;
mod idle;
mod maintenance;
mod range_routes;
mod rebalance;
mod recent_errors;
mod router;
pub(crate) mod routes;
mod services;
mod standby;
mod status;
mod tables;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_client::consumer::{AutoOffsetReset, ConsumerConfig, CorruptBatchPolicy, IsolationLevel};
use kafka_client::group::{GroupConfig, GroupConsumer};
use kafka_client::producer::{Producer, ProducerConfig};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub(crate) use connection::Connection;
pub use maintenance::StoredPartition;
pub(crate) use maintenance::{open_stores, reset, stored_partitions};
pub(crate) use recent_errors::RecentErrors;
pub(crate) use status::group_status;
pub use status::{GroupStatus, MemberStatus, Readiness, SourceLag, TableRecovery};
pub use tables::TablePartition;

use crate::declarations::{Declarations, Instance};
use crate::endpoint::Endpoint;
use crate::error::{panic_message, AgentFailure, Error, Result};
use crate::offsets::{Acks, Releases};
use crate::outbox::in_transactions as in_transactions_of;
use crate::settings::ProcessingGuarantee;
use assignor::TableAssignor;
use commit::{Committer, Transactional};
use idle::IdleServices;
use range_routes::RangeRoutes;
use rebalance::Listener;
use router::{Router, Target};
use services::Services;
use tables::Tables;
use worker::{CommitRequest, Queues, Worker};

/// Where a worker is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunState {
    /// Joining the group for the first time.
    Joining,
    /// Has been given partitions this many times.
    Running { rebalances: u64 },
    /// Stopped on an error that retrying cannot fix.
    Failed(String),
    /// Stopped as asked.
    Stopped,
}

/// A running worker.
pub(crate) struct Runtime {
    pub acks: Arc<Acks>,
    pub tables: Arc<Tables>,
    /// Who holds which partition, as the last assignment said.
    routes: Arc<Mutex<assignor::Routes>>,
    /// The endpoint this worker advertises to the group, if any.
    pub endpoint: Option<Endpoint>,
    /// The worker's last errors (the web overview shows them).
    pub errors: Arc<RecentErrors>,
    state: watch::Receiver<RunState>,
    // Set only by the `testing` hook App::abort; the worker reads its clone.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    aborted: Arc<AtomicBool>,
    commits: mpsc::Sender<CommitRequest>,
    task: Mutex<Option<JoinHandle<Result<()>>>>,
}

/// What a worker is built from, kept across its restarts.
struct Parts {
    decls: Arc<Declarations>,
    errors: Arc<RecentErrors>,
    conn: Connection,
    acks: Arc<Acks>,
    tables: Arc<Tables>,
    assignor: Arc<TableAssignor>,
    /// The assignor of apps without tables (range, carrying the router).
    range: Arc<RangeRoutes>,
    state: watch::Sender<RunState>,
    aborted: Arc<AtomicBool>,
    /// Whether this worker leads its group's current generation (for leader-only services).
    leader: Arc<watch::Sender<bool>>,
    /// The topic an app without agents subscribes to, to be in its group.
    group_topic: Option<String>,
    /// Under exactly-once, the transactional id of this worker's producers.
    transactional_id: String,
}

impl Parts {
    /// Under exactly-once, a transactional producer for a new worker: its start fences the
    /// previous one with the same id (a crashed or replaced worker) and aborts its open
    /// transaction.
    async fn transactional(&self) -> Result<Option<Transactional>> {
        let settings = &self.decls.settings;
        if settings.processing_guarantee != ProcessingGuarantee::ExactlyOnce {
            return Ok(None);
        }
        let config = ProducerConfig::default()
            .with_linger(settings.producer_linger)
            .with_transactional_id(self.transactional_id.clone())
            .with_transaction_timeout(settings.transaction_timeout);
        let producer = Producer::new(self.conn.client.clone(), config)
            .await
            .map_err(|e| match e {
                e if e.is_fenced() => Error::Fenced {
                    transactional_id: self.transactional_id.clone(),
                    source: Box::new(e.into()),
                },
                e => Error::Transactional {
                    transactional_id: self.transactional_id.clone(),
                    source: e,
                },
            })?;
        producer.begin_transaction()?;
        tracing::info!(transactional_id = %self.transactional_id, "exactly-once: transactional producer ready");
        Ok(Some(Transactional {
            producer: Arc::new(producer),
            id: self.transactional_id.clone(),
            retries_seen: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Starts every agent and service (again, on a restart) behind a new router and
    /// committer.
    async fn start_agents(&self) -> Result<Started> {
        let settings = &self.decls.settings;
        let transactional = self.transactional().await?;
        let in_transactions = transactional.as_ref().map(|t| t.producer.clone());
        let committer = Arc::new(Committer::new(
            self.acks.clone(),
            self.decls.outbox.clone(),
            self.tables.clone(),
            transactional,
            settings.worker_shutdown_timeout,
        ));
        let mut router = Router::new(self.acks.clone());
        let mut tasks = Vec::new();
        // Channels carry batches of up to DISPATCH_RUN records: this many batches hold about
        // `stream_buffer_maxsize` events.
        let batches = (settings.stream_buffer_maxsize / worker::DISPATCH_RUN).max(2);
        for agent in self.decls.start_agents(batches) {
            let mut instances = Vec::new();
            for (
                i,
                Instance {
                    sender,
                    releases,
                    work,
                },
            ) in agent.instances.into_iter().enumerate()
            {
                releases.measure_latency(self.decls.outbox.metrics().processing(&agent.name));
                instances.push((sender, releases.clone()));
                // Under exactly-once the agent's sends go into the worker's transactions.
                let work = match &in_transactions {
                    Some(producer) => Box::pin(in_transactions_of(producer.clone(), work)),
                    None => work,
                };
                tasks.push(spawn_instance(
                    agent.name.clone(),
                    i,
                    work,
                    releases,
                    agent.stopped.clone(),
                    committer.clone(),
                ));
            }
            let metrics = self.decls.outbox.metrics();
            let events_in = metrics.events_in(&agent.topic, &agent.name);
            router.add(
                agent.topic,
                Target::new(agent.name, instances, agent.stopped, events_in),
            );
        }
        for agent in self.decls.start_channel_agents() {
            for (i, work) in agent.works.into_iter().enumerate() {
                let work = match &in_transactions {
                    Some(producer) => Box::pin(in_transactions_of(producer.clone(), work)),
                    None => work,
                };
                // No events: nothing to release.
                let releases = Arc::new(Releases::default());
                router.channel_agents.tasks.push(spawn_instance(
                    agent.name.clone(),
                    i,
                    work,
                    releases,
                    agent.stopped.clone(),
                    committer.clone(),
                ));
            }
            router.channel_agents.stops.push(agent.stop);
        }
        let services = Services::start(&self.decls, &self.leader, &committer, in_transactions);
        Ok((router, tasks, committer, services))
    }

    /// A worker for `router`'s agents: a group consumer subscribed to their topics.
    async fn worker(
        &self,
        (router, tasks, committer, services): Started,
        queues: Queues,
    ) -> Result<Worker> {
        let settings = &self.decls.settings;
        let reset = if settings.consumer_auto_offset_reset_earliest {
            AutoOffsetReset::Earliest
        } else {
            AutoOffsetReset::Latest
        };
        let group = GroupConfig::new(&self.decls.id)
            .with_auto_commit(false)
            .with_session_timeout(settings.broker_session_timeout)
            .with_heartbeat_interval(settings.broker_heartbeat_interval)
            .with_rebalance_timeout(settings.broker_rebalance_timeout);
        let group = match self.decls.worker_instance_id() {
            Some(id) => group.with_group_instance_id(id),
            None => group,
        };
        // With tables, partitions go by number (co-partitioning) and standbys are placed;
        // without, by `range` (then cooperative-sticky, the client's defaults), routed.
        let group = if self.tables.is_empty() {
            let sticky = Arc::new(kafka_client::group::CooperativeStickyAssignor::default());
            group.with_assignors(vec![self.range.clone(), sticky])
        } else {
            group.with_assignors(vec![self.assignor.clone()])
        };
        let corrupt_batches = if settings.consumer_skip_corrupt_batches {
            CorruptBatchPolicy::Skip
        } else {
            CorruptBatchPolicy::Fail
        };
        // Exactly-once reads only committed records (and offsets: a new owner waits for an
        // open transaction's offsets to settle).
        let isolation = match settings.processing_guarantee {
            ProcessingGuarantee::ExactlyOnce => IsolationLevel::ReadCommitted,
            ProcessingGuarantee::AtLeastOnce => IsolationLevel::ReadUncommitted,
        };
        let mut consumer = GroupConsumer::new(
            self.conn.client.clone(),
            ConsumerConfig::default()
                .with_isolation_level(isolation)
                .with_auto_offset_reset(reset)
                .with_corrupt_batch_policy(corrupt_batches)
                .with_fetch_max_wait(Duration::from_millis(100)),
            group,
        )
        .await?;
        consumer.set_listener(Listener {
            committer: committer.clone(),
            admin: self.conn.admin.clone(),
            earliest: settings.consumer_auto_offset_reset_earliest,
            shutdown_timeout: settings.worker_shutdown_timeout,
            state: self.state.clone(),
            leader: self.leader.clone(),
        });
        consumer.subscribe(router.topics().into_iter().chain(self.group_topic.clone()));
        let idle = IdleServices::start(self.tables.cores(), self.decls.clock(), &committer);
        Ok(Worker {
            group: self.decls.id.clone(),
            consumer,
            router,
            committer,
            tasks,
            services,
            leader: self.leader.clone(),
            settings: settings.clone(),
            aborted: self.aborted.clone(),
            queues,
            background: Default::default(),
            idle,
        })
    }
}

/// A worker's agents and services, started: the router to their instances, the agents'
/// tasks, the committer they report to, the running services.
type Started = (Router, Vec<JoinHandle<()>>, Arc<Committer>, Services);

/// Transactions aborted in a row, each followed by a restart, before the worker stops: a
/// cause that outlives restarts (a record the broker always refuses) must not loop forever.
const MAX_ABORTS_IN_A_ROW: u32 = 10;

/// Runs workers one after the other: a worker whose agent failed is replaced by a new one
/// (every agent from the last committed offsets) while `restart_failed_agents` allows.
async fn supervise(parts: Parts, mut worker: Worker, stop: watch::Receiver<bool>) -> Result<()> {
    let allowed = parts.decls.settings.restart_failed_agents;
    let mut restarts = 0;
    // Aborted transactions in a row (exactly-once), and the pause before the next restart.
    let mut aborts = 0;
    let mut pause = Duration::from_millis(100);
    let outcome = loop {
        let committer = worker.committer.clone();
        let (outcome, queues) = worker.run(stop.clone()).await;
        if committer.transactions_committed() > 0 {
            aborts = 0;
            pause = Duration::from_millis(100);
        }
        let running = !parts.aborted.load(Ordering::Acquire) && !*stop.borrow();
        if let Err(e) = &outcome {
            parts
                .errors
                .record(parts.decls.clock().now(), e.to_string());
        }
        let restart = match &outcome {
            Err(Error::AgentFailed { .. }) if running && restarts < allowed => {
                restarts += 1;
                tracing::warn!(error = %outcome.as_ref().unwrap_err(), restart = restarts, of = allowed,
                    "restarting the worker: every agent starts again from the last committed offsets");
                true
            }
            // A fenced producer too, as Kafka Streams migrates its tasks: the broker aborted a
            // transaction that outlived transaction_timeout, or this worker's previous
            // incarnation took the id over; a second live worker under the same name is
            // stopped by the group (FENCED_INSTANCE_ID).
            Err(e @ (Error::TransactionAborted { .. } | Error::Fenced { .. }))
                if running && aborts < MAX_ABORTS_IN_A_ROW =>
            {
                aborts += 1;
                tracing::warn!(error = %e, ?pause,
                    "restarting the worker from the last committed transaction");
                let mut stopping = stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopping.wait_for(|s| *s) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
                true
            }
            _ => false,
        };
        if !restart {
            break outcome;
        }
        let agents = match parts.start_agents().await {
            Ok(agents) => agents,
            Err(e) => break Err(e),
        };
        worker = match parts.worker(agents, queues).await {
            Ok(worker) => worker,
            Err(e) => break Err(e),
        };
    };
    // The app stops: channels refuse sends from now on (none waits for room forever).
    parts.decls.close_channels();
    match &outcome {
        Ok(()) => {
            tracing::info!(group = %parts.decls.id, "worker stopped");
            parts.state.send_replace(RunState::Stopped);
        }
        Err(e) => {
            tracing::error!(group = %parts.decls.id, error = %e, "worker stopped");
            parts.state.send_replace(RunState::Failed(e.to_string()));
        }
    }
    outcome
}

impl Runtime {
    /// Starts every agent, creates the declared topics, joins the group advertising
    /// `endpoint` (where its web server is); returns once this worker has partitions, or with
    /// the error that keeps it from ever getting them.
    pub(crate) async fn start(
        decls: &Arc<Declarations>,
        conn: &Connection,
        stop: watch::Receiver<bool>,
        endpoint: Option<Endpoint>,
    ) -> Result<Runtime> {
        decls.check_agents()?;
        let settings = decls.settings.clone();
        let acks = Arc::new(Acks::default());
        let cores = decls.tables().clone();
        let cache_full = Arc::new(tokio::sync::Notify::new());
        for core in &cores {
            core.set_cache(settings.table_cache_max_bytes, cache_full.clone());
        }
        let standby_replicas = cores.iter().map(|c| c.spec().standbys()).max().unwrap_or(0);
        let advertised = endpoint.as_ref().map(Endpoint::to_string);
        let (assignor, placement) =
            TableAssignor::new(standby_replicas as usize, advertised.clone());
        let routes = assignor.routes();
        let range = Arc::new(RangeRoutes::new(advertised, routes.clone()));
        let (tables, recovered) = Tables::new(
            cores,
            conn.client.clone(),
            conn.admin.clone(),
            placement,
            decls.outbox.metrics().clone(),
            cache_full,
            bootstrap::join_sources(decls),
        );
        let (state_tx, mut state) = watch::channel(RunState::Joining);
        let aborted = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(RecentErrors::default());
        let parts = Parts {
            decls: decls.clone(),
            errors: errors.clone(),
            conn: conn.clone(),
            acks: acks.clone(),
            tables: tables.clone(),
            assignor: Arc::new(assignor),
            range,
            state: state_tx,
            aborted: aborted.clone(),
            leader: Arc::new(watch::channel(false).0),
            group_topic: decls.group_topic(),
            transactional_id: transactional_id(decls),
        };
        let agents = parts.start_agents().await?;
        let sources: Vec<String> = agents
            .0
            .topics()
            .into_iter()
            .chain(parts.group_topic.clone())
            .collect();
        conn.create_topics(decls, &sources).await?;
        conn.create_changelogs(decls).await?;
        let (commits, commit_requests) = mpsc::channel(4);
        let queues = Queues {
            commit_requests,
            recovered,
        };
        let worker = parts.worker(agents, queues).await?;
        let task = tokio::spawn(supervise(parts, worker, stop));
        let runtime = Runtime {
            acks,
            tables,
            routes,
            endpoint,
            errors,
            state: state.clone(),
            aborted,
            commits,
            task: Mutex::new(Some(task)),
        };
        // An app that reads no topic (it only sends, or only has channel agents) joins no
        // group: nothing to wait for.
        if sources.is_empty() {
            return Ok(runtime);
        }
        // Return once the group gave this worker its partitions, or failed for good.
        let limit = settings.broker_rebalance_timeout + Duration::from_secs(10);
        let joined =
            tokio::time::timeout(limit, state.wait_for(|s| !matches!(s, RunState::Joining)))
                .await
                .map(|s| s.map(|s| s.clone()));
        match joined {
            Err(_) => tracing::warn!(
                ?limit,
                "no partitions assigned yet; the worker keeps trying"
            ),
            Ok(now) => {
                if matches!(now, Ok(RunState::Failed(_) | RunState::Stopped) | Err(_)) {
                    return Err(runtime.join().await.err().unwrap_or(Error::WorkerStopped));
                }
            }
        }
        Ok(runtime)
    }

    /// Waits until the worker stopped (asked to, or failed).
    pub(crate) async fn stopped(&self) {
        let mut state = self.state.clone();
        let _ = state
            .wait_for(|s| matches!(s, RunState::Failed(_) | RunState::Stopped))
            .await;
    }

    /// Where the worker is in its life (for `/ready` and a test harness).
    pub(crate) fn state(&self) -> RunState {
        self.state.borrow().clone()
    }

    /// Waits for the worker task and returns how it ended.
    pub(crate) async fn join(&self) -> Result<()> {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        match task {
            Some(task) => task.await.unwrap_or_else(|e| Err(Error::task("worker", e))),
            None => Ok(()),
        }
    }

    /// Makes the next stop a crash: agents aborted, nothing committed, the group not left.
    #[cfg(feature = "testing")]
    pub(crate) fn set_aborted(&self) {
        self.aborted.store(true, Ordering::Release);
    }

    /// Commits the done offsets now.
    pub(crate) async fn commit_now(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.commits
            .send(reply)
            .await
            .map_err(|_| Error::WorkerStopped)?;
        answer.await.map_err(|_| Error::WorkerStopped)?
    }
}

/// The transactional id of this process's workers: `<app>-<worker_instance_id>`, so that a
/// worker restarted under its name fences its previous incarnation and aborts its open
/// transaction at once; without a name, `<app>-<random>` (a crashed worker's open transaction
/// then holds read_committed readers back until `transaction_timeout`).
fn transactional_id(decls: &Declarations) -> String {
    match &decls.worker_instance_id() {
        Some(instance) => format!("{}-{instance}", decls.id),
        None => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            format!("{}-{:016x}", decls.id, h.finish())
        }
    }
}

/// Runs one agent instance. What it released is settled when it finishes, failed if it ends
/// with an error (the events it was handling are then not committed), panics or is aborted.
/// An error or a panic stops the worker (Faust's crashing supervisor): its events would
/// otherwise wait uncommitted while the worker runs on.
fn spawn_instance(
    name: String,
    instance: usize,
    work: futures::future::BoxFuture<'static, Result<(), AgentFailure>>,
    releases: Arc<Releases>,
    stopped: Arc<AtomicBool>,
    committer: Arc<Committer>,
) -> JoinHandle<()> {
    use futures::FutureExt;
    struct FailUnsettled(Option<Arc<Releases>>);
    impl Drop for FailUnsettled {
        fn drop(&mut self) {
            if let Some(r) = self.0.take() {
                r.fail_unsettled();
            }
        }
    }
    tokio::spawn(async move {
        let mut guard = FailUnsettled(Some(releases));
        let outcome = match std::panic::AssertUnwindSafe(work).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(panic) => Err(AgentFailure::Panicked(panic_message(&*panic).to_owned())),
        };
        let releases = guard.0.take();
        match outcome {
            Ok(()) => {
                releases.iter().for_each(|r| r.settle());
                tracing::debug!(agent = %name, instance, "agent finished");
            }
            Err(source) => {
                releases.iter().for_each(|r| r.fail_unsettled());
                stopped.store(true, Ordering::Release);
                committer
                    .agent_failed(Error::AgentFailed {
                        agent: name,
                        instance,
                        source,
                    })
                    .await;
            }
        }
    })
}
