//! How a windowed table lays out its store (and changelog) entries.
//!
//! Every key starts with a tag byte, so the kinds of entries cannot collide:
//!
//! - a window: `0x00 | user key length (u32, big endian) | user key | window start`, its value
//!   `window end | the value in the table's codec`. The length prefix keeps one key's windows
//!   together (no other key's bytes extend its prefix) and the start, stored as an
//!   order-preserving 8 bytes, sorts them by start;
//! - the partition's clock: `0x01 clock`, its value `stream time | closed through | next due`;
//! - a due entry: `0x02 | time | user key length | user key | window start`, empty value: look
//!   at that window when stream time reaches `time`. No longer written: due times are derived
//!   from the windows and held in memory (`due.rs`); the first update of a partition deletes
//!   the due entries an earlier version stored (and changelog records of them still decode);
//! - a final result to send (emit-final): `0x03 | close time | user key length | user key |
//!   window start`, its value the framed record. It lives only until the flush sends it.
//!
//! Times are `i64` with the sign bit flipped, big endian, so byte order is time order.

use bytes::{BufMut, Bytes, BytesMut};

const WINDOW_TAG: u8 = 0x00;
const META_TAG: u8 = 0x01;
const DUE_TAG: u8 = 0x02;
/// Final results waiting for the flush that sends them (never stored: see
/// `TableCore::set_outbound`).
pub(crate) const EMIT_TAG: u8 = 0x03;
const CLOCK_KEY: &[u8] = b"\x01clock";

fn put_time(buf: &mut BytesMut, time: i64) {
    buf.put_u64((time as u64) ^ (1 << 63));
}

fn read_time(bytes: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

fn put_window_body(buf: &mut BytesMut, user_key: &[u8], start: Option<i64>) -> Option<()> {
    buf.put_u32(u32::try_from(user_key.len()).ok()?);
    buf.put_slice(user_key);
    if let Some(start) = start {
        put_time(buf, start);
    }
    Some(())
}

/// `user key length | user key | start` read back.
fn parse_window_body(body: &[u8]) -> Option<(&[u8], i64)> {
    let len = u32::from_be_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let user_key = body.get(4..4usize.checked_add(len)?)?;
    let time = body.get(4 + len..)?;
    if time.len() != 8 {
        return None;
    }
    Some((user_key, read_time(time)?))
}

/// The bytes every window key of `user_key` starts with.
pub(crate) fn key_prefix(user_key: &[u8]) -> Option<BytesMut> {
    let mut buf = BytesMut::with_capacity(1 + 4 + user_key.len() + 8);
    buf.put_u8(WINDOW_TAG);
    put_window_body(&mut buf, user_key, None)?;
    Some(buf)
}

/// The key range of every window entry: its start, and its end (excluded).
pub(crate) fn window_range() -> (Bytes, Bytes) {
    (
        Bytes::from_static(&[WINDOW_TAG]),
        Bytes::from_static(&[META_TAG]),
    )
}

/// The store key of `user_key`'s window starting at `start`.
pub(crate) fn window_key(prefix: &BytesMut, start: i64) -> Bytes {
    // Sized for the start at once (a clone of `prefix` has no room left: a second allocation).
    let mut buf = BytesMut::with_capacity(prefix.len() + 8);
    buf.put_slice(prefix);
    put_time(&mut buf, start);
    buf.freeze()
}

/// The store key of `user_key`'s window starting at `start`, in one allocation (no prefix
/// built first); `None` for a key longer than 4 GiB.
pub(crate) fn window_key_of(user_key: &[u8], start: i64) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(1 + 4 + user_key.len() + 8);
    buf.put_u8(WINDOW_TAG);
    put_window_body(&mut buf, user_key, Some(start))?;
    Some(buf.freeze())
}

/// The due entry of `user_key`'s window starting at `start`, at `time`, as an earlier version
/// stored it. `None` for a key longer than 4 GiB.
#[cfg(test)]
pub(crate) fn due_key(time: i64, user_key: &[u8], start: i64) -> Option<Bytes> {
    timed_key(DUE_TAG, time, user_key, start)
}

