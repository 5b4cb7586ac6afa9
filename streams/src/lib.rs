//! Stream processing on Kafka in pure Rust, in the spirit of Python's Faust.
//!
//! An [`App`] declares typed [`Topic`]s and [`Agent`]s: async functions over a
//! `futures::Stream` of a topic's events. The app is consumer group `<app id>`; an event's
//! offset is committed once its agent has finished with it (dropped it and asked for more)
//! and what it sent is acknowledged, whatever `StreamExt` combinators it used, so a crash
//! re-delivers only what was not done: at-least-once. See [`Event`] for the one rule. With
//! [`AppBuilder::processing_guarantee`]`("exactly_once")` each commit interval's sends, table
//! changelog writes and source offsets are one Kafka transaction instead.
//!
//! | Faust | here |
//! |---|---|
//! | `faust.App("demo", broker="kafka://h:9092")` | `App::builder("demo").broker("kafka://h:9092").build()?` |
//! | `class Purchase(faust.Record, validation=True)` | `#[derive(Serialize, Deserialize)] struct Purchase` + [`Validate`] + [`Topic::validated`] |
//! | `app.topic("purchases", key_type=str, value_type=Purchase)` | `app.topic::<String, Purchase>("purchases")` |
//! | `@app.agent(topic)` `async def f(stream): async for v in stream:` | `app.agent(&topic, \|mut stream\| async move { while let Some(v) = stream.next().await { .. } })` |
//! | `stream.enumerate()`, `filter`, ... | `futures::StreamExt` |
//! | `async for event in stream.events()` | the stream's items are [`Event`]s that read as their values |
//! | `stream.items()`, `take(n, within=s)`, `echo(t)` | [`AgentStream`] methods |
//! | `event.ack()` | [`Event::ack`], or drop the event; [`Event::take_hold`] to ack elsewhere |
//! | `purchases.filter(f).group_by(Purchase.currency, name="currency")` | [`AgentBuilder::filter`] then [`AgentBuilder::group_by`] |
//! | `await topic.send(key=k, value=v)` | `topic.send(k, v).await?` |
//! | `await agent.cast(v)`, `await agent.ask(v)`, `agent.map(vs)`, `agent.kvmap(d)`, `await agent.join(vs)` | [`Agent::cast`], [`Agent::ask`] (agents declared with [`AgentBuilder::process`] reply with their results), [`Agent::map`], [`Agent::kvmap`], [`Agent::join`] |
//! | `app.Table("totals", default=int)`, `totals[k] += n` | `app.table::<String, i64>("totals")?.with_default(i64::default)`, `totals.update(&k, \|v\| *v += n)?` ([`Table`]) |
//! | `serializer="binary\|json"` | `.value_serializer("binary\|json")` ([`codec`]) |
//! | (Kafka Streams' `left.join(right, f, JoinWindows.ofTimeDifferenceAndGrace(w, g))`) | `app.stream_join("name", &left, &right).within(w).grace(g).inner().sink(&out, f)?` ([`StreamJoinBuilder`]) |
//! | `table.tumbling(300, expires=3600)`, `table[k].current()` | [`Table::tumbling`]`(..).build()?` → [`WindowedTable`]: `totals.at(&event)?.current(&k)?` |
//! | `@app.timer(10.0, on_leader=True)` | `app.timer("name", Duration::from_secs(10)).on_leader().run(\|\| async { .. })?` ([`App::timer`]) |
//! | `@app.crontab("*/5 * * * *", timezone=tz)` | `app.crontab("name", "*/5 * * * *").timezone("Europe/Paris").run(..)?` ([`App::crontab`]) |
//! | `@app.task` | `app.task("name").run(\|\| async { .. })?` ([`App::task`]) |
//! | web `/router/`, a table's value from any worker | [`App::router`], [`App::owner_of`], [`App::query`] (each worker advertising [`AppBuilder::application_server`]) |
//! | `app.main()` | `app.main()` ([`App::main`]: `worker`, `send`, `agents`, `topics`, `status`, `tables`, `reset`, `completions`; `demo` with [`App::main_with_demo`]) |
//! | `faust -A app worker --web-port 6066`, `@app.page("/p")` | `APP worker --web-port 6066` (`/`, `/health`, `/ready`, `/table/<name>/`), [`App::page`]`("/p", handler)` |
//! | `@app.table_route(table=t, match_info="k")` (any worker answers, forwarding to the owner) | [`App::table_route`]`(&t, "/p/{k}", KeyFrom::Path("k"), handler)`; `/table/<name>/<key>/` forwards too, `?redirect=1` for a 307 |
//!
//! A tiny app, run here against the in-process mock Kafka cluster of the `testkit` crate (in
//! production the broker is `kafka://host:9092`; `mock://` with the `mock` feature embeds the
//! cluster): purchases keyed by user, an agent that counts them per user into a table.
//!
//! ```
//! use std::time::Duration;
//! use futures::StreamExt;
//! use serde::{Deserialize, Serialize};
//! use streams::App;
//!
//! #[derive(Serialize, Deserialize, Clone, Debug)]
//! struct Purchase { username: String, currency: String, amount: u32 }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = testkit::MockCluster::builder().build().await?;
//! let app = App::builder("demo-app")
//!     .broker(&format!("kafka://{}", cluster.bootstrap()))
//!     .build()?;
//! let purchases = app.topic::<String, Purchase>("purchases");
//! let counts = app.table::<String, u64>("purchases_per_user")?.with_default(u64::default);
//!
//! // The agent reports each new count, so that this example knows when it is done.
//! let (done, mut counted) = tokio::sync::mpsc::unbounded_channel();
//! let table = counts.clone();
//! app.agent_builder("count", &purchases)
//!     .table(&counts) // keyed like the topic (by user): co-partitioned, checked at start
//!     .run(move |mut purchases| {
//!         let (table, done) = (table.clone(), done.clone());
//!         async move {
//!             while let Some(p) = purchases.next().await {
//!                 let count = table.update(&p.username, |n| *n += 1)?;
//!                 let _ = done.send(count);
//!             }
//!             Ok::<(), streams::Error>(())
//!         }
//!     });
//!
//! app.start().await?;
//! for (user, amount) in [("ann", 3), ("bob", 4), ("ann", 5)] {
//!     let p = Purchase { username: user.into(), currency: "EUR".into(), amount };
//!     purchases.send(p.username.clone(), p).await?;
//! }
//! for _ in 0..3 {
//!     tokio::time::timeout(Duration::from_secs(30), counted.recv()).await?;
//! }
//! assert_eq!(counts.get("ann")?, Some(2));
//! assert_eq!(counts.get("bob")?, Some(1));
//! app.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! In a program, `fn main() -> ExitCode { app.main() }` ([`App::main`]) gives the app Faust's
//! command line instead of `start` and `shutdown`.
//!
//! **New here, or coming from Faust?** The [`guide`] walks the talk "Stream processing with
//! Faust" section by section (app, records, topics, agents, streams, processors, operations,
//! tables, windows), each Faust snippet beside its Rust version, then services (timers,
//! channels, asking agents) and testing a whole app.
//!
//! # Cargo features
//!
//! - `mock`: `mock://` broker URLs start an embedded in-process mock Kafka cluster (demos and
//!   tests).
//! - `testing`: hooks for tests of recovery and of the commit path, not for production code:
//!   `App::abort` (stop like a crash: nothing committed, the group not left) and
//!   `App::commit` (commit the done offsets now), `TableBuilder::with_store` (a store opened
//!   by the test, such as one over a failing disk), `App::set_clock` (a virtual [`Clock`]),
//!   and `streams::testing`: a harness that runs a whole app as simulated workers over an
//!   in-process mock cluster, on virtual time. Enable it in `[dev-dependencies]`.

