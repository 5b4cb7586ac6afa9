//! [`GroupConsumer`]: a [`Consumer`] whose partitions come from a consumer group.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

use super::assignor::{Assignment, RebalanceProtocol, Subscription};
use super::committer::Committer;
use super::config::GroupConfig;
use super::coordinator::Coordinator;
use super::listener::{NoopListener, RebalanceContext, RebalanceListener};
use super::membership::{self, GroupShared, Joined, Phase, Synced};
use super::offsets;
use super::protocol;
use crate::cluster::Cluster;
use crate::config::ClientConfig;
use crate::consumer::{Consumer, ConsumerConfig, ConsumerRecord, Offset};
use crate::error::{Error, KafkaCode, Result};
use crate::topic_partition::TopicPartition;

#[derive(Debug, Clone, Copy)]
enum Callback {
    Assigned,
    Revoked,
    Lost,
}

/// A consumer-group member: subscribes to topics, gets partitions from the group, and
/// commits offsets to it.
///
/// Group work happens inside [`recv`](Self::recv), as in the Java client's `poll`: joining,
/// rebalance callbacks, initialising positions from committed offsets. Heartbeats are sent
/// by a background task, so a slow application keeps its membership until it exceeds
/// [`GroupConfig::max_poll_interval`] without calling `recv`.
///
/// ```no_run
/// # async fn demo() -> kafka_client::Result<()> {
/// use kafka_client::consumer::{AutoOffsetReset, ConsumerConfig};
/// use kafka_client::group::{GroupConfig, GroupConsumer};
/// use kafka_client::ClientConfig;
///
/// let mut consumer = GroupConsumer::new(
///     ClientConfig::new("127.0.0.1:9092")?,
///     ConsumerConfig::default().with_auto_offset_reset(AutoOffsetReset::Earliest),
///     GroupConfig::new("billing").with_auto_commit(false),
/// )
/// .await?;
/// consumer.subscribe(["purchases"]);
/// for _ in 0..100 {
///     let record = consumer.recv().await?;
///     println!("{}/{}@{}", record.topic, record.partition, record.offset);
/// }
/// consumer.commit().await?;
/// consumer.close().await?;
/// # Ok(()) }
/// ```
pub struct GroupConsumer {
    consumer: Consumer,
    shared: Arc<GroupShared>,
    /// Only ever used through `get_mut`; the mutex makes the consumer `Sync` without asking
    /// listeners to be.
    listener: std::sync::Mutex<Box<dyn RebalanceListener>>,
    committer: Committer,
    committer_task: Option<JoinHandle<()>>,
    heartbeat_task: JoinHandle<()>,
    protocol: RebalanceProtocol,
    /// Partitions this member owns (assigned to the consumer).
    owned: BTreeSet<TopicPartition>,
    next_auto_commit: Instant,
    auto_committed: HashMap<TopicPartition, i64>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.state();
        f.debug_struct("GroupConsumer")
            .field("group", &self.shared.config.group_id)
            .field("member_id", &st.member_id)
            .field("generation", &st.generation)
            .field("owned", &self.owned)
            .finish_non_exhaustive()
    }
}

impl Drop for GroupConsumer {
    /// Dropping without [`close`](GroupConsumer::close) stops heartbeats without leaving:
    /// the coordinator removes the member after the session timeout.
    fn drop(&mut self) {
        self.heartbeat_task.abort();
        if let Some(task) = self.committer_task.take() {
            task.abort();
        }
    }
}

