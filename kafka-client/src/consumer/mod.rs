//! The consumer, in assign mode: the caller says which partitions to read and where to start;
//! a fetcher task prefetches from every partition leader within a byte budget, and records
//! come out of [`Consumer::recv`] or [`Consumer::stream`].
//!
//! Positions (what the caller has been given) and fetching (what is on its way) are kept
//! apart: [`Consumer::seek`], [`Consumer::pause`] and assignment changes take effect at once,
//! and data fetched for an older position is dropped.
//!
//! Limitations: no consumer groups yet (assign mode only), no fetch sessions (every fetch
//! lists its partitions), no follower fetching.

mod config;
mod drain;
mod fetcher;
mod state;

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

pub use self::config::{AutoOffsetReset, ConsumerConfig, CorruptBatchPolicy, IsolationLevel};
use self::drain::{Drain, Unreadable};
use self::state::{FetchState, Shared, State};
use crate::cluster::Cluster;
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::list_offsets::{self, OffsetSpec};
pub use crate::protocol::record::Header;
use crate::topic_partition::TopicPartition;

/// A record read from a partition. Key, value and header bytes share the fetched buffer (no
/// copy); holding a record keeps that buffer alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic name, shared by every record of the partition.
    pub topic: Arc<str>,
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Milliseconds since the epoch (create time or log-append time, as the topic says).
    pub timestamp: i64,
    /// `None` is Kafka's null key.
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers in the order they were written, duplicates kept.
    pub headers: Vec<Header>,
}

impl ConsumerRecord {
    /// The record's topic and partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.as_ref(), self.partition)
    }
}

/// Where to move a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Offset {
    /// The first offset still in the log.
    Earliest,
    /// The end of the log: the next record produced.
    Latest,
    /// This exact offset.
    At(i64),
    /// The first record with a timestamp at or after this many milliseconds since the epoch;
    /// the end of the log if there is none.
    Timestamp(i64),
}

impl Offset {
    fn start(self) -> FetchState {
        match self {
            Offset::Earliest => FetchState::Reset(OffsetSpec::Earliest),
            Offset::Latest => FetchState::Reset(OffsetSpec::Latest),
            Offset::Timestamp(ms) => FetchState::Reset(OffsetSpec::Timestamp(ms)),
            Offset::At(offset) => FetchState::At(offset),
        }
    }
}

/// A consumer of assigned partitions.
///
/// ```no_run
/// # async fn demo() -> kafka_client::Result<()> {
/// use futures::StreamExt;
/// use kafka_client::consumer::{AutoOffsetReset, Consumer, ConsumerConfig, Offset};
/// use kafka_client::{ClientConfig, TopicPartition};
///
/// let config = ConsumerConfig::default().with_auto_offset_reset(AutoOffsetReset::Earliest);
/// let mut consumer = Consumer::new(ClientConfig::new("127.0.0.1:9092")?, config).await?;
/// let tp = TopicPartition::new("clicks", 0);
/// consumer.assign(vec![tp.clone(), TopicPartition::new("clicks", 1)]);
/// consumer.seek(&tp, Offset::Timestamp(1_700_000_000_000)).await?;
///
/// let mut records = consumer.stream().take(10);
/// while let Some(record) = records.next().await {
///     let record = record?;
///     println!("{}/{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
/// }
/// # Ok(()) }
/// ```
pub struct Consumer {
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    shared: Arc<Shared>,
    fetcher: JoinHandle<()>,
    /// The chunk being handed out, if any.
    current: Option<Drain>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("assignment", &self.assignment())
            .field("buffered_bytes", &self.buffered_bytes())
            .finish_non_exhaustive()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.fetcher.abort();
    }
}

impl Consumer {
    /// Connects to the cluster and starts the fetcher task. Nothing is fetched until
    /// partitions are assigned and records are asked for.
    pub async fn new(client: ClientConfig, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        if config.fetch_max_wait >= client.request_timeout {
            return Err(Error::InvalidSetting {
                setting: "ConsumerConfig::fetch_max_wait",
                reason: format!(
                    "{:?} must be below the client's request_timeout ({:?})",
                    config.fetch_max_wait, client.request_timeout
                ),
            });
        }
        let cluster = Cluster::connect(client).await?;
        let shared = Shared::new();
        let fetcher =
            tokio::spawn(fetcher::Fetcher::new(cluster.clone(), &shared, config.clone()).run());
        Ok(Consumer {
            cluster,
            config,
            shared,
            fetcher,
            current: None,
        })
    }

