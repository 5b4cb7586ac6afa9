//! The background task that turns ready batches into Produce requests and their answers into
//! delivery reports, retrying what may succeed later without reordering a partition.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ApiKey, ProduceRequest, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use bytes::Bytes;

use super::accumulator::{PartitionQueue, ProducerBatch};
use super::identity::{init_producer_id, ProducerIdentity};
use super::ProducerConfig;
use super::{DeliveryFailure, Inner};
use crate::error::{Error, KafkaCode, Result};
use crate::protocol::record::{BatchBuilder, BatchHeader, Compression};

/// Produce v3 is the oldest Kafka 4 accepts; v13 addresses topics by id, which we don't yet.
const PRODUCE_VERSIONS: std::ops::RangeInclusive<i16> = 3..=12;
/// Produce inside a v1 transaction: v12 would mean "add the partition implicitly".
const PRODUCE_TXN_V1: std::ops::RangeInclusive<i16> = 3..=11;

/// A batch taken from its queue for one request.
struct InFlight {
    topic: Arc<str>,
    partition: i32,
    batch: ProducerBatch,
}

/// What one pass over the queues found.
#[derive(Default)]
struct Drained {
    by_broker: HashMap<i32, Vec<InFlight>>,
    expired: Vec<(Arc<str>, i32, ProducerBatch)>,
    missing_leaders: Vec<Arc<str>>,
    next_wake: Option<Instant>,
    /// Batches of a transaction being aborted (or unusable), never sent.
    aborted: Vec<ProducerBatch>,
    /// Partitions with batches that must join the open transaction first (version 1).
    to_add: Vec<(Arc<str>, i32)>,
}

pub(crate) async fn run(inner: Arc<Inner>) {
    let mut refreshing: Option<tokio::task::JoinHandle<()>> = None;
    let mut last_refresh: Option<Instant> = None;
    loop {
        // A transactional producer takes a new epoch only when its transaction is aborted.
        if inner.idempotent && inner.txn.is_none() && needs_new_identity(&inner) {
            match init_producer_id(&inner.cluster).await {
                Ok(new) => {
                    tracing::info!(
                        old = inner.identity().id,
                        new = new.id,
                        "new producer id after a failed batch"
                    );
                    inner.adopt(new);
                    reset_sequences(&inner);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot obtain a new producer id; retrying");
                    tokio::time::sleep(inner.config.retry_backoff).await;
                    continue;
                }
            }
        }
        let mut drained = drain(&inner);
        if let Some(txn) = &inner.txn {
            for batch in std::mem::take(&mut drained.aborted) {
                finish(&inner, batch, Err(txn.aborted_error()));
            }
        }
        for (topic, partition, batch) in drained.expired {
            let error = Error::Timeout {
                api: crate::error::Api::Produce,
                broker: format!("leader of {topic}/{partition}"),
                after: inner.config.delivery_timeout,
            };
            finish(&inner, batch, Err(error));
        }
        // Partitions without a known leader: refresh their metadata, at most once per
        // `retry_backoff`, and look again after it whatever wakes the sender or not (a refresh
        // can find no leader yet, while it is down; its wake-up can also come before its task
        // counts as finished).
        let now = Instant::now();
        let backoff_over = last_refresh.is_none_or(|at| at + inner.config.retry_backoff <= now);
        if !drained.missing_leaders.is_empty() {
            let again = now + inner.config.retry_backoff;
            drained.next_wake = Some(drained.next_wake.map_or(again, |w| w.min(again)));
        }
        if !drained.missing_leaders.is_empty()
            && backoff_over
            && refreshing.as_ref().is_none_or(|t| t.is_finished())
        {
            last_refresh = Some(now);
            let inner2 = inner.clone();
            let topics: Vec<String> = drained
                .missing_leaders
                .iter()
                .map(|t| t.to_string())
                .collect();
            refreshing = Some(tokio::spawn(async move {
                if let Err(e) = inner2.cluster.refresh_metadata(&topics, true).await {
                    tracing::debug!(error = %e, "metadata refresh for producer failed");
                    tokio::time::sleep(inner2.config.retry_backoff).await;
                }
                inner2.wake.notify_one();
            }));
        }
        let identity = inner.identity();
        for (broker, batches) in drained.by_broker {
            send_request(&inner, broker, batches, identity).await;
        }
        if let (Some(txn), false) = (&inner.txn, drained.to_add.is_empty()) {
            // Version 1: the partitions join the transaction before their batches go out.
            txn.add_partitions(&inner, drained.to_add).await;
            continue;
        }
        if inner.closing.load(Ordering::Acquire) && is_empty(&inner) {
            return;
        }
        let wait = drained
            .next_wake
            .map(|t| tokio::time::sleep_until(t))
            .unwrap_or_else(|| tokio::time::sleep(Duration::from_secs(3600)));
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = wait => {}
        }
    }
}

