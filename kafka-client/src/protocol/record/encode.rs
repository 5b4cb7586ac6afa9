//! Building batches, and the in-place edits a broker makes to stored batches.

use bytes::Bytes;

use super::varint::{put_varint, put_varlong, put_varlong_at, varint_len, varlong_len};
use super::{
    compression, Compression, EndTxnMarker, Header, Record, TimestampType, ATTRIBUTES_OFFSET,
    BATCH_HEADER_LEN, CONTROL_FLAG, CRC_OFFSET, LOG_OVERHEAD, MAGIC_V2, TIMESTAMP_TYPE_FLAG,
    TRANSACTIONAL_FLAG,
};
use crate::error::{Error, Result};

/// Largest `batch_length` (an i32 on the wire).
const MAX_BATCH_LENGTH: usize = i32::MAX as usize;

/// Key and value bytes up to which a record without headers is encoded on the stack first
/// (see `append_small`).
const SMALL_RECORD: usize = 96;
/// Room in front of a small record's body for its length varint (at most 5 bytes).
const LENGTH_ROOM: usize = 5;
/// A small record's stack buffer: length room, then attributes 1, timestamp delta 10, offset
/// delta 5, key length 5, value length 5, header count 1, and the key and value.
const SMALL_BUF: usize = LENGTH_ROOM + 27 + SMALL_RECORD;

/// Accumulates the records of one partition and encodes them as a v2 batch.
///
/// Records are encoded as they are appended, so the builder holds one growing buffer and no
/// per-record allocations; [`build`](Self::build) compresses that buffer (when asked), fills
/// in the header and computes the CRC.
///
/// ```
/// use kafka_client::protocol::record::{BatchBuilder, Compression, Header, RecordBatches};
///
/// let mut builder = BatchBuilder::new(Compression::Lz4).producer(42, 0, 7);
/// builder.append(1_700_000_000_000, Some(b"k"), Some(b"v"), &[Header::new("h", Some("x"))])?;
/// let bytes = builder.build()?;
/// let batch = RecordBatches::new(bytes).next().unwrap()?;
/// assert_eq!(batch.header().producer_id, 42);
/// let record = batch.records()?.next().unwrap()?;
/// assert_eq!(record.value.as_deref(), Some(&b"v"[..]));
/// # Ok::<(), kafka_client::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    flags: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    last_offset_delta: i32,
    count: i32,
    /// Header space (filled by `build`) followed by the encoded records.
    buf: Vec<u8>,
}

