//! The fetcher task: keeps one Fetch in flight per broker for the partitions it leads that
//! have room in the prefetch buffer, resolves start offsets with ListOffsets, refreshes
//! metadata when leaders are unknown or moved, and hands record sets to the consumer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
use super::drain::scan;
use super::state::{Chunk, FetchState, Shared, State};
use crate::backoff::Backoff;
use crate::cluster::Cluster;
use crate::error::{Error, KafkaCode, Result};
use crate::list_offsets::{self, ListedOffset, OffsetSpec};
use crate::topic_partition::TopicPartition;

/// Fetch versions: v4 is the oldest Kafka 4 serves, v12 the last that names topics (v13+
/// uses topic ids).
const FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 4..=12;

/// A partition as it went out in a fetch request.
struct Sent {
    tp: TopicPartition,
    epoch: u64,
    offset: i64,
}

enum Done {
    Fetch {
        broker: i32,
        reserved: usize,
        sent: Vec<Sent>,
        result: Result<FetchResponse>,
    },
    Reset {
        sent: Vec<(TopicPartition, u64, OffsetSpec)>,
        result: HashMap<TopicPartition, Result<ListedOffset>>,
    },
    Metadata {
        topics: Vec<String>,
        result: Result<()>,
    },
}

pub(crate) struct Fetcher {
    cluster: Arc<Cluster>,
    shared: Arc<Shared>,
    config: ConsumerConfig,
    tasks: FuturesUnordered<BoxFuture<'static, Done>>,
    /// Brokers with a fetch in flight.
    busy: HashSet<i32>,
    /// Brokers to leave alone until the instant (after a failed request).
    broker_backoff: HashMap<i32, (Instant, u32)>,
    /// Bytes the in-flight fetches may bring.
    reserved: usize,
    resetting: HashSet<TopicPartition>,
    metadata_in_flight: bool,
    metadata_backoff: Option<(Instant, u32)>,
    /// Fetch requests sent so far, to rotate the partition order.
    fetches_sent: usize,
}

impl Fetcher {
    pub(crate) fn new(cluster: Arc<Cluster>, shared: &Arc<Shared>, config: ConsumerConfig) -> Self {
        Fetcher {
            cluster,
            shared: shared.clone(),
            config,
            tasks: FuturesUnordered::new(),
            busy: HashSet::new(),
            broker_backoff: HashMap::new(),
            reserved: 0,
            resetting: HashSet::new(),
            metadata_in_flight: false,
            metadata_backoff: None,
            fetches_sent: 0,
        }
    }

    /// Runs until the consumer aborts it (on drop).
    pub(crate) async fn run(mut self) {
        let shared = self.shared.clone();
        loop {
            let wake_at = self.plan(&shared);
            let wake = shared.fetcher_wake.notified();
            let sleep = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(done) = self.tasks.next(), if !self.tasks.is_empty() => self.handle(done),
                () = wake => {}
                () = sleep => {}
            }
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        Backoff::new(self.config.retry_backoff, self.config.retry_backoff_max).delay_after(failures)
    }

    /// Starts whatever can start now; returns when to look again if something is waiting for a
    /// backoff to end.
    fn plan(&mut self, shared: &Shared) -> Option<Instant> {
        let now = Instant::now();
        let mut wake_at: Option<Instant> = None;
        let mut later = |at: Instant| wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
        let mut fetches: BTreeMap<i32, Vec<(TopicPartition, u64, i64, i32)>> = BTreeMap::new();
        let mut resets = Vec::new();
        let mut need_metadata: Vec<String> = Vec::new();
        let budget;
        {
            let state = shared.lock();
            budget = self
                .config
                .max_buffered_bytes
                .saturating_sub(state.buffered_bytes)
                .saturating_sub(self.reserved);
            let partition_room = self.config.max_partition_fetch_bytes as usize;
            for (tp, p) in &state.partitions {
                if !p.started {
                    continue;
                }
                if let Some(at) = p.retry_at.filter(|&at| at > now) {
                    later(at);
                    continue;
                }
                let leader = self.cluster.leader_and_epoch(&tp.topic, tp.partition);
                match p.fetch {
                    FetchState::Stopped => {}
                    FetchState::Reset(spec) => {
                        if self.resetting.contains(tp) {
                            continue;
                        }
                        // list_offsets looks up leaders itself.
                        resets.push((tp.clone(), p.epoch, spec));
                    }
                    FetchState::At(offset) => {
                        if p.paused || p.buffered >= partition_room || budget == 0 {
                            continue;
                        }
                        let Some((leader, leader_epoch)) = leader else {
                            need_metadata.push(tp.topic.clone());
                            continue;
                        };
                        if self.busy.contains(&leader) {
                            continue;
                        }
                        if let Some(&(at, _)) = self.broker_backoff.get(&leader) {
                            if at > now {
                                later(at);
                                continue;
                            }
                        }
                        fetches.entry(leader).or_default().push((
                            tp.clone(),
                            p.epoch,
                            offset,
                            leader_epoch,
                        ));
                    }
                }
            }
        }
        if !need_metadata.is_empty() && !self.metadata_in_flight {
            match self.metadata_backoff.filter(|&(at, _)| at > now) {
                Some((at, _)) => later(at),
                None => {
                    need_metadata.sort();
                    need_metadata.dedup();
                    self.start_metadata(need_metadata);
                }
            }
        }
        if !resets.is_empty() {
            self.start_reset(resets);
        }
        let mut budget = budget;
        for (broker, partitions) in fetches {
            if budget == 0 {
                break;
            }
            budget -= self.start_fetch(broker, partitions, budget);
        }
        wake_at
    }

