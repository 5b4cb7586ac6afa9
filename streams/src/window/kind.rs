//! Window kinds and which windows hold a time. Times are milliseconds since the epoch.

use serde::{Deserialize, Serialize};

/// A time window: `start` included, `end` excluded, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// The window `start..end`.
    pub fn new(start: i64, end: i64) -> Self {
        Window { start, end }
    }

    /// Whether `time` falls in the window.
    pub fn contains(&self, time: i64) -> bool {
        self.start <= time && time < self.end
    }
}

/// How a windowed table cuts time. Sizes are in milliseconds and validated by
/// [`WindowSpec`](super::WindowSpec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Back-to-back windows of `size`: `[k*size, (k+1)*size)`.
    Tumbling { size: i64 },
    /// Windows of `size` starting every `step`: `[k*step, k*step + size)`.
    Hopping { size: i64, step: i64 },
    /// One window per distinct event time `t` of a key, holding the `size` milliseconds up to
    /// and including it: `[t + 1 - size, t + 1)`.
    Sliding { size: i64 },
    /// Activity sessions per key: events closer than `gap` to each other share a window
    /// `[first event, last event + 1)`.
    Session { gap: i64 },
}

impl WindowKind {
    /// The size (the gap for sessions): what `expires` and the grace period are checked against.
    pub fn size(&self) -> i64 {
        match *self {
            WindowKind::Tumbling { size }
            | WindowKind::Hopping { size, .. }
            | WindowKind::Sliding { size } => size,
            WindowKind::Session { gap } => gap,
        }
    }

    /// The fixed windows holding `time`, latest start first (tumbling and hopping; empty for
    /// the others, whose windows depend on the events).
    pub fn fixed_windows(&self, time: i64) -> Vec<Window> {
        let (size, step) = match *self {
            WindowKind::Tumbling { size } => (size, size),
            WindowKind::Hopping { size, step } => (size, step),
            _ => return Vec::new(),
        };
        if size <= 0 || step <= 0 {
            return Vec::new();
        }
        let mut windows = Vec::with_capacity((size / step + 1).min(64) as usize);
        // None: the aligned start is below i64::MIN (no window can hold such a time).
        let Some(mut start) = time.checked_sub(time.rem_euclid(step)) else {
            return windows;
        };
        loop {
            let end = start.saturating_add(size);
            if end <= time {
                break;
            }
            windows.push(Window::new(start, end));
            match start.checked_sub(step) {
                Some(s) => start = s,
                None => break,
            }
        }
        windows
    }

    /// The window that `current()` reads for `time`: the fixed window holding it with the
    /// latest start, or the sliding window ending at it. `None` for sessions (found by lookup).
    pub fn current_window(&self, time: i64) -> Option<Window> {
        match *self {
            WindowKind::Sliding { size } => Some(Window::new(
                time.saturating_add(1).saturating_sub(size),
                time.saturating_add(1),
            )),
            WindowKind::Session { .. } => None,
            _ => self.fixed_windows(time).first().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopping_windows_of_a_time_latest_first() {
        let kind = WindowKind::Hopping { size: 10, step: 5 };
        assert_eq!(
            kind.fixed_windows(12),
            vec![Window::new(10, 20), Window::new(5, 15)]
        );
        assert_eq!(
            kind.fixed_windows(-3),
            vec![Window::new(-5, 5), Window::new(-10, 0)]
        );
        let tumbling = WindowKind::Tumbling { size: 300_000 };
        assert_eq!(
            tumbling.fixed_windows(299_999),
            vec![Window::new(0, 300_000)]
        );
        assert_eq!(
            tumbling.current_window(300_000),
            Some(Window::new(300_000, 600_000))
        );
    }

    #[test]
    fn a_sliding_window_ends_just_after_its_event() {
        let kind = WindowKind::Sliding { size: 10 };
        let w = kind.current_window(100).unwrap();
        assert_eq!(w, Window::new(91, 101));
        assert!(w.contains(91) && w.contains(100) && !w.contains(90));
    }
}
