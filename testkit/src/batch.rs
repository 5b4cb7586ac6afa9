//! Record batch (magic v2) helpers the broker side needs: header parsing, CRC validation,
//! offset stamping, and record decoding/encoding of uncompressed batches for compaction and
//! timestamp lookups.
//!
//! Layout of the header (all big-endian): base offset i64 @0, batch length i32 @8, partition
//! leader epoch i32 @12, magic i8 @16, CRC-32C u32 @17 (over bytes 21..), attributes i16 @21,
//! last offset delta i32 @23, base timestamp i64 @27, max timestamp i64 @35, producer id i64
//! @43, producer epoch i16 @51, base sequence i32 @53, record count i32 @57.

use bytes::{BufMut, Bytes, BytesMut};

/// Size of the batch header in bytes.
pub const HEADER_LEN: usize = 61;
/// Bytes before the batch length field's coverage starts (base offset + length).
pub const LOG_OVERHEAD: usize = 12;

/// The fields of a batch header the broker uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub base_offset: i64,
    pub batch_length: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl Header {
    /// Compression codec (attribute bits 0-2); 0 is none.
    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }
    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    /// Sequence number of the batch's last record.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        // Sequences wrap at i32::MAX like Kafka's.
        ((self.base_sequence as i64 + self.last_offset_delta as i64) % (i32::MAX as i64 + 1)) as i32
    }
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Why a record set was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Structure is wrong (lengths, magic): Kafka's INVALID_RECORD / CORRUPT_MESSAGE.
    Invalid(String),
    /// The stored CRC does not match: CORRUPT_MESSAGE.
    Crc { stored: u32, computed: u32 },
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Invalid(r) => write!(f, "{r}"),
            BatchError::Crc { stored, computed } => {
                write!(
                    f,
                    "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
        }
    }
}

/// Parses the header of the batch at the start of `b` (which must hold the whole header).
pub fn parse_header(b: &[u8]) -> Result<Header, BatchError> {
    if b.len() < HEADER_LEN {
        return Err(BatchError::Invalid(format!(
            "{} bytes is too short for a batch header",
            b.len()
        )));
    }
    let h = Header {
        base_offset: be_i64(b, 0),
        batch_length: be_i32(b, 8),
        magic: b[16] as i8,
        crc: be_i32(b, 17) as u32,
        attributes: be_i16(b, 21),
        last_offset_delta: be_i32(b, 23),
        base_timestamp: be_i64(b, 27),
        max_timestamp: be_i64(b, 35),
        producer_id: be_i64(b, 43),
        producer_epoch: be_i16(b, 51),
        base_sequence: be_i32(b, 53),
        record_count: be_i32(b, 57),
    };
    if h.magic != 2 {
        return Err(BatchError::Invalid(format!(
            "magic {} is not supported (only v2)",
            h.magic
        )));
    }
    if (h.batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
        return Err(BatchError::Invalid(format!(
            "batch length {} is too small",
            h.batch_length
        )));
    }
    if h.last_offset_delta < 0 || h.record_count < 0 {
        return Err(BatchError::Invalid(
            "negative last offset delta or record count".into(),
        ));
    }
    Ok(h)
}

/// Splits a record set into whole batches, validating each header and CRC.
pub fn split_batches(records: &Bytes) -> Result<Vec<(Header, Bytes)>, BatchError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < records.len() {
        let rest = &records[at..];
        let h = parse_header(rest)?;
        let total = LOG_OVERHEAD + h.batch_length as usize;
        if total > rest.len() {
            return Err(BatchError::Invalid(format!(
                "batch length {} overruns the {} bytes left",
                h.batch_length,
                rest.len()
            )));
        }
        let computed = crc32c::crc32c(&rest[21..total]);
        if computed != h.crc {
            return Err(BatchError::Crc {
                stored: h.crc,
                computed,
            });
        }
        out.push((h, records.slice(at..at + total)));
        at += total;
    }
    Ok(out)
}

/// Returns a copy of `batch` with its base offset and partition leader epoch stamped (both
/// are outside the CRC).
pub fn stamp(batch: &[u8], base_offset: i64, leader_epoch: i32) -> Bytes {
    let mut b = BytesMut::from(batch);
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    b[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    b.freeze()
}

/// One record of an uncompressed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Headers as encoded (count and entries), kept opaque.
    pub headers: Bytes,
}

