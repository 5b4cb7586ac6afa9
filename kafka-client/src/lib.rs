//! A native Kafka protocol client in pure Rust: no librdkafka, no C compiler.

#![warn(missing_docs)]

pub mod admin;
mod cluster;
pub mod config;
mod conn;
pub mod consumer;
pub mod error;
pub mod group;
pub mod producer;
pub mod protocol;
pub mod sasl;
pub mod tls;
mod topic_partition;

pub use admin::{Admin, NewTopic, OffsetSpec};
pub use cluster::{BrokerInfo, ClusterInfo, PartitionInfo, TopicInfo};
pub use config::{ClientConfig, SecurityProtocol};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, Offset};
pub use error::{Error, KafkaCode, Result};
pub use group::{GroupConfig, GroupConsumer};
pub use sasl::{SaslConfig, SaslMechanism};
pub use tls::TlsConfig;
pub use topic_partition::TopicPartition;
