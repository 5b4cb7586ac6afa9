//! Windowed tables: a [`Table`](crate::Table)'s values per key *and* time window, closed by
//! stream time (Faust's `table.tumbling(..)`, `table.hopping(..)`; sliding and session windows
//! as in Kafka Streams). [`WindowedTable`] is the handle (its docs map Faust's API to this one).
//!
//! The model:
//!
//! - Entries live in the table's own store and changelog, keyed by (user key, window start)
//!   (`layout.rs`): a key's partition comes from the user key's bytes alone, so a windowed table
//!   is co-partitioned with its source topic as a plain table is.
//! - Each partition keeps a clock entry in the same store: its stream time (the largest event
//!   time seen), the close watermark and the next time anything closes or expires. It is
//!   written with the window entries and replicated and recovered with them, so a restart or a
//!   new owner resumes exactly where the last committed state was. Due times, sorted by time,
//!   say when to look at each window next (its close, then its expiry), so closing reads only
//!   what is due; they follow from the windows and the clock, so they are held in memory and
//!   built from the entries when a partition becomes active here (`due.rs`), never stored or
//!   written to the changelog.
//! - A window closes when its partition's stream time reaches its end plus the grace period:
//!   `on_window_close` fires once for it, and (with [`WindowedTableBuilder::emit_final_to`]) its final
//!   result is written with the close, sent to its topic at the next commit before the table's
//!   changelog records, so it is never lost to a crash. Late events beyond grace are counted
//!   and dropped or failed
//!   ([`LatePolicy`]). A window is deleted (a tombstone in the changelog) once stream time
//!   reaches its start plus `expires`.
//! - Nothing depends on the wall clock unless asked (`relative_to_now`,
//!   [`WindowedTable::advance`], [`WindowedTableBuilder::close_idle_after`]).
//! - Settings are gathered by a [`WindowedTableBuilder`] and frozen by its `build()`.
//!
//! Layering: beside `table` (layer 2); it uses `table`, `topic`, `record`, `codec`,
//! `timestamp` and `error`. Inside, modules point one way: `windowed` (the handle) uses only
//! `kind`, `spec` and `time`; `read`, `update`, `view`, `builder`, `close` and `idle` add to
//! it; `close` (moving stream time) uses `read` and `update`, and `idle` (moving it by the wall
//! clock on idle partitions) uses `close` and `read`.

mod builder;
mod check;
mod close;
mod due;
mod idle;
mod kind;
mod layout;
mod read;
mod spec;
mod time;
mod update;
mod view;
mod windowed;

#[cfg(test)]
mod tests;

pub use builder::WindowedTableBuilder;
pub use kind::{Window, WindowKind};
pub use spec::{WindowSpec, DEFAULT_EXPIRES};
pub use time::TimeSource;
pub use view::WindowedAt;
pub use windowed::{LatePolicy, WindowResult, WindowedTable};
