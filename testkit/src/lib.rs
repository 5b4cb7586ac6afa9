//! An in-process mock Kafka cluster that serves the real wire protocol on `127.0.0.1`, so any
//! Kafka client (ours, librdkafka/kcat, kafka-python, the Java client) can talk to it; with
//! fault injection for tests in the spirit of franz-go's kfake.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use testkit::{ApiKey, Intercept, MockCluster};
//!
//! let cluster = MockCluster::builder().brokers(2).default_partitions(3).auto_create_topics(true).build().await?;
//! let bootstrap = cluster.bootstrap(); // "127.0.0.1:a,127.0.0.1:b": give this to any client
//! cluster.create_topic("events", 3, std::iter::empty::<(String, String)>())?;
//!
//! // Slow down the next two fetches, then check what clients sent.
//! cluster.intercept(ApiKey::Fetch, Intercept::delay(Duration::from_millis(100)).times(2));
//! let seen = cluster.requests();
//! # let _ = (bootstrap, seen);
//! # Ok(())
//! # }
//! ```
//!
//! See the README for the APIs and versions served and the known differences from Kafka.

mod broker;
mod cluster;
mod connection;
mod control;
mod decode;
mod error;
mod group;
mod handlers;
mod log;
mod security;
mod state;
mod txn;

pub use cluster::{MockCluster, MockClusterBuilder};
pub use control::{Action, Intercept, RequestRecord};
pub use decode::{decode_request, DecodedRequest};
pub use error::{Error, Result};
pub use group::CommitRecord;
pub use kafka_client::KafkaCode;
pub use kafka_protocol::messages::ApiKey;
pub use security::{MockSasl, MockTls};
pub use txn::TransactionInfo;

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