impl BatchBuilder {
    /// An empty batch with no producer id (-1), base offset 0 and create-time timestamps.
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 0)
    }

    /// Like [`new`](Self::new), reserving room for `records_bytes` of encoded records.
    pub fn with_capacity(compression: Compression, records_bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(BATCH_HEADER_LEN + records_bytes);
        buf.resize(BATCH_HEADER_LEN, 0);
        BatchBuilder {
            compression,
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            flags: 0,
            base_timestamp: -1,
            max_timestamp: -1,
            last_offset_delta: -1,
            count: 0,
            buf,
        }
    }

    /// Sets the idempotent producer's id, epoch and the sequence number of the first record.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn transactional(mut self, yes: bool) -> Self {
        self.set_flag(TRANSACTIONAL_FLAG, yes);
        self
    }

    /// Marks the batch as a control batch (see [`EndTxnMarker::encode_batch`]).
    pub fn control(mut self, yes: bool) -> Self {
        self.set_flag(CONTROL_FLAG, yes);
        self
    }

    /// Sets the timestamp type. For [`TimestampType::LogAppendTime`], records keep their
    /// timestamps on the wire but readers use the batch's `max_timestamp`.
    pub fn timestamp_type(mut self, kind: TimestampType) -> Self {
        self.set_flag(TIMESTAMP_TYPE_FLAG, kind == TimestampType::LogAppendTime);
        self
    }

    /// Sets the base offset (producers leave it 0; the broker assigns it).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the partition leader epoch (producers leave it -1).
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    fn set_flag(&mut self, flag: i16, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    /// The codec `build` will apply.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Number of records appended.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch if built now without compression, header included. With a codec
    /// this is the estimate to compare with `batch.size` / `max.request.size`: compressed
    /// output is almost always smaller.
    pub fn estimated_size(&self) -> usize {
        self.buf.len()
    }

    /// An upper bound of the bytes a record adds to a batch, whatever its offset and
    /// timestamp deltas: check it against the room left before appending.
    pub fn record_size_upper_bound(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let bytes = |b: Option<&[u8]>| 5 + b.map_or(0, <[u8]>::len);
        let headers: usize = headers
            .iter()
            .map(|h| bytes(Some(&h.key)) + bytes(h.value.as_deref()))
            .sum();
        // length 5, attributes 1, timestamp delta 10, offset delta 5, header count 5
        26 + bytes(key) + bytes(value) + headers
    }

    /// Appends a record at the next offset; returns its offset delta.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<i32> {
        let delta = self
            .last_offset_delta
            .checked_add(1)
            .ok_or_else(|| full("offset delta"))?;
        self.append_with_offset_delta(delta, timestamp, key, value, headers)?;
        Ok(delta)
    }

    /// Appends a decoded record at its own offset (relative to the base offset), keeping gaps:
    /// what rewriting a compacted batch needs.
    pub fn append_record(&mut self, record: &Record) -> Result<()> {
        let delta = record
            .offset
            .checked_sub(self.base_offset)
            .and_then(|d| i32::try_from(d).ok())
            .ok_or_else(|| {
                Error::malformed(
                    "record",
                    format!(
                        "offset {} is not within an i32 delta of base offset {}",
                        record.offset, self.base_offset
                    ),
                )
            })?;
        let value = record.value.as_deref();
        self.append_with_offset_delta(
            delta,
            record.timestamp,
            record.key.as_deref(),
            value,
            &record.headers,
        )
    }

    /// Appends a record with an explicit offset delta, which must exceed the previous one.
    pub fn append_with_offset_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<()> {
        if offset_delta <= self.last_offset_delta {
            return Err(Error::malformed(
                "record",
                format!(
                    "offset delta {offset_delta} does not follow the previous delta {}",
                    self.last_offset_delta
                ),
            ));
        }
        if self.count == i32::MAX {
            return Err(full("record count"));
        }
        let base_timestamp = if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        let timestamp_delta = timestamp.wrapping_sub(base_timestamp);
        let small = key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) <= SMALL_RECORD;
        if headers.is_empty() && small {
            self.append_small(offset_delta, timestamp_delta, key, value)?;
        } else {
            self.append_general(offset_delta, timestamp_delta, key, value, headers)?;
        }
        self.base_timestamp = base_timestamp;
        self.max_timestamp = if self.count == 0 {
            timestamp
        } else {
            self.max_timestamp.max(timestamp)
        };
        self.last_offset_delta = offset_delta;
        self.count += 1;
        Ok(())
    }

    /// The encoding of a record without headers whose key and value fit `SMALL_RECORD`, the
    /// common case of a producer's send: its body is written into a stack buffer in one pass
    /// (no length computed ahead per field), its length varint in front of it, and both go to
    /// the batch with one copy. The bytes are `append_general`'s (a test compares them).
    fn append_small(
        &mut self,
        offset_delta: i32,
        timestamp_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<()> {
        let mut tmp = [0u8; SMALL_BUF];
        // tmp[LENGTH_ROOM] = 0: record attributes, unused.
        let mut pos = put_varlong_at(&mut tmp, LENGTH_ROOM + 1, timestamp_delta);
        pos = put_varlong_at(&mut tmp, pos, offset_delta.into());
        for part in [key, value] {
            match part {
                None => pos = put_varlong_at(&mut tmp, pos, -1),
                Some(b) => {
                    pos = put_varlong_at(&mut tmp, pos, b.len() as i64);
                    tmp[pos..pos + b.len()].copy_from_slice(b);
                    pos += b.len();
                }
            }
        }
        // tmp[pos] = 0: no headers.
        pos += 1;
        let body = (pos - LENGTH_ROOM) as i64;
        let start = LENGTH_ROOM - varlong_len(body);
        put_varlong_at(&mut tmp, start, body);
        let record = &tmp[start..pos];
        if (self.buf.len() - LOG_OVERHEAD).saturating_add(record.len()) > MAX_BATCH_LENGTH {
            return Err(full("batch length"));
        }
        self.buf.extend_from_slice(record);
        Ok(())
    }

    /// Encodes any record after the batch's records (see `append_with_offset_delta`).
    fn append_general(
        &mut self,
        offset_delta: i32,
        timestamp_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<()> {
        let key_len = wire_len(key)?;
        let value_len = wire_len(value)?;
        let header_count = i32::try_from(headers.len()).map_err(|_| full("header count"))?;

        let mut body = 1
            + varlong_len(timestamp_delta)
            + varint_len(offset_delta)
            + varint_len(key_len)
            + key.map_or(0, <[u8]>::len)
            + varint_len(value_len)
            + value.map_or(0, <[u8]>::len)
            + varint_len(header_count);
        for h in headers {
            body += varint_len(wire_len(Some(&h.key))?) + h.key.len();
            body +=
                varint_len(wire_len(h.value.as_deref())?) + h.value.as_ref().map_or(0, Bytes::len);
        }
        let body_len = i32::try_from(body).map_err(|_| full("record length"))?;
        let total = varint_len(body_len) + body;
        if (self.buf.len() - LOG_OVERHEAD).saturating_add(total) > MAX_BATCH_LENGTH {
            return Err(full("batch length"));
        }

        let buf = &mut self.buf;
        buf.reserve(total);
        put_varint(buf, body_len);
        buf.push(0); // record attributes: unused
        put_varlong(buf, timestamp_delta);
        put_varint(buf, offset_delta);
        put_nullable(buf, key_len, key);
        put_nullable(buf, value_len, value);
        put_varint(buf, header_count);
        for h in headers {
            put_nullable(buf, h.key.len() as i32, Some(&h.key));
            let value = h.value.as_deref();
            put_nullable(buf, value.map_or(-1, |v| v.len() as i32), value);
        }
        Ok(())
    }

    /// Makes the batch end at `last_offset` even if its last record sits before it
    /// (`overrideLastOffset` in the Java client). A log cleaner rewriting a compacted batch
    /// uses it to keep the original last offset, so consumers continue after the removed
    /// records and the producer's last sequence number is preserved. Later appends continue
    /// after `last_offset`.
    ///
    /// Fails if `last_offset` is before the last appended record or not within an `i32`
    /// delta of the base offset.
    ///
    /// ```
    /// use kafka_client::protocol::record::{BatchBuilder, Compression, RecordBatches};
    ///
    /// let mut builder = BatchBuilder::new(Compression::None).base_offset(10);
    /// builder.append(0, Some(b"k"), Some(b"v"), &[])?;
    /// builder.override_last_offset(12)?;
    /// let batch = RecordBatches::new(builder.build()?).next().unwrap()?;
    /// assert_eq!((batch.header().record_count, batch.header().last_offset()), (1, 12));
    /// # Ok::<(), kafka_client::Error>(())
    /// ```
    pub fn override_last_offset(&mut self, last_offset: i64) -> Result<()> {
        let delta = last_offset
            .checked_sub(self.base_offset)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|d| *d >= self.last_offset_delta)
            .ok_or_else(|| {
                Error::malformed(
                    "record batch",
                    format!(
                        "last offset {last_offset} is before the last record or not within an \
                         i32 delta of base offset {}",
                        self.base_offset
                    ),
                )
            })?;
        self.last_offset_delta = delta;
        Ok(())
    }

    /// Encodes the batch: compresses the records, writes the header, computes the CRC.
    pub fn build(self) -> Result<Bytes> {
        let mut buf = self.buf;
        if self.compression != Compression::None {
            let records = &buf[BATCH_HEADER_LEN..];
            let mut out = Vec::with_capacity(BATCH_HEADER_LEN + records.len() / 2 + 64);
            out.resize(BATCH_HEADER_LEN, 0);
            compression::compress(self.compression, records, &mut out)?;
            buf = out;
        }
        let batch_length = buf.len() - LOG_OVERHEAD;
        if batch_length > MAX_BATCH_LENGTH {
            return Err(full("compressed batch length"));
        }
        let attributes = self.flags | self.compression.code();
        let h = &mut buf[..BATCH_HEADER_LEN];
        h[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        h[8..12].copy_from_slice(&(batch_length as i32).to_be_bytes());
        h[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        h[16] = MAGIC_V2 as u8;
        h[21..23].copy_from_slice(&attributes.to_be_bytes());
        h[23..27].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        h[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        h[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        h[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        h[57..61].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..]);
        buf[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
        Ok(Bytes::from(buf))
    }
}

fn full(what: &str) -> Error {
    Error::malformed("record batch", format!("{what} would exceed i32::MAX"))
}

/// Kafka's length for a nullable byte string: -1 for null.
#[inline]
fn wire_len(b: Option<&[u8]>) -> Result<i32> {
    match b {
        None => Ok(-1),
        Some(b) => i32::try_from(b.len()).map_err(|_| full("field length")),
    }
}

#[inline]
fn put_nullable(buf: &mut Vec<u8>, len: i32, b: Option<&[u8]>) {
    put_varint(buf, len);
    if let Some(b) = b {
        buf.extend_from_slice(b);
    }
}

impl EndTxnMarker {
    /// A control batch holding this marker, as a transaction coordinator writes it.
    pub fn encode_batch(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        timestamp: i64,
    ) -> Result<Bytes> {
        let (key, value) = self.key_value();
        let mut builder = BatchBuilder::new(Compression::None)
            .producer(producer_id, producer_epoch, -1)
            .transactional(true)
            .control(true);
        builder.append(timestamp, Some(&key), Some(&value), &[])?;
        builder.build()
    }
}

/// Checks that `batch` starts with a complete v2 batch; returns its total length.
fn check_batch(batch: &[u8]) -> Result<usize> {
    let header = super::BatchHeader::parse(batch)?;
    if header.magic != MAGIC_V2 {
        return Err(Error::malformed(
            "record batch",
            format!(
                "unsupported magic {} (only v2 batches can be edited)",
                header.magic
            ),
        ));
    }
    let total = header.total_len();
    if header.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 || total > batch.len() {
        return Err(Error::malformed(
            "record batch",
            format!(
                "batch length {} does not fit in {} bytes",
                header.batch_length,
                batch.len()
            ),
        ));
    }
    Ok(total)
}

/// Overwrites a batch's base offset. The field is outside the CRC, so nothing else changes.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<()> {
    check_batch(batch)?;
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// Overwrites a batch's partition leader epoch (also outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<()> {
    check_batch(batch)?;
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Switches a batch to log-append time with `timestamp` as its max timestamp, as a broker
/// with `message.timestamp.type=LogAppendTime` does, and recomputes the CRC.
pub fn set_log_append_time(batch: &mut [u8], timestamp: i64) -> Result<()> {
    let total = check_batch(batch)?;
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | TIMESTAMP_TYPE_FLAG;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..total]);
    batch[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Stamps consecutive offsets on every batch of a produced record set, starting at
/// `first_offset`; returns the offset after the last record (the new log end offset).
///
/// Each batch gets `base_offset = next` and advances `next` by `last_offset_delta + 1`. The
/// record set must consist of complete batches.
pub fn assign_offsets(record_set: &mut [u8], first_offset: i64) -> Result<i64> {
    let mut next = first_offset;
    let mut pos = 0;
    while pos < record_set.len() {
        let batch = &mut record_set[pos..];
        let total = check_batch(batch)?;
        let last_offset_delta = i32::from_be_bytes([batch[23], batch[24], batch[25], batch[26]]);
        batch[0..8].copy_from_slice(&next.to_be_bytes());
        // A delta below -1 would move the log end backwards.
        next = next
            .checked_add(i64::from(last_offset_delta) + 1)
            .filter(|n| *n >= next)
            .ok_or_else(|| {
                Error::malformed(
                    "record batch",
                    format!("last offset delta {last_offset_delta} at offset {next} is invalid"),
                )
            })?;
        pos += total;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::super::RecordBatches;
    use super::*;

    #[test]
    fn a_small_record_is_encoded_as_the_general_way_does() {
        let bytes = [7u8; SMALL_RECORD + 1];
        let sizes = [
            None,
            Some(0),
            Some(1),
            Some(63),
            Some(64),
            Some(SMALL_RECORD),
        ];
        for key in sizes.map(|n| n.map(|n| &bytes[..n])) {
            for value in sizes.map(|n| n.map(|n| &bytes[..n])) {
                if key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) > SMALL_RECORD {
                    continue;
                }
                for (offset_delta, timestamp_delta) in [
                    (0, 0),
                    (63, -1),
                    (64, 1 << 40),
                    (i32::MAX, i64::MIN),
                    (5, i64::MAX),
                ] {
                    let mut small = BatchBuilder::new(Compression::None);
                    let mut general = small.clone();
                    small
                        .append_small(offset_delta, timestamp_delta, key, value)
                        .unwrap();
                    general
                        .append_general(offset_delta, timestamp_delta, key, value, &[])
                        .unwrap();
                    assert_eq!(small.buf, general.buf, "{key:?} {value:?} {offset_delta}");
                }
            }
        }
    }

    #[test]
    fn override_last_offset_keeps_the_last_offset_past_the_last_record() {
        let mut b = BatchBuilder::new(Compression::None).base_offset(100);
        let first = Record {
            offset: 101,
            timestamp: 5,
            key: Some(Bytes::from_static(b"k")),
            ..Record::default()
        };
        b.append_record(&first).unwrap();
        assert!(
            b.override_last_offset(100).is_err(),
            "before the last record"
        );
        assert!(
            b.override_last_offset(100 + (1 << 31)).is_err(),
            "beyond an i32 delta"
        );
        b.override_last_offset(104).unwrap();
        assert!(b.append_with_offset_delta(4, 6, None, None, &[]).is_err());
        let batch = RecordBatches::new(b.build().unwrap())
            .next()
            .unwrap()
            .unwrap();
        let h = batch.header();
        assert_eq!(
            (h.base_offset, h.last_offset(), h.record_count),
            (100, 104, 1)
        );
        let records: Vec<_> = batch.records().unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(records, vec![first]);
    }
}
