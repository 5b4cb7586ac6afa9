//! Tables: partitioned, dict-like state kept in a [`stores::Store`] and replicated to a
//! compacted changelog topic (Faust's `app.Table`).
//!
//! [`Table`] is the user's handle (its docs map Faust's table API to this one), [`SetTable`]
//! a table of sets, [`TableSpec`] the declaration.
//!
//! Layering: this module sits below the runtime and above topics and codecs; it imports only
//! `codec`, `error`, `record`, `settings` and `offsets` of this crate. The runtime drives it
//! through [`TableCore`] (assignment, recovery, changelog flushes; see its module docs for the
//! order of calls).

mod changelog;
mod effects;
mod handle;
mod hooks;
mod idle;
mod partitions;
mod pending;
mod progress;
mod recovery;
mod render;
mod set;
mod spec;
mod store_slot;

#[cfg(test)]
mod tests;

pub use handle::Table;
pub use pending::PartitionStatus;
pub use set::SetTable;
pub use spec::TableSpec;

// The runtime's side.
pub(crate) use changelog::{flush_partition, produce_flush, ProducedFlush};
pub(crate) use effects::EffectHold;
pub(crate) use hooks::{WriteHook, Written};
pub(crate) use idle::{Activity, IdleCheck, IdleCloser};
pub(crate) use partitions::{
    outbound_record, outbound_record_at, PartitionTxn, RecordCheck, TableCore,
};
pub(crate) use recovery::{
    changelog_consumer_config, out_of_range, recover_partition, start_offset, Replay,
};
pub(crate) use render::{Part, Render};
pub(crate) use store_slot::StoreSlot;
