//! Control records: the transaction markers (and KRaft bookkeeping records) that brokers write
//! in control batches. Consumers skip them; read_committed consumers use the markers to drop
//! aborted data.

use bytes::{BufMut, Bytes, BytesMut};

use super::Record;
use crate::error::{Error, Result};

/// Type of a control record, from its key (`version i16 | type i16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlRecordType {
    /// The transaction was aborted: its records must be dropped by read_committed consumers.
    Abort,
    /// The transaction was committed.
    Commit,
    /// Any other type (KRaft leader change, snapshot markers, ...), with its code.
    Other(i16),
}

impl ControlRecordType {
    /// Kafka's code for this type.
    pub fn code(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(code) => code,
        }
    }

    /// Parses a control record key. Unknown key versions are accepted, as in Java, since the
    /// type stays at the same place.
    pub fn parse_key(key: &[u8]) -> Result<ControlRecordType> {
        let Some(&[_, _, hi, lo]) = key.first_chunk::<4>() else {
            return Err(Error::malformed(
                "control record key",
                format!("{} bytes, need at least 4 (version and type)", key.len()),
            ));
        };
        Ok(match i16::from_be_bytes([hi, lo]) {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            code => ControlRecordType::Other(code),
        })
    }

    /// The key bytes of a version-0 control record of this type.
    pub fn key(self) -> Bytes {
        let mut key = BytesMut::with_capacity(4);
        key.put_i16(0);
        key.put_i16(self.code());
        key.freeze()
    }
}

/// The value of a transaction marker: `version i16 | coordinator_epoch i32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndTxnMarker {
    /// Commit (`true`) or abort.
    pub commit: bool,
    /// Epoch of the transaction coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// The marker's control record type.
    pub fn control_type(&self) -> ControlRecordType {
        if self.commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        }
    }

    /// The marker's key and value bytes.
    pub fn key_value(&self) -> (Bytes, Bytes) {
        let mut value = BytesMut::with_capacity(6);
        value.put_i16(0);
        value.put_i32(self.coordinator_epoch);
        (self.control_type().key(), value.freeze())
    }

    /// Parses a marker from a control record.
    pub fn parse(record: &Record) -> Result<EndTxnMarker> {
        let commit = match record.control_type()? {
            ControlRecordType::Commit => true,
            ControlRecordType::Abort => false,
            ControlRecordType::Other(code) => {
                return Err(Error::malformed(
                    "transaction marker",
                    format!("control type {code} is not abort (0) or commit (1)"),
                ))
            }
        };
        let value = record.value.as_deref().unwrap_or_default();
        let Some(&[_, _, a, b, c, d]) = value.first_chunk::<6>() else {
            return Err(Error::malformed(
                "transaction marker",
                format!(
                    "value of {} bytes, need 6 (version and coordinator epoch)",
                    value.len()
                ),
            ));
        };
        Ok(EndTxnMarker {
            commit,
            coordinator_epoch: i32::from_be_bytes([a, b, c, d]),
        })
    }
}

impl Record {
    /// The control type of a record from a control batch (see
    /// [`BatchHeader::is_control`](super::BatchHeader::is_control)).
    pub fn control_type(&self) -> Result<ControlRecordType> {
        match &self.key {
            Some(key) => ControlRecordType::parse_key(key),
            None => Err(Error::malformed("control record key", "null key")),
        }
    }
}
