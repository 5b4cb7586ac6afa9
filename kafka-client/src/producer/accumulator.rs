//! Per-partition queues of batches waiting to be sent, and the rules for when a batch is
//! ready: full, lingered long enough, flushed, or due for a retry.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

use bytes::Bytes;

use super::delivery::Completion;
use super::partitioner::Partitioner;
use crate::cluster::Cluster;
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
    /// The batch's completion, when the caller asked for it (a delivery future holds it).
    pub(crate) completion: Option<Arc<Completion>>,
    pub(crate) index: i32,
    /// The batch is now full: the sender should look.
    pub(crate) batch_full: bool,
}

/// A topic's queues, and what `send` keeps about the topic between records.
pub(crate) struct TopicQueues {
    pub(crate) name: Arc<str>,
    /// By partition number.
    pub(crate) queues: Vec<PartitionQueue>,
    /// The partition count of the cluster's metadata (`None`: not known), read at
    /// `generation` of its topics: true until that moves on.
    partitions: Option<usize>,
    generation: Option<u64>,
    /// The partition of keyless records for now (see the partitioner).
    sticky: Option<i32>,
}

#[derive(Default)]
pub(crate) struct Accumulator {
    /// In order of first use, never removed (a topic's queues keep its sequence numbers).
    pub(crate) topics: Vec<TopicQueues>,
    index: HashMap<Arc<str>, usize>,
    /// The topic of the last lookup: a producer writing to one topic at a time compares names
    /// instead of hashing them.
    last: usize,
    partitioner: Partitioner,
    /// A batch holding sequence numbers was given up on (see the sender).
    pub(crate) sequence_broken: bool,
}

/// A record's parts for [`Accumulator::append`], borrowed: copied into the batch.
pub(crate) struct Parts<'a> {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [Header],
}

impl Accumulator {
    /// The position of `topic` in `topics`, added when new.
    pub(crate) fn topic(&mut self, topic: &str) -> usize {
        if self
            .topics
            .get(self.last)
            .is_some_and(|t| &*t.name == topic)
        {
            return self.last;
        }
        let at = match self.index.get(topic) {
            Some(&at) => at,
            None => {
                let name: Arc<str> = Arc::from(topic);
                self.topics.push(TopicQueues {
                    name: name.clone(),
                    queues: Vec::new(),
                    partitions: None,
                    generation: None,
                    sticky: None,
                });
                self.index.insert(name, self.topics.len() - 1);
                self.topics.len() - 1
            }
        };
        self.last = at;
        at
    }

    pub(crate) fn queue(&mut self, topic: &str, partition: i32) -> &mut PartitionQueue {
        let at = self.topic(topic);
        queue_of(&mut self.topics[at], partition)
    }

    /// The partition count of topic `at` in the cluster's metadata, read again only when the
    /// metadata changed since the last read.
    pub(crate) fn partitions(&mut self, at: usize, cluster: &Cluster) -> Option<usize> {
        let topic = &mut self.topics[at];
        let generation = cluster.topics_generation();
        if topic.generation != Some(generation) {
            topic.partitions = cluster.partition_count(&topic.name);
            topic.generation = Some(generation);
        }
        topic.partitions
    }

    /// The partition for a record of topic `at` that did not name one.
    pub(crate) fn choose(&mut self, at: usize, key: Option<&[u8]>, partitions: usize) -> i32 {
        self.partitioner
            .partition(&mut self.topics[at].sticky, key, partitions)
    }

    /// Appends a record to the partition's open batch, opening a new one when it would
    /// overflow `batch_size`. When `sticky` (the partitioner chose) and the batch fills, keyless
    /// records of the topic move to another of its `partitions`. With `track` the record's
    /// batch completion is returned for a delivery future; without, no reference is taken.
    /// A new batch counts one in `open_batches` as it is made (the sender's `finish` takes it
    /// off), before anything can fail, so the count stays exact.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &mut self,
        at: usize,
        partition: i32,
        record: Parts<'_>,
        reserved: usize,
        batch_size: usize,
        compression: Compression,
        sticky: Option<usize>,
        track: bool,
        open_batches: &AtomicUsize,
    ) -> crate::Result<Appended> {
        let topic = &mut self.topics[at];
        let name = &topic.name;
        let queue = queue_of_in(&mut topic.queues, partition);
        let fits = queue.batches.back().is_some_and(|b| {
            !b.closed && b.sequence.is_none() && b.builder.estimated_size() + reserved <= batch_size
        });
        if !fits {
            open_batches.fetch_add(1, Ordering::AcqRel);
            if let Some(last) = queue.batches.back_mut() {
                last.closed = true;
            }
            queue.batches.push_back(ProducerBatch {
                builder: BatchBuilder::with_capacity(compression, batch_size.min(1 << 20)),
                records: 0,
                completion: Completion::new(name.clone(), partition),
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
        let index =
            batch
                .builder
                .append(record.timestamp, record.key, record.value, record.headers)?;
        batch.records += 1;
        batch.reserved += reserved;
        let batch_full = batch.builder.estimated_size() >= batch_size;
        if batch_full {
            batch.closed = true;
        }
        let appended = Appended {
            completion: track.then(|| batch.completion.clone()),
            index,
            batch_full,
        };
        if let (true, Some(partitions)) = (batch_full, sticky) {
            self.partitioner
                .batch_full(&mut topic.sticky, partition, partitions);
        }
        Ok(appended)
    }
}

fn queue_of(topic: &mut TopicQueues, partition: i32) -> &mut PartitionQueue {
    queue_of_in(&mut topic.queues, partition)
}

fn queue_of_in(queues: &mut Vec<PartitionQueue>, partition: i32) -> &mut PartitionQueue {
    let index = partition.max(0) as usize;
    if queues.len() <= index {
        queues.resize_with(index + 1, PartitionQueue::default);
    }
    &mut queues[index]
}
