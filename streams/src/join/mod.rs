//! Joins (issue 23; DESIGN.md "Joins"): a stream with a table, read as of each event
//! (`stream_table`); two streams within a time difference, by event time, their buffers kept
//! in a table's store (`windowed`).

mod stream_table;
mod windowed;

pub use stream_table::JoinedStream;
pub(crate) use stream_table::{global_lookup, table_lookup, Lookup};
pub(crate) use windowed::{buffer_render, record_check, JoinCore, JoinKind, Joiner, Side, OUT_TAG};
