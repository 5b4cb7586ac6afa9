//! The producer: batches records per partition, sends one Produce request per broker with
//! every ready partition, retries retriable failures in order, and is idempotent by default.
//!
//! ```no_run
//! # async fn demo() -> kafka_client::Result<()> {
//! use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
//! use kafka_client::ClientConfig;
//!
//! let producer = Producer::new(ClientConfig::new("127.0.0.1:9092")?, ProducerConfig::default()).await?;
//! let delivery = producer
//!     .send(ProducerRecord::new("purchases").key("alice").value("{\"amount\": 3}").header("source", "web"))
//!     .await?;
//! let written = delivery.await?;
//! println!("written to {}/{} at offset {}", written.topic, written.partition, written.offset);
//! producer.close().await?;
//! # Ok(()) }
//! ```
//!
//! Transactions (exactly-once read-process-write): a `transactional_id` makes the producer
//! transactional; records and consumed offsets of one transaction become visible to
//! `read_committed` consumers together, or not at all.
//!
//! ```no_run
//! # async fn demo(consumer: &kafka_client::group::GroupConsumer) -> kafka_client::Result<()> {
//! use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
//! use kafka_client::{ClientConfig, Error, TopicPartition};
//!
//! let config = ProducerConfig::default().with_transactional_id("billing-worker-1");
//! let producer = Producer::new(ClientConfig::new("127.0.0.1:9092")?, config).await?;
//! producer.begin_transaction()?;
//! let _ = producer.send(ProducerRecord::new("invoices").value("...")).await?;
//! let offsets = vec![(TopicPartition::new("purchases", 0), 42)];
//! let outcome = match producer.send_offsets_to_transaction(offsets, &consumer.group_metadata()).await {
//!     Ok(()) => producer.commit_transaction().await,
//!     Err(e) => Err(e),
//! };
//! match outcome {
//!     Ok(()) => {}
//!     // Abort, then redo the work from the last committed offsets in a new transaction.
//!     Err(e) if e.is_transaction_abortable() => producer.abort_transaction().await?,
//!     // Fenced (another instance took over) or otherwise fatal: drop the producer.
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```

mod accumulator;
mod config;
mod delivery;
mod identity;
pub mod partitioner;
mod record;
mod sender;
mod txn;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore, TryAcquireError};

pub use config::{Acks, ProducerConfig};
pub use delivery::{DeliveryFuture, RecordMetadata};
pub use record::{ProducerRecord, RecordRef};

use crate::cluster::Cluster;
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::group::ConsumerGroupMetadata;
use crate::protocol::record::{BatchBuilder, BATCH_HEADER_LEN};
use crate::topic_partition::TopicPartition;
use accumulator::{Accumulator, Parts};

/// A Kafka producer. Share it by reference or in an `Arc`; every method takes `&self`.
pub struct Producer {
    inner: Arc<Inner>,
    sender: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub(crate) struct Inner {
    cluster: Arc<Cluster>,
    config: ProducerConfig,
    idempotent: bool,
    acc: Mutex<Accumulator>,
    /// Wakes the sender: a batch filled, a new batch started lingering, a retry is due.
    wake: Notify,
    /// Bytes of accepted, unacknowledged records; `send` waits when it runs out.
    buffer: Semaphore,
    /// Batches made and not yet completed (each holds the records accepted into it); `flush`
    /// waits for zero. Counted per batch, not per record: a record joining an open batch
    /// touches no counter the sender task also writes.
    outstanding: AtomicUsize,
    idle: Notify,
    flushing: AtomicUsize,
    closing: AtomicBool,
    /// Records whose delivery failed, and the last reason: for callers that check delivery in
    /// bulk (after `flush`) instead of awaiting each record's future.
    failed: AtomicU64,
    last_failure: Mutex<Option<DeliveryFailure>>,
    /// Records sent again after a retriable error (a batch's records, per retry).
    retried: AtomicU64,
    /// Producer id and epoch (-1/-1 when not idempotent); a transactional producer's moves
    /// on with aborts and, under transaction version 2, with every EndTxn.
    identity: Mutex<identity::ProducerIdentity>,
    /// The transaction manager, when `transactional_id` is set.
    txn: Option<txn::Txn>,
}

impl Inner {
    pub(crate) fn identity(&self) -> identity::ProducerIdentity {
        *self.identity.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a new producer id or epoch; sequences start again from 0.
    fn adopt(&self, identity: identity::ProducerIdentity) {
        let old = std::mem::replace(
            &mut *self.identity.lock().unwrap_or_else(|e| e.into_inner()),
            identity,
        );
        if old != identity {
            tracing::debug!(
                producer_id = identity.id,
                epoch = identity.epoch,
                "producer epoch moved on"
            );
            sender::reset_sequences(self);
        }
    }
}

/// What [`Producer::accept`] did with a record.
enum Accept {
    /// Appended; with its delivery future when one was asked for.
    Done(Option<DeliveryFuture>),
    /// The topic's partitions are not known yet.
    NeedsMetadata,
    /// The buffer has no room: wait for this many bytes.
    NeedsBuffer(usize),
}

/// A count of records the producer gave up on; see [`Producer::delivery_failures`].
#[derive(Debug, Clone, Default)]
pub struct DeliveryFailures {
    /// Records that were accepted but not delivered.
    pub records: u64,
    /// The last of them to fail, and why.
    pub last: Option<DeliveryFailure>,
}

/// A batch of records the producer gave up on: where it was going and the error that stopped it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{topic}/{partition}: {error}")]
pub struct DeliveryFailure {
    /// The batch's topic.
    pub topic: String,
    /// The batch's partition.
    pub partition: i32,
    /// Why it was not delivered (shared with the records' delivery futures).
    #[source]
    pub error: Arc<Error>,
}

impl Producer {
    /// Connects to the cluster and, when idempotent, obtains a producer id. With a
    /// `transactional_id` it also initialises transactions (Java's `initTransactions`): finds
    /// the transaction coordinator and registers the id, which fences every older producer
    /// with the same id and aborts its open transaction.
    pub async fn new(client: ClientConfig, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let cluster = Cluster::connect(client).await?;
        Self::with_cluster(cluster, config).await
    }

    pub(crate) async fn with_cluster(
        cluster: Arc<Cluster>,
        config: ProducerConfig,
    ) -> Result<Producer> {
        config.validate()?;
        let idempotent = config.idempotence_enabled();
        let txn = config
            .transactional_id
            .clone()
            .map(|id| txn::Txn::new(cluster.clone(), id, config.transaction_timeout));
        let inner = Arc::new(Inner {
            cluster,
            buffer: Semaphore::new(config.buffer_memory.min(Semaphore::MAX_PERMITS)),
            idempotent,
            config,
            acc: Mutex::default(),
            wake: Notify::new(),
            outstanding: AtomicUsize::new(0),
            idle: Notify::new(),
            flushing: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            failed: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            retried: AtomicU64::new(0),
            identity: Mutex::new(identity::ProducerIdentity::NONE),
            txn,
        });
        let producer_id = match &inner.txn {
            Some(txn) => txn.init_producer_id(None).await?,
            None if idempotent => identity::init_producer_id(&inner.cluster).await?,
            None => identity::ProducerIdentity::NONE,
        };
        *inner.identity.lock().unwrap_or_else(|e| e.into_inner()) = producer_id;
        let sender = tokio::spawn(sender::run(inner.clone()));
        Ok(Producer {
            inner,
            sender: Mutex::new(Some(sender)),
        })
    }

    /// Accepts a record for sending and returns the future of its acknowledgement.
    ///
    /// Waits while the producer's buffer is full, and for metadata the first time a topic is
    /// used (the broker may create it, as with the Java client).
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.send_ref(RecordRef::from(&record)).await
    }

    /// [`send`](Self::send) for a record whose parts the caller keeps (they are copied into
    /// the batch).
    pub async fn send_ref(&self, record: RecordRef<'_>) -> Result<DeliveryFuture> {
        let mut known_partitions = None;
        let mut reserved = false;
        let timestamp = record.timestamp.unwrap_or_else(now_millis);
        loop {
            match self.accept(&record, timestamp, reserved, known_partitions, true)? {
                Accept::Done(Some(delivery)) => return Ok(delivery),
                Accept::Done(None) => unreachable!("a tracked append has a delivery future"),
                Accept::NeedsMetadata => {
                    reserved = false; // `accept` gave the reservation back
                    let topic = self
                        .inner
                        .cluster
                        .topic_or_fetch(record.topic, true)
                        .await?;
                    known_partitions = Some(topic.partitions.len());
                }
                Accept::NeedsBuffer(reserve) => {
                    self.inner
                        .buffer
                        .acquire_many(reserve as u32)
                        .await
                        .map_err(|_| Error::Closed)?
                        .forget();
                    reserved = true;
                }
            }
        }
    }

    /// Accepts a record at once if nothing needs waiting for: the topic's partitions are
    /// known and the buffer has room. `Ok(None)` when it would have to wait: hand it to
    /// [`send`](Self::send) or [`send_ref`](Self::send_ref) then. Errors are `send`'s.
    ///
    /// Its parts are copied into the batch, so a caller encoding keys and values into buffers
    /// it reuses produces without allocating per record.
    pub fn try_send(&self, record: RecordRef<'_>) -> Result<Option<DeliveryFuture>> {
        let timestamp = record.timestamp.unwrap_or_else(now_millis);
        match self.accept(&record, timestamp, false, None, true)? {
            Accept::Done(delivery) => Ok(delivery),
            Accept::NeedsMetadata | Accept::NeedsBuffer(_) => Ok(None),
        }
    }

    /// [`try_send`](Self::try_send) without a delivery future, for callers that check
    /// delivery in bulk: `Ok(true)` when the record was accepted, `Ok(false)` when it would
    /// have to wait (then send it with [`send_ref`](Self::send_ref)). Its outcome still counts:
    /// a record that is not delivered shows in [`delivery_failures`](Self::delivery_failures)
    /// once [`flush`](Self::flush) returns, and fails the open transaction's commit. Saves
    /// the future's shared reference per record.
    ///
    /// ```no_run
    /// # async fn demo(producer: &kafka_client::producer::Producer) -> kafka_client::Result<()> {
    /// use kafka_client::producer::RecordRef;
    ///
    /// let record = RecordRef { key: Some(b"alice"), value: Some(b"3"), ..RecordRef::new("counts") };
    /// if !producer.try_send_detached(record)? {
    ///     drop(producer.send_ref(record).await?); // wait for room, then drop the future too
    /// }
    /// producer.flush().await;
    /// let failures = producer.delivery_failures();
    /// assert_eq!(failures.records, 0, "not delivered: {:?}", failures.last);
    /// # Ok(()) }
    /// ```
    pub fn try_send_detached(&self, record: RecordRef<'_>) -> Result<bool> {
        let timestamp = record.timestamp.unwrap_or_else(now_millis);
        match self.accept(&record, timestamp, false, None, false)? {
            Accept::Done(_) => Ok(true),
            Accept::NeedsMetadata | Accept::NeedsBuffer(_) => Ok(false),
        }
    }

    /// Appends a record to its batch under one lock of the accumulator, or says what to wait
    /// for. With `reserved` its buffer space is already taken; it is given back on any
    /// outcome but `Done` (a record that is refused or must wait holds no space). With
    /// `track` it returns the record's delivery future.
    fn accept(
        &self,
        record: &RecordRef<'_>,
        timestamp: i64,
        reserved: bool,
        known_partitions: Option<usize>,
        track: bool,
    ) -> Result<Accept> {
        let inner = &self.inner;
        let size = BatchBuilder::record_size_upper_bound(record.key, record.value, record.headers);
        let reserve = size
            .min(inner.config.buffer_memory)
            .min(Semaphore::MAX_PERMITS);
        let give_back = || {
            if reserved {
                inner.buffer.add_permits(reserve);
            }
        };
        let refuse = |e: Error| {
            give_back();
            Err(e)
        };
        if inner.closing.load(Ordering::Acquire) {
            return refuse(Error::Closed);
        }
        if let Some(txn) = &inner.txn {
            if let Err(e) = txn.check_open("send") {
                return refuse(e);
            }
        }
        let (appended, partition) = {
            let mut acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
            let at = acc.topic(record.topic);
            let Some(partitions) = acc.partitions(at, &inner.cluster).or(known_partitions) else {
                give_back();
                return Ok(Accept::NeedsMetadata);
            };
            let partition = match record.partition {
                Some(p) if p >= 0 && (p as usize) < partitions => p,
                Some(p) => {
                    return refuse(Error::UnknownPartition {
                        topic: record.topic.to_owned(),
                        partition: p,
                    });
                }
                None => acc.choose(at, record.key, partitions),
            };
            // Alone in a batch, the record still needs the batch header: if that exceeds the
            // request size, no request could ever carry it.
            if size + BATCH_HEADER_LEN > inner.config.max_request_size {
                return refuse(Error::RecordTooLarge {
                    size,
                    max: inner.config.max_request_size,
                });
            }
            if !reserved {
                // Never waits, so it may run under the lock. Released permits go to queued
                // waiters first, so this does not overtake a `send` waiting for room.
                match inner.buffer.try_acquire_many(reserve as u32) {
                    Ok(permits) => permits.forget(),
                    Err(TryAcquireError::NoPermits) => return Ok(Accept::NeedsBuffer(reserve)),
                    Err(TryAcquireError::Closed) => return Err(Error::Closed),
                }
            }
            let parts = Parts {
                timestamp,
                key: record.key,
                value: record.value,
                headers: record.headers,
            };
            let sticky = record.partition.is_none().then_some(partitions);
            let appended = acc.append(
                at,
                partition,
                parts,
                reserve,
                inner.config.batch_size,
                inner.config.compression,
                sticky,
                track,
                &inner.outstanding,
            );
            (appended, partition)
        };
        let appended = match appended {
            Ok(a) => a,
            Err(e) => {
                // A batch made for it stays counted until the sender finishes it.
                inner.buffer.add_permits(reserve);
                return Err(e);
            }
        };
        if appended.index == 0 || appended.batch_full {
            inner.wake.notify_one();
        }
        Ok(Accept::Done(appended.completion.map(|completion| {
            debug_assert_eq!(completion.partition(), partition);
            DeliveryFuture {
                completion,
                index: appended.index,
                timestamp,
            }
        })))
    }

    /// Sends every accepted record now and waits until each is acknowledged or failed.
    pub async fn flush(&self) {
        self.inner.flushing.fetch_add(1, Ordering::AcqRel);
        self.inner.wake.notify_one();
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.outstanding.load(Ordering::Acquire) == 0 {
                break;
            }
            idle.await;
        }
        self.inner.flushing.fetch_sub(1, Ordering::AcqRel);
    }

    /// Records whose delivery failed since the producer started, with the last reason: check
    /// it after [`flush`](Self::flush) to learn whether everything accepted so far was
    /// delivered without awaiting every record's future.
    pub fn delivery_failures(&self) -> DeliveryFailures {
        DeliveryFailures {
            records: self.inner.failed.load(Ordering::Acquire),
            last: self
                .inner
                .last_failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Records the producer queued to send again after a retriable error, since it started
    /// (Java's `record-retry-total`): each retry of a batch counts its records. Retries
    /// delivered in the end are not failures; see [`delivery_failures`](Self::delivery_failures).
    pub fn retries(&self) -> u64 {
        self.inner.retried.load(Ordering::Relaxed)
    }

    /// Delivers everything accepted so far, then stops. Later `send`s fail with `Closed`.
    pub async fn close(&self) -> Result<()> {
        self.inner.closing.store(true, Ordering::Release);
        self.flush().await;
        self.inner.wake.notify_one();
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(sender) = sender {
            let _ = sender.await;
        }
        Ok(())
    }

    fn txn(&self, what: &'static str) -> Result<&txn::Txn> {
        self.inner
            .txn
            .as_ref()
            .ok_or(Error::NotTransactional { operation: what })
    }

    /// The transaction protocol version in use: `Some(2)` when the cluster finalized
    /// `transaction.version` 2 or higher (KIP-890 part 2, Kafka 4's default) and speaks its
    /// APIs, else `Some(1)`; `None` for a producer without a transactional id.
    pub fn transaction_version(&self) -> Option<u8> {
        self.inner.txn.as_ref().map(|t| t.version())
    }

    /// Opens a transaction (locally: the coordinator hears of it with its first partition or
    /// offsets). Every record sent until [`commit_transaction`](Self::commit_transaction) or
    /// [`abort_transaction`](Self::abort_transaction) belongs to it; a transactional producer
    /// refuses `send` outside a transaction.
    ///
    /// Errors: a transaction is already open ([`Error::TransactionState`]); the last one failed
    /// and must be aborted first ([`Error::TransactionAbortable`]); the producer was fenced
    /// ([`Error::ProducerFenced`]) or is otherwise unusable.
    ///
    /// The contract is Java's: after an error that
    /// [`is_transaction_abortable`](Error::is_transaction_abortable), call `abort_transaction`
    /// and go on with a new transaction; after a fatal one ([`Error::ProducerFenced`],
    /// [`Error::TransactionsUnavailable`]) drop the producer.
    pub fn begin_transaction(&self) -> Result<()> {
        self.txn("begin_transaction")?.begin()
    }

    /// Adds consumed offsets to the open transaction, committed to `group` only if the
    /// transaction commits (exactly-once read-process-write). The offsets are the next
    /// offsets to read. `group` should come from
    /// [`GroupConsumer::group_metadata`](crate::group::GroupConsumer::group_metadata): the
    /// coordinator refuses the offsets of a member whose generation is gone (KIP-447), which
    /// makes the transaction abortable ([`Error::TransactionAbortable`] with an
    /// [`Error::Rebalancing`] source).
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        self.txn("send_offsets_to_transaction")?
            .send_offsets(&self.inner, offsets, group)
            .await
    }

    /// Sends every record of the open transaction, checks that each was delivered, then
    /// commits it (EndTxn). A record that failed makes this return
    /// [`Error::TransactionAbortable`] without committing: abort, then retry the work in a new
    /// transaction. A timeout or exhausted retries leave the transaction open: call again or
    /// abort.
    pub async fn commit_transaction(&self) -> Result<()> {
        let txn = self.txn("commit_transaction")?;
        txn.enter(true)?;
        self.flush().await;
        if let Some(e) = txn.failure() {
            return Err(e);
        }
        if txn.state().started {
            match txn.end(&self.inner, true).await {
                Ok(identity) => self.inner.adopt(identity),
                Err(e) => return Err(txn.failed(e)),
            }
        }
        txn.ended();
        Ok(())
    }

    /// Aborts the open transaction: records not yet sent fail with
    /// [`Error::TransactionAborted`], records in flight are awaited, then EndTxn(abort) makes
    /// everything of the transaction invisible to `read_committed` consumers. When a record
    /// of it had failed, the producer's epoch is bumped (KIP-360) so the next transaction
    /// starts clean.
    pub async fn abort_transaction(&self) -> Result<()> {
        let txn = self.txn("abort_transaction")?;
        txn.enter(false)?;
        self.inner.wake.notify_one();
        self.flush().await;
        let started = txn.state().started;
        let mut identity = self.inner.identity();
        if started {
            identity = txn
                .end(&self.inner, false)
                .await
                .map_err(|e| txn.failed(e))?;
        }
        let sequence_broken = {
            let acc = self.inner.acc.lock().unwrap_or_else(|e| e.into_inner());
            acc.sequence_broken
        };
        let needs_bump = txn.state().needs_bump || sequence_broken;
        if needs_bump && (!txn.is_v2() || identity == self.inner.identity()) {
            identity = txn
                .init_producer_id(Some(identity))
                .await
                .map_err(|e| txn.failed(e))?;
        }
        self.inner.adopt(identity);
        if needs_bump {
            sender::reset_sequences(&self.inner);
            txn.state().needs_bump = false;
        }
        txn.ended();
        Ok(())
    }

    /// Partition numbers of a topic (fetching metadata if needed).
    pub async fn partitions(&self, topic: &str) -> Result<usize> {
        Ok(self
            .inner
            .cluster
            .topic_or_fetch(topic, true)
            .await?
            .partitions
            .len())
    }
}

impl Drop for Producer {
    /// Dropping without `close` still delivers what was accepted, in the background.
    fn drop(&mut self) {
        self.inner.closing.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }
}

/// The time of a send (CreateTime), read per record as Kafka producers do. Whole seconds and
/// milliseconds added in i64: `as_millis` would go through u128.
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 * 1000 + i64::from(d.subsec_millis()))
        .unwrap_or(0)
}
