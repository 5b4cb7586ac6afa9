//! A native Kafka protocol client in pure Rust: no librdkafka, no C compiler.
//!
//! It speaks Kafka's wire protocol directly (brokers from 2.x on, KRaft included) and shares
//! consumer groups, transactions and record formats with the Java client and librdkafka.
//!
//! # Guide
//!
//! **Connect.** A [`ClientConfig`] names the bootstrap brokers (`host:port,host:port`, or a
//! URL whose scheme sets the [`SecurityProtocol`]) and how patient to be. Every client
//! ([`Producer`](producer::Producer), [`Consumer`], [`GroupConsumer`], [`Admin`]) is built
//! from one and learns the rest of the cluster from it.
//!
//! **Produce.** [`producer::Producer::send`] takes a [`producer::ProducerRecord`] and returns
//! once the record is accepted into a batch; awaiting the returned
//! [`DeliveryFuture`](producer::DeliveryFuture) waits for the broker's acknowledgement and gives
//! the record's [`RecordMetadata`](producer::RecordMetadata). The producer is idempotent by
//! default (`acks=all`): retries never write a record twice.
//!
//! **Consume.** A [`Consumer`] reads the partitions it is [assigned](Consumer::assign), from
//! where [`ConsumerConfig::auto_offset_reset`] or a [`seek`](Consumer::seek) says; records
//! come from [`Consumer::recv`] or as a stream.
//!
//! **Consumer groups.** A [`GroupConsumer`] [subscribes](GroupConsumer::subscribe) to topics
//! and shares their partitions with the other members of its [`GroupConfig::group_id`],
//! rebalancing as members come and go (a [`group::RebalanceListener`] hears about it) and
//! committing offsets ([`GroupConsumer::commit`], or automatically).
//!
//! **Admin.** [`Admin`] creates and deletes topics, adds partitions, lists offsets and
//! describes the cluster and topic configs.
//!
//! **TLS and SASL.** An `ssl://` URL or [`ClientConfig::with_tls`] turns on TLS
//! ([`TlsConfig`]: CA file, client certificate, crypto provider);
//! [`ClientConfig::with_sasl`] adds PLAIN or SCRAM authentication ([`SaslConfig`]). Credentials
//! go over plain TCP only with an explicit `sasl_plaintext://` URL.
//!
//! **Transports.** Connections are TCP unless [`ClientConfig::with_connector`] sets a
//! [`Connector`], which opens the byte stream to each broker address instead (`testkit`'s
//! in-memory cluster uses one to run clients with no sockets, on tokio's paused clock). Every
//! deadline and wait of the client runs on `tokio::time`.
//!
//! **Idempotence and transactions.** With [`producer::ProducerConfig::with_transactional_id`]
//! the producer writes to several partitions atomically: `begin_transaction`, `send`,
//! `send_offsets_to_transaction` (consume-transform-produce), then `commit_transaction` or
//! `abort_transaction`. Consumers with [`consumer::IsolationLevel::ReadCommitted`] see only
//! committed records.
//!
//! **Errors.** Every call returns [`Result`] with one [`Error`] type. Its variants say what
//! happened and what to do; [`Error::is_retriable`] says whether trying again may help,
//! [`Error::is_config`] that the settings must change, [`Error::is_fenced`] and
//! [`Error::is_transaction_abortable`] what a transactional producer must do, and
//! [`Error::code`] gives the broker's [`KafkaCode`]. The enums are `#[non_exhaustive]`: match
//! what you handle and keep a `_` arm.
//!
//! # Example
//!
//! Create a topic, produce two records and read them back, against the in-process mock
//! cluster of the `testkit` crate (a real cluster's address works the same):
//!
//! ```
//! use kafka_client::consumer::AutoOffsetReset;
//! use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
//! use kafka_client::{Admin, ClientConfig, Consumer, ConsumerConfig, NewTopic, TopicPartition};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let cluster = testkit::MockCluster::builder().build().await?;
//! # let bootstrap = cluster.bootstrap();
//! // `bootstrap` is "host:port,host:port" (here: the mock's).
//! let client = ClientConfig::new(&bootstrap)?.with_client_id("guide");
//!
//! let admin = Admin::new(client.clone()).await?;
//! admin.create_topics(vec![NewTopic::new("greetings", 1, 1)]).await?;
//!
//! let producer = Producer::new(client.clone(), ProducerConfig::default()).await?;
//! for name in ["alice", "bob"] {
//!     let record = ProducerRecord::new("greetings").key(name).value(format!("hello {name}"));
//!     let written = producer.send(record).await?.await?; // accepted, then acknowledged
//!     println!("{name} at offset {}", written.offset);
//! }
//! producer.close().await?;
//!
//! let config = ConsumerConfig::default().with_auto_offset_reset(AutoOffsetReset::Earliest);
//! let mut consumer = Consumer::new(client, config).await?;
//! consumer.assign(vec![TopicPartition::new("greetings", 0)]);
//! let first = consumer.recv().await?;
//! let second = consumer.recv().await?;
//! assert_eq!(first.value.as_deref(), Some(&b"hello alice"[..]));
//! assert_eq!((first.offset, second.offset), (0, 1));
//! # Ok(())
//! # }
//! ```
//!
//! A consumer group member, committing what it processed (compiled, not run here):
//!
//! ```no_run
//! use kafka_client::{ClientConfig, ConsumerConfig, GroupConfig, GroupConsumer};
//!
//! # async fn demo() -> kafka_client::Result<()> {
//! let client = ClientConfig::new("kafka://broker:9092")?;
//! let group = GroupConfig::new("billing").with_auto_commit(false);
//! let mut member = GroupConsumer::new(client, ConsumerConfig::default(), group).await?;
//! member.subscribe(["orders"]);
//! loop {
//!     let record = member.recv().await?;
//!     println!("{}/{} @ {}", record.topic, record.partition, record.offset);
//!     member.commit().await?;
//! }
//! # }
//! ```
//!
//! Errors carry what to act on:
//!
//! ```
//! use kafka_client::{ClientConfig, Error};
//!
//! let err = ClientConfig::new("https://broker:9092").unwrap_err();
//! assert!(err.is_config());
//! assert!(matches!(err, Error::InvalidUrl { .. }));
//! println!("{err}"); // invalid broker URL "https://broker:9092": unsupported scheme "https": use ...
//! ```

#![warn(missing_docs)]

pub mod admin;
mod backoff;
mod cluster;
pub mod config;
mod conn;
pub mod connector;
pub mod consumer;
pub mod error;
pub mod group;
mod list_offsets;
pub mod producer;
pub mod protocol;
pub mod sasl;
pub mod tls;
mod topic_partition;

pub use admin::{Admin, NewTopic, OffsetSpec};
pub use cluster::{BrokerInfo, ClusterInfo, PartitionInfo, TopicInfo};
pub use config::{ClientConfig, SecurityProtocol};
pub use connector::{BoxedStream, ByteStream, Connector};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, Offset};
pub use error::{Error, KafkaCode, Result};
pub use group::{GroupConfig, GroupConsumer};
pub use sasl::{SaslConfig, SaslMechanism};
pub use tls::TlsConfig;
pub use topic_partition::TopicPartition;
