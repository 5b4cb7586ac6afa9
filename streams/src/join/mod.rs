//! Joins: windowed stream-stream joins (`windowed`), their buffers kept in a table's store.
//!
//! Layering: beside `table` and `window` (layer 2); it uses `table`, `record`, `timestamp`
//! and `error`.

mod windowed;

pub(crate) use windowed::{record_check, JoinCore, JoinKind, Joiner, Side, OUT_TAG};
