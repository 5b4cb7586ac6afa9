//! Consumer groups (classic protocol): [`GroupConsumer`] joins a group, gets partitions from
//! its leader's [`Assignor`], keeps its membership with background heartbeats, tells the
//! application about assignment changes through a [`RebalanceListener`], and commits offsets
//! fenced by its generation.
//!
//! Members of this client, the Java client and librdkafka share groups: subscriptions and
//! assignments are encoded as the Java client encodes them and the standard assignors go by
//! their standard names (`range`, `roundrobin`, `cooperative-sticky`).
//!
//! Module map: [`config`](GroupConfig) (settings), `assignor` (the trait and the standard
//! assignors), `protocol` (subscription/assignment bytes), `coordinator` (finding and
//! addressing the coordinator), `membership` (join/sync/heartbeat/leave and the heartbeat
//! task), `offsets` (commit/fetch), `describe` (a group seen from outside), `committer`
//! (ordered commit queue), `listener` (callbacks), `consumer` ([`GroupConsumer`]).

mod assignor;
mod committer;
mod config;
mod consumer;
pub(crate) mod coordinator;
pub(crate) mod describe;
mod listener;
mod membership;
mod metadata;
pub(crate) mod offsets;
mod protocol;

pub use assignor::{
    Assignment, Assignor, CooperativeStickyAssignor, RangeAssignor, RebalanceProtocol,
    RoundRobinAssignor, Subscription,
};
pub use config::GroupConfig;
pub use consumer::GroupConsumer;
pub use describe::{GroupDescription, GroupMember};
pub use listener::{NoopListener, RebalanceContext, RebalanceListener};
pub use metadata::ConsumerGroupMetadata;
