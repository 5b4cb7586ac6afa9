//! A windowed table's declaration: kind, grace period and expiry, checked when declared.

use std::time::Duration;

use super::kind::{Cut, Window, WindowKind};
use crate::error::{Error, Result};
use crate::timestamp::Timestamp;

/// How long windows are kept after they start when `expires` is not given (Kafka Streams'
/// default retention), unless size plus grace is longer.
pub const DEFAULT_EXPIRES: Duration = Duration::from_secs(24 * 3600);

/// The most hopping windows one event may fall in (size / step): each is an entry to update.
pub(crate) const MAX_WINDOWS_PER_EVENT: i64 = 10_000;

/// What a windowed table is, as declared: its [`WindowKind`], grace period and expiry
/// (checked when the table is [built](super::WindowedTableBuilder::build); times are kept in
/// whole milliseconds).
///
/// - A window *closes* when the stream time of its partition reaches its end plus `grace`:
///   then `on_window_close` fires and later events for it are late.
/// - A window is *deleted* (a tombstone in the changelog) when stream time reaches its start
///   plus `expires` (a session: its end plus `expires`). `expires` must cover size plus grace,
///   so a window always closes before it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    kind: Cut,
    grace: i64,
    /// `None`: [`DEFAULT_EXPIRES`] or size + grace, whichever is longer.
    expires: Option<i64>,
}

fn millis(table: &str, what: &str, d: Duration) -> Result<i64> {
    i64::try_from(d.as_millis()).map_err(|_| Error::TableSetting {
        table: table.to_owned(),
        setting: "window",
        reason: format!("window {what} {d:?} is too long (more than i64::MAX milliseconds)"),
    })
}

impl WindowSpec {
    /// Checks and converts a declaration; `table` names the table in errors.
    pub(crate) fn new(table: &str, kind: Kind) -> Result<Self> {
        let bad = |reason: String| Error::TableSetting {
            table: table.to_owned(),
            setting: "window",
            reason,
        };
        let kind = match kind {
            Kind::Tumbling(size) => Cut::Tumbling {
                size: millis(table, "size", size)?,
            },
            Kind::Hopping(size, step) => Cut::Hopping {
                size: millis(table, "size", size)?,
                step: millis(table, "step", step)?,
            },
            Kind::Sliding(size) => Cut::Sliding {
                size: millis(table, "size", size)?,
            },
            Kind::Session(gap) => Cut::Session {
                gap: millis(table, "gap", gap)?,
            },
        };
        if kind.size() < 1 {
            let what = if matches!(kind, Cut::Session { .. }) {
                "session gap"
            } else {
                "window size"
            };
            return Err(bad(format!(
                "the {what} is zero: give at least one millisecond (such as Duration::from_secs(300))"
            )));
        }
        if let Cut::Hopping { size, step } = kind {
            if step < 1 {
                return Err(bad(
                    "the hopping step is zero: give at least one millisecond (such as a fifth of the size)"
                        .into(),
                ));
            }
            if size / step > MAX_WINDOWS_PER_EVENT {
                return Err(bad(format!(
                    "a hopping window of {size} ms every {step} ms puts each event in {} windows \
                     (at most {MAX_WINDOWS_PER_EVENT}): use a larger step",
                    size / step
                )));
            }
            if step > size {
                return Err(bad(format!(
                    "the hopping step ({step} ms) is larger than the window size ({size} ms): \
                     time between windows would be counted nowhere; use a step up to the size \
                     (equal to it is tumbling)"
                )));
            }
        }
        Ok(WindowSpec {
            kind,
            grace: 0,
            expires: None,
        })
    }

    pub(crate) fn with_grace(self, table: &str, grace: Duration) -> Result<Self> {
        let spec = WindowSpec {
            grace: millis(table, "grace period", grace)?,
            ..self
        };
        spec.check_expiry(table)?;
        Ok(spec)
    }

    pub(crate) fn with_expires(self, table: &str, expires: Duration) -> Result<Self> {
        let spec = WindowSpec {
            expires: Some(millis(table, "expiry", expires)?),
            ..self
        };
        spec.check_expiry(table)?;
        Ok(spec)
    }

    fn check_expiry(&self, table: &str) -> Result<()> {
        let Some(expires) = self.expires else {
            return Ok(());
        };
        let size = self.kind.size();
        let what = if matches!(self.kind, Cut::Session { .. }) {
            "the session gap"
        } else {
            "the window size"
        };
        let bad = |reason: String| {
            Err(Error::TableSetting {
                table: table.to_owned(),
                setting: "expires",
                reason,
            })
        };
        if expires < size {
            return bad(format!(
                "expires ({expires} ms) is shorter than {what} ({size} ms): windows would be \
                 deleted while still open; make expires at least {what} plus the grace period"
            ));
        }
        if expires < size.saturating_add(self.grace) {
            return bad(format!(
                "expires ({expires} ms) is shorter than {what} plus the grace period ({size} + {} ms): \
                 windows would be deleted before they close; raise expires or lower the grace period",
                self.grace
            ));
        }
        Ok(())
    }

