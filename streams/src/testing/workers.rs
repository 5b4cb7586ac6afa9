//! The simulated workers: start, kill (a crash), stop (graceful), restart, add, force a
//! rebalance, and who owns what.

use kafka_client::TopicPartition;

use crate::app::App;
use crate::error::{Error, Result};
use crate::table::PartitionStatus;

use super::Harness;

/// One worker: the latest app built for it, and whether it runs.
pub(super) struct Slot<W> {
    pub worker: W,
    /// The worker's app (a clone of the one in `worker`).
    pub app: App,
    pub live: bool,
}

impl<W> Slot<W> {
    pub fn app(&self) -> &App {
        &self.app
    }
}

impl<W: AsRef<App>> Harness<W> {
    /// Worker `i` as the build closure made it (its latest incarnation, running or not).
    ///
    /// # Panics
    ///
    /// When there is no worker `i` (a mistake in the test itself, like indexing a `Vec`).
    pub fn worker(&self, i: usize) -> &W {
        match self.workers.get(i) {
            Some(slot) => &slot.worker,
            None => panic!(
                "no worker {i}: the harness has {} worker slots",
                self.workers.len()
            ),
        }
    }

    /// Worker `i`'s app.
    ///
    /// # Panics
    ///
    /// When there is no worker `i`.
    pub fn app(&self, i: usize) -> &App {
        match self.workers.get(i) {
            Some(slot) => &slot.app,
            None => panic!(
                "no worker {i}: the harness has {} worker slots",
                self.workers.len()
            ),
        }
    }

    /// Worker slots, running or not.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether the harness has no worker slot.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The indexes of the running workers.
    pub fn live(&self) -> Vec<usize> {
        (0..self.workers.len())
            .filter(|&i| self.workers[i].live)
            .collect()
    }

    /// Whether worker `i` runs.
    pub fn is_live(&self, i: usize) -> bool {
        self.workers.get(i).is_some_and(|s| s.live)
    }

    /// Starts one more worker (it joins the group: a rebalance); returns its index.
    pub async fn add_worker(&mut self) -> Result<usize> {
        let slot = self.make()?;
        self.workers.push(slot);
        let i = self.workers.len() - 1;
        self.start(i).await?;
        Ok(i)
    }

    /// Crashes worker `i` (the `testing` hook [`App::abort`]): its agents stop, nothing is
    /// committed, the group is not left. Its partitions move once the group's session timeout
    /// passes (virtual time under paused tokio time: [`advance`](Self::advance) or
    /// [`settle`](Self::settle) gets there).
    pub async fn kill(&mut self, i: usize) -> Result<()> {
        self.running(i, "kill a worker")?;
        self.workers[i].live = false;
        self.app(i).abort().await;
        Ok(())
    }

    /// Stops worker `i` gracefully: it finishes and commits its in-flight events and leaves
    /// the group (its partitions move at once). The error that stopped it, if one did.
    pub async fn stop(&mut self, i: usize) -> Result<()> {
        self.running(i, "stop a worker")?;
        self.workers[i].live = false;
        self.app(i).shutdown().await
    }

    /// Stops every running worker gracefully (as [`stop`](Self::stop)); the first error
    /// that stopped one, if any. Dropping the harness only asks them to stop.
    pub async fn shutdown(mut self) -> Result<()> {
        let mut result = Ok(());
        for i in self.live() {
            let stopped = self.stop(i).await;
            result = result.and(stopped);
        }
        result
    }

    /// Starts worker `i` again as a fresh app from the build closure (after
    /// [`kill`](Self::kill) or [`stop`](Self::stop), or after it stopped on an error, which
    /// is killed first): it joins the group and recovers its tables from their changelogs.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        if i >= self.workers.len() {
            return Err(self.no_worker(i, "restart a worker", "does not exist"));
        }
        if self.workers[i].live {
            if !self.app(i).probe().is_some_and(|p| p.stopped) {
                return Err(self.no_worker(i, "restart a worker", "is running"));
            }
            self.workers[i].live = false;
            self.app(i).abort().await;
        }
        self.workers[i] = self.make()?;
        self.start(i).await
    }

    /// Forces a rebalance: a running worker picked with [`rng`](Self::rng) leaves the group
    /// gracefully and rejoins as a fresh app. Returns its index.
    pub async fn rebalance(&mut self) -> Result<usize> {
        let live = self.live();
        let Some(&i) = self.rng.pick(&live) else {
            return Err(self.no_worker(0, "rebalance", "is not running (no worker runs)"));
        };
        self.stop(i).await?;
        self.restart(i).await?;
        Ok(i)
    }

    /// The running worker that consumes `topic`'s `partition` now, if one does.
    pub fn owner(&self, topic: &str, partition: i32) -> Option<usize> {
        let tp = TopicPartition::new(topic, partition);
        self.live().into_iter().find(|&i| {
            self.app(i)
                .probe()
                .is_some_and(|p| p.assigned.iter().any(|(t, _)| *t == tp))
        })
    }

    /// The running worker whose `table` partition is active (it serves reads and writes).
    pub fn table_owner(&self, table: &str, partition: i32) -> Option<usize> {
        self.with_table_status(table, partition, PartitionStatus::Active)
            .into_iter()
            .next()
    }

    /// The running workers that keep `table`'s `partition` as a standby replica (with
    /// `table_standby_replicas` in the app): the ones a failover promotes.
    pub fn standbys(&self, table: &str, partition: i32) -> Vec<usize> {
        self.with_table_status(table, partition, PartitionStatus::Standby)
    }

    fn with_table_status(
        &self,
        table: &str,
        partition: i32,
        status: PartitionStatus,
    ) -> Vec<usize> {
        self.live()
            .into_iter()
            .filter(|&i| {
                self.app(i).table_partitions().is_ok_and(|parts| {
                    parts
                        .iter()
                        .any(|p| p.table == table && p.partition == partition && p.status == status)
                })
            })
            .collect()
    }

    /// A worker slot's new app, on the harness's cluster and clock.
    fn make(&self) -> Result<Slot<W>> {
        let worker = (self.build)()?;
        let app = worker.as_ref().clone();
        super::transport::attach(&app, &self.cluster)?;
        app.set_clock(self.clock.clone())?;
        Ok(Slot {
            worker,
            app,
            live: false,
        })
    }

    async fn start(&mut self, i: usize) -> Result<()> {
        self.app(i).start().await?;
        self.workers[i].live = true;
        Ok(())
    }

    fn running(&self, i: usize, action: &'static str) -> Result<()> {
        match self.workers.get(i) {
            None => Err(self.no_worker(i, action, "does not exist")),
            Some(slot) if !slot.live => Err(self.no_worker(i, action, "is not running")),
            Some(_) => Ok(()),
        }
    }

    fn no_worker(&self, worker: usize, action: &'static str, state: &'static str) -> Error {
        Error::Worker {
            worker,
            action,
            state,
            workers: self.workers.len(),
        }
    }
}
