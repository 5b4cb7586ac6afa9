//! A deterministic harness that tests a whole app (the `testing` feature): the user's real
//! [`App`] with its agents, tables, windows and timers, run as one or more simulated workers
//! over one in-process mock Kafka cluster, on one clock the test moves.
//!
//! Faust tests one agent (`agent.test_context()`), Kafka Streams one topology
//! (`TopologyTestDriver`); a [`Harness`] runs the app as it runs in production (consumer
//! group, commits, changelogs, recovery, standbys), so a test can also crash a worker
//! ([`Harness::kill`]), restart it, add one, force a rebalance, or fail a broker request
//! ([`Harness::cluster`]'s intercepts) and check what survived.
//!
//! - Build: [`Harness::builder`]`().workers(n).seed(s).start_at(t).build(|| make_app())`.
//!   The closure is the user's app builder, called once per worker and again on each
//!   restart; it returns the [`App`] or a struct of the app and its handles (topics, tables)
//!   that implements `AsRef<App>`, which [`Harness::worker`] hands back.
//! - Feed: [`Harness::send`]`(&topic, key, value).partition(p).at(t).await?`.
//! - Time: [`Harness::advance`] moves the clock every worker shares; [`Harness::settle`]
//!   runs until every event is processed and committed, or says what is still pending.
//! - Read, from the cluster's log: [`Harness::sent`] (the records of a topic, decoded),
//!   [`Harness::table`] (a table's contents from its changelog), [`Harness::committed`].
//! - Workers: [`Harness::kill`], [`Harness::stop`], [`Harness::restart`],
//!   [`Harness::add_worker`], [`Harness::rebalance`], [`Harness::owner`],
//!   [`Harness::table_owner`], [`Harness::standbys`].
//!
//! Determinism: every random choice of the harness (and of a test, through
//! [`Harness::rng`]) comes from the seed, and the workers read time through the shared
//! [`Clock`], which follows tokio's clock: run the test on a current-thread runtime with
//! paused time (`#[tokio::test(flavor = "current_thread", start_paused = true)]`) to make
//! it virtual.
//!
//! # Example: feed, settle, read a table
//!
//! ```
//! use futures::StreamExt;
//! use streams::testing::Harness;
//! use streams::{App, Table, Topic};
//!
//! struct Counter { app: App, words: Topic<String, String>, counts: Table<String, u64> }
//! impl AsRef<App> for Counter { fn as_ref(&self) -> &App { &self.app } }
//!
//! fn counter() -> streams::Result<Counter> {
//!     let app = App::builder("counter").build()?;
//!     let words = app.topic::<String, String>("words");
//!     let counts = app.table::<String, u64>("counts")?.with_default(u64::default);
//!     let table = counts.clone();
//!     app.agent_builder("count", &words).table(&counts).run(move |mut words| {
//!         let table = table.clone();
//!         async move {
//!             while let Some(word) = words.next().await {
//!                 table.update(&*word, |n| *n += 1)?;
//!             }
//!             Ok::<(), streams::Error>(())
//!         }
//!     });
//!     Ok(Counter { app, words, counts })
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> streams::Result<()> {
//! let h = Harness::builder().build(counter).await?;
//! let words = h.worker(0).words.clone();
//! for word in ["a", "b", "a"] {
//!     h.send(&words, word.to_owned(), word.to_owned()).await?;
//! }
//! h.settle().await?;
//! let counts = h.table(&h.worker(0).counts)?;
//! assert_eq!(counts.get("a"), Some(&2));
//! assert_eq!(counts.get("b"), Some(&1));
//! let committed: i64 = (0..h.partitions("words")).filter_map(|p| h.committed("words", p)).sum();
//! assert_eq!(committed, 3); // every event's effects acknowledged, and committed
//! # Ok(()) }
//! ```

//! # Example: move the clock
//!
//! Timers, intervals and the app's [`Clock`] follow the harness's clock, which starts at
//! [`HarnessBuilder::start_at`]; [`Harness::advance`] moves it (at once, under paused time).
//!
//! ```
//! use std::time::Duration;
//! use futures::StreamExt;
//! use streams::testing::Harness;
//! use streams::{App, Timestamp};
//!
//! // Stamps each event with the app's clock (event time into a topic of its own).
//! fn stamper() -> streams::Result<App> {
//!     let app = App::builder("stamper").build()?;
//!     let (input, stamped) = (app.topic::<String, String>("in"), app.topic::<String, String>("stamped"));
//!     let clock = app.clock();
//!     app.agent(&input, move |mut events| async move {
//!         while let Some(e) = events.next().await {
//!             stamped.send_at(e.key.clone().unwrap_or_default(), &*e, clock.now()).await?;
//!         }
//!         Ok::<(), streams::Error>(())
//!     });
//!     Ok(app)
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> streams::Result<()> {
//! let start = Timestamp::from_millis(1_893_456_000_000); // 2030-01-01T00:00:00Z
//! let h = Harness::builder().start_at(start).build(stamper).await?;
//! h.advance(Duration::from_secs(3600)).await; // an hour, in no time
//! let input = h.app(0).topic::<String, String>("in");
//! h.send(&input, "k".to_owned(), "hello".to_owned()).await?;
//! h.settle().await?;
//! let stamped = h.sent(&h.app(0).topic::<String, String>("stamped"))?;
//! assert!(stamped[0].time().unwrap() >= start.saturating_add(Duration::from_secs(3600)));
//! # Ok(()) }
//! ```
//!
//! # Example: kill a worker, restart it
//!
//! A killed worker commits nothing and does not leave the group: its partitions move to the
//! others when its session times out, and they redo what it had not committed (at least
//! once). [`Harness::settle`] waits through that.
//!
//! ```
//! # use std::time::Duration;
//! # use futures::StreamExt;
//! # use streams::testing::Harness;
//! # use streams::{App, Table, Topic};
//! # struct Counter { app: App, words: Topic<String, String>, counts: Table<String, u64> }
//! # impl AsRef<App> for Counter { fn as_ref(&self) -> &App { &self.app } }
//! fn counter() -> streams::Result<Counter> {
//!     let app = App::builder("counter")
//!         .topic_partitions(2)
//!         .broker_session_timeout(Duration::from_secs(6))
//!         .build()?;
//!     // ... the agent that counts words into `counts`, as above ...
//! #   let words = app.topic::<String, String>("words");
//! #   let counts = app.table::<String, u64>("counts")?.with_default(u64::default);
//! #   let table = counts.clone();
//! #   app.agent_builder("count", &words).table(&counts).run(move |mut words| {
//! #       let table = table.clone();
//! #       async move {
//! #           while let Some(word) = words.next().await { table.update(&*word, |n| *n += 1)?; }
//! #           Ok::<(), streams::Error>(())
//! #       }
//! #   });
//! #   Ok(Counter { app, words, counts })
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> streams::Result<()> {
//! let mut h = Harness::builder().workers(2).build(counter).await?;
//! let words = h.worker(0).words.clone();
//! for word in ["a", "b", "c", "a"] {
//!     h.send(&words, word.to_owned(), word.to_owned()).await?;
//! }
//! h.kill(1).await?;
//! h.settle().await?; // worker 0 took over worker 1's partition
//! assert_eq!(h.live(), vec![0]);
//! assert!(h.owner("words", 0) == Some(0) && h.owner("words", 1) == Some(0));
//! h.restart(1).await?;
//! h.settle().await?;
//! let counts = h.table(&h.worker(0).counts)?;
//! assert!(counts["a"] >= 2 && counts["b"] >= 1 && counts["c"] >= 1); // at least once
//! # Ok(()) }
//! ```
//!
//! # Example: a standby takes over
//!
//! With `table_standby_replicas(1)` each table partition has a warm copy on another worker;
//! killing the active owner promotes it, with nothing to replay.
//!
//! ```
//! # use std::time::Duration;
//! # use futures::StreamExt;
//! # use streams::testing::Harness;
//! # use streams::{App, Table, Topic};
//! # struct Counter { app: App, words: Topic<String, String>, counts: Table<String, u64> }
//! # impl AsRef<App> for Counter { fn as_ref(&self) -> &App { &self.app } }
//! fn counter() -> streams::Result<Counter> {
//!     let app = App::builder("counter").table_standby_replicas(1).build()?;
//!     // ... the agent that counts words into `counts`, as above ...
//! #   let words = app.topic::<String, String>("words");
//! #   let counts = app.table::<String, u64>("counts")?.with_default(u64::default);
//! #   let table = counts.clone();
//! #   app.agent_builder("count", &words).table(&counts).run(move |mut words| {
//! #       let table = table.clone();
//! #       async move {
//! #           while let Some(word) = words.next().await { table.update(&*word, |n| *n += 1)?; }
//! #           Ok::<(), streams::Error>(())
//! #       }
//! #   });
//! #   Ok(Counter { app, words, counts })
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> streams::Result<()> {
//! let mut h = Harness::builder().workers(2).build(counter).await?;
//! let words = h.worker(0).words.clone();
//! h.send(&words, "a".to_owned(), "a".to_owned()).await?;
//! h.settle().await?;
//! let active = h.table_owner("counts", 0).expect("an owner");
//! let standby = h.standbys("counts", 0)[0];
//! h.advance(Duration::from_secs(1)).await; // the standby follows the changelog
//! h.kill(active).await?;
//! h.settle().await?;
//! assert_eq!(h.table_owner("counts", 0), Some(standby));
//! assert_eq!(h.worker(standby).counts.get("a")?, Some(1));
//! # Ok(()) }
//! ```

mod builder;
mod feed;
mod read;
mod rng;
mod settle;
mod transport;
mod workers;

use std::time::Duration;

use kafka_client::producer::Producer;
use testkit::MockCluster;

use crate::app::App;
use crate::clock::Clock;
use crate::error::Result;
use crate::timestamp::Timestamp;

pub use builder::HarnessBuilder;
pub use feed::Feed;
pub use rng::Rng;

/// One app run as simulated workers over an in-process mock cluster, on a shared clock (see
/// [the module](self)). `W` is what the build closure returns: the [`App`], or a struct of
/// the app and its handles.
pub struct Harness<W = App> {
    cluster: std::sync::Arc<MockCluster>,
    build: Box<dyn Fn() -> Result<W>>,
    workers: Vec<workers::Slot<W>>,
    clock: Clock,
    rng: Rng,
    producer: Producer,
    settle_timeout: Duration,
}

impl<W> std::fmt::Debug for Harness<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("workers", &self.workers.len())
            .field("live", &self.workers.iter().filter(|s| s.live).count())
            .field("now", &self.clock.now())
            .finish_non_exhaustive()
    }
}

impl<W> Drop for Harness<W> {
    fn drop(&mut self) {
        // The workers' tasks outlive the harness otherwise: ask them to stop (gracefully, in
        // the background; `shutdown` waits for it).
        for slot in &self.workers {
            if slot.live {
                slot.app().stop();
            }
        }
    }
}

impl Harness<App> {
    /// Configures a harness.
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }
}

impl<W> Harness<W> {
    /// The mock cluster: install fault intercepts
    /// ([`MockCluster::intercept`](testkit::MockCluster::intercept)), read logs and offsets.
    pub fn cluster(&self) -> &MockCluster {
        &self.cluster
    }

    /// The clock every worker reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// What the shared clock reads now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The seeded generator: draw a scenario's choices (keys, which worker to kill, when)
    /// from it, and the same seed replays the scenario.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}
