//! Closing the windows of an idle partition (`close_idle_after`): once a partition saw no
//! event for the idle interval, its stream time follows the wall clock from its last event,
//! and what that makes due closes as an event's advance would close it.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use super::layout::Clock;
use super::windowed::WindowedTable;
use crate::error::Result;
use crate::table::{Activity, IdleCheck, IdleCloser};
use crate::timestamp::Timestamp;

/// Milliseconds in `d`, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl<K, V> WindowedTable<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The check the runtime runs on this table's idle partitions. The table's core keeps it:
    /// it holds the table weakly (a strong handle would keep the core, and its store, open
    /// for good).
    pub(super) fn idle_closer(&self, after: Duration) -> IdleCloser {
        let table = self.table.downgrade();
        let parts = (
            self.spec,
            self.time.clone(),
            self.merge.clone(),
            self.on_close.clone(),
            self.late,
            self.emit_final.clone(),
            self.shared.clone(),
        );
        IdleCloser {
            after,
            check: Arc::new(move |partition, now| {
                let Some(table) = table.upgrade() else {
                    let next = Instant::now() + after;
                    return futures::future::ready(Ok(IdleCheck { closed: 0, next })).boxed();
                };
                let (spec, time, merge, on_close, late, emit_final, shared) = parts.clone();
                let windowed = WindowedTable {
                    table,
                    spec,
                    time,
                    merge,
                    on_close,
                    late,
                    emit_final,
                    shared,
                };
                async move {
                    let now = Timestamp::from_millis(now);
                    windowed.close_idle(partition, after, now).await
                }
                .boxed()
            }),
        }
    }

    /// If `partition` saw no event for `after`, moves its stream time to its stream time at
    /// its last event plus the time since (never past `now`, the wall time), when that closes
    /// or expires something; runs the close callback for what closed. Says when to look
    /// again. A partition that saw no event since it became active counts from then, from
    /// the stream time it had.
    pub(crate) async fn close_idle(
        &self,
        partition: i32,
        after: Duration,
        now: Timestamp,
    ) -> Result<IdleCheck> {
        self.check_active(partition)?;
        let (closed, hold, next) =
            self.table
                .core()
                .with_partition(partition, b"(clock)", |txn| {
                    let (mut held, before) = self.take_windows(txn)?;
                    let last = txn.activity().unwrap_or_else(|| {
                        let seed = Activity {
                            time: held.clock.stream_time,
                            at: txn.active_since(),
                        };
                        txn.set_activity(seed);
                        seed
                    });
                    let at = Instant::now();
                    let idle = at.saturating_duration_since(last.at);
                    let clock = held.clock;
                    let target = last.time.saturating_add(millis(idle)).min(now.as_millis());
                    // Only when something is due: an idle partition writes its clock (and a
                    // changelog record) only with a close or an expiry.
                    let due = last.time != i64::MIN
                        && idle >= after
                        && target >= clock.next_due
                        && target > clock.stream_time;
                    if due {
                        held.clock.stream_time = target;
                    }
                    let (closed, clock) = self.settle(txn, held, before)?;
                    let hold = self.hold_for(txn, &closed);
                    let next = next_check(&clock, last, after, at, now);
                    Ok((closed, hold, next))
                })?;
        let count = closed.len();
        if count > 0 {
            tracing::debug!(
                table = self.name(),
                partition,
                closed = count,
                "idle partition: windows closed by the wall clock"
            );
        }
        self.deliver_async(closed).await?;
        if let Some(hold) = hold {
            hold.done();
        }
        Ok(IdleCheck {
            closed: count,
            next,
        })
    }
}

/// When an idle partition may next have something due: once idle for `after`, and once its
/// stream time counted from `last` (and the wall time, which it never passes) reaches the next
/// due time. Without anything due, or before any event, `after` from `at` (an event may come).
fn next_check(
    clock: &Clock,
    last: Activity,
    after: Duration,
    at: Instant,
    now: Timestamp,
) -> Instant {
    if last.time == i64::MIN || clock.next_due == i64::MAX {
        return at + after;
    }
    let wait = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    let by_stream = last.at + after.max(wait(clock.next_due.saturating_sub(last.time)));
    let by_wall = at + wait(clock.next_due.saturating_sub(now.as_millis()));
    by_stream.max(by_wall)
}