#![warn(missing_docs)]

// Layers, top to bottom; a module imports only from its own layer or below (checked by
// tests/modules.rs):
//   testing > cli > app > web > runtime > declarations, table_join > stream, table, window, join >
//   topic, codec,
//   record, offsets, outbox, replies, metrics > error, settings, endpoint, broker, timestamp, clock.
mod app;
mod broker;
mod cli;
mod clock;
pub mod codec;
mod declarations;
mod endpoint;
mod error;
mod join;
mod metrics;
mod offsets;
mod outbox;
mod record;
mod replies;
mod runtime;
mod settings;
mod stream;
mod table;
mod table_join;
#[cfg(feature = "testing")]
pub mod testing;
mod timestamp;
mod topic;
mod web;
mod window;

pub use app::{App, AppBuilder, ReadFrom, TableEntries, TopicSummary};
/// The axum the worker's web server runs on: [`App::page`] handlers take and return its types.
pub use axum;
pub use broker::BrokerUrl;
pub use cli::init_logging;
pub use clock::Clock;
pub use declarations::{
    Agent, AgentBuilder, AgentResult, AgentSummary, AgentTable, Channel, ChannelAgentBuilder,
    ChannelStream, CrontabBuilder, InnerJoin, JoinBuilder, LeftJoin, OuterJoin, Sink, StreamJoin,
    StreamJoinBuilder, TableBuilder, TableSummary, TaskBuilder, TimerBuilder,
};
pub use endpoint::Endpoint;
pub use error::{AgentFailure, BoxError, Error, Result};
pub use join::JoinedStream;
pub use offsets::Hold;
pub use record::{Event, Header, Validate};
pub use runtime::routes::{Owner, PartitionOwners, Queried, QueryOptions, Router};
pub use runtime::{
    GroupStatus, MemberStatus, Readiness, SourceLag, StoredPartition, TablePartition, TableRecovery,
};
pub use settings::{ProcessingGuarantee, Settings};
pub use stream::{AgentStream, Processor, Take};
pub use table::{PartitionStatus, SetTable, Table, TableSpec};
pub use table_join::{ForeignKeyJoinBuilder, TableJoinBuilder};
pub use timestamp::Timestamp;
pub use topic::{OnDecodeError, Topic};
pub use web::{KeyFrom, PageHandler};
pub use window::{
    LatePolicy, TimeSource, Window, WindowKind, WindowResult, WindowSpec, WindowedAt,
    WindowedTable, WindowedTableBuilder, DEFAULT_EXPIRES,
};

// Documentation only: the pages are markdown files under docs/guide, and every Rust snippet in
// them is a doc test.
pub mod guide {
    #![doc = include_str!("../docs/guide/00-guide.md")]

    #[doc = include_str!("../docs/guide/01-app.md")]
    pub mod app {}
    #[doc = include_str!("../docs/guide/02-records.md")]
    pub mod records {}
    #[doc = include_str!("../docs/guide/03-topics.md")]
    pub mod topics {}
    #[doc = include_str!("../docs/guide/04-agents.md")]
    pub mod agents {}
    #[doc = include_str!("../docs/guide/05-streams.md")]
    pub mod streams {}
    #[doc = include_str!("../docs/guide/06-processors.md")]
    pub mod processors {}
    #[doc = include_str!("../docs/guide/07-operations.md")]
    pub mod operations {}
    #[doc = include_str!("../docs/guide/08-tables.md")]
    pub mod tables {}
    #[doc = include_str!("../docs/guide/09-windows.md")]
    pub mod windows {}
    #[doc = include_str!("../docs/guide/10-services.md")]
    pub mod services {}
    #[doc = include_str!("../docs/guide/11-testing.md")]
    pub mod testing {}
}
