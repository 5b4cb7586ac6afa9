//! Where a windowed table takes an event's time from.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::record::Event;

/// The time a windowed table files an event under (Faust's `relative_to_*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TimeSource {
    /// The record's timestamp (the default; Faust's `relative_to_stream`).
    #[default]
    EventTimestamp,
    /// A field of the event's value holding milliseconds since the epoch: a name, or a dotted
    /// path into nested records (`order.created_at`).
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
    pub fn time_of<K, V: Serialize>(&self, event: &Event<K, V>) -> Result<i64> {
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
                at.as_i64().ok_or_else(|| {
                    unreadable(
                        "value",
                        path,
                        format!("{at} is not a time in milliseconds since the epoch (an integer)"),
                    )
                })
            }
        }
    }
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
        assert_eq!(TimeSource::EventTimestamp.time_of(&event(5)).unwrap(), 5);
        let err = TimeSource::EventTimestamp.time_of(&event(-1)).unwrap_err();
        assert!(
            err.to_string()
                .contains("timestamp of orders/2@7 at field `timestamp`"),
            "{err}"
        );
        let field = TimeSource::Field("meta.created".into());
        assert_eq!(field.time_of(&event(5)).unwrap(), 42);
        let err = TimeSource::Field("meta.updated".into())
            .time_of(&event(5))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("value of orders/2@7 at field `meta.updated`: missing"),
            "{err}"
        );
        let err = TimeSource::Field("note".into())
            .time_of(&event(5))
            .unwrap_err();
        assert!(err.to_string().contains("\"x\" is not a time"), "{err}");
        assert!(TimeSource::WallClock.time_of(&event(5)).unwrap() > 1_600_000_000_000);
    }
}
