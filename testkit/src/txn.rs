//! The transaction coordinator: transactional ids, their producer id and epoch, the partitions
//! and groups of the open transaction, and the transitions Kafka's coordinator makes
//! (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, timeouts), for transaction
//! versions 1 and 2 (KIP-890: an epoch bump at every EndTxn).
//!
//! Pure state over [`State`]; handlers call in with the cluster lock held. Markers are written
//! to the partition logs at once (Kafka's PrepareCommit/PrepareAbort states last as long as
//! the marker writes; here they take no time, so they are never observed).

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::ResponseError as E;

use crate::group::CommitRecord;
use crate::state::State;
use crate::transactions::{TxnMeta, TxnState};

/// Kafka refuses an epoch at or above this for new work (`Short.MaxValue - 1`): the last one is
/// kept so the coordinator can always fence.
const EPOCH_EXHAUSTED: i16 = i16::MAX - 1;

/// Kafka answers PRODUCER_FENCED only to request versions that know it (KIP-588); older
/// versions get INVALID_PRODUCER_EPOCH. `first` is the first version with PRODUCER_FENCED.
pub(crate) fn fenced(version: i16, first: i16) -> i16 {
    if version >= first {
        E::ProducerFenced.code()
    } else {
        E::InvalidProducerEpoch.code()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn new_producer_id(st: &mut State) -> i64 {
    let id = st.next_producer_id;
    st.next_producer_id += 1;
    id
}

/// Writes the markers of `tid`'s transaction with `marker_epoch` to each of its partitions,
/// settles its groups' pending offsets (committed or dropped) and completes it.
fn complete(st: &mut State, tid: &str, commit: bool, marker_epoch: i16) {
    let Some(meta) = st.txns.ids.get_mut(tid) else {
        return;
    };
    let producer_id = meta.producer_id;
    let partitions = std::mem::take(&mut meta.partitions);
    let groups = std::mem::take(&mut meta.groups);
    meta.state = if commit {
        TxnState::CompleteCommit
    } else {
        TxnState::CompleteAbort
    };
    meta.started = None;
    let now = now_ms();
    for (topic, partition) in &partitions {
        let Some(log) = st.partition_mut(topic, *partition) else {
            continue; // deleted meanwhile
        };
        if let Err(e) = log.write_marker(producer_id, marker_epoch, commit, 0, now) {
            tracing::error!(topic, partition, error = %e, "could not write a transaction marker");
        }
    }
    for group_id in &groups {
        let group = st.groups.group_mut(group_id);
        let Some(pending) = group.pending_txn_offsets.remove(&producer_id) else {
            continue;
        };
        if !commit {
            continue;
        }
        for ((topic, partition), committed) in pending {
            group.history.push(CommitRecord {
                topic: topic.clone(),
                partition,
                offset: committed.offset,
                member_id: String::new(),
                generation: -1,
            });
            group.offsets.insert((topic, partition), committed);
        }
    }
    tracing::debug!(
        transactional_id = tid,
        producer_id,
        epoch = marker_epoch,
        commit,
        partitions = partitions.len(),
        groups = groups.len(),
        "transaction completed"
    );
}

/// Fences the producer of an open transaction and aborts it, as Kafka does when a new
/// incarnation initializes or the transaction times out: the epoch is bumped (and bumped once
/// more by the abort under transaction version 2), the markers carry the final epoch.
fn fence_and_abort(st: &mut State, tid: &str) {
    let tv2 = st.settings.transaction_version >= 2;
    let Some(meta) = st.txns.ids.get_mut(tid) else {
        return;
    };
    if meta.state != TxnState::Ongoing {
        return;
    }
    meta.epoch = meta.epoch.saturating_add(1);
    meta.last_epoch = -1;
    if tv2 {
        meta.last_epoch = meta.epoch;
        meta.epoch = meta.epoch.saturating_add(1);
    }
    let epoch = meta.epoch;
    complete(st, tid, false, epoch);
}

/// Aborts every transaction open for longer than its timeout; returns how many.
pub(crate) fn abort_timed_out(st: &mut State, now: Instant) -> usize {
    let expired: Vec<String> = st
        .txns
        .ids
        .iter()
        .filter(|(_, m)| {
            m.state == TxnState::Ongoing && m.started.is_some_and(|s| s + m.timeout <= now)
        })
        .map(|(id, _)| id.clone())
        .collect();
    for tid in &expired {
        tracing::info!(
            transactional_id = %tid,
            "transaction timed out: fencing the producer and aborting"
        );
        fence_and_abort(st, tid);
    }
    expired.len()
}

/// InitProducerId for a transactional id: (producer id, epoch) or an error code.
pub(crate) fn init_producer_id(
    st: &mut State,
    tid: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    version: i16,
) -> Result<(i64, i16), i16> {
    if tid.is_empty() {
        return Err(E::InvalidRequest.code());
    }
    if timeout_ms <= 0 || timeout_ms > st.settings.transaction_max_timeout_ms {
        return Err(E::InvalidTransactionTimeout.code());
    }
    if !st.txns.ids.contains_key(tid) {
        let producer_id = new_producer_id(st);
        st.txns.ids.insert(
            tid.to_owned(),
            TxnMeta {
                producer_id,
                prev_producer_id: -1,
                epoch: -1,
                last_epoch: -1,
                timeout: Duration::from_millis(timeout_ms as u64),
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                groups: BTreeSet::new(),
                started: None,
            },
        );
    }
    let Some(meta) = st.txns.ids.get(tid) else {
        return Err(E::UnknownServerError.code());
    };
    if let Some((pid, epoch)) = expected {
        let valid = meta.epoch == -1
            || pid == meta.producer_id
            || (pid == meta.prev_producer_id && epoch >= EPOCH_EXHAUSTED);
        if !valid {
            return Err(fenced(version, 4));
        }
    }
    if meta.state == TxnState::Ongoing {
        // Kafka aborts the previous incarnation's transaction first and asks the caller to
        // retry; the retry bumps the epoch once more.
        fence_and_abort(st, tid);
        return Err(E::ConcurrentTransactions.code());
    }
    let exhausted = meta.epoch >= EPOCH_EXHAUSTED;
    let rotate = exhausted && expected.is_none_or(|(_, e)| e == meta.epoch);
    let (epoch, last_epoch, rotate_to) = if rotate {
        let last = if expected.is_some() { meta.epoch } else { -1 };
        (0, last, Some(()))
    } else {
        match expected {
            None => (meta.epoch.saturating_add(1), -1, None),
            Some((_, e)) if meta.epoch == -1 || e == meta.epoch => {
                (meta.epoch.saturating_add(1), meta.epoch, None)
            }
            Some((_, e)) if e == meta.last_epoch => (meta.epoch, meta.last_epoch, None),
            Some(_) => return Err(fenced(version, 4)),
        }
    };
    let new_id = rotate_to.map(|()| new_producer_id(st));
    let Some(meta) = st.txns.ids.get_mut(tid) else {
        return Err(E::UnknownServerError.code());
    };
    if let Some(id) = new_id {
        meta.prev_producer_id = meta.producer_id;
        meta.producer_id = id;
    }
    meta.epoch = epoch;
    meta.last_epoch = last_epoch;
    meta.timeout = Duration::from_millis(timeout_ms as u64);
    meta.state = TxnState::Empty;
    meta.partitions.clear();
    meta.groups.clear();
    meta.started = None;
    Ok((meta.producer_id, meta.epoch))
}

/// The checks AddPartitionsToTxn and AddOffsetsToTxn share; `Ok` gives the metadata to add to.
fn check_add<'a>(
    st: &'a mut State,
    tid: &str,
    producer_id: i64,
    epoch: i16,
    version: i16,
    fenced_from: i16,
) -> Result<&'a mut TxnMeta, i16> {
    if tid.is_empty() {
        return Err(E::InvalidRequest.code());
    }
    let meta = st
        .txns
        .ids
        .get_mut(tid)
        .ok_or(E::InvalidProducerIdMapping.code())?;
    if meta.producer_id != producer_id {
        return Err(E::InvalidProducerIdMapping.code());
    }
    if meta.epoch != epoch {
        return Err(fenced(version, fenced_from));
    }
    Ok(meta)
}

