//! Per-partition queues of batches waiting to be sent, and the rules for when a batch is
//! ready: full, lingered long enough, flushed, or due for a retry.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::time::Instant;

use bytes::Bytes;

use super::delivery::Completion;
use crate::protocol::record::{BatchBuilder, Compression, Header};

/// Batches of one partition, oldest first.
#[derive(Default)]
pub(crate) struct PartitionQueue {
    pub(crate) batches: VecDeque<ProducerBatch>,
    /// Batches sent and not yet answered.
    pub(crate) in_flight: usize,
    /// A batch failed and was put back: send nothing more until the in-flight ones return,
    /// so batches reach the broker again in sequence order.
    pub(crate) retrying: bool,
    /// Next idempotent sequence number to hand out.
    pub(crate) next_sequence: i32,
    /// The broker has acknowledged a sequenced batch of this partition for the current
    /// producer id. Until then one batch at a time: a broker accepts any first sequence from
    /// a producer it does not know, so a later batch overtaking a failed first one would
    /// leave a gap that no retry can fill (OUT_OF_ORDER_SEQUENCE_NUMBER forever).
    pub(crate) confirmed: bool,
}

/// Records bound for one partition, sent together.
pub(crate) struct ProducerBatch {
    /// Records appended so far; taken (left empty) when the batch is encoded.
    pub(crate) builder: BatchBuilder,
    /// Record count, kept when the builder is taken.
    pub(crate) records: usize,
    pub(crate) completion: Arc<Completion>,
    pub(crate) created: Instant,
    /// Bytes reserved from the producer's buffer for this batch.
    pub(crate) reserved: usize,
    /// No more records go in (it reached the batch size).
    pub(crate) closed: bool,
    pub(crate) attempts: u32,
    pub(crate) retry_at: Option<Instant>,
    /// Sequence and encoded bytes are fixed at the first send so retries repeat them exactly.
    pub(crate) sequence: Option<i32>,
    pub(crate) encoded: Option<Bytes>,
}

/// A record as accepted by `send`, before it joins a batch.
pub(crate) struct PendingRecord {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<Header>,
}

impl PendingRecord {
    /// Upper estimate of the record's encoded size, for batch and buffer accounting.
    pub(crate) fn size_estimate(&self) -> usize {
        BatchBuilder::record_size_upper_bound(
            self.key.as_deref(),
            self.value.as_deref(),
            &self.headers,
        )
    }
}

impl ProducerBatch {
    /// Size for request accounting: exact once encoded.
    pub(crate) fn size(&self) -> usize {
        self.encoded
            .as_ref()
            .map_or_else(|| self.builder.estimated_size(), Bytes::len)
    }
}

/// Where an appended record went.
pub(crate) struct Appended {
    pub(crate) completion: Arc<Completion>,
    pub(crate) index: i32,
    /// The batch is now full: the sender should look, and sticky partitioning moves on.
    pub(crate) batch_full: bool,
}

#[derive(Default)]
pub(crate) struct Accumulator {
    pub(crate) topics: HashMap<Arc<str>, Vec<PartitionQueue>>,
    /// A batch holding sequence numbers was given up on (see the sender).
    pub(crate) sequence_broken: bool,
}

impl Accumulator {
    pub(crate) fn queue(&mut self, topic: &str, partition: i32) -> &mut PartitionQueue {
        if !self.topics.contains_key(topic) {
            self.topics.insert(Arc::from(topic), Vec::new());
        }
        let queues = self.topics.get_mut(topic).expect("inserted above");
        let index = partition.max(0) as usize;
        if queues.len() <= index {
            queues.resize_with(index + 1, PartitionQueue::default);
        }
        &mut queues[index]
    }

    /// Appends a record to the partition's open batch, opening a new one when it would
    /// overflow `batch_size`.
    pub(crate) fn append(
        &mut self,
        topic: &str,
        partition: i32,
        record: PendingRecord,
        reserved: usize,
        batch_size: usize,
        compression: Compression,
    ) -> crate::Result<Appended> {
        let mut queue = self.queue(topic, partition);
        let fits = queue.batches.back().is_some_and(|b| {
            !b.closed && b.sequence.is_none() && b.builder.estimated_size() + reserved <= batch_size
        });
        if !fits {
            // The topic's name is shared by its batches (looked up once per batch).
            let topic_arc = match self.topics.get_key_value(topic) {
                Some((k, _)) => k.clone(),
                None => Arc::from(topic),
            };
            queue = self.queue(topic, partition);
            if let Some(last) = queue.batches.back_mut() {
                last.closed = true;
            }
            queue.batches.push_back(ProducerBatch {
                builder: BatchBuilder::with_capacity(compression, batch_size.min(1 << 20)),
                records: 0,
                completion: Completion::new(topic_arc, partition),
                created: Instant::now(),
                reserved: 0,
                closed: false,
                attempts: 0,
                retry_at: None,
                sequence: None,
                encoded: None,
            });
        }
        let batch = queue.batches.back_mut().expect("pushed above");
        let index = batch.builder.append(
            record.timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        )?;
        batch.records += 1;
        batch.reserved += reserved;
        let batch_full = batch.builder.estimated_size() >= batch_size;
        if batch_full {
            batch.closed = true;
        }
        Ok(Appended {
            completion: batch.completion.clone(),
            index,
            batch_full,
        })
    }
}