impl GroupConsumer {
    /// Connects (a consumer and a coordinator connection) and starts the heartbeat task.
    /// Nothing is joined until [`subscribe`](Self::subscribe) and the first
    /// [`recv`](Self::recv).
    pub async fn new(
        client: ClientConfig,
        consumer: ConsumerConfig,
        group: GroupConfig,
    ) -> Result<GroupConsumer> {
        group.validate()?;
        let protocol = if group.assignors.iter().all(|a| a.supports_cooperative()) {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        };
        let request_timeout = client.request_timeout;
        // JoinGroup may be held by the coordinator for a whole rebalance timeout.
        let mut coordination = client.clone();
        coordination.request_timeout =
            request_timeout.max(group.effective_rebalance_timeout() + Duration::from_secs(5));
        let consumer = Consumer::new(client, consumer).await?;
        let cluster = Cluster::connect(coordination).await?;
        let coordinator = Coordinator::new(cluster, group.group_id.clone());
        let next_auto_commit = Instant::now() + group.auto_commit_interval;
        let shared = Arc::new(GroupShared::new(group, coordinator, request_timeout));
        let heartbeat_task = tokio::spawn(membership::heartbeat_task(shared.clone()));
        let (committer, committer_task) = Committer::start(shared.clone());
        Ok(GroupConsumer {
            consumer,
            shared,
            listener: std::sync::Mutex::new(Box::new(NoopListener)),
            committer,
            committer_task: Some(committer_task),
            heartbeat_task,
            protocol,
            owned: BTreeSet::new(),
            next_auto_commit,
            auto_committed: HashMap::new(),
        })
    }

