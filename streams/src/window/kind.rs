//! Window kinds and which windows hold a time. Inside the crate times are milliseconds since
//! the epoch (`i64`, as stored); the public types speak [`Timestamp`] and [`Duration`].

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

/// A time window: [`start`](Self::start) included, [`end`](Self::end) excluded.
///
/// It serializes as `{"start": <ms>, "end": <ms>}` (milliseconds since the epoch), as in a
/// [`WindowResult`](super::WindowResult).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    pub(crate) start: i64,
    pub(crate) end: i64,
}

impl Window {
    /// The window `start..end`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        Window::ms(start.as_millis(), end.as_millis())
    }

    /// The window `start..end` in milliseconds.
    pub(crate) fn ms(start: i64, end: i64) -> Self {
        Window { start, end }
    }

    /// Where the window starts (included).
    pub fn start(&self) -> Timestamp {
        Timestamp::from_millis(self.start)
    }

    /// Where the window ends (excluded).
    pub fn end(&self) -> Timestamp {
        Timestamp::from_millis(self.end)
    }

    /// How long the window is.
    pub fn len(&self) -> Duration {
        self.end().duration_since(self.start()).unwrap_or_default()
    }

    /// Whether the window holds no time at all (its end is not after its start).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `time` falls in the window.
    pub fn contains(&self, time: Timestamp) -> bool {
        self.contains_ms(time.as_millis())
    }

    pub(crate) fn contains_ms(&self, time: i64) -> bool {
        self.start <= time && time < self.end
    }
}

impl fmt::Display for Window {
    /// `start..end`, both as RFC 3339 UTC date-times.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start(), self.end())
    }
}

/// How a windowed table cuts time, as declared ([`WindowSpec::kind`](super::WindowSpec::kind)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Back-to-back windows of `size`: `[k*size, (k+1)*size)` from the epoch.
    Tumbling {
        /// Each window's length.
        size: Duration,
    },
    /// Windows of `size` starting every `step`: `[k*step, k*step + size)`.
    Hopping {
        /// Each window's length.
        size: Duration,
        /// The time between two windows' starts.
        step: Duration,
    },
    /// One window per distinct event time `t` of a key, holding the `size` up to and
    /// including it: `[t + 1 ms - size, t + 1 ms)`.
    Sliding {
        /// Each window's length.
        size: Duration,
    },
    /// Activity sessions per key: events closer than `gap` to each other share a window
    /// `[first event, last event + 1 ms)`.
    Session {
        /// The longest quiet time inside a session.
        gap: Duration,
    },
}

/// How a windowed table cuts time, in milliseconds (checked by `WindowSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    Tumbling { size: i64 },
    Hopping { size: i64, step: i64 },
    Sliding { size: i64 },
    Session { gap: i64 },
}

impl Cut {
    /// The public form.
    pub(crate) fn kind(self) -> WindowKind {
        let d = |ms: i64| Duration::from_millis(ms.max(0) as u64);
        match self {
            Cut::Tumbling { size } => WindowKind::Tumbling { size: d(size) },
            Cut::Hopping { size, step } => WindowKind::Hopping {
                size: d(size),
                step: d(step),
            },
            Cut::Sliding { size } => WindowKind::Sliding { size: d(size) },
            Cut::Session { gap } => WindowKind::Session { gap: d(gap) },
        }
    }

    /// The size (the gap for sessions): what `expires` and the grace period are checked against.
    pub(crate) fn size(&self) -> i64 {
        match *self {
            Cut::Tumbling { size } | Cut::Hopping { size, .. } | Cut::Sliding { size } => size,
            Cut::Session { gap } => gap,
        }
    }

    /// The fixed windows holding `time`, latest start first (tumbling and hopping; empty for
    /// the others, whose windows depend on the events).
    pub(crate) fn fixed_windows(&self, time: i64) -> Vec<Window> {
        let (size, step) = match *self {
            Cut::Tumbling { size } => (size, size),
            Cut::Hopping { size, step } => (size, step),
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
            windows.push(Window::ms(start, end));
            match start.checked_sub(step) {
                Some(s) => start = s,
                None => break,
            }
        }
        windows
    }

    /// The window that `current()` reads for `time`: the fixed window holding it with the
    /// latest start, or the sliding window ending at it. `None` for sessions (found by lookup).
    pub(crate) fn current_window(&self, time: i64) -> Option<Window> {
        match *self {
            Cut::Sliding { size } => Some(Window::ms(
                time.saturating_add(1).saturating_sub(size),
                time.saturating_add(1),
            )),
            Cut::Session { .. } => None,
            _ => self.fixed_windows(time).first().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopping_windows_of_a_time_latest_first() {
        let kind = Cut::Hopping { size: 10, step: 5 };
        assert_eq!(
            kind.fixed_windows(12),
            vec![Window::ms(10, 20), Window::ms(5, 15)]
        );
        assert_eq!(
            kind.fixed_windows(-3),
            vec![Window::ms(-5, 5), Window::ms(-10, 0)]
        );
        let tumbling = Cut::Tumbling { size: 300_000 };
        assert_eq!(
            tumbling.fixed_windows(299_999),
            vec![Window::ms(0, 300_000)]
        );
        assert_eq!(
            tumbling.current_window(300_000),
            Some(Window::ms(300_000, 600_000))
        );
    }

    #[test]
    fn a_sliding_window_ends_just_after_its_event() {
        let kind = Cut::Sliding { size: 10 };
        let w = kind.current_window(100).unwrap();
        assert_eq!(w, Window::ms(91, 101));
        assert!(w.contains_ms(91) && w.contains_ms(100) && !w.contains_ms(90));
    }
}