struct Cursor<'a> {
    b: &'a Bytes,
    at: usize,
    end: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        if self.at >= self.end {
            return None;
        }
        self.at += 1;
        Some(self.b[self.at - 1])
    }
    fn varlong(&mut self) -> Option<i64> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.byte()?;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        None
    }
    fn varint(&mut self) -> Option<i32> {
        i32::try_from(self.varlong()?).ok()
    }
    fn take(&mut self, n: usize) -> Option<Bytes> {
        if n > self.end - self.at {
            return None;
        }
        self.at += n;
        Some(self.b.slice(self.at - n..self.at))
    }
    fn nullable(&mut self) -> Option<Option<Bytes>> {
        let len = self.varint()?;
        if len < 0 {
            return Some(None);
        }
        Some(Some(self.take(len as usize)?))
    }
}

/// Largest decompressed size accepted when decoding a compressed batch.
const MAX_DECOMPRESSED: usize = 64 << 20;

/// Decodes a compressed batch with kafka-client's record codec.
fn compressed_records(batch: &Bytes, h: &Header) -> Option<Vec<Record>> {
    use kafka_client::protocol::record::RecordBatches;
    let decoded = RecordBatches::new(batch.clone()).next()?.ok()?;
    let mut out = Vec::new();
    for r in decoded.records_with_limit(MAX_DECOMPRESSED).ok()? {
        let r = r.ok()?;
        let mut headers = BytesMut::new();
        put_varlong(&mut headers, r.headers.len() as i64);
        for hd in &r.headers {
            put_nullable(&mut headers, &Some(hd.key.clone()));
            put_nullable(&mut headers, &hd.value);
        }
        out.push(Record {
            attributes: 0,
            timestamp_delta: r.timestamp - h.base_timestamp,
            offset_delta: i32::try_from(r.offset - h.base_offset).ok()?,
            key: r.key,
            value: r.value,
            headers: headers.freeze(),
        });
    }
    Some(out)
}

/// Decodes the records of a batch (decompressing it if needed); `None` if malformed.
pub fn records(batch: &Bytes) -> Option<Vec<Record>> {
    let h = parse_header(batch).ok()?;
    if h.compression() != 0 {
        return compressed_records(batch, &h);
    }
    let mut c = Cursor {
        b: batch,
        at: HEADER_LEN,
        end: batch.len(),
    };
    let mut out = Vec::with_capacity((h.record_count as usize).min(batch.len() / 7));
    for _ in 0..h.record_count {
        let len = c.varint()?;
        if len < 0 {
            return None;
        }
        let end = c.at.checked_add(len as usize)?;
        if end > c.end {
            return None;
        }
        let mut r = Cursor {
            b: batch,
            at: c.at,
            end,
        };
        let attributes = r.byte()? as i8;
        let timestamp_delta = r.varlong()?;
        let offset_delta = r.varint()?;
        let key = r.nullable()?;
        let value = r.nullable()?;
        let headers = batch.slice(r.at..end);
        out.push(Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        });
        c.at = end;
    }
    Some(out)
}