    /// Sets the rebalance callbacks.
    pub fn set_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = std::sync::Mutex::new(Box::new(listener));
    }

    /// Subscribes to these topics (replacing the previous subscription); takes effect in the
    /// next [`recv`](Self::recv) through a rebalance.
    pub fn subscribe<I, S>(&mut self, topics: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        topics.sort();
        topics.dedup();
        let mut st = self.shared.state();
        if st.topics != topics {
            tracing::info!(group = %self.shared.group(), ?topics, "subscribed");
            st.topics = topics;
            st.rejoin = true;
        }
    }

    /// The subscribed topics.
    pub fn subscription(&self) -> Vec<String> {
        self.shared.state().topics.clone()
    }

    /// The partitions this member owns, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    /// This member's id ("" before the first join).
    pub fn member_id(&self) -> String {
        self.shared.state().member_id.clone()
    }

    /// The generation of the current assignment (-1 when not a member).
    pub fn generation(&self) -> i32 {
        self.shared.state().generation
    }

    /// This member's group, generation and member id, for
    /// [`Producer::send_offsets_to_transaction`](crate::producer::Producer::send_offsets_to_transaction):
    /// the coordinator refuses the offsets if the group has moved to another generation since
    /// (KIP-447). Take it right before sending the offsets.
    pub fn group_metadata(&self) -> super::ConsumerGroupMetadata {
        self.shared.group_metadata()
    }

    /// Whether this member leads its generation (it ran the assignor).
    pub fn is_leader(&self) -> bool {
        self.shared.state().leader
    }

    /// The rebalance protocol this member follows.
    pub fn rebalance_protocol(&self) -> RebalanceProtocol {
        self.protocol
    }

    /// The underlying consumer (positions, watermarks, buffered bytes).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// Record batches skipped as unreadable under
    /// [`CorruptBatchPolicy::Skip`](crate::consumer::CorruptBatchPolicy::Skip) (see
    /// [`Consumer::corrupt_batches_skipped`]).
    pub fn corrupt_batches_skipped(&self) -> u64 {
        self.consumer.corrupt_batches_skipped()
    }

    /// The next offset [`recv`](Self::recv) returns for a partition.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.consumer.position(tp)
    }

    /// Moves an owned partition's position (see [`Consumer::seek`]).
    pub async fn seek(&mut self, tp: &TopicPartition, offset: Offset) -> Result<()> {
        self.consumer.seek(tp, offset).await
    }

    /// Pauses owned partitions (see [`Consumer::pause`]).
    pub fn pause<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Result<()> {
        self.consumer.pause(partitions)
    }

    /// Resumes paused partitions.
    pub fn resume<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Result<()> {
        self.consumer.resume(partitions)
    }

    /// The next record of an owned partition, doing whatever group work is due first
    /// (joining, rebalance callbacks, auto-commit). Errors of the group (fenced static
    /// member, an unusable configuration) and of the consumer (see [`Consumer::recv`]) come
    /// back here; the consumer stays usable after a per-partition error.
    ///
    /// Cancel-safe as long as no rebalance callback is interrupted: prefer not to cancel
    /// `recv` during a rebalance.
    pub async fn recv(&mut self) -> Result<ConsumerRecord> {
        loop {
            self.group_work().await?;
            if let Some(record) = self.poll_record().await? {
                return Ok(record);
            }
        }
    }

    /// Does the group work that is due (joining, rebalance callbacks), if any; returns at
    /// once otherwise. With [`poll_record`](Self::poll_record), for callers that wait on other
    /// things too: run this outside any `select!`, since cancelling a rebalance midway
    /// leaves its callbacks half done.
    pub async fn group_work(&mut self) -> Result<()> {
        let shared = self.shared.clone();
        let _polling = shared.poll.enter();
        while self.group_work_pending() {
            self.rebalance().await?;
        }
        Ok(())
    }

    /// The next record already fetched of the chunk being read, after
    /// [`poll_record`](Self::poll_record) returned one: for taking a run of records in one go,
    /// with no await in between. It waits for nothing, and neither looks for group work nor
    /// moves the poll clock (the run counts as returned by the `poll_record` that started it,
    /// so take runs of microseconds, not slow work between records). `None` when the chunk
    /// is done (`poll_record` goes on with the next one, or reports a batch that cannot be
    /// read).
    pub fn next_in_run(&mut self) -> Option<ConsumerRecord> {
        self.consumer.next_buffered()
    }

    /// The next record of an owned partition, or `None` as soon as group work is due (call
    /// [`group_work`](Self::group_work) then). Unlike [`recv`](Self::recv), it never starts
    /// group work, so it is safe to cancel, in a `select!` say.
    pub async fn poll_record(&mut self) -> Result<Option<ConsumerRecord>> {
        // A record already fetched goes out at once (the usual case): no waiting set up. The
        // poll clock reads as for a poll that returned now.
        if !self.group_work_pending() {
            self.maybe_auto_commit();
            if let Some(record) = self.consumer.next_buffered() {
                self.shared.poll.returned_now();
                return Ok(Some(record));
            }
        }
        let shared = self.shared.clone();
        let _polling = shared.poll.enter();
        loop {
            if self.group_work_pending() {
                return Ok(None);
            }
            self.maybe_auto_commit();
            let wake = shared.app_wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            if self.group_work_pending() {
                return Ok(None);
            }
            let auto_commit = shared.config.auto_commit;
            let next_commit = self.next_auto_commit;
            tokio::select! {
                biased;
                _ = &mut wake => {}
                _ = tokio::time::sleep_until(next_commit), if auto_commit => {}
                record = self.consumer.recv() => return record.map(Some),
            }
        }
    }

    /// The records as a stream borrowing the consumer; see [`recv`](Self::recv).
    pub fn stream(&mut self) -> impl Stream<Item = Result<ConsumerRecord>> + Unpin + Send + '_ {
        futures::stream::unfold(self, |consumer| async move {
            let item = consumer.recv().await;
            Some((item, consumer))
        })
        .boxed()
    }

    fn group_work_pending(&self) -> bool {
        let st = self.shared.state();
        !st.topics.is_empty()
            && (st.fatal.is_some() || st.lost || st.rejoin || st.phase != Phase::Stable)
    }

    /// Handles lost partitions, then joins until a generation's assignment is applied.
    async fn rebalance(&mut self) -> Result<()> {
        let (fatal, lost) = {
            let mut st = self.shared.state();
            (st.fatal.take(), std::mem::take(&mut st.lost))
        };
        if let Some(e) = fatal {
            return Err(e);
        }
        if lost && !self.owned.is_empty() {
            let parts: Vec<TopicPartition> = std::mem::take(&mut self.owned).into_iter().collect();
            tracing::warn!(group = %self.shared.group(), partitions = parts.len(), "partitions lost");
            self.callback(Callback::Lost, &parts).await;
            self.consumer.incremental_unassign(&parts);
        }
        while !self.join_once().await? {}
        Ok(())
    }

    /// One JoinGroup + SyncGroup round; `Ok(false)` when it must be repeated.
    async fn join_once(&mut self) -> Result<bool> {
        if self.protocol == RebalanceProtocol::Eager && !self.owned.is_empty() {
            let parts: Vec<TopicPartition> = self.owned.iter().cloned().collect();
            self.auto_commit_before_revoke(&parts).await;
            self.callback(Callback::Revoked, &parts).await;
            self.consumer.incremental_unassign(&parts);
            self.owned.clear();
        }
        let (topics, generation) = {
            let mut st = self.shared.state();
            st.rejoin = false;
            st.phase = Phase::Joining;
            (st.topics.clone(), st.generation)
        };
        let owned: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        let cfg = &self.shared.config;
        let mut protocols = Vec::with_capacity(cfg.assignors.len());
        for a in &cfg.assignors {
            let metadata = protocol::encode_subscription(
                &topics,
                a.user_data(&topics, generation),
                &owned,
                generation,
                cfg.rack.as_deref(),
            )?;
            protocols.push((a.name().to_owned(), metadata));
        }
        let joined = match membership::join(&self.shared, &protocols).await {
            Ok(j) => j,
            Err(e) => {
                self.not_joined();
                return Err(e);
            }
        };
        let leader = joined.leader == joined.member_id;
        {
            let mut st = self.shared.state();
            st.member_id = joined.member_id.clone();
            st.generation = joined.generation;
            st.protocol = Some(joined.protocol.clone());
            st.leader = leader;
        }
        tracing::info!(
            group = %self.shared.group(), member = %joined.member_id, generation = joined.generation,
            protocol = %joined.protocol, leader, members = joined.members.len(), "joined"
        );
        let assignments = if leader && !joined.skip_assignment {
            match self.assign(&joined).await {
                Ok(a) => a,
                Err(e) => {
                    self.not_joined();
                    return Err(e);
                }
            }
        } else {
            Vec::new()
        };
        let bytes = match membership::sync(&self.shared, &joined, assignments).await {
            Ok(Synced::Assignment(bytes)) => bytes,
            Ok(Synced::Rejoin(why)) => {
                tracing::info!(group = %self.shared.group(), generation = joined.generation, why, "rejoining");
                self.not_joined();
                return Ok(false);
            }
            Err(e) => {
                self.not_joined();
                return Err(e);
            }
        };
        let assignment = match protocol::decode_assignment(bytes) {
            Ok(a) => a,
            Err(e) => {
                self.not_joined();
                return Err(e);
            }
        };
        if let Some(a) = cfg.assignors.iter().find(|a| a.name() == joined.protocol) {
            a.on_assignment(&assignment, joined.generation);
        }
        self.shared.state().phase = Phase::Stable;
        self.apply(assignment, &topics, joined.generation).await?;
        Ok(true)
    }

    fn not_joined(&self) {
        let mut st = self.shared.state();
        st.phase = Phase::Unjoined;
        st.rejoin = true;
    }

    /// Applies a generation's assignment: revoke what left (cooperative), initialise and
    /// add what arrived, call the listener.
    async fn apply(
        &mut self,
        assignment: Assignment,
        topics: &[String],
        generation: i32,
    ) -> Result<()> {
        let new: BTreeSet<TopicPartition> = assignment
            .partitions
            .into_iter()
            .filter(|tp| topics.contains(&tp.topic))
            .collect();
        let revoked: Vec<TopicPartition> = self.owned.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&self.owned).cloned().collect();
        tracing::info!(
            group = %self.shared.group(), generation, assigned = new.len(), added = added.len(),
            revoked = revoked.len(), "assignment received"
        );
        if !revoked.is_empty() {
            // Cooperative: release these now, then rejoin so their new owner gets them.
            self.auto_commit_before_revoke(&revoked).await;
            self.callback(Callback::Revoked, &revoked).await;
            self.consumer.incremental_unassign(&revoked);
            for tp in &revoked {
                self.owned.remove(tp);
            }
            self.shared.state().rejoin = true;
        }
        if !added.is_empty() {
            let deadline = Instant::now() + self.shared.request_timeout;
            let committed = match offsets::fetch(
                &self.shared.coordinator,
                self.shared.group(),
                &added,
                deadline,
            )
            .await
            {
                Ok(c) => c,
                Err(e) => {
                    self.not_joined();
                    return Err(e);
                }
            };
            let start: Vec<(TopicPartition, Option<Offset>)> = added
                .iter()
                .map(|tp| {
                    let at = committed.get(tp).copied().flatten().map(Offset::At);
                    tracing::debug!(%tp, committed = ?at, "starting partition");
                    (tp.clone(), at)
                })
                .collect();
            self.consumer.incremental_assign(start);
            self.owned.extend(added.iter().cloned());
        }
        self.callback(Callback::Assigned, &added).await;
        Ok(())
    }

    /// The leader's part: decode subscriptions, look up partition counts, run the assignor.
    async fn assign(&self, joined: &Joined) -> Result<Vec<(String, Bytes)>> {
        let cfg = &self.shared.config;
        let assignor = cfg
            .assignors
            .iter()
            .find(|a| a.name() == joined.protocol)
            .ok_or_else(|| Error::UnknownAssignor {
                group: cfg.group_id.clone(),
                assignor: joined.protocol.clone(),
            })?;
        let members: Vec<Subscription> = joined
            .members
            .iter()
            .map(|(id, instance, metadata)| {
                protocol::decode_subscription(id.clone(), instance.clone(), metadata.clone())
                    .unwrap_or_else(|e| {
                        tracing::warn!(group = %cfg.group_id, member = %id, error = %e, "unreadable subscription: member gets nothing");
                        Subscription {
                            member_id: id.clone(),
                            group_instance_id: instance.clone(),
                            topics: Vec::new(),
                            user_data: None,
                            owned_partitions: Vec::new(),
                            generation: -1,
                            rack: None,
                        }
                    })
            })
            .collect();
        let topics: Vec<String> = members
            .iter()
            .flat_map(|m| m.topics.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let cluster = &self.shared.coordinator.cluster;
        if let Err(e) = cluster.refresh_metadata(&topics, false).await {
            tracing::warn!(group = %cfg.group_id, error = %e, "metadata for the assignment failed; using the cache");
        }
        let counts: BTreeMap<String, i32> = topics
            .iter()
            .filter_map(|t| Some((t.clone(), i32::try_from(cluster.partition_count(t)?).ok()?)))
            .collect();
        let result = assignor.assign(&members, &counts)?;
        tracing::info!(
            group = %cfg.group_id, generation = joined.generation, assignor = assignor.name(),
            members = members.len(), partitions = counts.values().sum::<i32>(), "assigned partitions as leader"
        );
        self.shared.state().assigned_counts = counts;
        let mut out = Vec::with_capacity(members.len());
        for m in &members {
            let a = result.get(&m.member_id).cloned().unwrap_or_default();
            out.push((m.member_id.clone(), protocol::encode_assignment(&a)?));
        }
        Ok(out)
    }

    async fn callback(&mut self, which: Callback, partitions: &[TopicPartition]) {
        let ctx = RebalanceContext {
            consumer: &self.consumer,
            shared: &self.shared,
            committer: &self.committer,
        };
        let listener = self.listener.get_mut().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        match which {
            Callback::Assigned => listener.on_partitions_assigned(&ctx, partitions).await,
            Callback::Revoked => listener.on_partitions_revoked(&ctx, partitions).await,
            Callback::Lost => listener.on_partitions_lost(&ctx, partitions).await,
        }
        tracing::debug!(group = %self.shared.group(), callback = ?which, partitions = partitions.len(), took = ?started.elapsed(), "rebalance callback done");
    }

    fn positions(&self, partitions: &[TopicPartition]) -> Vec<(TopicPartition, i64)> {
        partitions
            .iter()
            .filter_map(|tp| Some((tp.clone(), self.consumer.position(tp)?)))
            .collect()
    }

    async fn auto_commit_before_revoke(&mut self, partitions: &[TopicPartition]) {
        if !self.shared.config.auto_commit {
            return;
        }
        let offsets = self.positions(partitions);
        if let Err(e) = self
            .committer
            .commit(self.shared.generation(), offsets)
            .await
        {
            tracing::warn!(group = %self.shared.group(), error = %e, "commit before revocation failed");
        }
    }

    fn maybe_auto_commit(&mut self) {
        if !self.shared.config.auto_commit || Instant::now() < self.next_auto_commit {
            return;
        }
        self.next_auto_commit = Instant::now() + self.shared.config.auto_commit_interval;
        let parts: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        let offsets: Vec<(TopicPartition, i64)> = self
            .positions(&parts)
            .into_iter()
            .filter(|(tp, o)| self.auto_committed.get(tp) != Some(o))
            .collect();
        if offsets.is_empty() {
            return;
        }
        self.auto_committed.extend(offsets.iter().cloned());
        self.committer
            .commit_in_background(self.shared.generation(), offsets);
    }

    /// The generation to commit under, refusing locally when this member has none: a
    /// member without a generation may hold stale positions.
    fn commit_generation(&self) -> Result<offsets::Generation> {
        let generation = self.shared.generation();
        if generation.id < 0 && !self.shared.state().topics.is_empty() {
            return Err(Error::Rebalancing {
                group: self.shared.group().to_owned(),
                operation: "OffsetCommit",
                code: KafkaCode::IllegalGeneration,
            });
        }
        Ok(generation)
    }

    /// Commits the positions of every owned partition and waits for the answer.
    ///
    /// [`Error::Rebalancing`] means the group moved on: nothing was committed and the member
    /// rejoins on the next `recv`.
    pub async fn commit(&self) -> Result<()> {
        self.commit_async().await
    }

    /// Commits explicit offsets (the next offset to read, per partition) and waits.
    pub async fn commit_offsets(
        &self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Result<()> {
        self.commit_offsets_async(offsets).await
    }

    /// Queues a commit of the owned partitions' positions; the future tells how it went
    /// and may be dropped. Commits are sent in the order they were made.
    pub fn commit_async(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let parts: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        self.commit_offsets_async(self.positions(&parts))
    }

    /// Queues a commit of explicit offsets; see [`commit_async`](Self::commit_async).
    pub fn commit_offsets_async(
        &self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let offsets: Vec<(TopicPartition, i64)> = offsets.into_iter().collect();
        let queued = self
            .commit_generation()
            .map(|generation| self.committer.commit(generation, offsets));
        async move { queued?.await }
    }

    /// The group's committed offsets of `partitions` (`None`: nothing committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        let deadline = Instant::now() + self.shared.request_timeout;
        offsets::fetch(
            &self.shared.coordinator,
            self.shared.group(),
            partitions,
            deadline,
        )
        .await
    }

    /// Leaves the group cleanly: auto-commits (if on), calls `revoked` for the owned
    /// partitions, waits for queued commits, and sends LeaveGroup (dynamic members only, as
    /// Java: a static member keeps its place until its session times out).
    pub async fn close(mut self) -> Result<()> {
        self.heartbeat_task.abort();
        let parts: Vec<TopicPartition> = std::mem::take(&mut self.owned).into_iter().collect();
        if !parts.is_empty() {
            let stale = {
                let st = self.shared.state();
                st.lost || st.phase != Phase::Stable
            };
            if stale {
                self.callback(Callback::Lost, &parts).await;
            } else {
                self.auto_commit_before_revoke(&parts).await;
                self.callback(Callback::Revoked, &parts).await;
            }
            self.consumer.incremental_unassign(&parts);
        }
        // Let queued commits finish: the committer ends when its queue closes.
        drop(std::mem::replace(&mut self.committer, Committer::closed()));
        if let Some(task) = self.committer_task.take() {
            let _ = tokio::time::timeout(self.shared.request_timeout, task).await;
        }
        membership::leave(&self.shared, "the consumer is closing").await;
        Ok(())
    }
}