    /// The consumer settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Replaces the assignment. Partitions that stay keep their position and buffered
    /// records; new ones start per [`ConsumerConfig::auto_offset_reset`] (use [`seek`] or
    /// [`incremental_assign`] to start elsewhere). New partitions are fetched from the next
    /// [`recv`](Self::recv) on, as with Java's `poll`: a seek right after assign costs nothing.
    ///
    /// [`seek`]: Consumer::seek
    /// [`incremental_assign`]: Consumer::incremental_assign
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) {
        let keep: std::collections::HashSet<&TopicPartition> = partitions.iter().collect();
        let gone: Vec<TopicPartition> = self
            .assignment()
            .into_iter()
            .filter(|tp| !keep.contains(tp))
            .collect();
        self.incremental_unassign(&gone);
        let existing = self.assignment();
        let new = partitions
            .into_iter()
            .filter(|tp| !existing.contains(tp))
            .map(|tp| (tp, None));
        self.incremental_assign(new.collect());
    }

    /// Adds partitions to the assignment, each at the given offset or, with `None`, per
    /// [`ConsumerConfig::auto_offset_reset`]. An already assigned partition is restarted
    /// there. Symbolic offsets are resolved by the fetcher in the background.
    pub fn incremental_assign(&mut self, partitions: Vec<(TopicPartition, Option<Offset>)>) {
        let mut state = self.shared.lock();
        for (tp, offset) in partitions {
            if self.current.as_ref().is_some_and(|d| d.tp == tp) {
                self.current = None;
            }
            let start = match offset {
                Some(offset) => offset.start(),
                None => match self.config.auto_offset_reset {
                    AutoOffsetReset::Earliest => FetchState::Reset(OffsetSpec::Earliest),
                    AutoOffsetReset::Latest => FetchState::Reset(OffsetSpec::Latest),
                    AutoOffsetReset::None => {
                        state.errors.push_back(Error::NoPosition {
                            topic: tp.topic.clone(),
                            partition: tp.partition,
                        });
                        FetchState::Stopped
                    }
                },
            };
            tracing::debug!(%tp, ?start, "assigned");
            state.add(tp, start);
        }
        drop(state);
        self.wake_both();
    }

    /// Removes partitions from the assignment, dropping their buffered records.
    pub fn incremental_unassign<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) {
        let mut state = self.shared.lock();
        for tp in partitions {
            if self.current.as_ref().is_some_and(|d| &d.tp == tp) {
                self.current = None;
            }
            state.remove(tp);
        }
        drop(state);
        self.shared.fetcher_wake.notify_one();
    }

    /// The assigned partitions, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let mut tps: Vec<TopicPartition> = self.shared.lock().partitions.keys().cloned().collect();
        tps.sort();
        tps
    }

    /// Moves a partition's position. `Earliest`, `Latest` and `Timestamp` are looked up at the
    /// partition leader (ListOffsets) before this returns, so [`position`](Self::position)
    /// reflects the move at once. Buffered records of the partition are dropped; a stopped
    /// partition (after an out-of-range or fatal fetch error, or at a corrupt batch) fetches
    /// again.
    pub async fn seek(&mut self, tp: &TopicPartition, offset: Offset) -> Result<()> {
        self.check_assigned(tp)?;
        let target = match offset {
            Offset::At(offset) if offset < 0 => {
                return Err(Error::NegativeOffset {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset,
                });
            }
            Offset::At(offset) => offset,
            Offset::Earliest => self.lookup(tp, OffsetSpec::Earliest).await?,
            Offset::Latest => self.lookup(tp, OffsetSpec::Latest).await?,
            Offset::Timestamp(ms) => match self.lookup(tp, OffsetSpec::Timestamp(ms)).await? {
                -1 => self.lookup(tp, OffsetSpec::Latest).await?,
                offset => offset,
            },
        };
        if self.current.as_ref().is_some_and(|d| &d.tp == tp) {
            self.current = None;
        }
        if !self.shared.lock().restart(tp, FetchState::At(target)) {
            return Err(not_assigned(tp));
        }
        tracing::debug!(%tp, ?offset, target, "seek");
        self.shared.fetcher_wake.notify_one();
        Ok(())
    }

    async fn lookup(&self, tp: &TopicPartition, spec: OffsetSpec) -> Result<i64> {
        let isolation = self.config.isolation_level.code();
        let mut answers =
            list_offsets::list_offsets(&self.cluster, isolation, vec![(tp.clone(), spec)], None)
                .await;
        match answers.remove(tp) {
            Some(result) => Ok(result?.offset),
            None => Err(Error::UnknownPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
            }),
        }
    }

    fn check_assigned(&self, tp: &TopicPartition) -> Result<()> {
        if self.shared.lock().partitions.contains_key(tp) {
            Ok(())
        } else {
            Err(not_assigned(tp))
        }
    }

    /// The offset of the next record [`recv`](Self::recv) returns for the partition; `None`
    /// if it is not assigned or its start offset is still being looked up.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        if let Some(d) = self.current.as_ref().filter(|d| &d.tp == tp) {
            return Some(d.position);
        }
        self.shared.lock().partitions.get(tp)?.position
    }

    /// The partition's high watermark (offset after the last replicated record) from the last
    /// fetch response, `None` before the first. `position == high_watermark` means caught up.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.lock().partitions.get(tp)?.high_watermark
    }

    /// The partition's last stable offset (read_committed's end) from the last fetch.
    pub fn last_stable_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.lock().partitions.get(tp)?.last_stable_offset
    }

    /// The partition's log start offset from the last fetch.
    pub fn log_start_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.lock().partitions.get(tp)?.log_start_offset
    }

    /// Stops fetching and returning records of these partitions until [`resume`](Self::resume).
    /// Their buffered records are dropped; the position is kept.
    pub fn pause<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Result<()> {
        let partitions: Vec<&TopicPartition> = partitions.into_iter().collect();
        let mut state = self.shared.lock();
        all_assigned(&state, &partitions)?;
        for tp in partitions {
            // The set being read is released (its bytes no longer count) at the position reached.
            if let Some(d) = self.current.take_if(|d| &d.tp == tp) {
                state.consumed(tp, d.epoch, d.size, d.position);
            }
            let position = state.partitions.get(tp).and_then(|p| p.position);
            let (fetch, paused) = match state.partitions.get(tp) {
                Some(p) => (p.fetch, p.paused),
                None => continue,
            };
            if paused {
                continue;
            }
            // Refetch from the position on resume (unless a lookup or an error is pending).
            if let (FetchState::At(_), Some(position)) = (fetch, position) {
                state.restart(tp, FetchState::At(position));
            }
            if let Some(p) = state.partitions.get_mut(tp) {
                p.paused = true;
            }
        }
        Ok(())
    }

    /// Fetches and returns records of paused partitions again.
    pub fn resume<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Result<()> {
        let partitions: Vec<&TopicPartition> = partitions.into_iter().collect();
        let mut state = self.shared.lock();
        all_assigned(&state, &partitions)?;
        for tp in partitions {
            if let Some(p) = state.partitions.get_mut(tp) {
                p.paused = false;
            }
        }
        drop(state);
        self.wake_both();
        Ok(())
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        let state = self.shared.lock();
        let mut tps: Vec<TopicPartition> = state
            .partitions
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect();
        tps.sort();
        tps
    }

    /// Bytes of fetched records held by the consumer (buffered plus the set being read): stays
    /// within [`ConsumerConfig::max_buffered_bytes`] plus at most one response.
    pub fn buffered_bytes(&self) -> usize {
        self.shared.lock().buffered_bytes
    }

    /// The next record of any assigned, unpaused partition, waiting for one if needed.
    ///
    /// Errors are per partition: a batch that stays unreadable after one refetch
    /// ([`Error::CorruptRecords`]; the partition stays before it and the error comes back on
    /// every call, ahead of other partitions' records, until it is sought, paused or
    /// unassigned; see
    /// [`ConsumerConfig::corrupt_batch_policy`] to skip such batches instead), an
    /// out-of-range position without reset policy ([`Error::OffsetOutOfRange`], partition
    /// stopped until seek), or a fatal fetch error ([`Error::Broker`], partition stopped
    /// until seek). Network trouble is retried internally and never surfaces here. With
    /// nothing assigned, waits forever.
    ///
    /// Cancel-safe: dropping the future (in `select!`, on timeout) loses no record.
    pub async fn recv(&mut self) -> Result<ConsumerRecord> {
        loop {
            if self.fetcher.is_finished() {
                return Err(Error::Closed);
            }
            if let Some(drain) = &mut self.current {
                match drain.next() {
                    Some(Ok(record)) => return Ok(record),
                    Some(Err(unreadable)) => self.unreadable(unreadable),
                    None => self.finish_current(),
                }
            }
            let ready = self.shared.data_ready.notified();
            {
                let mut state = self.shared.lock();
                if state.start_fetching() {
                    self.shared.fetcher_wake.notify_one();
                }
                if let Some(e) = state.errors.pop_front() {
                    return Err(e);
                }
                if let Some(e) = state.corrupt_error() {
                    return Err(e);
                }
                if let Some(chunk) = state.next_chunk() {
                    self.current = Some(Drain::new(chunk));
                    continue;
                }
            }
            ready.await;
        }
    }

    /// The next record of the chunk being drained, if it has one; `None` when [`recv`](Self::recv)
    /// has more to do (a next chunk, an error, waiting). The end of the chunk or a batch it
    /// cannot read is handled here as `recv` would, so `recv` goes on from there.
    pub(crate) fn next_buffered(&mut self) -> Option<ConsumerRecord> {
        if self.fetcher.is_finished() {
            return None;
        }
        match self.current.as_mut()?.next() {
            Some(Ok(record)) => Some(record),
            Some(Err(unreadable)) => {
                self.unreadable(unreadable);
                None
            }
            None => {
                self.finish_current();
                None
            }
        }
    }

    /// Releases the drained chunk and records the position it reached.
    fn finish_current(&mut self) {
        if let Some(d) = self.current.take() {
            self.shared
                .lock()
                .consumed(&d.tp, d.epoch, d.size, d.position);
            self.shared.fetcher_wake.notify_one();
        }
    }

    /// The current chunk stopped at a batch it cannot read: refetch it once; if it was
    /// refetched already, apply the corrupt batch policy. The position never moves past the
    /// batch unless the policy is `Skip`.
    fn unreadable(&mut self, bad: Unreadable) {
        let Some(d) = self.current.take() else { return };
        let tp = d.tp.clone();
        let mut state = self.shared.lock();
        state.consumed(&tp, d.epoch, d.size, d.position);
        let Some(p) = state.partitions.get(&tp).filter(|p| p.epoch == d.epoch) else {
            return; // sought or unassigned meanwhile
        };
        let position = d.position;
        let offset = bad.base_offset;
        if p.refetched != Some(offset) {
            // The damage may have happened in transit or in a buffer: read it again before
            // believing it.
            tracing::info!(%tp, offset, position, error = %bad.source, "unreadable record batch; refetching it once");
            state.restart(&tp, FetchState::At(position));
            if let Some(p) = state.partitions.get_mut(&tp) {
                p.refetched = Some(offset);
            }
        } else {
            match (self.config.corrupt_batch_policy, bad.end) {
                (CorruptBatchPolicy::Skip, Some(end)) => {
                    tracing::warn!(
                        %tp, offset, first_skipped = position, last_skipped = end - 1,
                        error = %bad.source,
                        "skipping a corrupt record batch (corrupt_batch_policy Skip): offsets {position}..={} of {tp} are lost to this consumer",
                        end - 1
                    );
                    state.corrupt_batches_skipped += 1;
                    state.restart(&tp, FetchState::At(end));
                }
                (policy, _) => {
                    tracing::error!(%tp, offset, position, ?policy, error = %bad.source, "record batch still unreadable after a refetch; the partition stops before it");
                    state.restart(&tp, FetchState::Stopped);
                    if let Some(p) = state.partitions.get_mut(&tp) {
                        p.corrupt = Some((offset, Arc::new(bad.source)));
                    }
                }
            }
        }
        drop(state);
        self.shared.fetcher_wake.notify_one();
    }

    /// Record batches skipped as unreadable under [`CorruptBatchPolicy::Skip`] since the
    /// consumer was created (a counter for metrics; each skip is also logged with its offsets).
    pub fn corrupt_batches_skipped(&self) -> u64 {
        self.shared.lock().corrupt_batches_skipped
    }

    /// The records as a stream borrowing the consumer; see [`recv`](Self::recv). Never ends.
    pub fn stream(&mut self) -> impl Stream<Item = Result<ConsumerRecord>> + Unpin + Send + '_ {
        futures::stream::unfold(self, |consumer| async move {
            let item = consumer.recv().await;
            Some((item, consumer))
        })
        .boxed()
    }

    /// The records as a stream owning the consumer. Never ends.
    pub fn into_stream(
        self,
    ) -> impl Stream<Item = Result<ConsumerRecord>> + Unpin + Send + 'static {
        futures::stream::unfold(self, |mut consumer| async move {
            let item = consumer.recv().await;
            Some((item, consumer))
        })
        .boxed()
    }

    fn wake_both(&self) {
        self.shared.fetcher_wake.notify_one();
        self.shared.data_ready.notify_one();
    }
}

/// Checked before pause or resume changes anything, so a list with one unassigned partition
/// changes none.
fn all_assigned(state: &State, partitions: &[&TopicPartition]) -> Result<()> {
    match partitions
        .iter()
        .find(|tp| !state.partitions.contains_key(**tp))
    {
        Some(tp) => Err(not_assigned(tp)),
        None => Ok(()),
    }
}

fn not_assigned(tp: &TopicPartition) -> Error {
    Error::NotAssigned {
        topic: tp.topic.clone(),
        partition: tp.partition,
    }
}