fn is_empty(inner: &Inner) -> bool {
    let acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
    acc.topics
        .iter()
        .flat_map(|t| &t.queues)
        .all(|q| q.batches.is_empty() && q.in_flight == 0)
}

/// True when a batch with a sequence number was given up on: the broker would reject every
/// later sequence, so once nothing is in flight the producer takes a new id.
fn needs_new_identity(inner: &Inner) -> bool {
    let acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
    acc.sequence_broken
        && acc
            .topics
            .iter()
            .flat_map(|t| &t.queues)
            .all(|q| q.in_flight == 0)
}

pub(crate) fn reset_sequences(inner: &Inner) {
    let mut acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
    acc.sequence_broken = false;
    for queue in acc.topics.iter_mut().flat_map(|t| &mut t.queues) {
        queue.next_sequence = 0;
        queue.confirmed = false;
        queue.retrying = false;
        for batch in &mut queue.batches {
            batch.sequence = None;
        }
    }
}

/// Takes every batch that is ready and may be sent now, one per partition.
fn drain(inner: &Inner) -> Drained {
    let config = &inner.config;
    let now = Instant::now();
    let flushing =
        inner.flushing.load(Ordering::Acquire) > 0 || inner.closing.load(Ordering::Acquire);
    let mut out = Drained::default();
    let mut request_bytes: HashMap<i32, usize> = HashMap::new();
    let wake_at = |out: &mut Drained, t: Instant| {
        out.next_wake = Some(out.next_wake.map_or(t, |w| w.min(t)));
    };
    // A transactional producer sends only inside an open transaction; under version 1 only
    // to partitions already added to it.
    let (drop_unsent, added) = match &inner.txn {
        Some(txn) if txn.drop_unsent() => (true, None),
        Some(txn) if !txn.is_v2() => (false, Some(txn.state().added.clone())),
        _ => (false, None),
    };
    let mut acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
    if drop_unsent {
        for queue in acc.topics.iter_mut().flat_map(|t| &mut t.queues) {
            out.aborted.extend(queue.batches.drain(..));
            queue.retrying = false;
        }
        return out;
    }
    if acc.sequence_broken {
        return out; // wait for in-flight batches, then take a new producer id
    }
    // Like Java's accumulator: once one partition makes a broker ready, that broker's request
    // also takes every other partition it leads that has records, lingering or not.
    let mut ready_leaders = HashSet::new();
    for t in acc.topics.iter() {
        let topic = &t.name;
        for (partition, queue) in t.queues.iter().enumerate() {
            let Some(front) = queue.batches.front() else {
                continue;
            };
            let own_ready = front.closed
                || queue.batches.len() > 1
                || flushing
                || front.attempts > 0
                || front.created + config.linger <= now;
            if own_ready && may_send(queue, front, config, now) {
                if let Some(leader) = inner.cluster.leader(topic, partition as i32) {
                    ready_leaders.insert(leader);
                }
            }
        }
    }
    for t in acc.topics.iter_mut() {
        let topic = &t.name;
        for (partition, queue) in t.queues.iter_mut().enumerate() {
            let partition = partition as i32;
            let Some(front) = queue.batches.front() else {
                continue;
            };
            if let Some(added) = &added {
                if !added.contains(&(topic.clone(), partition)) {
                    out.to_add.push((topic.clone(), partition));
                    continue;
                }
            }
            if front.created + config.delivery_timeout <= now && front.sequence.is_none() {
                let batch = queue.batches.pop_front().expect("front exists");
                out.expired.push((topic.clone(), partition, batch));
                wake_at(&mut out, now);
                continue;
            }
            if !may_send(queue, front, config, now) {
                if let Some(at) = front.retry_at.filter(|&at| at > now) {
                    wake_at(&mut out, at);
                }
                continue;
            }
            let Some(leader) = inner.cluster.leader(topic, partition) else {
                if !out.missing_leaders.contains(topic) {
                    out.missing_leaders.push(topic.clone());
                }
                continue;
            };
            let linger_done = front.created + config.linger;
            let ready = front.closed
                || queue.batches.len() > 1
                || flushing
                || front.attempts > 0
                || linger_done <= now
                || ready_leaders.contains(&leader);
            if !ready {
                wake_at(&mut out, linger_done);
                continue;
            }
            let size = front.size();
            let used = request_bytes.entry(leader).or_insert(0);
            if *used > 0 && *used + size > config.max_request_size {
                wake_at(&mut out, now); // goes in the next request
                continue;
            }
            *used += size;
            let mut batch = queue.batches.pop_front().expect("front exists");
            if inner.idempotent && batch.sequence.is_none() {
                batch.sequence = Some(queue.next_sequence);
                let count = batch.records as i32;
                // Sequences wrap to 0 after i32::MAX, as the broker expects.
                queue.next_sequence = queue
                    .next_sequence
                    .checked_add(count)
                    .unwrap_or(count - (i32::MAX - queue.next_sequence) - 1);
            }
            queue.retrying = false;
            queue.in_flight += 1;
            if !queue.batches.is_empty() {
                wake_at(&mut out, now);
            }
            out.by_broker.entry(leader).or_default().push(InFlight {
                topic: topic.clone(),
                partition,
                batch,
            });
        }
    }
    out
}

