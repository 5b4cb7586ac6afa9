//! Moving time and waiting for quiet: [`Harness::advance`] and [`Harness::settle`].

use std::collections::BTreeSet;
use std::time::Duration;

use kafka_client::TopicPartition;

use crate::app::App;
use crate::error::{Error, Result};

use super::Harness;

/// Between two looks at the workers: short, and virtual under paused time.
const POLL: Duration = Duration::from_millis(5);

/// Quiet looks in a row that make a settle: a commit flushes the tables, which may send
/// records (final window results) that a worker then reads.
const QUIET_LOOKS: u32 = 2;

impl<W: AsRef<App>> Harness<W> {
    /// Moves time forward by `by` while the workers run: the shared clock, tokio's timers,
    /// intervals, cron schedules and idle windows see it pass. Under paused time this is
    /// virtual and returns at once.
    pub async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }

    /// Runs until every source partition of the app is consumed by a running worker that has
    /// processed everything in it, with nothing in flight, table partitions recovered, and
    /// the group's committed offset at its end (the workers commit as the harness asks).
    /// Fails with [`Error::NotSettled`], listing what is still pending, after the
    /// [`settle_timeout`](super::HarnessBuilder::settle_timeout); with
    /// [`Error::WorkerFailed`] if a running worker stopped on an error.
    pub async fn settle(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.settle_timeout;
        let mut quiet = 0;
        loop {
            let pending = self.pending().await?;
            quiet = if pending.is_empty() { quiet + 1 } else { 0 };
            if quiet >= QUIET_LOOKS {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::NotSettled {
                    after: self.settle_timeout,
                    pending,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// What keeps the app from being settled now, one line each; commits on the way.
    async fn pending(&self) -> Result<Vec<String>> {
        let mut pending = Vec::new();
        for i in self.live() {
            let app = self.app(i);
            if let Some(reason) = app.probe().and_then(|p| p.failed) {
                return Err(Error::WorkerFailed { worker: i, reason });
            }
            // Commits what is done (after flushing tables and sends): the committed offsets
            // below then say what the workers finished.
            if let Err(e) = app.commit().await {
                if let Some(reason) = app.probe().and_then(|p| p.failed) {
                    return Err(Error::WorkerFailed { worker: i, reason });
                }
                pending.push(format!("worker {i} could not commit yet: {e}"));
            }
        }
        let probes: Vec<_> = self
            .live()
            .into_iter()
            .filter_map(|i| self.app(i).probe().map(|p| (i, p)))
            .collect();
        for (i, probe) in &probes {
            if probe.in_flight > 0 {
                pending.push(format!(
                    "worker {i} has {} events in flight",
                    probe.in_flight
                ));
            }
        }
        for i in self.live() {
            for p in self.app(i).table_partitions().unwrap_or_default() {
                if p.status == crate::table::PartitionStatus::Recovering {
                    pending.push(format!(
                        "worker {i} is recovering table {} partition {}",
                        p.table, p.partition
                    ));
                }
            }
        }
        for topic in self.sources() {
            for partition in 0..self.partitions(&topic) {
                let tp = TopicPartition::new(topic.as_str(), partition);
                let end = self.data_end(&topic, partition);
                let owner = probes.iter().find_map(|(i, p)| {
                    p.assigned
                        .iter()
                        .find(|(t, _)| *t == tp)
                        .map(|(_, pos)| (*i, *pos))
                });
                match owner {
                    None => pending.push(format!(
                        "{topic}/{partition}: no running worker consumes it"
                    )),
                    Some((i, pos)) if pos < end => pending.push(format!(
                        "{topic}/{partition}: worker {i} has processed up to offset {pos} of {end}"
                    )),
                    Some(_) => {}
                }
                let committed = self.committed(&topic, partition).unwrap_or(0);
                if committed < end {
                    pending.push(format!(
                        "{topic}/{partition}: committed offset {committed} of {end}"
                    ));
                }
            }
        }
        Ok(pending)
    }

    /// The topics the app's agents read (group-by stages included).
    fn sources(&self) -> BTreeSet<String> {
        self.workers
            .first()
            .map(|s| {
                s.worker
                    .as_ref()
                    .agents()
                    .into_iter()
                    .map(|a| a.topic)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The offset after a partition's last record a `read_committed` consumer sees (its
    /// log start when it has none): transaction markers and aborted records after it need no
    /// processing.
    fn data_end(&self, topic: &str, partition: i32) -> i64 {
        match self.cluster.committed_log(topic, partition).last() {
            Some(r) => r.offset + 1,
            None => 0,
        }
    }
}