fn start_if_needed(meta: &mut TxnMeta) {
    if meta.state != TxnState::Ongoing {
        meta.state = TxnState::Ongoing;
        meta.started = Some(Instant::now());
    }
}

/// AddPartitionsToTxn (or a Produce v12+ adding a partition implicitly under TV2).
pub(crate) fn add_partitions(
    st: &mut State,
    tid: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
    version: i16,
) -> Result<(), i16> {
    let meta = check_add(st, tid, producer_id, epoch, version, 2)?;
    start_if_needed(meta);
    meta.partitions.extend(partitions.iter().cloned());
    Ok(())
}

/// AddPartitionsToTxn v4+ with verify_only: whether each partition is in the transaction.
pub(crate) fn verify_partitions(
    st: &State,
    tid: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
) -> Vec<i16> {
    let code = match st.txns.ids.get(tid) {
        None => Some(E::InvalidProducerIdMapping.code()),
        Some(m) if m.producer_id != producer_id => Some(E::InvalidProducerIdMapping.code()),
        Some(m) if m.epoch != epoch => Some(E::ProducerFenced.code()),
        Some(_) => None,
    };
    partitions
        .iter()
        .map(|p| match code {
            Some(c) => c,
            None if st
                .txns
                .ids
                .get(tid)
                .is_some_and(|m| m.partitions.contains(p)) =>
            {
                0
            }
            None => E::TransactionAbortable.code(),
        })
        .collect()
}