/// Whether a partition's front batch may go out now: within the in-flight limit, not waiting
/// for earlier in-flight batches after a failure, and past its retry backoff.
fn may_send(
    queue: &PartitionQueue,
    front: &ProducerBatch,
    config: &ProducerConfig,
    now: Instant,
) -> bool {
    // See `PartitionQueue::confirmed`.
    let max_in_flight = if config.idempotence_enabled() && !queue.confirmed {
        1
    } else {
        config.max_in_flight_per_partition.max(1)
    };
    !(queue.retrying && queue.in_flight > 0)
        && queue.in_flight < max_in_flight
        && front.retry_at.is_none_or(|at| at <= now)
}

/// Encodes (once) and sends one Produce request; its answer is handled in its own task so
/// the sender can go on writing to other brokers.
async fn send_request(
    inner: &Arc<Inner>,
    broker: i32,
    mut batches: Vec<InFlight>,
    identity: ProducerIdentity,
) {
    let mut request_error = None;
    for b in batches.iter_mut() {
        let sequence = b.batch.sequence.unwrap_or(-1);
        let encoded = match b.batch.encoded.take() {
            // Encoded before under another producer id (see `reset_sequences`): restamp.
            Some(bytes) => restamp(bytes, identity, sequence),
            None => {
                let builder =
                    std::mem::replace(&mut b.batch.builder, BatchBuilder::new(Compression::None));
                builder
                    .producer(identity.id, identity.epoch, sequence)
                    .transactional(inner.txn.is_some())
                    .build()
            }
        };
        match encoded {
            Ok(bytes) => b.batch.encoded = Some(bytes),
            Err(e) => request_error = Some(e),
        }
    }
    if let Some(e) = request_error {
        // Encoding failures are our bug or an impossible record: fail, don't retry.
        tracing::error!(error = %e, "cannot encode a record batch");
        let e = Arc::new(e);
        for b in batches {
            let err = Error::Delivery {
                topic: b.topic.to_string(),
                partition: b.partition,
                source: e.clone(),
            };
            settle(inner, b, Err(err));
        }
        return;
    }
    let conn = match inner.cluster.broker(broker).await {
        Ok(conn) => conn,
        Err(e) => return handle_response(inner, batches, Err(e)),
    };
    let versions = match &inner.txn {
        Some(txn) if !txn.is_v2() => PRODUCE_TXN_V1,
        _ => PRODUCE_VERSIONS,
    };
    let version = match conn.version(ApiKey::Produce, versions) {
        Ok(v) => v,
        Err(e) => return handle_response(inner, batches, Err(e)),
    };
    let request = build_request(inner, &batches);
    if let Some(txn) = &inner.txn {
        txn.mark_started();
    }
    if inner.config.acks == super::Acks::None {
        let result = conn.send_without_response(&request, version).await;
        for b in batches {
            let outcome = match &result {
                Ok(()) => Ok((-1, -1)),
                Err(e) => Err(Error::Disconnected {
                    broker: conn.broker().to_owned(),
                    reason: e.to_string(),
                }),
            };
            settle(inner, b, outcome);
        }
        return;
    }
    match conn.send(&request, version).await {
        Ok(pending) => {
            let inner = inner.clone();
            tokio::spawn(async move {
                let response = pending.decode::<ProduceRequest>(version).await;
                handle_response(&inner, batches, response);
            });
        }
        Err(e) => handle_response(inner, batches, Err(e)),
    }
}

