//! Zero-copy decoding of record sets, batches and records.

use bytes::Bytes;

use super::varint::{read_varint, read_varlong};
use super::{
    compression, BatchHeader, Compression, ControlRecordType, Header, Record, TimestampType,
    ATTRIBUTES_OFFSET, BATCH_HEADER_LEN, DEFAULT_MAX_DECOMPRESSED_BYTES, LOG_OVERHEAD, MAGIC_V2,
};
use crate::error::{Error, Result};

/// Smallest possible record: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each.
const MIN_RECORD_LEN: usize = 7;
/// Smallest header: key length and value length, one byte each.
const MIN_HEADER_LEN: usize = 2;
/// Where `magic` sits; the same in v0/v1 message sets, so old formats are named, not misread.
const MAGIC_OFFSET: usize = 16;

fn malformed(reason: String) -> Error {
    Error::malformed("record batch", reason)
}

/// Iterator over the batches of a record set (the `records` field of a Fetch response
/// partition or a Produce request partition).
///
/// Yields each complete batch after checking its length, magic and CRC-32C. A trailing
/// partial batch, which brokers may send when a fetch hits its byte limit, ends the iteration
/// without error ([`partial_trailing_bytes`](Self::partial_trailing_bytes) tells how much was
/// left). After an error the iterator is fused: the rest cannot be framed reliably.
#[derive(Debug, Clone)]
pub struct RecordBatches {
    data: Bytes,
    pos: usize,
    done: bool,
}

impl RecordBatches {
    /// Starts at the beginning of `data`.
    pub fn new(data: Bytes) -> Self {
        RecordBatches {
            data,
            pos: 0,
            done: false,
        }
    }

    /// Bytes not yet yielded as batches: after iteration ended cleanly, the size of the
    /// partial trailing batch (0 if there was none).
    pub fn partial_trailing_bytes(&self) -> usize {
        self.data.len() - self.pos
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let rest = &self.data[self.pos..];
        if rest.len() < LOG_OVERHEAD {
            return Ok(None);
        }
        let base_offset = i64::from_be_bytes(rest[..8].try_into().unwrap_or_default());
        let batch_length = i32::from_be_bytes(rest[8..12].try_into().unwrap_or_default());
        if let Some(&magic) = rest.get(MAGIC_OFFSET) {
            let magic = magic as i8;
            if magic != MAGIC_V2 {
                return Err(malformed(format!(
                    "unsupported magic {magic} at base offset {base_offset} (only v2 record \
                     batches are supported; v0/v1 message sets predate Kafka 0.11)"
                )));
            }
        }
        let min_length = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
        if batch_length < min_length {
            return Err(malformed(format!(
                "batch length {batch_length} at base offset {base_offset} is below the minimum \
                 of {min_length}"
            )));
        }
        let total = batch_length as usize + LOG_OVERHEAD;
        if total > rest.len() {
            // A partial batch at the end of a fetch response: not an error.
            return Ok(None);
        }
        let bytes = self.data.slice(self.pos..self.pos + total);
        let header = BatchHeader::parse(&bytes)?;
        let computed = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
        if computed != header.crc {
            return Err(Error::CorruptBatch {
                base_offset,
                stored: header.crc,
                computed,
            });
        }
        header.compression()?;
        if header.record_count < 0 {
            return Err(malformed(format!(
                "negative record count {} at base offset {base_offset}",
                header.record_count
            )));
        }
        self.pos += total;
        Ok(Some(RecordBatch { header, bytes }))
    }
}

impl Iterator for RecordBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for RecordBatches {}

/// One verified batch: its header and its bytes (shared with the record set, not copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
}

impl RecordBatch {
    /// The batch header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The whole batch as it was on the wire, from base offset to the last record: what a
    /// broker stores and serves again.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The codec of the records section.
    pub fn compression(&self) -> Compression {
        // Checked when the batch was framed.
        self.header.compression().unwrap_or_default()
    }

    /// The records, decompressed with [`DEFAULT_MAX_DECOMPRESSED_BYTES`] as the limit.
    pub fn records(&self) -> Result<Records> {
        self.records_with_limit(DEFAULT_MAX_DECOMPRESSED_BYTES)
    }

