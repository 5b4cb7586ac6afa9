//! A windowed join's buffer table as JSON for the web pages and the CLI: its keys and values
//! are the join's own layout (see `layout`), not the codecs of a typed table.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use super::layout::{self, Clock, StoreKey, CLOSE};
use super::Side;
use crate::table::{Part, Render};

/// Renders buffered events with their side, key, time and sequence, due entries with their
/// time, and the partition's clock.
pub(crate) fn buffer_render() -> Render {
    Arc::new(|part, bytes| match part {
        Part::Key => key(bytes),
        Part::Value => Ok(value(bytes)),
    })
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Left => "left",
        Side::Right => "right",
    }
}

/// JSON bytes as JSON, else as text.
fn json_or_text(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn key(bytes: &[u8]) -> Result<Value, String> {
    match layout::parse_key(bytes) {
        Some(StoreKey::Clock) => Ok(json!("clock")),
        Some(StoreKey::Buffer(event)) => Ok(json!({
            "side": side_name(event.side),
            "key": json_or_text(event.user_key),
            "timestamp": event.time,
            "seq": event.seq,
        })),
        Some(StoreKey::Due { at, what, buffer }) => {
            let event = match layout::parse_key(&buffer) {
                Some(StoreKey::Buffer(event)) => json!({
                    "side": side_name(event.side),
                    "key": json_or_text(event.user_key),
                    "timestamp": event.time,
                }),
                _ => Value::Null,
            };
            let action = if what == CLOSE { "close" } else { "expire" };
            Ok(json!({ "due": at, "action": action, "event": event }))
        }
        Some(StoreKey::Out) => Ok(json!("result waiting for the next commit")),
        None => Err("not a key of a windowed join's buffers".into()),
    }
}

/// A value has no key beside it here: a buffered event's value (`matched | JSON`) is tried
/// first, then the clock's 24 bytes.
fn value(bytes: &[u8]) -> Value {
    if let Some((matched, event)) = layout::parse_buffer_value(&Bytes::copy_from_slice(bytes)) {
        if let Ok(event) = serde_json::from_slice::<Value>(&event) {
            return json!({ "matched": matched, "value": event });
        }
    }
    match Clock::decode(bytes) {
        Some(clock) => json!({
            "stream_time": clock.stream_time,
            "next_due": clock.next_due,
            "seq": clock.seq,
        }),
        None if bytes.is_empty() => Value::Null,
        None => json!({ "bytes": bytes.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_events_render_with_side_key_and_time() {
        let render = buffer_render();
        let prefix = layout::key_prefix(Side::Right, br#""alice""#).unwrap();
        let key = layout::buffer_key(&prefix, 1_000, 7);
        assert_eq!(
            render(Part::Key, &key).unwrap(),
            json!({ "side": "right", "key": "alice", "timestamp": 1000, "seq": 7 })
        );
        let value = layout::buffer_value(true, br#"{"amount":3}"#);
        assert_eq!(
            render(Part::Value, &value).unwrap(),
            json!({ "matched": true, "value": { "amount": 3 } })
        );
        let due = layout::due_key(5_000, CLOSE, &key);
        assert_eq!(
            render(Part::Key, &due).unwrap(),
            json!({ "due": 5000, "action": "close",
                    "event": { "side": "right", "key": "alice", "timestamp": 1000 } })
        );
    }

    #[test]
    fn the_clock_renders_and_garbage_is_refused() {
        let render = buffer_render();
        assert_eq!(render(Part::Key, &Clock::key()).unwrap(), json!("clock"));
        let clock = Clock {
            stream_time: 9,
            next_due: 12,
            seq: 3,
        };
        assert_eq!(
            render(Part::Value, &clock.encode()).unwrap(),
            json!({ "stream_time": 9, "next_due": 12, "seq": 3 })
        );
        assert!(render(Part::Key, b"\x09nonsense").is_err());
    }
}