/// Rewrites producer id, epoch and base sequence of an encoded batch and its CRC; needed
/// only when a batch is resent under a new producer id.
fn restamp(bytes: Bytes, identity: ProducerIdentity, sequence: i32) -> Result<Bytes> {
    let header = BatchHeader::parse(&bytes)?;
    if header.producer_id == identity.id
        && header.producer_epoch == identity.epoch
        && header.base_sequence == sequence
    {
        return Ok(bytes);
    }
    let mut buf = bytes.to_vec();
    buf[43..51].copy_from_slice(&identity.id.to_be_bytes());
    buf[51..53].copy_from_slice(&identity.epoch.to_be_bytes());
    buf[53..57].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(Bytes::from(buf))
}

fn build_request(inner: &Inner, batches: &[InFlight]) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for b in batches {
        let data = PartitionProduceData::default()
            .with_index(b.partition)
            .with_records(b.batch.encoded.clone());
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*b.topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(b.topic.to_string())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    ProduceRequest::default()
        .with_transactional_id(
            inner
                .txn
                .as_ref()
                .map(|t| TransactionalId(StrBytes::from_string(t.id.clone()))),
        )
        .with_acks(inner.config.acks.code())
        .with_timeout_ms(inner.config.ack_timeout.as_millis().min(i32::MAX as u128) as i32)
        .with_topic_data(topics)
}

