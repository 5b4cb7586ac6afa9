//! How a windowed join keeps its buffers in one table partition. Every key starts with a tag:
//!
//! - `0`: the partition's clock (stream time, next due time, next sequence number);
//! - `1 | side | key length (u32) | key | time | seq`: a buffered event of one side, its value
//!   `matched (u8) | value (JSON)`; a probe for a key reads a time range of the other side;
//! - `2 | due time | what | side | key length | key | time | seq`: when stream time reaches the
//!   due time, the buffered event is looked at: `CLOSE` (emit it unmatched, if it still is)
//!   or `EXPIRE` (delete it);
//! - `3 | seq`: a join result, sent at the next commit and never stored (the table's outbound
//!   entries).
//!
//! Times are big-endian with the sign bit flipped, so that byte order is time order.

use bytes::Bytes;

use super::Side;

pub(super) const CLOCK_TAG: u8 = 0;
pub(super) const BUFFER_TAG: u8 = 1;
pub(super) const DUE_TAG: u8 = 2;
/// The outbound tag: entries under it are records for the join's output topic.
pub(crate) const OUT_TAG: u8 = 3;

/// A due entry that emits its event unmatched (left and outer joins).
pub(super) const CLOSE: u8 = 0;
/// A due entry that deletes its event.
pub(super) const EXPIRE: u8 = 1;

/// The clock entry of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Clock {
    /// The largest event time of either side (`i64::MIN` before the first).
    pub stream_time: i64,
    /// The earliest due time of a due entry (`i64::MAX`: none).
    pub next_due: i64,
    /// The next sequence number (buffered events and results).
    pub seq: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            stream_time: i64::MIN,
            next_due: i64::MAX,
            seq: 0,
        }
    }
}

impl Clock {
    pub fn key() -> Bytes {
        Bytes::from_static(&[CLOCK_TAG])
    }

    pub fn encode(&self) -> Bytes {
        let mut buf = Vec::with_capacity(24);
        buf.extend_from_slice(&self.stream_time.to_be_bytes());
        buf.extend_from_slice(&self.next_due.to_be_bytes());
        buf.extend_from_slice(&self.seq.to_be_bytes());
        Bytes::from(buf)
    }

    pub fn decode(bytes: &[u8]) -> Option<Clock> {
        Some(Clock {
            stream_time: i64::from_be_bytes(bytes.get(0..8)?.try_into().ok()?),
            next_due: i64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?),
            seq: u64::from_be_bytes(bytes.get(16..24)?.try_into().ok()?),
        })
        .filter(|_| bytes.len() == 24)
    }

    /// Takes the next sequence number.
    pub fn next_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        seq
    }
}

/// A time in byte order.
pub(super) fn time_bytes(time: i64) -> [u8; 8] {
    ((time as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from(bytes: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(bytes.try_into().ok()?) ^ (1 << 63)) as i64)
}

fn side_byte(side: Side) -> u8 {
    match side {
        Side::Left => 0,
        Side::Right => 1,
    }
}

fn side_of(byte: u8) -> Option<Side> {
    match byte {
        0 => Some(Side::Left),
        1 => Some(Side::Right),
        _ => None,
    }
}

/// `side | key length | key`: where a key's events of one side start. `None`: a key longer
/// than 4 GiB.
pub(super) fn key_prefix(side: Side, key: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(key.len()).ok()?;
    let mut buf = Vec::with_capacity(5 + key.len() + 16);
    buf.push(side_byte(side));
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(key);
    Some(buf)
}

/// A buffered event's key, from its key prefix.
pub(super) fn buffer_key(prefix: &[u8], time: i64, seq: u64) -> Bytes {
    let mut buf = Vec::with_capacity(1 + prefix.len() + 16);
    buf.push(BUFFER_TAG);
    buf.extend_from_slice(prefix);
    buf.extend_from_slice(&time_bytes(time));
    buf.extend_from_slice(&seq.to_be_bytes());
    Bytes::from(buf)
}

/// The buffered events of a key prefix with times in `from..=to`, as a key range.
pub(super) fn buffer_range(prefix: &[u8], from: i64, to: i64) -> (Vec<u8>, Vec<u8>) {
    let mut start = Vec::with_capacity(1 + prefix.len() + 8);
    start.push(BUFFER_TAG);
    start.extend_from_slice(prefix);
    let mut end = start.clone();
    start.extend_from_slice(&time_bytes(from));
    match to.checked_add(1) {
        Some(after) => end.extend_from_slice(&time_bytes(after)),
        // Up to the end of the prefix: the byte after the largest time.
        None => end.extend_from_slice(&[0xff; 9]),
    }
    (start, end)
}

/// A buffered event, parsed from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Buffered<'a> {
    pub side: Side,
    pub user_key: &'a [u8],
    pub time: i64,
    pub seq: u64,
}

