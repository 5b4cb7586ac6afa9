//! Kafka's record batch format (magic v2, `DefaultRecordBatch` in the Java client): the bytes
//! inside Produce requests and Fetch responses.
//!
//! Decoding is zero-copy: [`RecordBatches`] walks a record set held in [`Bytes`], verifies each
//! batch's CRC-32C and yields [`RecordBatch`]es whose records are parsed lazily; keys, values
//! and headers of uncompressed batches are slices of the input. Every length and count is
//! checked against the bytes left before anything is allocated. Encoding goes through
//! [`BatchBuilder`]; brokers stamp offsets with [`set_base_offset`] / [`assign_offsets`].
//!
//! Batch layout (big-endian; the CRC covers `attributes` to the end):
//!
//! ```text
//! base_offset i64 | batch_length i32 | partition_leader_epoch i32 | magic i8 (=2) | crc u32
//! | attributes i16 | last_offset_delta i32 | base_timestamp i64 | max_timestamp i64
//! | producer_id i64 | producer_epoch i16 | base_sequence i32 | record_count i32 | records...
//! ```
//!
//! Each record: `length varint | attributes i8 | timestamp_delta varlong | offset_delta varint
//! | key_length varint | key | value_length varint | value | header_count varint | headers`,
//! each header `key_length varint | key | value_length varint | value` (length -1 = null).

mod compression;
mod control;
mod decode;
mod encode;
mod varint;

use bytes::Bytes;

use crate::error::{Error, Result};

pub use compression::Compression;
pub use control::{ControlRecordType, EndTxnMarker};
pub use decode::{RecordBatch, RecordBatches, Records};
pub use encode::{
    assign_offsets, set_base_offset, set_log_append_time, set_partition_leader_epoch, BatchBuilder,
};

/// The only batch format this codec reads and writes.
pub const MAGIC_V2: i8 = 2;

/// Size of a v2 batch header, up to and including the record count.
pub const BATCH_HEADER_LEN: usize = 61;

/// Bytes before `batch_length` counts: base offset (8) and the length itself (4).
pub const LOG_OVERHEAD: usize = 12;

/// Default cap on a batch's decompressed records: the largest frame a broker accepts.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = crate::protocol::frame::DEFAULT_MAX_FRAME_BYTES;

/// Offset of the CRC field and of the first byte it covers (the attributes).
pub(crate) const CRC_OFFSET: usize = 17;
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;
const DELETE_HORIZON_FLAG: i16 = 0x40;

/// Where a batch's timestamps come from (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer for each record.
    #[default]
    CreateTime,
    /// Set by the broker when appending; every record's timestamp is the batch's
    /// `max_timestamp`.
    LogAppendTime,
}

/// A record header: a UTF-8 key (by Kafka's convention, not enforced on the wire) and an
/// optional value. A record keeps its headers in order, duplicates included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header key's bytes.
    pub key: Bytes,
    /// The header value; `None` is Kafka's null.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header from anything convertible to [`Bytes`] (`&'static str`, `String`, `Vec<u8>`..).
    pub fn new(key: impl Into<Bytes>, value: Option<impl Into<Bytes>>) -> Self {
        Header {
            key: key.into(),
            value: value.map(Into::into),
        }
    }

    /// A header with a null value.
    pub fn null(key: impl Into<Bytes>) -> Self {
        Header {
            key: key.into(),
            value: None,
        }
    }

    /// The key as text, or the UTF-8 error if a producer wrote something else.
    pub fn key_str(&self) -> std::result::Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.key)
    }
}

/// One decoded record, with its absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Record {
    /// Absolute offset: the batch's base offset plus this record's delta.
    pub offset: i64,
    /// Milliseconds since the epoch (create time, or the broker's append time, per the batch).
    pub timestamp: i64,
    /// The key; `None` is Kafka's null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers in wire order, duplicates kept.
    pub headers: Vec<Header>,
}