    /// The records, refusing to decompress more than `max_decompressed` bytes.
    ///
    /// Uncompressed records are parsed in place; compressed ones are inflated once into a
    /// buffer that the yielded records then share.
    pub fn records_with_limit(&self, max_decompressed: usize) -> Result<Records> {
        let body = self.bytes.slice(BATCH_HEADER_LEN..);
        let body = match self.compression() {
            Compression::None => body,
            codec => Bytes::from(compression::decompress(codec, &body, max_decompressed)?),
        };
        let count = self.header.record_count as usize;
        if count > body.len() / MIN_RECORD_LEN {
            return Err(malformed(format!(
                "record count {count} at base offset {} cannot fit in {} bytes of records",
                self.header.base_offset,
                body.len()
            )));
        }
        let log_append_time = match self.header.timestamp_type() {
            TimestampType::LogAppendTime => Some(self.header.max_timestamp),
            TimestampType::CreateTime => None,
        };
        Ok(Records {
            data: body,
            pos: 0,
            remaining: count,
            base_offset: self.header.base_offset,
            base_timestamp: self.header.base_timestamp,
            log_append_time,
            failed: false,
        })
    }

    /// For a control batch, the type of its (first) control record; `None` for data batches.
    pub fn control_type(&self) -> Result<Option<ControlRecordType>> {
        if !self.header.is_control() {
            return Ok(None);
        }
        let record = self.records()?.next().transpose()?.ok_or_else(|| {
            malformed(format!(
                "control batch at base offset {} has no record",
                self.header.base_offset
            ))
        })?;
        record.control_type().map(Some)
    }
}

/// Lazy iterator over a batch's records; stops after the first error.
#[derive(Debug, Clone)]
pub struct Records {
    data: Bytes,
    pos: usize,
    remaining: usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    failed: bool,
}

impl Records {
    fn decode_one(&mut self) -> Result<Record> {
        let data = &self.data;
        let buf: &[u8] = data;
        let mut pos = self.pos;
        let len = read_varint(buf, &mut pos, "record")?;
        let left = buf.len() - pos;
        if len < 0 || len as usize > left {
            return Err(Error::malformed(
                "record",
                format!("length {len} with {left} bytes left in the batch"),
            ));
        }
        let end = pos + len as usize;
        // Every further read is bounded by the record's own end.
        let rec = &buf[..end];
        if pos >= end {
            return Err(Error::malformed("record", "empty record has no attributes"));
        }
        pos += 1; // attributes: unused in v2
        let timestamp_delta = read_varlong(rec, &mut pos, "record")?;
        let offset_delta = read_varint(rec, &mut pos, "record")?;
        let key = read_nullable(data, rec, &mut pos, "record key")?;
        let value = read_nullable(data, rec, &mut pos, "record value")?;
        let header_count = read_varint(rec, &mut pos, "record")?;
        let headers_left = end - pos;
        if header_count < 0 || header_count as usize > headers_left / MIN_HEADER_LEN {
            return Err(Error::malformed(
                "record",
                format!("header count {header_count} with {headers_left} bytes left in the record"),
            ));
        }
        let mut headers = Vec::with_capacity(header_count as usize);
        for _ in 0..header_count {
            let key = read_nullable(data, rec, &mut pos, "header key")?
                .ok_or_else(|| Error::malformed("header key", "null header key"))?;
            let value = read_nullable(data, rec, &mut pos, "header value")?;
            headers.push(Header { key, value });
        }
        if pos != end {
            return Err(Error::malformed(
                "record",
                format!("{} bytes left over inside the record", end - pos),
            ));
        }
        self.pos = end;
        Ok(Record {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: self
                .log_append_time
                .unwrap_or_else(|| self.base_timestamp.wrapping_add(timestamp_delta)),
            key,
            value,
            headers,
        })
    }
}

/// Reads a varint length (-1 = null) and the bytes after it, as a slice of `data`.
#[inline]
fn read_nullable(
    data: &Bytes,
    rec: &[u8],
    pos: &mut usize,
    what: &'static str,
) -> Result<Option<Bytes>> {
    let len = read_varint(rec, pos, what)?;
    if len == -1 {
        return Ok(None);
    }
    let left = rec.len() - *pos;
    if len < 0 || len as usize > left {
        return Err(Error::malformed(
            what,
            format!("length {len} with {left} bytes left in the record"),
        ));
    }
    let start = *pos;
    *pos += len as usize;
    Ok(Some(if len == 0 {
        Bytes::new()
    } else {
        data.slice(start..*pos)
    }))
}

impl Iterator for Records {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            if self.pos != self.data.len() {
                self.failed = true;
                return Some(Err(malformed(format!(
                    "{} bytes after the last record of the batch at base offset {}",
                    self.data.len() - self.pos,
                    self.base_offset
                ))));
            }
            return None;
        }
        self.remaining -= 1;
        let record = self.decode_one();
        self.failed = record.is_err();
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some(self.remaining + 1))
        }
    }
}

impl std::iter::FusedIterator for Records {}