/// Parses a buffered event's key (after its tag).
fn parse_buffered(rest: &[u8]) -> Option<Buffered<'_>> {
    let side = side_of(*rest.first()?)?;
    let len = u32::from_be_bytes(rest.get(1..5)?.try_into().ok()?) as usize;
    let key_end = 5usize.checked_add(len)?;
    let user_key = rest.get(5..key_end)?;
    let tail = rest.get(key_end..)?;
    if tail.len() != 16 {
        return None;
    }
    Some(Buffered {
        side,
        user_key,
        time: time_from(&tail[..8])?,
        seq: u64::from_be_bytes(tail[8..].try_into().ok()?),
    })
}

/// A store key of a join, parsed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum StoreKey<'a> {
    Clock,
    Buffer(Buffered<'a>),
    Due {
        at: i64,
        what: u8,
        /// The buffered event's key (with its tag).
        buffer: Bytes,
    },
    Out,
}

pub(super) fn parse_key(key: &[u8]) -> Option<StoreKey<'_>> {
    match *key.first()? {
        CLOCK_TAG if key.len() == 1 => Some(StoreKey::Clock),
        BUFFER_TAG => parse_buffered(&key[1..]).map(StoreKey::Buffer),
        DUE_TAG => {
            let at = time_from(key.get(1..9)?)?;
            let what = *key.get(9)?;
            if what != CLOSE && what != EXPIRE {
                return None;
            }
            let rest = key.get(10..)?;
            parse_buffered(rest)?;
            let mut buffer = Vec::with_capacity(1 + rest.len());
            buffer.push(BUFFER_TAG);
            buffer.extend_from_slice(rest);
            Some(StoreKey::Due {
                at,
                what,
                buffer: Bytes::from(buffer),
            })
        }
        OUT_TAG => Some(StoreKey::Out),
        _ => None,
    }
}

/// The due entry that looks at `buffer` (a buffered event's key) at stream time `at`.
pub(super) fn due_key(at: i64, what: u8, buffer: &[u8]) -> Bytes {
    let mut buf = Vec::with_capacity(10 + buffer.len());
    buf.push(DUE_TAG);
    buf.extend_from_slice(&time_bytes(at));
    buf.push(what);
    buf.extend_from_slice(&buffer[1..]);
    Bytes::from(buf)
}

/// The due entries with due times up to `now`, as a key range.
pub(super) fn due_through(now: i64) -> (Vec<u8>, Vec<u8>) {
    let end = match now.checked_add(1) {
        Some(after) => {
            let mut end = vec![DUE_TAG];
            end.extend_from_slice(&time_bytes(after));
            end
        }
        None => vec![DUE_TAG + 1],
    };
    (vec![DUE_TAG], end)
}

/// A result's outbound entry key.
pub(super) fn out_key(seq: u64) -> Bytes {
    let mut buf = Vec::with_capacity(9);
    buf.push(OUT_TAG);
    buf.extend_from_slice(&seq.to_be_bytes());
    Bytes::from(buf)
}

/// A buffered event's value: whether it found a partner, then its value's bytes.
pub(super) fn buffer_value(matched: bool, value: &[u8]) -> Bytes {
    let mut buf = Vec::with_capacity(1 + value.len());
    buf.push(u8::from(matched));
    buf.extend_from_slice(value);
    Bytes::from(buf)
}

/// `(matched, value bytes)` of a buffered event's value.
pub(super) fn parse_buffer_value(value: &Bytes) -> Option<(bool, Bytes)> {
    let matched = match *value.first()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some((matched, value.slice(1..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_time() {
        let prefix = key_prefix(Side::Right, b"ann").unwrap();
        let early = buffer_key(&prefix, -5, 7);
        let late = buffer_key(&prefix, 10, 1);
        assert!(early < late);
        assert_eq!(
            parse_key(&late),
            Some(StoreKey::Buffer(Buffered {
                side: Side::Right,
                user_key: b"ann",
                time: 10,
                seq: 1
            }))
        );
        let due = due_key(42, EXPIRE, &late);
        assert_eq!(
            parse_key(&due),
            Some(StoreKey::Due {
                at: 42,
                what: EXPIRE,
                buffer: late.clone()
            })
        );
        let (from, to) = buffer_range(&prefix, 10, 10);
        assert!(from.as_slice() <= &late[..] && &late[..] < to.as_slice());
        assert!(&early[..] < from.as_slice());
        let (start, end) = due_through(42);
        assert!(start.as_slice() <= &due[..] && &due[..] < end.as_slice());
        assert!(&due_key(43, CLOSE, &late)[..] >= end.as_slice());
        let clock = Clock {
            stream_time: 3,
            next_due: 9,
            seq: 11,
        };
        assert_eq!(Clock::decode(&clock.encode()), Some(clock));
        assert_eq!(parse_key(b"\x09"), None);
    }
}
