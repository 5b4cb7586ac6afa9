//! A native Kafka protocol client in pure Rust: no librdkafka, no C compiler.

pub mod error;
pub mod protocol;

pub use error::{Error, KafkaCode, Result};
