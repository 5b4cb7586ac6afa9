//! Derived state that follows a table's writes (a table-table join's result): hooks the write
//! path calls after each write of a key, outside the partition's lock, so that the derived
//! writes are made by the same event as the write that caused them (and flushed, and
//! committed, with it). Only writes through `TableCore::put_if` (every [`Table`](super::Table)
//! and [`SetTable`](super::SetTable) write) call them; recovery and standbys fill the store
//! without them: a derived table recovers from its own changelog.
//!
//! The table also keeps a weak handle on the app that declared it (its home), so that code
//! above this layer can declare derived tables in the same app.

use std::any::Any;
use std::sync::{Arc, Weak};

use bytes::Bytes;

use crate::error::Result;

/// One write of a key, as hooks see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written<'a> {
    /// The table partition written.
    pub partition: i32,
    /// The key's bytes.
    pub key: &'a Bytes,
    /// The value before the write (`None`: the key had none).
    pub old: Option<&'a Bytes>,
    /// The value written (`None`: a delete).
    pub new: Option<&'a Bytes>,
}

/// Called after each write; an error is returned by the write (whose own change stays made:
/// the caller must not let its event be committed, as for any failed write).
pub(crate) type WriteHook = Arc<dyn Fn(&Written<'_>) -> Result<()> + Send + Sync>;

/// The app a table belongs to, type-erased (the declarations live above this layer).
pub(crate) type Home = Weak<dyn Any + Send + Sync>;
