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
//! | `serializer="binary\|json"` | `.value_serializer("binary\|json")` ([`codec`]) |
//! | `table.tumbling(300, expires=3600)`, `table[k].current()` | [`Table::tumbling`]`(..).build()?` → [`WindowedTable`]: `totals.at(&event)?.current(&k)?` |
//! | `app.main()` | `app.main()` ([`App::main`]: `worker`, `send`, `agents`, `topics`, `tables`, `reset`; `demo` with [`App::main_with_demo`]) |
//!
//! ```
//! use futures::StreamExt;
//! use serde::{Deserialize, Serialize};
//! use streams::App;
//!
//! #[derive(Serialize, Deserialize, Clone, Debug)]
//! struct Purchase { username: String, currency: String, amount: u32 }
//!
//! # fn main() -> streams::Result<()> {
//! let app = App::builder("demo-app").broker("kafka://localhost:9092").build()?;
//! let purchases = app.topic::<String, Purchase>("purchases");
//! app.agent(&purchases, |mut purchases| async move {
//!     while let Some(p) = purchases.next().await {
//!         println!("{} bought {} {}", p.username, p.amount, p.currency);
//!     }
//! });
//! // fn main() -> ExitCode { app.main() }
//! # Ok(()) }
//! ```

// Layers, top to bottom; a module imports only from its own layer or below (checked by
// tests/layers.rs):
//   cli > app > runtime > declarations > stream, table, window > topic, codec, record,
//   offsets, outbox > error, settings, broker, timestamp.
mod app;
mod broker;
mod cli;
pub mod codec;
mod declarations;
mod error;
pub mod offsets;
mod outbox;
mod record;
mod runtime;
mod settings;
mod stream;
mod table;
mod timestamp;
mod topic;
mod window;

pub use app::{App, AppBuilder, TopicSummary};
pub use broker::BrokerUrl;
pub use cli::init_logging;
pub use declarations::{
    Agent, AgentBuilder, AgentResult, AgentSummary, AgentTable, Sink, TableBuilder, TableSummary,
};
pub use error::{Error, Result};
pub use offsets::Hold;
pub use record::{Event, Header, Validate};
pub use runtime::{StoredPartition, TablePartition};
pub use settings::{ProcessingGuarantee, Settings};
pub use stream::{AgentStream, Processor, Take};
pub use table::{PartitionStatus, SetTable, Table, TableSpec};
pub use timestamp::Timestamp;
pub use topic::{OnDecodeError, Topic};
pub use window::{
    LatePolicy, TimeSource, Window, WindowKind, WindowResult, WindowSpec, WindowedAt,
    WindowedTable, WindowedTableBuilder, DEFAULT_EXPIRES,
};
