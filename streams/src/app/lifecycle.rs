//! Connecting, starting, running and stopping an app's worker, and the operations that need
//! the cluster (`reset`, table partitions).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kafka_client::admin::OffsetSpec;
use kafka_client::producer::{ProducerRecord, RecordMetadata};

use crate::error::{BoxError, Error, Result};
use crate::runtime::{Connection, Runtime, StoredPartition, TablePartition};

use super::{lock, App};

impl App {
    /// The table partitions this worker holds, with their state (recovering or active), key
    /// counts, applied changelog offsets and the changelog records replayed into them.
    pub fn table_partitions(&self) -> Result<Vec<TablePartition>> {
        match self.runtime() {
            Some(runtime) => runtime.tables.partitions(),
            None => Err(Error::NotStarted),
        }
    }

    /// Every partition of every table as this machine's stores hold it, with the changelog's
    /// end when the broker can be reached (connecting if need be): what a worker starting now
    /// would replay. For a stopped app (the CLI's `tables`): [`Error::StoreHeld`] while a
    /// worker on this machine holds the stores.
    pub async fn stored_tables(&self) -> Result<Vec<StoredPartition>> {
        // Before connecting: a store a running worker holds needs no broker to say so.
        crate::runtime::open_stores(&self.inner.decls)?;
        let conn = match self.connect().await {
            Ok(()) => self.conn().ok(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the broker: changelog ends unknown");
                None
            }
        };
        crate::runtime::stored_partitions(&self.inner.decls, conn).await
    }

    /// Starts the app over from its sources: resets the group's committed offsets, deletes
    /// the tables' changelog topics and empties the local stores (the CLI's `reset`). Refused
    /// while a worker of the app runs: [`Error::StoreHeld`] when it holds this machine's
    /// stores. Returns what was done, one line each.
    pub async fn reset(&self) -> Result<Vec<String>> {
        if self.runtime().is_some() {
            return Err(Error::AlreadyRunning {
                action: "reset the app",
            });
        }
        crate::runtime::open_stores(&self.inner.decls)?;
        self.connect().await?;
        crate::runtime::reset(&self.inner.decls, self.conn()?).await
    }

    /// Connects (starting the embedded cluster for `mock://`) without starting agents: enough
    /// to send. [`start`](Self::start) does this too.
    pub async fn connect(&self) -> Result<()> {
        if self.inner.conn.get().is_some() {
            return Ok(());
        }
        let connector = lock(&self.inner.connector).clone();
        let conn = Connection::open(&self.inner.decls, &self.broker(), connector).await?;
        if self.inner.conn.set(conn).is_err() {
            tracing::debug!("connected twice concurrently; keeping the first connection");
        }
        Ok(())
    }

    pub(super) fn conn(&self) -> Result<&Connection> {
        self.inner.conn.get().ok_or(Error::NotStarted)
    }

    pub(super) fn runtime(&self) -> Option<Arc<Runtime>> {
        lock(&self.inner.runtime).clone()
    }

    /// Connects, creates the declared topics, joins the group and starts every agent; returns
    /// once this worker has partitions. Fails when the app cannot work: brokers unreachable,
    /// group settings the broker refuses, a source topic that does not exist and cannot be
    /// created, a table's store file locked by another process or unreadable (the error names
    /// it).
    pub async fn start(&self) -> Result<()> {
        if self.runtime().is_some() {
            return Err(Error::AlreadyRunning {
                action: "start the app again",
            });
        }
        // Only the worker opens stores (declarations do no I/O): a store file another process
        // holds is an error here, before anything connects.
        for core in self.inner.decls.tables().iter() {
            core.open_store()?;
        }
        self.connect().await?;
        // The web server listens first: the worker advertises its port when it joins.
        let endpoint = self.bind_web().await?;
        let stop = self.inner.stop.subscribe();
        let runtime = match Runtime::start(&self.inner.decls, self.conn()?, stop, endpoint).await {
            Ok(runtime) => Arc::new(runtime),
            Err(e) => {
                self.stop_web().await;
                return Err(e);
            }
        };
        *lock(&self.inner.runtime) = Some(runtime.clone());
        self.start_web(runtime);
        tracing::info!(app = %self.id(), broker = %self.broker(), "worker started");
        Ok(())
    }

