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

/// Milliseconds since the epoch of an RFC 3339 date-time; `None` if it is not one.
fn rfc3339_ms(text: &str) -> Option<i64> {
    Timestamp::parse_rfc3339(text).map(Timestamp::as_millis)
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
        ) {
            let _ = rfc3339_ms(&text);
        }
    }
}