fn put_varlong(out: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.put_u8((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.put_u8(z as u8);
}

fn put_nullable(out: &mut BytesMut, v: &Option<Bytes>) {
    match v {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.put_slice(b);
        }
    }
}

/// Rebuilds an uncompressed batch with only `keep` records (offset deltas relative to the old
/// base offset), preserving the original last offset like Kafka's log cleaner. A compressed
/// original is rewritten uncompressed.
pub fn rebuild(original: &Header, keep: &[Record]) -> Option<Bytes> {
    let first = keep.first()?;
    let new_base = original.base_offset + first.offset_delta as i64;
    let last_offset = original.base_offset + original.last_offset_delta as i64;
    let mut body = BytesMut::new();
    let mut max_ts = i64::MIN;
    for r in keep {
        let mut rec = BytesMut::new();
        rec.put_i8(r.attributes);
        put_varlong(&mut rec, r.timestamp_delta);
        put_varlong(
            &mut rec,
            original.base_offset + r.offset_delta as i64 - new_base,
        );
        put_nullable(&mut rec, &r.key);
        put_nullable(&mut rec, &r.value);
        rec.put_slice(&r.headers);
        put_varlong(&mut body, rec.len() as i64);
        body.put_slice(&rec);
        max_ts = max_ts.max(original.base_timestamp + r.timestamp_delta);
    }
    let mut out = BytesMut::with_capacity(HEADER_LEN + body.len());
    out.put_i64(new_base);
    out.put_i32((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32);
    out.put_i32(0); // partition leader epoch, restamped below by the caller's data
    out.put_i8(2);
    out.put_u32(0); // CRC, patched below
    out.put_i16(original.attributes & !0x7);
    out.put_i32((last_offset - new_base) as i32);
    out.put_i64(original.base_timestamp);
    out.put_i64(if original.attributes & 0x8 != 0 {
        original.max_timestamp
    } else {
        max_ts
    });
    out.put_i64(original.producer_id);
    out.put_i16(original.producer_epoch);
    out.put_i32(original.base_sequence);
    out.put_i32(keep.len() as i32);
    out.put_slice(&body);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Some(out.freeze())
}

/// Builds an uncompressed batch of `(key, value, timestamp)` records; for tests and tools.
pub fn build(records: &[(Option<Bytes>, Option<Bytes>, i64)]) -> Bytes {
    let base_ts = records.first().map(|r| r.2).unwrap_or(0);
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v, ts))| Record {
            attributes: 0,
            timestamp_delta: ts - base_ts,
            offset_delta: i as i32,
            key: k.clone(),
            value: v.clone(),
            headers: Bytes::from_static(&[0]),
        })
        .collect();
    let header = Header {
        base_offset: 0,
        batch_length: 0,
        magic: 2,
        crc: 0,
        attributes: 0,
        last_offset_delta: records.len().saturating_sub(1) as i32,
        base_timestamp: base_ts,
        max_timestamp: base_ts,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: records.len() as i32,
    };
    rebuild(&header, &recs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_split_and_decode_round_trip() {
        let b = build(&[
            (
                Some(Bytes::from_static(b"k1")),
                Some(Bytes::from_static(b"v1")),
                1000,
            ),
            (None, None, 1005),
        ]);
        let batches = split_batches(&b).unwrap();
        assert_eq!(batches.len(), 1);
        let (h, bytes) = &batches[0];
        assert_eq!(
            (h.record_count, h.last_offset_delta, h.max_timestamp),
            (2, 1, 1005)
        );
        let recs = records(bytes).unwrap();
        assert_eq!(recs[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(recs[1].value, None);
        assert_eq!(recs[1].timestamp_delta, 5);
        let stamped = stamp(bytes, 42, 3);
        assert_eq!(split_batches(&stamped).unwrap()[0].0.base_offset, 42);
    }

    #[test]
    fn corrupt_and_truncated_batches_are_errors() {
        let b = build(&[(None, Some(Bytes::from_static(b"v")), 0)]);
        let mut bad = BytesMut::from(&b[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(
            split_batches(&bad.freeze()),
            Err(BatchError::Crc { .. })
        ));
        for cut in 0..b.len() {
            assert!(split_batches(&b.slice(..cut)).is_err() || cut == 0);
            let _ = records(&b.slice(..cut));
        }
    }

    #[test]
    fn rebuild_keeps_offsets_and_last_offset() {
        let b = build(&[
            (
                Some(Bytes::from_static(b"a")),
                Some(Bytes::from_static(b"1")),
                0,
            ),
            (
                Some(Bytes::from_static(b"b")),
                Some(Bytes::from_static(b"2")),
                1,
            ),
            (
                Some(Bytes::from_static(b"a")),
                Some(Bytes::from_static(b"3")),
                2,
            ),
        ]);
        let stamped = stamp(&b, 10, 0);
        let h = parse_header(&stamped).unwrap();
        let recs = records(&stamped).unwrap();
        let kept = rebuild(&h, &recs[1..]).unwrap();
        let nh = parse_header(&kept).unwrap();
        assert_eq!(nh.base_offset, 11);
        assert_eq!(nh.base_offset + nh.last_offset_delta as i64, 12);
        let nr = records(&kept).unwrap();
        assert_eq!(
            nr.iter().map(|r| r.offset_delta).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert!(split_batches(&kept).is_ok());
    }
}
