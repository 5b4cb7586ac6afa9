//! Configuring and starting a [`Harness`]: how many workers, the seed, the virtual start
//! time, the cluster.

use std::sync::Arc;
use std::time::Duration;

use kafka_client::producer::{Producer, ProducerConfig};
use testkit::MockCluster;

use crate::app::App;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::timestamp::Timestamp;

use super::rng::Rng;
use super::Harness;

/// 2024-01-01T00:00:00Z: the default start of the harness's clock, the same at every run.
const DEFAULT_START: i64 = 1_704_067_200_000;

/// Configures a [`Harness`] ([`Harness::builder`]).
#[derive(Debug, Clone)]
pub struct HarnessBuilder {
    workers: usize,
    seed: u64,
    start: Timestamp,
    partitions: i32,
    settle_timeout: Duration,
    cluster: Option<Arc<MockCluster>>,
}

impl Default for HarnessBuilder {
    fn default() -> Self {
        HarnessBuilder {
            workers: 1,
            seed: 0,
            start: Timestamp::from_millis(DEFAULT_START),
            partitions: 1,
            settle_timeout: Duration::from_secs(120),
            cluster: None,
        }
    }
}

impl HarnessBuilder {
    /// Workers started by [`build`](Self::build) (default 1); more join with
    /// [`Harness::add_worker`].
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// The seed of [`Harness::rng`] (default 0): a scenario that draws its choices from it
    /// replays with the same seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// What the shared clock reads when the harness starts (default 2024-01-01T00:00:00Z);
    /// it then moves with tokio's clock, virtual under paused time.
    pub fn start_at(mut self, start: impl Into<Timestamp>) -> Self {
        self.start = start.into();
        self
    }

    /// Partitions of topics the cluster creates on first use without a declaration (default
    /// 1); declared topics have the partitions the app gives them.
    pub fn partitions(mut self, n: i32) -> Self {
        self.partitions = n;
        self
    }

    /// How long [`Harness::settle`] waits at most (default 120 s, virtual under paused
    /// time): longer than the apps' session timeout, so that a killed worker's partitions
    /// move within it.
    pub fn settle_timeout(mut self, timeout: Duration) -> Self {
        self.settle_timeout = timeout;
        self
    }

    /// Runs the workers on this cluster instead of a new one (one the test configured, or
    /// shares with a second harness).
    pub fn cluster(mut self, cluster: Arc<MockCluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Starts the cluster and the workers: `build` makes one worker's app (the user's real
    /// app builder), and is called again for each restart and added worker. It returns the
    /// [`App`], or a struct of the app and its handles (topics, tables) that implements
    /// `AsRef<App>`, for the test to reach them through [`Harness::worker`].
    pub async fn build<W, F>(self, build: F) -> Result<Harness<W>>
    where
        W: AsRef<App>,
        F: Fn() -> Result<W> + 'static,
    {
        let cluster = match self.cluster {
            Some(cluster) => cluster,
            None => Arc::new(
                MockCluster::builder()
                    .in_memory()
                    .default_partitions(self.partitions)
                    // The apps' session timeouts decide; the broker's floor must not.
                    .group_min_session_timeout(Duration::from_millis(10))
                    .build()
                    .await
                    .map_err(|e| Error::MockCluster { source: e.into() })?,
            ),
        };
        let client = super::transport::client(&cluster)?;
        let producer = Producer::new(client, ProducerConfig::default())
            .await
            .map_err(Error::Kafka)?;
        let mut harness = Harness {
            cluster,
            build: Box::new(build),
            workers: Vec::new(),
            clock: Clock::starting_at(self.start),
            rng: Rng::new(self.seed),
            producer,
            settle_timeout: self.settle_timeout,
        };
        for _ in 0..self.workers {
            harness.add_worker().await?;
        }
        Ok(harness)
    }
}