    /// Asks a running app to stop gracefully; returns at once (safe to call from an agent).
    /// Agents finish their in-flight events, which are then committed.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    /// Whether a stop was asked for.
    pub fn is_stopping(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Waits until a stop is asked for, or the worker stopped on an error.
    pub async fn stopped(&self) {
        let mut rx = self.inner.stop.subscribe();
        let asked = rx.wait_for(|stop| *stop);
        match self.runtime() {
            Some(runtime) => {
                tokio::select! {
                    _ = asked => {}
                    _ = runtime.stopped() => {}
                }
            }
            None => {
                let _ = asked.await;
            }
        }
    }

    /// Stops gracefully and waits until done: agents finish in-flight events, sends are
    /// acknowledged, done offsets are committed, the group is left. Each step waits at most
    /// `worker_shutdown_timeout`. Returns the error that stopped the worker, if one did.
    pub async fn shutdown(&self) -> Result<()> {
        self.stop();
        self.stop_web().await;
        let result = match self.runtime() {
            Some(runtime) => runtime.join().await,
            None => Ok(()),
        };
        // Askers waiting now get an error; the reply topic was this worker's alone.
        let timeout = self.settings().worker_shutdown_timeout;
        self.inner.decls.replies.close(timeout).await;
        if let Ok(producer) = self.inner.decls.outbox.app_producer() {
            // Bounded like the rest of the stop: no event was committed past a record that is
            // still undelivered, so its event is processed again after a restart.
            let timeout = self.settings().worker_shutdown_timeout;
            match tokio::time::timeout(timeout, producer.close()).await {
                Ok(closed) => closed?,
                Err(_) => {
                    return result.and(Err(Error::Timeout {
                        what: "delivering the app's last records at shutdown".into(),
                        after: timeout,
                    }))
                }
            }
        }
        result
    }

    /// The topic this worker's asks ([`Agent::ask`](crate::Agent::ask)) get their replies on,
    /// once the first ask created it: `<app id>-reply-<random>`.
    pub fn reply_topic(&self) -> Option<String> {
        self.inner.decls.replies.topic().map(str::to_owned)
    }

    /// Stops like a crash, for tests of recovery: agents are aborted, nothing is committed,
    /// the group is not left (its partitions move after the session timeout). Only with the
    /// `testing` feature.
    #[cfg(feature = "testing")]
    pub async fn abort(&self) {
        if let Some(runtime) = self.runtime() {
            runtime.set_aborted();
            self.stop();
            self.stop_web().await;
            let _ = runtime.join().await;
        }
    }

    /// Commits the done offsets now (they are also committed every
    /// `broker_commit_interval`), after every record sent so far is acknowledged; the error it
    /// met otherwise (an earlier failure that stopped commits is
    /// [`Error::CommitsStopped`]). Only with the `testing` feature.
    #[cfg(feature = "testing")]
    pub async fn commit(&self) -> Result<()> {
        match self.runtime() {
            Some(runtime) => runtime.commit_now().await,
            None => Err(Error::NotStarted),
        }
    }

    /// Starts, runs until Ctrl-C (or [`stop`](Self::stop), or an error that stops the
    /// worker), then shuts down gracefully.
    pub async fn run(&self) -> Result<()> {
        let mut interrupted = ctrl_c_listener();
        self.start().await?;
        tokio::select! {
            _ = &mut interrupted => tracing::info!("interrupted: finishing in-flight events"),
            _ = self.stopped() => {}
        }
        self.shutdown().await
    }

    /// Runs the app while `work` runs (sending demo records, say), then waits until every
    /// event is processed (see [`wait_caught_up`](Self::wait_caught_up)) and shuts down.
    pub async fn run_until<F, E>(&self, work: F, timeout: Duration) -> Result<()>
    where
        F: Future<Output = Result<(), E>>,
        E: Into<BoxError>,
    {
        let mut interrupted = ctrl_c_listener();
        self.start().await?;
        let outcome = tokio::select! {
            r = work => r.map_err(|e| Error::Demo { source: e.into() }),
            _ = &mut interrupted => Ok(()),
            _ = self.stopped() => Ok(()),
        };
        let caught_up = match outcome {
            Ok(()) if !self.is_stopping() => self.wait_caught_up(timeout).await,
            other => other,
        };
        let shut = self.shutdown().await;
        shut.and(caught_up)
    }

    /// Waits until every partition this worker consumes is processed up to its end, and
    /// stays so (records sent by agents to topics that other agents read included). Commits
    /// as it goes.
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<()> {
        let conn = self.conn()?;
        let runtime = self.runtime().ok_or(Error::NotStarted)?;
        let producer = self.inner.decls.outbox.producer()?;
        let work = async {
            let mut quiet_rounds = 0;
            loop {
                producer.flush().await;
                // A commit flushes the tables, which sends what they made (emit-final window
                // results) to topics this worker may read.
                match runtime.commit_now().await {
                    // Exactly-once: a transaction aborted and the worker restarts from the last
                    // committed one; what it redoes is waited for like the rest.
                    Err(e @ (Error::TransactionAborted { .. } | Error::Fenced { .. })) => {
                        tracing::info!(error = %e, "waiting for the restarted worker")
                    }
                    other => other?,
                }
                let assigned = runtime.acks.assigned();
                let specs = assigned
                    .iter()
                    .map(|tp| (tp.clone(), OffsetSpec::Latest))
                    .collect();
                let ends = conn.admin.list_offsets(specs).await?;
                let behind = assigned.iter().any(|tp| {
                    let end = ends.get(tp).map_or(0, |o| o.offset);
                    runtime.acks.position(tp).unwrap_or(0) < end
                });
                quiet_rounds = if behind { 0 } else { quiet_rounds + 1 };
                if quiet_rounds >= 3 || self.is_stopping() {
                    return Ok::<(), Error>(());
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| Error::Timeout {
                what: "waiting for every event to be processed".into(),
                after: timeout,
            })?
    }

    /// Sends a record and waits for its acknowledgement (the CLI's `send`).
    pub(crate) async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.inner.decls.outbox.send_and_wait(record).await
    }

    /// Waits until every record sent so far is acknowledged; an error if any record the app
    /// sent was not delivered (the worker then commits nothing past it and stops).
    pub async fn flush(&self) -> Result<()> {
        self.inner.decls.outbox.flush().await
    }
}

/// A future that completes on Ctrl-C, listening from now on: the handler is installed before
/// the first event flows, so an early Ctrl-C stops the worker gracefully instead of killing it.
fn ctrl_c_listener() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    let mut listener = Box::pin(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C ({e}): stop the worker another way");
            std::future::pending::<()>().await;
        }
    });
    // The first poll registers the signal handler.
    match futures::FutureExt::now_or_never(listener.as_mut()) {
        Some(()) => Box::pin(std::future::ready(())),
        None => listener,
    }
}
