//! The wire layer: framing, request/response headers and the record batch codec.
//!
//! Message structs for every API come from the `kafka-protocol` crate, re-exported here as
//! [`messages`]; the record batch codec is ours because it is the hot path.

pub mod frame;
pub mod record;

pub use kafka_protocol::messages;
pub use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
pub use record::{
    BatchBuilder, BatchHeader, Compression, Header, Record, RecordBatch, RecordBatches,
    TimestampType,
};
