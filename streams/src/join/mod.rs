//! Joins (issue 23; DESIGN.md "Joins"): a stream with a table, read as of each event.

mod stream_table;

pub use stream_table::JoinedStream;
pub(crate) use stream_table::{global_lookup, table_lookup, Lookup};
