//! The transaction manager of a transactional producer: its state machine and the requests to
//! the transaction coordinator (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn)
//! and to the group coordinator (TxnOffsetCommit).
//!
//! Two protocol versions, chosen per producer from what the cluster finalized
//! (`transaction.version` in ApiVersions, with the APIs to match):
//! - v1: every partition is added with AddPartitionsToTxn before its first batch of the
//!   transaction is sent (the sender holds the batches back until then); offsets go through
//!   AddOffsetsToTxn then TxnOffsetCommit; Produce, EndTxn and TxnOffsetCommit stay below the
//!   versions that mean v2 (11, 4, 4). After an abort that broke a partition's sequence the
//!   epoch is bumped with InitProducerId(id, epoch) (KIP-360).
//! - v2 (KIP-890 part 2): Produce v12+ adds partitions implicitly, TxnOffsetCommit v5 adds
//!   the group, and every EndTxn v5 answers a new epoch (perhaps a new producer id) that the
//!   producer adopts, starting its sequences again.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, EndTxnRequest, GroupId,
    InitProducerIdRequest, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::identity::ProducerIdentity;
use super::Inner;
use crate::cluster::Cluster;
use crate::conn::Connection;
use crate::error::{Error, KafkaCode, Result, TxnStateProblem};
use crate::group::coordinator::{backoff_until, Coordinator};
use crate::group::ConsumerGroupMetadata;
use crate::topic_partition::TopicPartition;

/// How long one transactional operation (init, add, commit, abort) may retry, like Java's
/// `max.block.ms`.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

const INIT_PRODUCER_ID_VERSIONS: RangeInclusive<i16> = 0..=5;
/// v4+ are broker-to-broker (verification); clients use v3 and below.
const ADD_PARTITIONS_VERSIONS: RangeInclusive<i16> = 0..=3;
const ADD_OFFSETS_VERSIONS: RangeInclusive<i16> = 0..=4;
const END_TXN_V1: RangeInclusive<i16> = 0..=4;
const END_TXN_V2: RangeInclusive<i16> = 5..=5;
const TXN_OFFSET_COMMIT_V1: RangeInclusive<i16> = 0..=4;
const TXN_OFFSET_COMMIT_V2: RangeInclusive<i16> = 5..=5;

/// Why a producer can do nothing more.
#[derive(Debug, Clone)]
pub(crate) enum Fatal {
    Fenced,
    Unavailable(String),
    Other(String),
}

/// Where the producer's transaction stands.
#[derive(Debug, Clone)]
pub(crate) enum Phase {
    /// No transaction open.
    Ready,
    InTxn,
    Committing,
    Aborting,
    /// The open transaction can only be aborted.
    Abortable(Arc<Error>),
    Fatal(Fatal),
}

#[derive(Debug)]
pub(crate) struct TxnState {
    pub(crate) phase: Phase,
    /// Partitions added to the open transaction (v1).
    pub(crate) added: HashSet<(Arc<str>, i32)>,
    /// The coordinator knows of the open transaction (something was added or produced):
    /// EndTxn is needed to end it.
    pub(crate) started: bool,
    /// A batch with a sequence number was given up on: after the abort the epoch must move
    /// on (v1: InitProducerId with the current id and epoch).
    pub(crate) needs_bump: bool,
}

pub(crate) struct Txn {
    pub(crate) id: String,
    timeout: Duration,
    coordinator: Coordinator,
    groups: Mutex<HashMap<String, Arc<Coordinator>>>,
    state: Mutex<TxnState>,
    /// 1 or 2 (see the module doc).
    version: AtomicU8,
}

/// What to do after a coordinator's error code.
enum Next {
    Retry(Error),
    Fail(Error),
}

