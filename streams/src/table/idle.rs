//! What a table keeps for closing the windows of idle partitions
//! (`WindowedTableBuilder::close_idle_after`): when each partition last saw an event, and the
//! check the runtime runs on a partition that stays idle.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::error::Result;

/// A partition's last event: a time the table keeps with it (a windowed table: its stream
/// time then) and when it was processed, on tokio's clock (which a virtual app clock follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Activity {
    /// The table's time at that event (`i64::MIN`: none yet).
    pub time: i64,
    /// When it was processed.
    pub at: Instant,
}

/// What one idle check of a partition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdleCheck {
    /// Windows it closed.
    pub closed: usize,
    /// When the partition may next have something to close, if it stays idle.
    pub next: Instant,
}

/// Checks one partition given the wall time now (milliseconds since the epoch): closes what
/// its idle time made due.
pub(crate) type IdleFn =
    Arc<dyn Fn(i32, i64) -> BoxFuture<'static, Result<IdleCheck>> + Send + Sync>;

/// A table's idle closing, as the runtime drives it.
#[derive(Clone)]
pub(crate) struct IdleCloser {
    /// How long a partition goes without an event before its stream time follows the clock.
    pub after: Duration,
    /// The check of one partition.
    pub check: IdleFn,
}

impl std::fmt::Debug for IdleCloser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleCloser")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}
