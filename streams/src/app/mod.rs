//! The app: the builder ([`builder`]), the declarations facade ([`declare`]) and the
//! lifecycle that starts and stops the runtime ([`lifecycle`]); `App` itself is here.

mod builder;
mod declare;
mod inspect;
mod lifecycle;
#[cfg(feature = "testing")]
mod probe;
mod query;
mod web;

pub use builder::AppBuilder;
pub use declare::TopicSummary;
pub use inspect::{ReadFrom, TableEntries};

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use stores::StoreUrl;
use tokio::sync::watch;

use crate::broker::BrokerUrl;
use crate::clock::Clock;
use crate::declarations::Shared;
use crate::error::{Error, Result};
use crate::runtime::{Connection, Runtime};
use crate::settings::Settings;

/// A stream-processing application: the Rust form of `faust.App`.
///
/// Declare topics and agents, then run it with [`main`](App::main) (a CLI), [`run`](App::run)
/// (until Ctrl-C or [`stop`](App::stop)), or [`start`](App::start) and
/// [`shutdown`](App::shutdown). The app is consumer group `<id>`. Cheap to clone.
///
/// ```no_run
/// use futures::StreamExt;
/// use streams::App;
///
/// #[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
/// struct Purchase { username: String, currency: String, amount: u32 }
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> streams::Result<()> {
/// let app = App::builder("demo-app").broker("kafka://localhost:9092").build()?;
/// let purchases = app.topic::<String, Purchase>("purchases");
/// let total = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
/// let sum = total.clone();
/// app.agent(&purchases, move |mut stream| async move {
///     while let Some(purchase) = stream.next().await {
///         sum.fetch_add(purchase.amount, std::sync::atomic::Ordering::Relaxed);
///     }
/// });
/// app.start().await?;
/// for (user, amount) in [("ann", 3), ("bob", 4)] {
///     let p = Purchase { username: user.into(), currency: "EUR".into(), amount };
///     purchases.send(p.username.clone(), p).await?;
/// }
/// app.wait_caught_up(std::time::Duration::from_secs(10)).await?;
/// app.shutdown().await?;
/// assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), 7);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    decls: Shared,
    broker: Mutex<BrokerUrl>,
    conn: OnceLock<Connection>,
    /// Opens the connections instead of TCP (a test's in-memory cluster); `None` is TCP.
    connector: Mutex<Option<Arc<dyn kafka_client::Connector>>>,
    runtime: Mutex<Option<Arc<Runtime>>>,
    stop: watch::Sender<bool>,
    /// The web server's settings (the CLI may change them), pages and, once started, server.
    web: Mutex<web::WebState>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("id", &self.inner.decls.id)
            .field("broker", &self.broker().to_string())
            .field("store", &self.inner.decls.store.to_string())
            .finish_non_exhaustive()
    }
}

impl App {
    /// The app id (and consumer group).
    pub fn id(&self) -> &str {
        &self.inner.decls.id
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.decls.settings
    }

    /// The broker URL the app uses (or will use).
    pub fn broker(&self) -> BrokerUrl {
        lock(&self.inner.broker).clone()
    }

    /// The store URL for tables.
    pub fn store_url(&self) -> &StoreUrl {
        &self.inner.decls.store
    }

    /// Changes the broker before the app starts (the CLI's `--broker`).
    pub fn set_broker(&self, url: &str) -> Result<()> {
        if self.inner.conn.get().is_some() {
            return Err(Error::AlreadyRunning {
                action: "change the broker",
            });
        }
        *lock(&self.inner.broker) = BrokerUrl::parse(url)?;
        Ok(())
    }

    /// Names this worker in the group before it starts (the CLI's `worker --instance-id`):
    /// static membership, as [`AppBuilder::worker_instance_id`](crate::AppBuilder::worker_instance_id),
    /// which it replaces. [`settings`](Self::settings) keeps showing the builder's value.
    pub fn set_worker_instance_id(&self, id: &str) -> Result<()> {
        if lock(&self.inner.runtime).is_some() {
            return Err(Error::AlreadyRunning {
                action: "change the worker's instance id",
            });
        }
        if id.trim().is_empty() {
            return Err(Error::invalid_setting(
                "worker_instance_id",
                format!("{id:?}"),
                "give each worker a non-empty name of its own, such as its host name",
            ));
        }
        self.inner.decls.set_worker_instance_id(id.to_owned());
        Ok(())
    }

    /// The clock the app reads the wall time from: cron schedules and idle windows use it.
    pub fn clock(&self) -> Clock {
        self.inner.decls.clock()
    }

    /// Runs the app on `clock` instead of the system's (a test harness's virtual clock). Only
    /// before the app starts.
    #[cfg(feature = "testing")]
    pub fn set_clock(&self, clock: Clock) -> Result<()> {
        if self.inner.conn.get().is_some() {
            return Err(Error::AlreadyRunning {
                action: "change the clock",
            });
        }
        self.inner.decls.set_clock(clock);
        Ok(())
    }

    /// Runs the app on `cluster`, an in-process mock cluster (in memory or on TCP): its
    /// bootstrap addresses and its connector, so that the app opens no socket to an
    /// in-memory one. Only before the app starts; `streams::testing` does this for each
    /// worker.
    #[cfg(feature = "testing")]
    pub fn use_mock(&self, cluster: &testkit::MockCluster) -> Result<()> {
        self.set_broker(&format!("kafka://{}", cluster.bootstrap()))?;
        *lock(&self.inner.connector) = Some(cluster.connector());
        Ok(())
    }

    /// The app's metrics in the Prometheus text exposition format (OpenMetrics), for a
    /// `/metrics` endpoint: events in and records sent, processing and commit latencies,
    /// commits and their failures, consumer lag, rebalances, table recovery and sizes,
    /// producer errors and dead letters, all named `streams_*`. Each app has its own registry.
    pub fn metrics_text(&self) -> String {
        let metrics = self.inner.decls.outbox.metrics();
        self.inner.decls.outbox.report_retries();
        // Table sizes are read here, per scrape, rather than kept up to date on every write.
        let runtime = lock(&self.inner.runtime).clone();
        if let Some(runtime) = runtime {
            runtime.tables.report_sizes(metrics);
        }
        metrics.encode()
    }

    /// The bootstrap addresses in use (for `mock://`, the embedded cluster's), once started.
    pub fn bootstrap(&self) -> Option<String> {
        self.inner.conn.get().map(|c| c.client.bootstrap.join(","))
    }
}

impl AsRef<App> for App {
    fn as_ref(&self) -> &App {
        self
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