    /// The kind of windows and their size.
    pub fn kind(&self) -> WindowKind {
        self.kind.kind()
    }

    /// The kind in milliseconds.
    pub(crate) fn cut(&self) -> Cut {
        self.kind
    }

    /// How long a window stays open after its end for late events.
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace as u64)
    }

    /// How long after its start (a session: after its end) a window is deleted.
    pub fn expires(&self) -> Duration {
        Duration::from_millis(self.expires_ms() as u64)
    }

    /// The stream time at which `window` closes: its end (a session: its end plus the gap)
    /// plus the grace period.
    pub fn close_at(&self, window: Window) -> Timestamp {
        Timestamp::from_millis(self.close_ms(window))
    }

    /// The stream time at which `window` is deleted.
    pub fn expire_at(&self, window: Window) -> Timestamp {
        Timestamp::from_millis(self.expire_ms(window))
    }

    /// The grace period in milliseconds.
    pub(crate) fn grace_ms(&self) -> i64 {
        self.grace
    }

    /// The expiry in milliseconds.
    pub(crate) fn expires_ms(&self) -> i64 {
        self.expires.unwrap_or_else(|| {
            (DEFAULT_EXPIRES.as_millis() as i64).max(self.kind.size().saturating_add(self.grace))
        })
    }

    /// The stream time at which `window` closes, in milliseconds.
    pub(crate) fn close_ms(&self, window: Window) -> i64 {
        let end = match self.kind {
            Cut::Session { gap } => window.end.saturating_add(gap),
            _ => window.end,
        };
        end.saturating_add(self.grace)
    }

    /// The stream time at which a stored entry for `window` is deleted, in milliseconds. For
    /// sliding windows the entry is an event time's bucket `[t, t + 1)`, kept while a window
    /// holding it is.
    pub(crate) fn expire_ms(&self, window: Window) -> i64 {
        match self.kind {
            Cut::Session { .. } => window.end.saturating_add(self.expires_ms()),
            _ => window.start.saturating_add(self.expires_ms()),
        }
    }
}

/// A declaration before it is checked (durations as the user gave them).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Tumbling(Duration),
    Hopping(Duration, Duration),
    Sliding(Duration),
    Session(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn bad_declarations_name_the_table_and_what_to_do() {
        let err = WindowSpec::new("totals", Kind::Tumbling(Duration::ZERO)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("table totals: the window size is zero"),
            "{err}"
        );
        let err = WindowSpec::new("s", Kind::Session(Duration::from_micros(10))).unwrap_err();
        assert!(err.to_string().contains("session gap is zero"), "{err}");
        let err = WindowSpec::new("totals", Kind::Hopping(secs(60), secs(120))).unwrap_err();
        assert!(
            err.to_string()
                .contains("step (120000 ms) is larger than the window size"),
            "{err}"
        );
        let err = WindowSpec::new(
            "totals",
            Kind::Hopping(secs(86_400), Duration::from_millis(1)),
        )
        .unwrap_err();
        assert!(err.to_string().contains("use a larger step"), "{err}");
        let err = WindowSpec::new("totals", Kind::Hopping(secs(60), Duration::ZERO)).unwrap_err();
        assert!(err.to_string().contains("step is zero"), "{err}");
        let spec = WindowSpec::new("totals", Kind::Hopping(secs(300), secs(60))).unwrap();
        let err = spec.with_expires("totals", secs(60)).unwrap_err();
        assert!(
            err.to_string()
                .contains("expires (60000 ms) is shorter than the window size"),
            "{err}"
        );
        let spec = spec.with_expires("totals", secs(310)).unwrap();
        let err = spec.with_grace("totals", secs(20)).unwrap_err();
        assert!(
            err.to_string().contains("raise expires or lower the grace"),
            "{err}"
        );
        assert_eq!(
            spec.with_grace("totals", secs(10)).unwrap().grace_ms(),
            10_000
        );
    }

    #[test]
    fn default_expiry_is_a_day_or_size_plus_grace() {
        let spec = WindowSpec::new("t", Kind::Tumbling(secs(60))).unwrap();
        assert_eq!(spec.expires_ms(), 86_400_000);
        let spec = WindowSpec::new("t", Kind::Tumbling(secs(2 * 86_400)))
            .unwrap()
            .with_grace("t", secs(1))
            .unwrap();
        assert_eq!(spec.expires_ms(), 2 * 86_400_000 + 1000);
    }
}