/// The entry of the final result of `user_key`'s window starting at `start`, closed at `time`:
/// sorted by close time, as the results are sent.
pub(crate) fn emit_key(time: i64, user_key: &[u8], start: i64) -> Option<Bytes> {
    timed_key(EMIT_TAG, time, user_key, start)
}

fn timed_key(tag: u8, time: i64, user_key: &[u8], start: i64) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(1 + 8 + 4 + user_key.len() + 8);
    buf.put_u8(tag);
    put_time(&mut buf, time);
    put_window_body(&mut buf, user_key, Some(start))?;
    Some(buf.freeze())
}

/// The key range of the due entries at or before `time`: its start, and its end (excluded;
/// `None`: to the end of the partition).
#[cfg(test)]
pub(crate) fn due_through(time: i64) -> (Bytes, Option<Bytes>) {
    let end = time.checked_add(1).map(|next| {
        let mut buf = BytesMut::with_capacity(9);
        buf.put_u8(DUE_TAG);
        put_time(&mut buf, next);
        buf.freeze()
    });
    (Bytes::from_static(&[DUE_TAG]), end)
}

/// The key range of every due entry an earlier version stored: its start, and its end
/// (excluded).
pub(crate) fn stored_due_range() -> (Bytes, Bytes) {
    (
        Bytes::from_static(&[DUE_TAG]),
        Bytes::from_static(&[EMIT_TAG]),
    )
}

/// A store key read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoreKey<'a> {
    Window {
        user_key: &'a [u8],
        start: i64,
    },
    Clock,
    Due {
        time: i64,
        user_key: &'a [u8],
        start: i64,
    },
}

pub(crate) fn parse_key(key: &[u8]) -> Option<StoreKey<'_>> {
    match *key.first()? {
        WINDOW_TAG => {
            let (user_key, start) = parse_window_body(&key[1..])?;
            Some(StoreKey::Window { user_key, start })
        }
        META_TAG if key == CLOCK_KEY => Some(StoreKey::Clock),
        DUE_TAG => {
            let time = read_time(key.get(1..)?)?;
            let (user_key, start) = parse_window_body(key.get(9..)?)?;
            Some(StoreKey::Due {
                time,
                user_key,
                start,
            })
        }
        _ => None,
    }
}

/// Starts a window's stored value in `out`: its end (the encoded value follows).
pub(crate) fn put_window_end(out: &mut Vec<u8>, end: i64) {
    out.put_u64((end as u64) ^ (1 << 63));
}

/// A window's stored value: its end, then the encoded value.
#[cfg(test)]
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
    /// The time of the first due entry (`i64::MAX`: none): nothing to do before it.
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
            prop_assert_eq!(Some(ka.clone()), window_key_of(&a, s1));
            prop_assert_eq!(parse_key(&ka), Some(StoreKey::Window { user_key: &a, start: s1 }));
            // One key's windows sort by start.
            prop_assert_eq!(ka.cmp(&window_key(&pa, s2)), s1.cmp(&s2));
            // Another key's windows are never inside this key's prefix range.
            if a != b {
                prop_assert!(!window_key(&pb, s2).starts_with(&pa));
            }
            prop_assert!(ka.as_ref() < Clock::key().as_ref());
            // Due entries sort by time and read back; those through a time are in its range.
            let due = due_key(s1, &a, s2).unwrap();
            prop_assert_eq!(parse_key(&due), Some(StoreKey::Due { time: s1, user_key: &a, start: s2 }));
            if s1 < s2 {
                prop_assert!(due < due_key(s2, &b, s1).unwrap());
            }
            let (from, to) = due_through(s2);
            let inside = due >= from && to.as_ref().is_none_or(|to| due < *to);
            prop_assert_eq!(inside, s1 <= s2);
            prop_assert!(due.as_ref() > Clock::key().as_ref());
            let v = window_value(s2, &b);
            prop_assert_eq!(parse_value(&v), Some((s2, &b[..])));
            let mut framed = Vec::new();
            put_window_end(&mut framed, s2);
            framed.extend_from_slice(&b);
            prop_assert_eq!(&framed[..], &v[..]);
        }
    }
}
