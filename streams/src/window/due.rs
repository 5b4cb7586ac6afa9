//! When to look at each window next (its close, then its expiry): a partition's due times,
//! held in memory beside its entries.
//!
//! They are derived state: a window's due time follows from the window and its partition's
//! clock (its close time while that is after `closed_through`, else its expiry), so they are
//! neither stored nor written to the changelog. A partition's [`PartitionWindows`] is built from
//! its window entries by the first update after the partition became active here (a start, a
//! recovery, a standby taking over), kept by the table partition, and dropped by the table
//! whenever the partition's entries may change other than through an update (its unflushed
//! writes discarded, a new assignment, a status change): the next update builds it again. An
//! update takes it out for its change and puts it back only when the change succeeded, so a
//! failed update leaves nothing of itself here either.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::layout::Clock;

/// A partition's clock (as last written) and due times, while it is active here.
#[derive(Debug)]
pub(super) struct PartitionWindows {
    pub clock: Clock,
    pub due: DueTimes,
}

/// Windows (user key, start) by the time to look at them. A window's entry is removed only when
/// it is run (at or after its time); a window deleted meanwhile (a session merged into
/// another) is skipped then.
#[derive(Debug, Default)]
pub(super) struct DueTimes {
    by_time: BTreeMap<i64, Vec<(Bytes, i64)>>,
    len: usize,
}

impl DueTimes {
    /// Looks at `user_key`'s window starting at `start` when stream time reaches `at`.
    pub fn insert(&mut self, at: i64, user_key: Bytes, start: i64) {
        self.by_time.entry(at).or_default().push((user_key, start));
        self.len += 1;
    }

    /// The first due time (`i64::MAX`: none).
    pub fn first(&self) -> i64 {
        self.by_time.keys().next().copied().unwrap_or(i64::MAX)
    }

    /// Removes and returns the windows due at or before `now`, by due time.
    pub fn take_through(&mut self, now: i64) -> Vec<(Bytes, i64)> {
        let later = match now.checked_add(1) {
            Some(next) => self.by_time.split_off(&next),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut self.by_time, later);
        let taken: Vec<(Bytes, i64)> = due.into_values().flatten().collect();
        self.len -= taken.len();
        taken
    }

    /// Entries held (a window's, and those of deleted sessions not due yet).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_taken_once_in_due_order() {
        let mut due = DueTimes::default();
        let k = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert_eq!(due.first(), i64::MAX);
        due.insert(30, k("a"), 0);
        due.insert(10, k("b"), 5);
        due.insert(10, k("a"), 5);
        due.insert(i64::MAX, k("c"), 1);
        assert_eq!(due.first(), 10);
        assert_eq!(due.take_through(9), vec![]);
        assert_eq!(due.take_through(10), vec![(k("b"), 5), (k("a"), 5)]);
        assert_eq!((due.first(), due.len()), (30, 2));
        assert_eq!(due.take_through(i64::MAX), vec![(k("a"), 0), (k("c"), 1)]);
        assert_eq!((due.first(), due.len()), (i64::MAX, 0));
    }
}
