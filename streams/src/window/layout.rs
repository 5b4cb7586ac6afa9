//! How a windowed table lays out its store (and changelog) entries.
//!
//! Every key starts with a tag byte, so the two kinds of entries cannot collide:
//!
//! - a window: `0x00 | user key length (u32, big endian) | user key | window start`, its value
//!   `window end | the value in the table's codec`. The length prefix keeps one key's windows
//!   together (no other key's bytes extend its prefix) and the start, stored as an
//!   order-preserving 8 bytes, sorts them by start;
//! - the partition's clock: `0x01 clock`, its value `stream time | closed through | next due`.
//!
//! Times are `i64` with the sign bit flipped, big endian, so byte order is time order.

use bytes::{BufMut, Bytes, BytesMut};

const WINDOW_TAG: u8 = 0x00;
const META_TAG: u8 = 0x01;
const CLOCK_KEY: &[u8] = b"\x01clock";

fn put_time(buf: &mut BytesMut, time: i64) {
    buf.put_u64((time as u64) ^ (1 << 63));
}

fn read_time(bytes: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

/// The bytes every window key of `user_key` starts with.
pub(crate) fn key_prefix(user_key: &[u8]) -> Option<BytesMut> {
    let len = u32::try_from(user_key.len()).ok()?;
    let mut buf = BytesMut::with_capacity(1 + 4 + user_key.len() + 8);
    buf.put_u8(WINDOW_TAG);
    buf.put_u32(len);
    buf.put_slice(user_key);
    Some(buf)
}

/// The store key of `user_key`'s window starting at `start`.
pub(crate) fn window_key(prefix: &BytesMut, start: i64) -> Bytes {
    let mut buf = prefix.clone();
    put_time(&mut buf, start);
    buf.freeze()
}

/// The first key of the windows of all keys, and the key after the last (the clock).
pub(crate) fn all_windows() -> (&'static [u8], &'static [u8]) {
    (&[WINDOW_TAG], &[META_TAG])
}

/// A store key read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoreKey<'a> {
    Window { user_key: &'a [u8], start: i64 },
    Clock,
}

pub(crate) fn parse_key(key: &[u8]) -> Option<StoreKey<'_>> {
    match *key.first()? {
        WINDOW_TAG => {
            let len = u32::from_be_bytes(key.get(1..5)?.try_into().ok()?) as usize;
            let user_key = key.get(5..5usize.checked_add(len)?)?;
            let time = key.get(5 + len..)?;
            if time.len() != 8 {
                return None;
            }
            Some(StoreKey::Window {
                user_key,
                start: read_time(time)?,
            })
        }
        META_TAG if key == CLOCK_KEY => Some(StoreKey::Clock),
        _ => None,
    }
}

/// A window's stored value: its end, then the encoded value.
pub(crate) fn window_value(end: i64, value: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(8 + value.len());
    put_time(&mut buf, end);
    buf.put_slice(value);
    buf.freeze()
}

/// The end and the encoded value of a stored window value.
pub(crate) fn parse_value(bytes: &[u8]) -> Option<(i64, &[u8])> {
    Some((read_time(bytes)?, bytes.get(8..)?))
}

/// A partition's clock, kept in the table itself so that it survives restarts and is
/// recovered from the changelog with the windows it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clock {
    /// The largest event time seen (`i64::MIN`: none yet).
    pub stream_time: i64,
    /// Every window whose close time is at or before this has been closed (its callback fired).
    pub closed_through: i64,
    /// No window closes or expires before this (a lower bound): the next scan.
    pub next_due: i64,
}

impl Clock {
    pub const NEW: Clock = Clock {
        stream_time: i64::MIN,
        closed_through: i64::MIN,
        next_due: i64::MAX,
    };

    pub fn key() -> Bytes {
        Bytes::from_static(CLOCK_KEY)
    }

    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(24);
        put_time(&mut buf, self.stream_time);
        put_time(&mut buf, self.closed_through);
        put_time(&mut buf, self.next_due);
        buf.freeze()
    }

    pub fn decode(bytes: &[u8]) -> Option<Clock> {
        if bytes.len() != 24 {
            return None;
        }
        Some(Clock {
            stream_time: read_time(&bytes[0..])?,
            closed_through: read_time(&bytes[8..])?,
            next_due: read_time(&bytes[16..])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_clock_is_no_window() {
        assert_eq!(parse_key(&Clock::key()), Some(StoreKey::Clock));
        assert_eq!(parse_key(b"\x01other"), None);
        assert_eq!(parse_key(b""), None);
        assert_eq!(parse_key(b"\x00\x00\x00\x00\x09ab"), None);
        let clock = Clock {
            stream_time: -5,
            closed_through: i64::MIN,
            next_due: i64::MAX,
        };
        assert_eq!(Clock::decode(&clock.encode()), Some(clock));
        assert_eq!(Clock::decode(b"short"), None);
    }

    proptest! {
        #[test]
        fn keys_round_trip_and_sort_by_key_then_start(
            a in proptest::collection::vec(any::<u8>(), 0..6),
            b in proptest::collection::vec(any::<u8>(), 0..6),
            s1 in any::<i64>(),
            s2 in any::<i64>(),
        ) {
            let (pa, pb) = (key_prefix(&a).unwrap(), key_prefix(&b).unwrap());
            let ka = window_key(&pa, s1);
            prop_assert_eq!(parse_key(&ka), Some(StoreKey::Window { user_key: &a, start: s1 }));
            // One key's windows sort by start.
            prop_assert_eq!(ka.cmp(&window_key(&pa, s2)), s1.cmp(&s2));
            // Another key's windows are never inside this key's prefix range.
            if a != b {
                prop_assert!(!window_key(&pb, s2).starts_with(&pa));
            }
            prop_assert!(ka.as_ref() < all_windows().1);
            let v = window_value(s2, &b);
            prop_assert_eq!(parse_value(&v), Some((s2, &b[..])));
        }
    }
}
