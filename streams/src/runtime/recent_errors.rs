//! The worker's last errors (agent failures that restarted it, aborted transactions, the
//! error that stopped it), kept for the web overview: logs scroll away, this stays small.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::timestamp::Timestamp;

/// How many errors are kept; older ones are dropped.
const KEPT: usize = 20;

/// A ring of the last [`KEPT`] errors, with the app clock's time of each.
#[derive(Default)]
pub(crate) struct RecentErrors {
    ring: Mutex<VecDeque<(Timestamp, String)>>,
}

impl RecentErrors {
    /// Records `error`, seen at `at`.
    pub(crate) fn record(&self, at: Timestamp, error: String) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == KEPT {
            ring.pop_front();
        }
        ring.push_back((at, error));
    }

    /// The kept errors, oldest first.
    pub(crate) fn list(&self) -> Vec<(Timestamp, String)> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_errors_oldest_first() {
        let errors = RecentErrors::default();
        for i in 0..(KEPT as i64 + 3) {
            errors.record(Timestamp::from_millis(i), format!("e{i}"));
        }
        let kept = errors.list();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0], (Timestamp::from_millis(3), "e3".to_owned()));
        assert_eq!(kept[KEPT - 1].1, format!("e{}", KEPT + 2));
    }
}