/// AddOffsetsToTxn (or a TxnOffsetCommit v5+ adding its group implicitly).
pub(crate) fn add_offsets(
    st: &mut State,
    tid: &str,
    producer_id: i64,
    epoch: i16,
    group: &str,
    version: i16,
) -> Result<(), i16> {
    let meta = check_add(st, tid, producer_id, epoch, version, 2)?;
    start_if_needed(meta);
    meta.groups.insert(group.to_owned());
    Ok(())
}

/// The outcome of an EndTxn: the producer id and epoch to report (v5+), or an error code.
pub(crate) fn end_txn(
    st: &mut State,
    tid: &str,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    version: i16,
) -> Result<(i64, i16), i16> {
    if tid.is_empty() {
        return Err(E::InvalidRequest.code());
    }
    let Some(meta) = st.txns.ids.get(tid).cloned() else {
        return Err(E::InvalidProducerIdMapping.code());
    };
    let invalid_state = || {
        tracing::debug!(
            transactional_id = tid,
            state = meta.state.name(),
            commit,
            "EndTxn in a state that does not allow it"
        );
        Err(E::InvalidTxnState.code())
    };
    if version < 5 {
        // Transaction version 1: the epoch must match exactly; no bump.
        if meta.producer_id != producer_id {
            return Err(E::InvalidProducerIdMapping.code());
        }
        if meta.epoch != epoch {
            return Err(fenced(version, 2));
        }
        return match (meta.state, commit) {
            (TxnState::Ongoing, _) => {
                complete(st, tid, commit, meta.epoch);
                Ok((-1, -1))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok((-1, -1)),
            _ => invalid_state(),
        };
    }
    // Transaction version 2: every EndTxn bumps the epoch; a retry of one that did (epoch
    // one below the current) is answered with the current id and epoch.
    let retry_on_overflow = meta.prev_producer_id == producer_id
        && epoch == EPOCH_EXHAUSTED
        && meta.epoch == 0
        && meta.prev_producer_id >= 0;
    let retry_on_bump = meta.epoch == epoch.saturating_add(1);
    if meta.producer_id != producer_id && !retry_on_overflow {
        return Err(E::InvalidProducerIdMapping.code());
    }
    let valid_epoch = match meta.state {
        TxnState::Ongoing | TxnState::Empty => epoch == meta.epoch,
        TxnState::CompleteCommit | TxnState::CompleteAbort => {
            retry_on_bump || retry_on_overflow || epoch == meta.epoch
        }
    };
    if !valid_epoch {
        return Err(E::ProducerFenced.code());
    }
    let retry = retry_on_bump || retry_on_overflow;
    let current = (meta.producer_id, meta.epoch);
    match (meta.state, commit) {
        (TxnState::Ongoing, _) => Ok(bump_and_complete(st, tid, commit)),
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if retry => Ok(current),
        (TxnState::CompleteCommit, false) if !retry => Ok(bump_and_complete(st, tid, false)),
        (TxnState::CompleteAbort, false) | (TxnState::Empty, false) => {
            Ok(bump_and_complete(st, tid, false))
        }
        _ => invalid_state(),
    }
}

/// TV2 completion: bump the epoch (a new producer id once the epoch is exhausted), write the
/// markers with the bumped epoch, return the id and epoch the producer continues with.
fn bump_and_complete(st: &mut State, tid: &str, commit: bool) -> (i64, i16) {
    let exhausted = st
        .txns
        .ids
        .get(tid)
        .is_some_and(|m| m.epoch >= EPOCH_EXHAUSTED);
    let next_id = exhausted.then(|| new_producer_id(st));
    let Some(meta) = st.txns.ids.get_mut(tid) else {
        return (-1, -1);
    };
    meta.last_epoch = meta.epoch;
    meta.epoch = meta.epoch.saturating_add(1);
    let marker_epoch = meta.epoch;
    complete(st, tid, commit, marker_epoch);
    let Some(meta) = st.txns.ids.get_mut(tid) else {
        return (-1, -1);
    };
    if let Some(id) = next_id {
        meta.prev_producer_id = meta.producer_id;
        meta.producer_id = id;
        meta.epoch = 0;
    }
    (meta.producer_id, meta.epoch)
}
