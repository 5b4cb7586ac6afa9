//! [`Timestamp`]: a point in time as Kafka records carry it, milliseconds since the Unix epoch.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time: milliseconds since the Unix epoch (1970-01-01T00:00:00Z), as Kafka record
/// timestamps are. What windowed tables take and return for times; durations are
/// [`Duration`]s, and adding or subtracting one saturates at [`Timestamp::MIN`] and
/// [`Timestamp::MAX`] instead of overflowing.
///
/// It serializes as the bare number of milliseconds and displays as an RFC 3339 UTC date-time.
///
/// ```
/// use std::time::Duration;
/// use streams::Timestamp;
///
/// let t = Timestamp::from_millis(946_684_800_250);
/// assert_eq!(t.to_string(), "2000-01-01T00:00:00.250Z");
/// assert_eq!((t + Duration::from_secs(1)).as_millis(), 946_684_801_250);
/// assert_eq!(t.duration_since(Timestamp::UNIX_EPOCH), Some(Duration::from_millis(946_684_800_250)));
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

/// Milliseconds in `d`, at most `i64::MAX`.
fn millis_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Timestamp {
    /// The earliest time there is.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest time there is.
    pub const MAX: Timestamp = Timestamp(i64::MAX);
    /// 1970-01-01T00:00:00Z, zero milliseconds.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// The time `millis` milliseconds after the epoch (before it when negative).
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The wall clock now.
    pub fn now() -> Self {
        SystemTime::now().into()
    }

    /// The time an RFC 3339 date-time names (`T` or a space between date and time, fractions
    /// of a second cut to milliseconds, `Z` or an offset); `None` if it is not one.
    pub(crate) fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        rfc3339_ms(text).map(Timestamp)
    }

    /// How long after `earlier` this is; `None` when it is before `earlier`.
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        let diff = self.0.checked_sub(earlier.0)?;
        u64::try_from(diff).ok().map(Duration::from_millis)
    }

    /// `d` later, or [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(millis_of(d)))
    }

    /// `d` earlier, or [`Timestamp::MIN`].
    pub fn saturating_sub(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(millis_of(d)))
    }
}

impl From<SystemTime> for Timestamp {
    /// Cut to the millisecond; times beyond the range of `i64` milliseconds saturate.
    fn from(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(millis_of(after)),
            Err(before) => Timestamp(millis_of(before.duration()).saturating_neg()),
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(time: Timestamp) -> Self {
        let d = Duration::from_millis(time.0.unsigned_abs());
        if time.0 >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturating: see [`Timestamp::saturating_add`].
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturating: see [`Timestamp::saturating_sub`].
    fn sub(self, d: Duration) -> Timestamp {
        self.saturating_sub(d)
    }
}

/// The (year, month, day) of a day counted from 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Count from 0000-03-01 so that the leap day ends each 400-year era's years.
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Milliseconds since the epoch of an RFC 3339 date-time (`T` or a space between date and
/// time, fractions of a second cut to milliseconds, `Z` or an offset); `None` if it is not one.
fn rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |at: usize, len: usize| -> Option<i64> {
        let digits = b.get(at..at + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|(at, c)| b.get(*at) != Some(c))
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        millis = (0..3).fold(0, |n, i| {
            n * 10
                + if i < digits {
                    i64::from(b[at + 1 + i] - b'0')
                } else {
                    0
                }
        });
        at += 1 + digits;
    }
    let offset_minutes = match b.get(at)? {
        b'Z' | b'z' if at + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if at + 6 == b.len() && b[at + 3] == b':' => {
            let minutes = num(at + 1, 2)? * 60 + num(at + 4, 2)?;
            if *sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds (`2026-12-01T09:30:00.250Z`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, millis) = (self.0.div_euclid(1000), self.0.rem_euclid(1000));
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_rfc3339_utc() {
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(-1).to_string(),
            "1969-12-31T23:59:59.999Z"
        );
        // 2000-03-01 follows a leap day; 2100-03-01 does not.
        assert_eq!(
            Timestamp::from_millis(951_868_800_100).to_string(),
            "2000-03-01T00:00:00.100Z"
        );
        assert_eq!(
            Timestamp::from_millis(4_107_542_400_000).to_string(),
            "2100-03-01T00:00:00.000Z"
        );
    }

    #[test]
    fn converts_with_system_time_and_saturates_with_durations() {
        let t = Timestamp::from_millis(-1_500);
        assert_eq!(Timestamp::from(SystemTime::from(t)), t);
        let now = Timestamp::now();
        assert!(now > Timestamp::from_millis(1_600_000_000_000));
        assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(Timestamp::MIN - Duration::MAX, Timestamp::MIN);
        assert_eq!(Timestamp::UNIX_EPOCH.duration_since(now), None);
        assert_eq!(
            serde_json::to_string(&Timestamp::from_millis(42)).unwrap(),
            "42"
        );
    }

    proptest::proptest! {
        #[test]
        fn a_displayed_time_reads_back_as_the_same_milliseconds(
            ms in -62_135_596_800_000i64..253_402_300_799_999,
        ) {
            let text = Timestamp::from_millis(ms).to_string();
            proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&text), Some(Timestamp(ms)), "{}", text);
        }
    }
}
