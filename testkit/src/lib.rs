//! An in-process mock Kafka cluster for tests: it serves the real wire protocol on
//! `127.0.0.1`, so any Kafka client (ours, librdkafka/kcat, kafka-python, the Java client)
//! talks to it as to a broker, and a test can inject faults the way franz-go's kfake does.
//!
//! # Guide
//!
//! - [`MockCluster::builder`] starts N brokers on free ports; [`MockCluster::bootstrap`] is
//!   the address list to give a client. Topics are created by clients (CreateTopics, or
//!   auto-creation with [`MockClusterBuilder::auto_create_topics`]) or by the test with
//!   [`MockCluster::create_topic`].
//! - Faults: [`MockCluster::intercept`] installs an [`Intercept`] rule for an [`ApiKey`]: answer
//!   with an error, delay, drop the connection, never answer, or corrupt fetched batches, for
//!   the next N matching requests or always, optionally on one broker or partition.
//!   [`MockCluster::move_leader`] moves a partition's leadership.
//! - Inspection: [`MockCluster::requests`] lists what arrived ([`RequestRecord`]);
//!   [`MockCluster::records`], [`MockCluster::committed_offset`],
//!   [`MockCluster::commit_history`] and [`MockCluster::transactions`] read the cluster's state
//!   without a client.
//! - In memory: [`MockClusterBuilder::in_memory`] binds no sockets; a client reaches the
//!   brokers (`mock-broker-1:9092`, ...) through [`MockCluster::connector`], given to
//!   [`kafka_client::ClientConfig::with_connector`]. With it and tokio's paused clock, group
//!   session expiry and transaction timeouts happen in virtual time.
//! - TLS and SASL/PLAIN listeners ([`MockTls`], [`MockSasl`]) let a test run production
//!   security settings; the `mock-broker` binary runs one cluster as a standalone process.
//!
//! # Example
//!
//! Produce with `kafka_client`'s producer through a leader change the mock simulates, then read
//! the records back from the log:
//!
//! ```
//! use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
//! use kafka_client::ClientConfig;
//! use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = MockCluster::builder().brokers(2).build().await?;
//! cluster.create_topic("purchases", 3, std::iter::empty::<(String, String)>())?;
//!
//! // The first Produce request fails as if the leader had just moved; the producer retries.
//! cluster.intercept(ApiKey::Produce, Intercept::error(KafkaCode::NotLeaderOrFollower));
//!
//! let client = ClientConfig::new(&cluster.bootstrap())?;
//! let producer = Producer::new(client, ProducerConfig::default()).await?;
//! let record = ProducerRecord::new("purchases").partition(1).key("alice").value("3 EUR");
//! let written = producer.send(record).await?.await?; // accepted, then acknowledged
//! producer.close().await?;
//!
//! let records = cluster.records("purchases", 1);
//! assert_eq!(records.len(), 1); // written once, though sent twice
//! assert_eq!(records[0].0, written.offset);
//! assert_eq!(records[0].2.as_deref(), Some(&b"3 EUR"[..]));
//! let produces = cluster.requests().iter().filter(|r| r.api_key == ApiKey::Produce).count();
//! assert_eq!(produces, 2);
//! # Ok(())
//! # }
//! ```
//!
//! The README lists the APIs and versions served and the known differences from Kafka.

#![warn(missing_docs)]

mod broker;
mod cluster;
mod connection;
mod control;
mod decode;
mod error;
mod group;
mod handlers;
mod ids;
mod interception;
mod log;
mod memory;
mod security;
mod state;
mod transactions;
mod txn;

pub use cluster::{MockCluster, MockClusterBuilder};
pub use control::{Action, ErrorCode, Intercept, RequestRecord};
pub use decode::{decode_request, DecodedRequest};
pub use error::{Error, Result};
pub use group::CommitRecord;
pub use kafka_client::KafkaCode;
pub use kafka_protocol::messages::ApiKey;
pub use security::{MockSasl, MockTls};
pub use transactions::TransactionInfo;

/// The API keys and version ranges (min, max) this mock serves, as ApiVersions advertises.
pub fn supported_apis() -> Vec<(ApiKey, i16, i16)> {
    handlers::api_versions::SUPPORTED.to_vec()
}

/// A name no other test of any run uses: `prefix-<time>-<pid>-<counter>`. Real Kafka keeps
/// topics and groups between runs, and tests running at once in one process may read the
/// clock at the same nanosecond (two tests once shared a topic that way), hence the counter.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{nanos:x}-{}-{n}", std::process::id())
}
