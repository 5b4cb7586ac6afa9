//! Kafka's zigzag varints (protobuf style), used inside records.
//!
//! Readers work on a slice plus a cursor so the record decoder can bound every read by the
//! record's own length without re-slicing.

use crate::error::{Error, Result};

/// Bytes needed for `v` as a zigzag varint (1..=5).
#[inline]
pub(crate) fn varint_len(v: i32) -> usize {
    varlong_len(v as i64)
}

/// Bytes needed for `v` as a zigzag varlong (1..=10).
#[inline]
pub(crate) fn varlong_len(v: i64) -> usize {
    let z = zigzag64(v);
    // Each byte carries 7 bits; at least one byte even for zero.
    let bits = 64 - (z | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag64(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_varlong(out, v as i64)
}

#[inline]
pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = zigzag64(v);
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Writes `v` as a zigzag varlong into `out` at `pos`; returns the position after it. For
/// encoders filling a fixed buffer: no length bookkeeping per byte, as `Vec::push` has.
#[inline]
pub(crate) fn put_varlong_at(out: &mut [u8], mut pos: usize, v: i64) -> usize {
    let mut z = zigzag64(v);
    while z >= 0x80 {
        out[pos] = (z as u8) | 0x80;
        pos += 1;
        z >>= 7;
    }
    out[pos] = z as u8;
    pos + 1
}

/// Reads an unsigned LEB128 of at most `max_bytes` bytes at `*pos`.
#[inline]
fn read_raw(buf: &[u8], pos: &mut usize, max_bytes: usize, what: &'static str) -> Result<u64> {
    let mut result = 0u64;
    let mut shift = 0u32;
    for i in 0..max_bytes {
        let Some(&b) = buf.get(*pos + i) else {
            return Err(Error::malformed(
                what,
                "varint runs past the end of its record",
            ));
        };
        result |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            *pos += i + 1;
            return Ok(result);
        }
        shift += 7;
    }
    Err(Error::malformed(
        what,
        format!("varint longer than {max_bytes} bytes"),
    ))
}

/// Reads a zigzag varint (at most 5 bytes, as Kafka's Java client accepts).
#[inline]
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize, what: &'static str) -> Result<i32> {
    // Fast path: one byte, the common case for lengths below 64 and small deltas.
    if let Some(&b) = buf.get(*pos) {
        if b & 0x80 == 0 {
            *pos += 1;
            return Ok(unzigzag64(u64::from(b)) as i32);
        }
    }
    let raw = read_raw(buf, pos, 5, what)?;
    // Like Java, bits beyond 32 in the fifth byte are dropped.
    Ok(unzigzag64(u64::from(raw as u32)) as i32)
}

/// Reads a zigzag varlong (at most 10 bytes).
#[inline]
pub(crate) fn read_varlong(buf: &[u8], pos: &mut usize, what: &'static str) -> Result<i64> {
    if let Some(&b) = buf.get(*pos) {
        if b & 0x80 == 0 {
            *pos += 1;
            return Ok(unzigzag64(u64::from(b)));
        }
    }
    Ok(unzigzag64(read_raw(buf, pos, 10, what)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        // Kafka's ByteUtilsTest values: zigzag maps 0,-1,1,-2,.. to 0,1,2,3,..
        for (v, bytes) in [
            (0i64, &[0x00][..]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (i32::MAX as i64, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN as i64, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out, bytes, "{v}");
            assert_eq!(varlong_len(v), bytes.len());
            let mut pos = 0;
            assert_eq!(read_varlong(bytes, &mut pos, "t").unwrap(), v);
            assert_eq!(pos, bytes.len());
            if let Ok(v32) = i32::try_from(v) {
                let mut pos = 0;
                assert_eq!(read_varint(bytes, &mut pos, "t").unwrap(), v32);
                assert_eq!(varint_len(v32), bytes.len());
            }
        }
    }

    #[test]
    fn round_trip_extremes_and_errors() {
        for v in [i64::MIN, i64::MAX, 0, -1, 1 << 40, -(1 << 40)] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v));
            let mut pos = 0;
            assert_eq!(read_varlong(&out, &mut pos, "t").unwrap(), v);
        }
        let mut pos = 0;
        assert!(read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], &mut pos, "t").is_err());
        assert!(read_varint(&[0x80], &mut pos, "t").is_err());
        assert!(read_varlong(&[0xff; 11], &mut pos, "t").is_err());
        assert!(read_varint(&[], &mut pos, "t").is_err());
    }
}