/// Sorts each batch of a request into done, retry or failed.
fn handle_response(
    inner: &Arc<Inner>,
    batches: Vec<InFlight>,
    response: Result<kafka_protocol::messages::ProduceResponse>,
) {
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            // The whole request failed (connection, timeout): every batch may be retried, and
            // the leader may have moved, so look it up again.
            for b in &batches {
                inner.cluster.invalidate(&b.topic);
            }
            let shared = Arc::new(e);
            for b in batches {
                let err = Error::Delivery {
                    topic: b.topic.to_string(),
                    partition: b.partition,
                    source: shared.clone(),
                };
                retry_or_fail(inner, b, err);
            }
            inner.wake.notify_one();
            return;
        }
    };
    let results: HashMap<(&str, i32), &PartitionProduceResponse> = response
        .responses
        .iter()
        .flat_map(|t| {
            t.partition_responses
                .iter()
                .map(move |p| ((t.name.0.as_str(), p.index), p))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(batches.len());
    for b in batches {
        let outcome = match results.get(&(&*b.topic, b.partition)) {
            None => Err(Error::malformed(
                "Produce response",
                format!("no answer for {}/{}", b.topic, b.partition),
            )),
            Some(p) => match KafkaCode::try_from_code(p.error_code) {
                None => Ok((p.base_offset, p.log_append_time_ms)),
                // The broker already has this batch (a retry of one that did arrive).
                Some(KafkaCode::DuplicateSequenceNumber) => Ok((-1, -1)),
                Some(code) => {
                    let detail = p.error_message.as_ref().map(|m| format!(": {m}"));
                    Err(Error::broker(
                        code,
                        format!(
                            "Produce to {}/{}{}",
                            b.topic,
                            b.partition,
                            detail.unwrap_or_default()
                        ),
                    ))
                }
            },
        };
        outcomes.push((b, outcome));
    }
    for (b, outcome) in outcomes {
        match outcome {
            Ok(done) => settle(inner, b, Ok(done)),
            Err(e) => {
                if matches!(
                    e.code(),
                    Some(
                        KafkaCode::NotLeaderOrFollower
                            | KafkaCode::UnknownTopicOrPartition
                            | KafkaCode::LeaderNotAvailable
                            | KafkaCode::FencedLeaderEpoch
                    )
                ) {
                    inner.cluster.invalidate(&b.topic);
                }
                retry_or_fail(inner, b, e);
            }
        }
    }
    inner.wake.notify_one();
}

/// Puts a failed batch back in front of its queue (in sequence order) if it may still
/// succeed, else fails it.
fn retry_or_fail(inner: &Inner, mut b: InFlight, error: Error) {
    let now = Instant::now();
    b.batch.attempts += 1;
    let in_time = b.batch.created + inner.config.delivery_timeout > now;
    // Out-of-order follows a failed earlier batch of the same partition: resending in order fixes it.
    // Under transactions v2 a Produce may meet the previous transaction still completing.
    let retriable = error.is_retriable()
        || error.code() == Some(KafkaCode::OutOfOrderSequenceNumber)
        || (inner.txn.is_some() && error.code() == Some(KafkaCode::ConcurrentTransactions));
    if retriable && in_time {
        tracing::debug!(topic = %b.topic, partition = b.partition, attempt = b.batch.attempts, error = %error, "retrying batch");
        b.batch.retry_at = Some(now + inner.config.retry_backoff);
        inner
            .retried
            .fetch_add(b.batch.records as u64, Ordering::Relaxed);
        let mut acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
        let queue = acc.queue(&b.topic, b.partition);
        queue.in_flight -= 1;
        queue.retrying = true;
        // Back before every batch with a later (or no) sequence: the broker must see this
        // partition's sequences in order.
        let position = queue
            .batches
            .iter()
            .position(|q| q.sequence.is_none() || q.sequence > b.batch.sequence)
            .unwrap_or(queue.batches.len());
        queue.batches.insert(position, b.batch);
        return;
    }
    tracing::warn!(topic = %b.topic, partition = b.partition, error = %error, "giving up on batch");
    settle(inner, b, Err(error));
}

/// Completes a batch that left the queue, releases its buffer space and in-flight slot.
fn settle(inner: &Inner, b: InFlight, outcome: Result<(i64, i64)>) {
    {
        let mut acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
        if outcome.is_err() && b.batch.sequence.is_some() {
            acc.sequence_broken = true;
        }
        let queue = acc.queue(&b.topic, b.partition);
        queue.in_flight = queue.in_flight.saturating_sub(1);
        if outcome.is_ok() && b.batch.sequence.is_some() {
            queue.confirmed = true;
        }
    }
    finish(inner, b.batch, outcome);
}

/// Reports a batch's outcome to its records and returns its resources.
fn finish(inner: &Inner, batch: ProducerBatch, outcome: Result<(i64, i64)>) {
    let records = batch.records;
    let outcome = outcome.map_err(Arc::new);
    if let (Err(e), Some(txn)) = (&outcome, &inner.txn) {
        txn.batch_failed(e, batch.sequence.is_some());
    }
    if let Err(e) = &outcome {
        let failure = DeliveryFailure {
            topic: batch.completion.topic().to_owned(),
            partition: batch.completion.partition(),
            error: e.clone(),
        };
        *inner.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure);
        inner.failed.fetch_add(records as u64, Ordering::AcqRel);
    }
    batch.completion.complete_shared(outcome);
    inner.buffer.add_permits(batch.reserved);
    if inner.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
        inner.idle.notify_waiters();
    }
}