    fn start_metadata(&mut self, topics: Vec<String>) {
        self.metadata_in_flight = true;
        let cluster = self.cluster.clone();
        self.tasks.push(Box::pin(async move {
            let result = cluster.refresh_metadata(&topics, false).await;
            Done::Metadata { topics, result }
        }));
    }

    fn start_reset(&mut self, sent: Vec<(TopicPartition, u64, OffsetSpec)>) {
        for (tp, _, _) in &sent {
            self.resetting.insert(tp.clone());
        }
        let cluster = self.cluster.clone();
        let isolation = self.config.isolation_level.code();
        self.tasks.push(Box::pin(async move {
            let requests = sent
                .iter()
                .map(|(tp, _, spec)| (tp.clone(), *spec))
                .collect();
            let result = list_offsets::list_offsets(&cluster, isolation, requests, None).await;
            Done::Reset { sent, result }
        }));
    }

    /// Sends one fetch; returns the bytes reserved for its response.
    fn start_fetch(
        &mut self,
        broker: i32,
        mut partitions: Vec<(TopicPartition, u64, i64, i32)>,
        budget: usize,
    ) -> usize {
        // Rotate so that no partition is always last when a response fills up.
        self.fetches_sent = self.fetches_sent.wrapping_add(1);
        let len = partitions.len().max(1);
        partitions.rotate_left(self.fetches_sent % len);
        let max_bytes = budget.min(self.config.fetch_max_bytes as usize);
        let partition_max = max_bytes.min(self.config.max_partition_fetch_bytes as usize);
        let mut topics: Vec<FetchTopic> = Vec::new();
        let mut sent = Vec::with_capacity(partitions.len());
        for (tp, epoch, offset, leader_epoch) in partitions {
            let partition = FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(leader_epoch)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(partition_max as i32);
            match topics.last_mut().filter(|t| t.topic.0.as_str() == tp.topic) {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                        .with_partitions(vec![partition]),
                ),
            }
            sent.push(Sent { tp, epoch, offset });
        }
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(self.config.fetch_max_wait.as_millis() as i32)
            .with_min_bytes(self.config.fetch_min_bytes)
            .with_max_bytes(max_bytes as i32)
            .with_isolation_level(self.config.isolation_level.code())
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics);
        tracing::trace!(broker, partitions = sent.len(), max_bytes, "fetch");
        self.busy.insert(broker);
        self.reserved += max_bytes;
        let cluster = self.cluster.clone();
        self.tasks.push(Box::pin(async move {
            let result = cluster
                .request_to(broker, ApiKey::Fetch, FETCH_VERSIONS, |_| request)
                .await;
            Done::Fetch {
                broker,
                reserved: max_bytes,
                sent,
                result,
            }
        }));
        max_bytes
    }

    fn handle(&mut self, done: Done) {
        let shared = self.shared.clone();
        match done {
            Done::Metadata { topics, result } => {
                self.metadata_in_flight = false;
                let failures = self.metadata_backoff.map_or(0, |(_, f)| f);
                let missing: Vec<&String> = topics
                    .iter()
                    .filter(|t| self.cluster.topic(t).is_none())
                    .collect();
                if result.is_err() || !missing.is_empty() {
                    if let Err(e) = &result {
                        tracing::warn!(error = %e, "consumer metadata refresh failed");
                    } else if failures % 10 == 9 {
                        tracing::warn!(topics = ?missing, "assigned topics are not in the cluster metadata");
                    }
                    self.metadata_backoff =
                        Some((Instant::now() + self.backoff(failures), failures + 1));
                } else {
                    self.metadata_backoff = None;
                }
            }
            Done::Reset { sent, mut result } => {
                let mut state = shared.lock();
                for (tp, epoch, spec) in sent {
                    self.resetting.remove(&tp);
                    let outcome = result.remove(&tp);
                    self.apply_reset(&mut state, &tp, epoch, spec, outcome);
                }
                drop(state);
                shared.data_ready.notify_one();
            }
            Done::Fetch {
                broker,
                reserved,
                sent,
                result,
            } => {
                self.busy.remove(&broker);
                self.reserved -= reserved;
                let response = result.and_then(|r| {
                    crate::error::check_code(r.error_code, || format!("Fetch from broker {broker}"))
                        .map(|()| r)
                });
                match response {
                    Ok(response) => {
                        self.broker_backoff.remove(&broker);
                        let delivered = self.apply_fetch(&shared, sent, response);
                        if delivered {
                            shared.data_ready.notify_one();
                        }
                    }
                    Err(e) => {
                        let failures = self.broker_backoff.get(&broker).map_or(0, |&(_, f)| f);
                        tracing::warn!(broker, error = %e, failures, "fetch failed, retrying after backoff");
                        // The leader may have moved: look again before the next fetch.
                        for s in &sent {
                            self.cluster.invalidate(&s.tp.topic);
                        }
                        let at = Instant::now() + self.backoff(failures);
                        self.broker_backoff.insert(broker, (at, failures + 1));
                    }
                }
            }
        }
    }

    fn apply_reset(
        &self,
        state: &mut State,
        tp: &TopicPartition,
        epoch: u64,
        spec: OffsetSpec,
        outcome: Option<Result<ListedOffset>>,
    ) {
        let backoff = |f| self.backoff(f);
        let Some(p) = state.partitions.get_mut(tp).filter(|p| p.epoch == epoch) else {
            return;
        };
        match outcome {
            Some(Ok(listed)) if listed.offset >= 0 => {
                tracing::debug!(%tp, ?spec, offset = listed.offset, "start offset resolved");
                p.fetch = FetchState::At(listed.offset);
                p.position = Some(listed.offset);
                p.failures = 0;
                p.retry_at = None;
            }
            // No record at or after the timestamp: continue from the end, as Java's seek does.
            Some(Ok(_)) => p.fetch = FetchState::Reset(OffsetSpec::Latest),
            // A partition that does not exist yet may be created: keep looking, as Java does.
            Some(Err(e)) if e.is_retriable() || exhausted_retriable(&e) => {
                if p.failures % 10 == 9 {
                    tracing::warn!(%tp, error = %e, "still cannot find the start offset");
                } else {
                    tracing::debug!(%tp, error = %e, "offset lookup failed, retrying");
                }
                p.retry_at = Some(Instant::now() + backoff(p.failures));
                p.failures += 1;
            }
            Some(Err(e)) => {
                p.fetch = FetchState::Stopped;
                state.errors.push_back(e);
            }
            None => {
                p.retry_at = Some(Instant::now() + backoff(p.failures));
                p.failures += 1;
            }
        }
    }

    /// Applies a fetch response; returns whether the consumer has something new.
    fn apply_fetch(&self, shared: &Shared, sent: Vec<Sent>, response: FetchResponse) -> bool {
        let mut sent: HashMap<TopicPartition, Sent> =
            sent.into_iter().map(|s| (s.tp.clone(), s)).collect();
        let read_committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let mut delivered = false;
        let mut state = shared.lock();
        for topic in response.responses {
            let name = topic.topic.0.to_string();
            for data in topic.partitions {
                let tp = TopicPartition::new(name.clone(), data.partition_index);
                let Some(s) = sent.remove(&tp) else { continue };
                let Some(p) = state.partitions.get_mut(&tp) else {
                    continue;
                };
                if p.epoch != s.epoch || p.fetch != FetchState::At(s.offset) {
                    continue; // sought or reset meanwhile: stale
                }
                let code = KafkaCode::try_from_code(data.error_code);
                if code.is_none() || data.high_watermark >= 0 {
                    p.high_watermark = Some(data.high_watermark)
                        .filter(|&h| h >= 0)
                        .or(p.high_watermark);
                    p.last_stable_offset = Some(data.last_stable_offset)
                        .filter(|&o| o >= 0)
                        .or(p.last_stable_offset);
                    p.log_start_offset = Some(data.log_start_offset)
                        .filter(|&o| o >= 0)
                        .or(p.log_start_offset);
                }
                match code {
                    None => {
                        p.failures = 0;
                        let records = data.records.unwrap_or_default();
                        if records.is_empty() {
                            continue;
                        }
                        let scan = scan(&records);
                        let next_offset = scan.next_offset.filter(|&n| n > s.offset);
                        let error_after = scan.broken;
                        if error_after.is_some() {
                            // Nothing after the broken frame can be read: fetch no further
                            // until the consumer reaches it (it refetches once, then applies
                            // its corrupt batch policy).
                            p.fetch = FetchState::Stopped;
                        } else if let Some(next) = next_offset {
                            p.fetch = FetchState::At(next);
                        }
                        if next_offset.is_none() && error_after.is_none() {
                            continue; // only a partial batch: fetch again (it comes first next time)
                        }
                        let aborted = read_committed.then(|| {
                            data.aborted_transactions
                                .unwrap_or_default()
                                .into_iter()
                                .map(|a| (a.producer_id.0, a.first_offset))
                                .collect()
                        });
                        let chunk = Chunk {
                            topic: p.topic.clone(),
                            partition: tp.partition,
                            epoch: p.epoch,
                            fetch_offset: s.offset,
                            records: records.slice(..scan.complete_len),
                            next_offset: next_offset.unwrap_or(s.offset),
                            aborted,
                            error_after,
                        };
                        let size = chunk.size();
                        p.buffered += size;
                        p.queue.push_back(chunk);
                        state.buffered_bytes += size;
                        delivered = true;
                    }
                    Some(KafkaCode::OffsetOutOfRange) => {
                        let spec = match self.config.auto_offset_reset {
                            AutoOffsetReset::Earliest => Some(OffsetSpec::Earliest),
                            AutoOffsetReset::Latest => Some(OffsetSpec::Latest),
                            AutoOffsetReset::None => None,
                        };
                        tracing::info!(%tp, offset = s.offset, reset = ?spec, "fetch offset out of range");
                        match spec {
                            Some(spec) => {
                                state.restart(&tp, FetchState::Reset(spec));
                            }
                            None => {
                                p.fetch = FetchState::Stopped;
                                state.errors.push_back(Error::OffsetOutOfRange {
                                    topic: name.clone(),
                                    partition: tp.partition,
                                    offset: s.offset,
                                });
                                delivered = true;
                            }
                        }
                    }
                    Some(code) if code.is_retriable() || refreshes_metadata(code) => {
                        tracing::debug!(%tp, %code, "fetch partition error, refreshing metadata");
                        self.cluster.invalidate(&tp.topic);
                        p.retry_at = Some(Instant::now() + self.backoff(p.failures));
                        p.failures += 1;
                    }
                    Some(code) => {
                        tracing::warn!(%tp, %code, "fetch failed for good; partition stopped until seek");
                        p.fetch = FetchState::Stopped;
                        state.errors.push_back(Error::Broker {
                            code,
                            context: format!("Fetch of {tp} at offset {}", s.offset),
                        });
                        delivered = true;
                    }
                }
            }
        }
        delivered
    }
}

fn exhausted_retriable(e: &Error) -> bool {
    matches!(e, Error::RetriesExhausted { last, .. } if last.is_retriable())
}

/// Partition errors that mean our metadata is stale, whatever their retriable flag says.
fn refreshes_metadata(code: KafkaCode) -> bool {
    matches!(
        code,
        KafkaCode::NotLeaderOrFollower
            | KafkaCode::UnknownTopicOrPartition
            | KafkaCode::FencedLeaderEpoch
            | KafkaCode::UnknownLeaderEpoch
            | KafkaCode::LeaderNotAvailable
            | KafkaCode::ReplicaNotAvailable
            | KafkaCode::KafkaStorageError
            | KafkaCode::OffsetNotAvailable
            | KafkaCode::UnknownTopicId
            | KafkaCode::InconsistentTopicId
    )
}
