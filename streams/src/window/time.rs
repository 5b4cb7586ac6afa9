//! Where a windowed table takes an event's time from.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::record::Event;
use crate::timestamp::Timestamp;

/// The time a windowed table files an event under (Faust's `relative_to_*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TimeSource {
    /// The record's timestamp (the default; Faust's `relative_to_stream`).
    #[default]
    EventTimestamp,
    /// A field of the event's value: a name, or a dotted path into nested records
    /// (`order.created_at`). It holds milliseconds since the epoch (an integer) or an RFC 3339
    /// date-time string (`2026-12-01T09:30:00.250Z`, how `chrono` and `time` serialize).
    Field(String),
    /// The wall clock when the event is processed (results then depend on when it runs).
    WallClock,
}

/// Milliseconds since the epoch on the wall clock.
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl TimeSource {
    /// The time of `event`; an error of the topic's decode kind naming the field when it has
    /// none.
    pub fn time_of<K, V: Serialize>(&self, event: &Event<K, V>) -> Result<Timestamp> {
        self.time_ms(event).map(Timestamp::from_millis)
    }

    /// [`time_of`](Self::time_of) in milliseconds.
    pub(crate) fn time_ms<K, V: Serialize>(&self, event: &Event<K, V>) -> Result<i64> {
        let unreadable = |part: &'static str, field: &str, reason: String| Error::Decode {
            topic: event.topic.to_string(),
            partition: event.partition,
            offset: event.offset,
            part,
            field: Some(field.to_owned()),
            reason,
        };
        match self {
            TimeSource::EventTimestamp => {
                if event.timestamp < 0 {
                    Err(unreadable(
                        "timestamp",
                        "timestamp",
                        format!(
                            "the record has no timestamp ({}): a windowed table needs one; have \
                             producers set it, or read the time from a field (relative_to_field)",
                            event.timestamp
                        ),
                    ))
                } else {
                    Ok(event.timestamp)
                }
            }
            TimeSource::WallClock => Ok(wall_clock_ms()),
            TimeSource::Field(path) => {
                let value = serde_json::to_value(&event.value)
                    .map_err(|e| unreadable("value", path, e.to_string()))?;
                let mut at = &value;
                for name in path.split('.') {
                    at = at.get(name).ok_or_else(|| {
                        unreadable(
                            "value",
                            path,
                            "missing: the window time must be a field of the value".into(),
                        )
                    })?;
                }
                at.as_i64()
                    .or_else(|| at.as_str().and_then(rfc3339_ms))
                    .ok_or_else(|| {
                        unreadable(
                            "value",
                            path,
                            format!(
                                "{at} is not a time: milliseconds since the epoch (an integer) or \
                                 an RFC 3339 date-time (2026-12-01T09:30:00Z)"
                            ),
                        )
                    })
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Order {
        meta: Meta,
        note: String,
    }
    #[derive(Serialize)]
    struct Meta {
        created: i64,
    }

    fn event(timestamp: i64) -> Event<String, Order> {
        Event::new(
            "orders",
            2,
            7,
            timestamp,
            None,
            Order {
                meta: Meta { created: 42 },
                note: "x".into(),
            },
        )
    }

    #[test]
    fn time_from_the_timestamp_or_a_field_and_errors_name_the_field() {
        assert_eq!(TimeSource::EventTimestamp.time_ms(&event(5)).unwrap(), 5);
        let err = TimeSource::EventTimestamp.time_ms(&event(-1)).unwrap_err();
        assert!(
            err.to_string()
                .contains("timestamp of orders/2@7 at field `timestamp`"),
            "{err}"
        );
        let field = TimeSource::Field("meta.created".into());
        assert_eq!(field.time_ms(&event(5)).unwrap(), 42);
        let err = TimeSource::Field("meta.updated".into())
            .time_ms(&event(5))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("value of orders/2@7 at field `meta.updated`: missing"),
            "{err}"
        );
        let err = TimeSource::Field("note".into())
            .time_ms(&event(5))
            .unwrap_err();
        assert!(err.to_string().contains("\"x\" is not a time"), "{err}");
        assert!(err.to_string().contains("RFC 3339"), "{err}");
        assert!(TimeSource::WallClock.time_ms(&event(5)).unwrap() > 1_600_000_000_000);
    }

    #[test]
    fn rfc3339_date_times_read_as_milliseconds() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("2000-01-01T00:00:00Z"), Some(946_684_800_000));
        assert_eq!(
            rfc3339_ms("2000-01-01T01:00:00+01:00"),
            Some(946_684_800_000)
        );
        assert_eq!(
            rfc3339_ms("1999-12-31 23:30:00-00:30"),
            Some(946_684_800_000)
        );
        assert_eq!(rfc3339_ms("2000-03-01T00:00:00.1Z"), Some(951_868_800_100));
        assert_eq!(
            rfc3339_ms("2000-03-01T00:00:00.123456789Z"),
            Some(951_868_800_123)
        );
        assert_eq!(rfc3339_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        for bad in [
            "",
            "2000-01-01",
            "2000-01-01T00:00:00",
            "2000-13-01T00:00:00Z",
            "2000-01-01T24:00:00Z",
            "2000-01-01T00:00:00.Z",
            "2000-01-01T00:00:00+0100",
            "2000-01-01T00:00:00Zjunk",
            "20x0-01-01T00:00:00Z",
            "2000-01-01T00:00:00\u{e9}",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad:?}");
        }
    }

    #[derive(Serialize)]
    struct Stamped {
        at: &'static str,
    }

    #[test]
    fn a_field_may_hold_an_rfc3339_string() {
        let event = Event::new(
            "t",
            0,
            0,
            5,
            None::<String>,
            Stamped {
                at: "2000-01-01T00:00:00.250Z",
            },
        );
        assert_eq!(
            TimeSource::Field("at".into()).time_ms(&event).unwrap(),
            946_684_800_250
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_read_or_refused_without_a_panic(
            text in "[0-9T:.+Z -]{0,40}|\\PC{0,40}",
            ms in -62_135_596_800_000i64..253_402_300_799_999,
        ) {
            let _ = rfc3339_ms(&text);
            // And a formatted time reads back (UTC, milliseconds).
            let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil_from_days(days);
            let text = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60
            );
            proptest::prop_assert_eq!(rfc3339_ms(&text), Some(ms), "{}", text);
        }
    }

    /// The date of a day since 1970-01-01 (the inverse of days_from_civil, written apart).
    fn civil_from_days(days: i64) -> (i64, i64, i64) {
        let (mut y, mut m, mut d) = (1970, 1, 1);
        let mut left = days;
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        while left < 0 {
            y -= 1;
            left += if leap(y) { 366 } else { 365 };
        }
        while left >= if leap(y) { 366 } else { 365 } {
            left -= if leap(y) { 366 } else { 365 };
            y += 1;
        }
        let months = [
            31,
            if leap(y) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        for len in months {
            if left < len {
                break;
            }
            left -= len;
            m += 1;
        }
        d += left;
        (y, m, d)
    }
}