impl Txn {
    pub(crate) fn new(cluster: Arc<Cluster>, id: String, timeout: Duration) -> Txn {
        Txn {
            coordinator: Coordinator::for_transaction(cluster, id.clone()),
            id,
            timeout,
            groups: Mutex::default(),
            state: Mutex::new(TxnState {
                phase: Phase::Ready,
                added: HashSet::new(),
                started: false,
                needs_bump: false,
            }),
            version: AtomicU8::new(1),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, TxnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn version(&self) -> u8 {
        self.version.load(Ordering::Acquire)
    }

    pub(crate) fn is_v2(&self) -> bool {
        self.version() >= 2
    }

    fn state_error(&self, problem: TxnStateProblem) -> Error {
        Error::TransactionState {
            transactional_id: self.id.clone(),
            problem,
        }
    }

    fn fatal_error(&self, fatal: &Fatal) -> Error {
        match fatal {
            Fatal::Fenced => Error::ProducerFenced {
                transactional_id: self.id.clone(),
            },
            Fatal::Unavailable(reason) => Error::TransactionsUnavailable {
                transactional_id: self.id.clone(),
                reason: reason.clone(),
            },
            Fatal::Other(reason) => self.state_error(TxnStateProblem::FailedEarlier {
                reason: reason.clone(),
            }),
        }
    }

    fn abortable_error(&self, source: Arc<Error>) -> Error {
        Error::TransactionAbortable {
            transactional_id: self.id.clone(),
            source,
        }
    }

    /// The error a call gets in an error phase.
    fn phase_error(&self, phase: &Phase) -> Option<Error> {
        match phase {
            Phase::Abortable(source) => Some(self.abortable_error(source.clone())),
            Phase::Fatal(f) => Some(self.fatal_error(f)),
            _ => None,
        }
    }

    /// Records an error of a transactional operation in the state: fatal errors make the
    /// producer unusable, abortable ones leave only `abort_transaction`. Returns it.
    fn note(&self, error: Error) -> Error {
        let mut st = self.state();
        if matches!(st.phase, Phase::Fatal(_)) {
            return error;
        }
        match &error {
            Error::ProducerFenced { .. } => st.phase = Phase::Fatal(Fatal::Fenced),
            Error::TransactionsUnavailable { reason, .. } => {
                st.phase = Phase::Fatal(Fatal::Unavailable(reason.clone()))
            }
            Error::TransactionAbortable { source, .. } if !matches!(st.phase, Phase::Ready) => {
                st.phase = Phase::Abortable(source.clone());
            }
            _ => {}
        }
        error
    }

    /// `begin_transaction`: local only.
    pub(crate) fn begin(&self) -> Result<()> {
        let mut st = self.state();
        match &st.phase {
            Phase::Ready => {
                st.phase = Phase::InTxn;
                st.added.clear();
                st.started = false;
                Ok(())
            }
            Phase::InTxn => Err(self.state_error(TxnStateProblem::AlreadyOpen)),
            Phase::Committing | Phase::Aborting => {
                Err(self.state_error(TxnStateProblem::Finishing {
                    operation: "begin_transaction",
                }))
            }
            phase => Err(self.phase_error(phase).expect("error phase")),
        }
    }

    /// Whether records may be added now (`send`, `send_offsets_to_transaction`).
    pub(crate) fn check_open(&self, what: &'static str) -> Result<()> {
        let st = self.state();
        match &st.phase {
            Phase::InTxn => Ok(()),
            Phase::Ready => Err(self.state_error(TxnStateProblem::NotOpen { operation: what })),
            Phase::Committing | Phase::Aborting => {
                Err(self.state_error(TxnStateProblem::Finishing { operation: what }))
            }
            phase => Err(self.phase_error(phase).expect("error phase")),
        }
    }

    /// A batch of this producer failed (called for every failed batch).
    pub(crate) fn batch_failed(&self, error: &Arc<Error>, sequenced: bool) {
        let mut st = self.state();
        if sequenced {
            st.needs_bump = true;
        }
        if !matches!(st.phase, Phase::InTxn | Phase::Committing) {
            return;
        }
        let fenced = error.is_fenced();
        let code = error.code();
        st.phase = if fenced {
            Phase::Fatal(Fatal::Fenced)
        } else if code == Some(KafkaCode::TransactionalIdAuthorizationFailed) {
            Phase::Fatal(Fatal::Unavailable(
                "the broker refused it (TRANSACTIONAL_ID_AUTHORIZATION_FAILED): grant the \
                 principal WRITE on the transactional id, or change ProducerConfig::transactional_id"
                    .into(),
            ))
        } else {
            Phase::Abortable(error.clone())
        };
    }

    /// Produce sent a transactional batch (v2: the broker adds the partition itself).
    pub(crate) fn mark_started(&self) {
        self.state().started = true;
    }

    /// The producer's error, if it is in an error phase that stops the sender.
    pub(crate) fn drop_unsent(&self) -> bool {
        matches!(
            self.state().phase,
            Phase::Aborting | Phase::Abortable(_) | Phase::Fatal(_) | Phase::Ready
        )
    }

    pub(crate) fn aborted_error(&self) -> Error {
        Error::TransactionAborted {
            transactional_id: self.id.clone(),
        }
    }

    /// Classifies a transaction coordinator's error code.
    fn judge(&self, code: KafkaCode, what: &str) -> Next {
        let broker = || Error::broker(code, format!("{what} for transactional id {:?}", self.id));
        match code {
            KafkaCode::NotCoordinator | KafkaCode::CoordinatorNotAvailable => {
                self.coordinator.mark_unknown(&code.to_string());
                Next::Retry(broker())
            }
            KafkaCode::CoordinatorLoadInProgress | KafkaCode::ConcurrentTransactions => {
                Next::Retry(broker())
            }
            KafkaCode::ProducerFenced | KafkaCode::InvalidProducerEpoch => {
                tracing::warn!(transactional_id = %self.id, %code, what, "producer fenced");
                Next::Fail(Error::ProducerFenced {
                    transactional_id: self.id.clone(),
                })
            }
            KafkaCode::TransactionalIdAuthorizationFailed => {
                Next::Fail(Error::TransactionsUnavailable {
                    transactional_id: self.id.clone(),
                    reason: "the broker refused it (TRANSACTIONAL_ID_AUTHORIZATION_FAILED): \
                             grant the principal WRITE on the transactional id, or change \
                             ProducerConfig::transactional_id"
                        .into(),
                })
            }
            KafkaCode::TransactionAbortable => Next::Fail(self.abortable_error(Arc::new(broker()))),
            c if c.is_retriable() => Next::Retry(broker()),
            _ => Next::Fail(broker()),
        }
    }

    /// The coordinator connection, failing clearly when the broker lacks transactions.
    async fn coordinator_conn(&self, deadline: Instant) -> Result<Arc<Connection>> {
        let conn = self.coordinator.connection(deadline).await?;
        if conn.version(ApiKey::EndTxn, 0..=5).is_err()
            || conn
                .version(ApiKey::InitProducerId, INIT_PRODUCER_ID_VERSIONS)
                .is_err()
        {
            return Err(Error::TransactionsUnavailable {
                transactional_id: self.id.clone(),
                reason: format!(
                    "broker {} does not support transactions (no EndTxn/InitProducerId API): \
                     use a Kafka with transactions or unset ProducerConfig::transactional_id",
                    conn.broker()
                ),
            });
        }
        Ok(conn)
    }

    /// InitProducerId with the transactional id: fences older producers of the id and aborts
    /// their open transaction. With `bump`, asks for the next epoch of that id and epoch
    /// (KIP-360). Also settles the transaction version.
    pub(crate) async fn init_producer_id(
        &self,
        bump: Option<ProducerIdentity>,
    ) -> Result<ProducerIdentity> {
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let mut backoff = backoff_until(deadline);
        let timeout_ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
        loop {
            let conn = match self.coordinator_conn(deadline).await {
                Ok(c) => c,
                Err(e) if e.is_retriable() => {
                    backoff.wait(e).await.map_err(|e| self.note(e))?;
                    continue;
                }
                Err(e) => return Err(self.note(e)),
            };
            let version = conn
                .version(ApiKey::InitProducerId, INIT_PRODUCER_ID_VERSIONS)
                .map_err(|e| self.note(e))?;
            if bump.is_some() && version < 3 {
                return Err(self.note(Error::TransactionsUnavailable {
                    transactional_id: self.id.clone(),
                    reason: "the broker cannot bump a producer epoch (InitProducerId v3, Kafka \
                             2.5+) to recover from an aborted transaction"
                        .into(),
                }));
            }
            let (id, epoch) = bump.map_or((-1, -1), |b| (b.id, b.epoch));
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
                    self.id.clone(),
                ))))
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch);
            let response = match conn.request(&request, version).await {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    self.coordinator.mark_unknown(&e.to_string());
                    backoff.wait(e).await.map_err(|e| self.note(e))?;
                    continue;
                }
                Err(e) => return Err(self.note(e)),
            };
            match KafkaCode::try_from_code(response.error_code) {
                None => {
                    self.settle_version(&conn);
                    let identity = ProducerIdentity {
                        id: response.producer_id.0,
                        epoch: response.producer_epoch,
                    };
                    tracing::info!(transactional_id = %self.id, producer_id = identity.id, epoch = identity.epoch, version = self.version(), "transactional producer initialised");
                    return Ok(identity);
                }
                Some(KafkaCode::InvalidTransactionTimeout) => {
                    return Err(self.note(Error::InvalidSetting {
                        setting: "ProducerConfig::transaction_timeout",
                        reason: format!(
                            "{:?} (transactional id {:?}) is refused by the broker (above its \
                             transaction.max.timeout.ms?): lower it",
                            self.timeout, self.id
                        ),
                    }));
                }
                Some(code) => match self.judge(code, "InitProducerId") {
                    Next::Retry(e) => backoff.wait(e).await.map_err(|e| self.note(e))?,
                    Next::Fail(e) => return Err(self.note(e)),
                },
            }
        }
    }

    /// Reads the transaction version the cluster finalized from the coordinator's connection.
    fn settle_version(&self, conn: &Connection) {
        let level = conn.finalized_feature("transaction.version").unwrap_or(0);
        let v2 = level >= 2
            && conn.supports(ApiKey::Produce, 12)
            && conn.supports(ApiKey::EndTxn, 5)
            && conn.supports(ApiKey::TxnOffsetCommit, 5);
        self.version
            .store(if v2 { 2 } else { 1 }, Ordering::Release);
    }

    /// AddPartitionsToTxn (v1) for partitions about to get their first batch of the open
    /// transaction. On failure the transaction becomes abortable (or the producer fenced).
    pub(crate) async fn add_partitions(&self, inner: &Inner, partitions: Vec<(Arc<str>, i32)>) {
        let identity = inner.identity();
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let mut backoff = backoff_until(deadline);
        let mut by_topic: HashMap<Arc<str>, Vec<i32>> = HashMap::new();
        for (t, p) in &partitions {
            by_topic.entry(t.clone()).or_default().push(*p);
        }
        let outcome: Result<()> = loop {
            let attempt = self
                .coordinator
                .send(
                    ApiKey::AddPartitionsToTxn,
                    ADD_PARTITIONS_VERSIONS,
                    deadline,
                    |_| {
                        AddPartitionsToTxnRequest::default()
                            .with_v3_and_below_transactional_id(TransactionalId(
                                StrBytes::from_string(self.id.clone()),
                            ))
                            .with_v3_and_below_producer_id(ProducerId(identity.id))
                            .with_v3_and_below_producer_epoch(identity.epoch)
                            .with_v3_and_below_topics(
                                by_topic
                                    .iter()
                                    .map(|(t, ps)| {
                                        AddPartitionsToTxnTopic::default()
                                            .with_name(TopicName(StrBytes::from_string(
                                                t.to_string(),
                                            )))
                                            .with_partitions(ps.clone())
                                    })
                                    .collect(),
                            )
                    },
                )
                .await;
            let response = match attempt {
                Ok((r, _)) => r,
                Err(e) if e.is_retriable() => match backoff.wait(e).await {
                    Ok(()) => continue,
                    Err(e) => break Err(e),
                },
                Err(e) => break Err(e),
            };
            // The worst code decides; OPERATION_NOT_ATTEMPTED only follows another error.
            let mut worst: Option<KafkaCode> = None;
            for t in &response.results_by_topic_v3_and_below {
                for p in &t.results_by_partition {
                    if let Some(code) = KafkaCode::try_from_code(p.partition_error_code) {
                        if code != KafkaCode::OperationNotAttempted || worst.is_none() {
                            worst = Some(code);
                        }
                    }
                }
            }
            match worst {
                None => break Ok(()),
                Some(code) => match self.judge(code, "AddPartitionsToTxn") {
                    Next::Retry(e) => {
                        if let Err(e) = backoff.wait(e).await {
                            break Err(e);
                        }
                    }
                    Next::Fail(e) => break Err(e),
                },
            }
        };
        match outcome {
            Ok(()) => {
                let mut st = self.state();
                st.started = true;
                st.added.extend(partitions);
            }
            Err(e) => {
                tracing::warn!(transactional_id = %self.id, error = %e, "AddPartitionsToTxn failed");
                let e = match e {
                    e @ (Error::ProducerFenced { .. }
                    | Error::TransactionsUnavailable { .. }
                    | Error::TransactionAbortable { .. }) => e,
                    e => self.abortable_error(Arc::new(e)),
                };
                self.note(e);
            }
        }
    }

    /// The group coordinator of `group`, cached.
    fn group_coordinator(&self, cluster: &Arc<Cluster>, group: &str) -> Arc<Coordinator> {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(group.to_owned())
            .or_insert_with(|| Arc::new(Coordinator::new(cluster.clone(), group.to_owned())))
            .clone()
    }

    /// `send_offsets_to_transaction`: v1 AddOffsetsToTxn then TxnOffsetCommit; v2 only
    /// TxnOffsetCommit v5.
    pub(crate) async fn send_offsets(
        &self,
        inner: &Inner,
        offsets: Vec<(TopicPartition, i64)>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        self.check_open("send_offsets_to_transaction")?;
        if offsets.is_empty() {
            return Ok(());
        }
        let identity = inner.identity();
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let v2 = self.is_v2();
        if !v2 {
            let mut backoff = backoff_until(deadline);
            loop {
                let attempt = self
                    .coordinator
                    .send(
                        ApiKey::AddOffsetsToTxn,
                        ADD_OFFSETS_VERSIONS,
                        deadline,
                        |_| {
                            AddOffsetsToTxnRequest::default()
                                .with_transactional_id(TransactionalId(StrBytes::from_string(
                                    self.id.clone(),
                                )))
                                .with_producer_id(ProducerId(identity.id))
                                .with_producer_epoch(identity.epoch)
                                .with_group_id(GroupId(StrBytes::from_string(
                                    group.group_id.clone(),
                                )))
                        },
                    )
                    .await;
                let code = match attempt {
                    Ok((r, _)) => r.error_code,
                    Err(e) if e.is_retriable() => {
                        backoff.wait(e).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match KafkaCode::try_from_code(code) {
                    None => break,
                    Some(code) => match self.judge(code, "AddOffsetsToTxn") {
                        Next::Retry(e) => backoff.wait(e).await?,
                        Next::Fail(e) => return Err(self.note(self.abortable_unless_fatal(e))),
                    },
                }
            }
            self.state().started = true;
        }
        let coordinator = self.group_coordinator(&inner.cluster, &group.group_id);
        let versions = if v2 {
            TXN_OFFSET_COMMIT_V2
        } else {
            TXN_OFFSET_COMMIT_V1
        };
        let mut by_topic: HashMap<&str, Vec<(i32, i64)>> = HashMap::new();
        for (tp, offset) in &offsets {
            by_topic
                .entry(tp.topic.as_str())
                .or_default()
                .push((tp.partition, *offset));
        }
        let mut backoff = backoff_until(deadline);
        loop {
            let attempt = coordinator
                .send(ApiKey::TxnOffsetCommit, versions.clone(), deadline, |v| {
                    let mut r = TxnOffsetCommitRequest::default()
                        .with_transactional_id(TransactionalId(StrBytes::from_string(
                            self.id.clone(),
                        )))
                        .with_group_id(GroupId(StrBytes::from_string(group.group_id.clone())))
                        .with_producer_id(ProducerId(identity.id))
                        .with_producer_epoch(identity.epoch)
                        .with_topics(
                            by_topic
                                .iter()
                                .map(|(t, ps)| {
                                    TxnOffsetCommitRequestTopic::default()
                                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                                        .with_partitions(
                                            ps.iter()
                                                .map(|&(p, o)| {
                                                    TxnOffsetCommitRequestPartition::default()
                                                        .with_partition_index(p)
                                                        .with_committed_offset(o)
                                                        .with_committed_leader_epoch(-1)
                                                        .with_committed_metadata(Some(
                                                            StrBytes::default(),
                                                        ))
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        );
                    if v >= 3 {
                        r = r
                            .with_generation_id(group.generation_id)
                            .with_member_id(StrBytes::from_string(group.member_id.clone()))
                            .with_group_instance_id(
                                group.group_instance_id.clone().map(StrBytes::from_string),
                            );
                    }
                    r
                })
                .await;
            let response = match attempt {
                Ok((r, _)) => r,
                Err(e) if e.is_retriable() => {
                    backoff.wait(e).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if v2 {
                // The coordinator may have added the group even if the answer is an error.
                self.state().started = true;
            }
            let mut worst: Option<KafkaCode> = None;
            for t in &response.topics {
                for p in &t.partitions {
                    if let Some(code) = KafkaCode::try_from_code(p.error_code) {
                        let fencing = crate::group::offsets::is_fencing(code);
                        if worst.is_none() || fencing {
                            worst = Some(code);
                        }
                    }
                }
            }
            let Some(code) = worst else {
                tracing::debug!(transactional_id = %self.id, group = %group.group_id, generation = group.generation_id, "offsets added to the transaction");
                return Ok(());
            };
            if crate::group::offsets::is_fencing(code) {
                tracing::warn!(transactional_id = %self.id, group = %group.group_id, generation = group.generation_id, %code, "TxnOffsetCommit refused: stale group generation (KIP-447)");
                let source = Error::Rebalancing {
                    group: group.group_id.clone(),
                    operation: "TxnOffsetCommit",
                    code,
                };
                return Err(self.note(self.abortable_error(Arc::new(source))));
            }
            let retry = match code {
                KafkaCode::NotCoordinator | KafkaCode::CoordinatorNotAvailable => {
                    coordinator.mark_unknown(&code.to_string());
                    true
                }
                KafkaCode::CoordinatorLoadInProgress
                | KafkaCode::ConcurrentTransactions
                | KafkaCode::UnknownTopicOrPartition => true,
                c => c.is_retriable(),
            };
            let error = Error::broker(
                code,
                format!(
                    "TxnOffsetCommit of group {} for transactional id {:?}",
                    group.group_id, self.id
                ),
            );
            if retry {
                backoff.wait(error).await?;
                continue;
            }
            let error = match self.judge(code, "TxnOffsetCommit") {
                Next::Fail(e) => self.abortable_unless_fatal(e),
                Next::Retry(_) => self.abortable_error(Arc::new(error)),
            };
            return Err(self.note(error));
        }
    }

    fn abortable_unless_fatal(&self, e: Error) -> Error {
        match e {
            e @ (Error::ProducerFenced { .. }
            | Error::TransactionsUnavailable { .. }
            | Error::TransactionAbortable { .. }) => e,
            e => self.abortable_error(Arc::new(e)),
        }
    }

    /// EndTxn. Returns the identity to go on with: v2 answers a bumped epoch (perhaps a new
    /// producer id), v1 keeps it.
    pub(crate) async fn end(&self, inner: &Inner, commit: bool) -> Result<ProducerIdentity> {
        let identity = inner.identity();
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let mut backoff = backoff_until(deadline);
        let versions = if self.is_v2() { END_TXN_V2 } else { END_TXN_V1 };
        let what = if commit {
            "EndTxn(commit)"
        } else {
            "EndTxn(abort)"
        };
        loop {
            let attempt = self
                .coordinator
                .send(ApiKey::EndTxn, versions.clone(), deadline, |_| {
                    EndTxnRequest::default()
                        .with_transactional_id(TransactionalId(StrBytes::from_string(
                            self.id.clone(),
                        )))
                        .with_producer_id(ProducerId(identity.id))
                        .with_producer_epoch(identity.epoch)
                        .with_committed(commit)
                })
                .await;
            let (response, version) = match attempt {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    backoff.wait(e).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match KafkaCode::try_from_code(response.error_code) {
                None => {
                    if version >= 5 && response.producer_id.0 >= 0 && response.producer_epoch >= 0 {
                        return Ok(ProducerIdentity {
                            id: response.producer_id.0,
                            epoch: response.producer_epoch,
                        });
                    }
                    return Ok(identity);
                }
                // Version 2: the coordinator ended this transaction itself (an abort after
                // `transaction_timeout`) and answers the stale epoch's commit so; aborting
                // then succeeds and hands over the epoch the coordinator moved to.
                Some(KafkaCode::InvalidTxnState) if commit && version >= 5 => {
                    return Err(self.abortable_error(Arc::new(Error::broker(
                        KafkaCode::InvalidTxnState,
                        format!(
                            "{what} for transactional id {:?}: the coordinator already ended \
                             the transaction (aborted after transaction_timeout?)",
                            self.id
                        ),
                    ))));
                }
                Some(code) => match self.judge(code, what) {
                    Next::Retry(e) => backoff.wait(e).await?,
                    Next::Fail(e) => return Err(e),
                },
            }
        }
    }

    /// Leaves the error-free phases for `commit`/`abort`: checks and moves to `to`.
    pub(crate) fn enter(&self, commit: bool) -> Result<()> {
        let mut st = self.state();
        match (&st.phase, commit) {
            (Phase::InTxn | Phase::Committing, true) => {
                st.phase = Phase::Committing;
                Ok(())
            }
            (Phase::InTxn | Phase::Committing | Phase::Aborting | Phase::Abortable(_), false) => {
                st.phase = Phase::Aborting;
                Ok(())
            }
            (Phase::Ready, _) => Err(self.state_error(TxnStateProblem::NotOpen {
                operation: if commit {
                    "commit_transaction"
                } else {
                    "abort_transaction"
                },
            })),
            (Phase::Aborting, true) => Err(self.state_error(TxnStateProblem::CommitWhileAborting)),
            (phase, _) => Err(self.phase_error(phase).expect("error phase")),
        }
    }

    /// After a failed commit or abort: an error that is neither fatal nor abortable (a
    /// timeout, retries ran out) leaves the phase as it is, so the same call can be repeated.
    pub(crate) fn failed(&self, error: Error) -> Error {
        let error = match error {
            e @ (Error::ProducerFenced { .. }
            | Error::TransactionsUnavailable { .. }
            | Error::TransactionAbortable { .. }) => e,
            e if e.is_retriable() || matches!(e, Error::RetriesExhausted { .. }) => e,
            e => {
                // A broker answer the protocol has no recovery for (INVALID_TXN_STATE, ...).
                self.state().phase = Phase::Fatal(Fatal::Other(e.to_string()));
                return e;
            }
        };
        self.note(error)
    }

    /// The open transaction ended (committed or aborted).
    pub(crate) fn ended(&self) {
        let mut st = self.state();
        st.phase = Phase::Ready;
        st.added.clear();
        st.started = false;
    }

    /// The abortable error of the open transaction, if a record of it failed (commit checks).
    pub(crate) fn failure(&self) -> Option<Error> {
        let st = self.state();
        self.phase_error(&st.phase)
    }
}