/// The fixed 61-byte header of a v2 batch, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// Offset of the first record (records carry deltas from it).
    pub base_offset: i64,
    /// Bytes after this field: the whole batch is `batch_length + 12` bytes.
    pub batch_length: i32,
    /// Leader epoch stamped by the broker; -1 from producers.
    pub partition_leader_epoch: i32,
    /// Format version; always 2 here.
    pub magic: i8,
    /// CRC-32C of the bytes from `attributes` to the end of the batch.
    pub crc: u32,
    /// Compression (bits 0-2), timestamp type (3), transactional (4), control (5),
    /// delete horizon (6).
    pub attributes: i16,
    /// Offset delta of the last record (may exceed `record_count - 1` after compaction).
    pub last_offset_delta: i32,
    /// Timestamp of the first record, or the delete horizon when bit 6 is set.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (the append time for log-append-time batches).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id; -1 when none.
    pub producer_id: i64,
    /// Producer epoch; -1 when none.
    pub producer_epoch: i16,
    /// Sequence number of the first record; -1 when none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl BatchHeader {
    /// Reads the header fields from the first [`BATCH_HEADER_LEN`] bytes of `buf`.
    ///
    /// Only checks that enough bytes are there; the batch iterator validates the rest.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        let Some(h) = buf.first_chunk::<BATCH_HEADER_LEN>() else {
            return Err(Error::malformed(
                "record batch",
                format!(
                    "{} bytes is shorter than the {BATCH_HEADER_LEN}-byte batch header",
                    buf.len()
                ),
            ));
        };
        let i64_at = |at: usize| i64::from_be_bytes(h[at..at + 8].try_into().unwrap_or_default());
        let i32_at = |at: usize| i32::from_be_bytes(h[at..at + 4].try_into().unwrap_or_default());
        let i16_at = |at: usize| i16::from_be_bytes([h[at], h[at + 1]]);
        Ok(BatchHeader {
            base_offset: i64_at(0),
            batch_length: i32_at(8),
            partition_leader_epoch: i32_at(12),
            magic: h[16] as i8,
            crc: i32_at(17) as u32,
            attributes: i16_at(21),
            last_offset_delta: i32_at(23),
            base_timestamp: i64_at(27),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            record_count: i32_at(57),
        })
    }

    /// The codec of the records section; an error for the unused codes 5-7.
    pub fn compression(&self) -> Result<Compression> {
        let code = self.attributes & COMPRESSION_MASK;
        Compression::from_code(code).ok_or_else(|| {
            Error::malformed(
                "record batch",
                format!(
                    "unknown compression code {code} at base offset {}",
                    self.base_offset
                ),
            )
        })
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    /// Whether the batch holds control records (transaction markers) rather than data.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// Whether `base_timestamp` holds the delete horizon set by log compaction.
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_FLAG != 0
    }

    /// Where the record timestamps come from.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_FLAG != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Offset of the last record (or of the last record before compaction removed it).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch: where a consumer continues.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// Total bytes of the batch on the wire, including base offset and length.
    pub fn total_len(&self) -> usize {
        (self.batch_length.max(0) as usize).saturating_add(LOG_OVERHEAD)
    }

    /// Whether this batch comes from an idempotent or transactional producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence number of the batch's last record (`lastSequence()` in the Java client):
    /// `base_sequence + last_offset_delta`, wrapping past `i32::MAX` to 0 as Kafka's sequences
    /// do. A batch without sequence numbers (`base_sequence` < 0) returns `base_sequence`.
    /// Brokers compare it with the producer's previous batches to detect duplicates.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        last.rem_euclid(i64::from(i32::MAX) + 1) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base_sequence: i32, last_offset_delta: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 49,
            partition_leader_epoch: -1,
            magic: MAGIC_V2,
            crc: 0,
            attributes: 0,
            last_offset_delta,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: 1,
            producer_epoch: 0,
            base_sequence,
            record_count: last_offset_delta + 1,
        }
    }

    #[test]
    fn last_sequence_adds_the_offset_delta_and_wraps_like_kafka() {
        assert_eq!(header(0, 0).last_sequence(), 0);
        assert_eq!(header(5, 3).last_sequence(), 8);
        assert_eq!(header(i32::MAX, 0).last_sequence(), i32::MAX);
        assert_eq!(header(i32::MAX, 1).last_sequence(), 0);
        assert_eq!(header(i32::MAX - 1, 4).last_sequence(), 2);
        assert_eq!(header(-1, 7).last_sequence(), -1);
    }
}
