//! The transaction coordinator, driven with raw requests: markers, the last stable offset and
//! aborted transactions in Fetch, read_committed ListOffsets, fencing (PRODUCER_FENCED /
//! INVALID_PRODUCER_EPOCH, KIP-360), KIP-447 checks of TxnOffsetCommit, transaction versions 1
//! and 2 (KIP-890), timeouts, intercepts, coordinator placement and broker restarts,
//! compaction under transactions. At the end, ignored (they need Java and the Kafka jars; .ci/run
//! runs them): Kafka's Java transactional producer and read_committed consumer, and a Kafka
//! Streams exactly_once_v2 count, against the mock; and the `*_same_as_real_kafka` tests, which
//! also need real Kafka (`KAFKA_BOOTSTRAP`): the same Java programs with the same input on a
//! mock and on real Kafka, what they committed read back by our read_committed consumer from
//! both and compared.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{wait_until, Raw};
use kafka_client::protocol::record::{BatchBuilder, Compression};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;
use testkit::{ApiKey, Intercept, MockCluster};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn no_configs() -> std::iter::Empty<(String, String)> {
    std::iter::empty()
}

/// A transactional batch of (key, value) records.
fn txn_batch(records: &[(&str, &str)], pid: i64, epoch: i16, seq: i32) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None)
        .producer(pid, epoch, seq)
        .transactional(true);
    for (k, v) in records {
        b.append(1_000, Some(k.as_bytes()), Some(v.as_bytes()), &[])
            .unwrap();
    }
    b.build().unwrap()
}

fn init_req(tid: &str, timeout_ms: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(tid))))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// InitProducerId v5 for a new incarnation: (error, id, epoch).
async fn init(c: &mut Raw, tid: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let r = c.send(5, &init_req(tid, timeout_ms)).await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// InitProducerId, retrying CONCURRENT_TRANSACTIONS (the previous incarnation's transaction
/// being aborted) as clients do.
async fn init_ok(c: &mut Raw, tid: &str) -> (i64, i16) {
    for _ in 0..3 {
        let (code, pid, epoch) = init(c, tid, 60_000).await;
        if code == 0 {
            return (pid, epoch);
        }
        assert_eq!(code, E::ConcurrentTransactions.code());
    }
    panic!("InitProducerId kept answering CONCURRENT_TRANSACTIONS");
}

/// AddPartitionsToTxn at `version` (0-3): the error code of each partition.
async fn add_partitions(
    c: &mut Raw,
    version: i16,
    tid: &str,
    pid: i64,
    epoch: i16,
    parts: &[(&str, i32)],
) -> Vec<i16> {
    let topics = parts
        .iter()
        .map(|(t, p)| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s(t)))
                .with_partitions(vec![*p])
        })
        .collect();
    let r = c
        .send(
            version,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s(tid)))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(topics),
        )
        .await;
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

/// Produce of one batch at `version`, naming `tid` as the transactional id: (error, base offset).
async fn produce(
    c: &mut Raw,
    version: i16,
    tid: Option<&str>,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> (i16, i64) {
    let r = c
        .send(
            version,
            &ProduceRequest::default()
                .with_transactional_id(tid.map(|t| TransactionalId(s(t))))
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch))])]),
        )
        .await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// EndTxn at `version`: (error, producer id, epoch).
async fn end_txn(
    c: &mut Raw,
    version: i16,
    tid: &str,
    pid: i64,
    epoch: i16,
    commit: bool,
) -> (i16, i64, i16) {
    let r = c
        .send(
            version,
            &EndTxnRequest::default()
                .with_transactional_id(TransactionalId(s(tid)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(commit),
        )
        .await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// Fetch v12 of one partition with an isolation level (0 uncommitted, 1 committed).
async fn fetch(
    c: &mut Raw,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> PartitionData {
    let r = c
        .send(
            12,
            &FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(0)
                .with_min_bytes(0)
                .with_max_bytes(1 << 20)
                .with_isolation_level(isolation)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(s(topic)))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20)
                        .with_current_leader_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_last_fetched_epoch(-1)])]),
        )
        .await;
    r.responses[0].partitions[0].clone()
}

/// ListOffsets v7 latest with an isolation level.
async fn latest(c: &mut Raw, topic: &str, partition: i32, isolation: i8) -> i64 {
    let r = c
        .send(
            7,
            &ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation)
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(-1)
                        .with_current_leader_epoch(-1)])]),
        )
        .await;
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

/// (base offset, record count, control?) of each batch in a record set.
fn batches(records: &Option<Bytes>) -> Vec<(i64, i32, bool)> {
    kafka_client::protocol::record::RecordBatches::new(records.clone().unwrap_or_default())
        .map(|b| {
            let h = *b.unwrap().header();
            (h.base_offset, h.record_count, h.is_control())
        })
        .collect()
}

fn aborted(p: &PartitionData) -> Vec<(i64, i64)> {
    p.aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect()
}

/// TxnOffsetCommit of one offset: the partition's error code.
#[allow(clippy::too_many_arguments)]
async fn txn_offset_commit(
    c: &mut Raw,
    version: i16,
    tid: &str,
    group: &str,
    (pid, epoch): (i64, i16),
    (generation, member, instance): (i32, &str, Option<&str>),
    (topic, partition, offset): (&str, i32, i64),
) -> i16 {
    let r = c
        .send(
            version,
            &TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s(tid)))
                .with_group_id(GroupId(s(group)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_generation_id(generation)
                .with_member_id(s(member))
                .with_group_instance_id(instance.map(s))
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1)])]),
        )
        .await;
    r.topics[0].partitions[0].error_code
}

/// OffsetFetch v7 of one partition with require_stable: (error, offset).
async fn offset_fetch_stable(c: &mut Raw, group: &str, topic: &str, partition: i32) -> (i16, i64) {
    let r = c
        .send(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_require_stable(true)
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_indexes(vec![partition])])),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

#[tokio::test]
async fn api_versions_advertise_the_transaction_version() {
    for tv in [1i16, 2] {
        let cluster = MockCluster::builder()
            .transaction_version(tv)
            .build()
            .await
            .unwrap();
        let mut c = Raw::connect(&cluster.bootstrap()).await;
        let r = c.send(3, &ApiVersionsRequest::default()).await;
        let f = r
            .finalized_features
            .iter()
            .find(|f| f.name.as_str() == "transaction.version")
            .expect("transaction.version finalized");
        assert_eq!((f.min_version_level, f.max_version_level), (tv, tv));
        assert!(r.finalized_features_epoch >= 0);
        for api in [
            ApiKey::AddPartitionsToTxn,
            ApiKey::AddOffsetsToTxn,
            ApiKey::EndTxn,
            ApiKey::TxnOffsetCommit,
        ] {
            assert!(
                r.api_keys.iter().any(|k| k.api_key == api as i16),
                "{api:?}"
            );
        }
    }
}

#[tokio::test]
async fn tv1_commit_and_abort_write_markers_and_move_the_last_stable_offset() {
    let cluster = MockCluster::builder()
        .transaction_version(1)
        .build()
        .await
        .unwrap();
    cluster.create_topic("t", 1, no_configs()).unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let (pid, epoch) = init_ok(&mut c, "tx-1").await;
    assert_eq!(epoch, 0);
    // Ending a transaction that never started is INVALID_TXN_STATE.
    assert_eq!(
        end_txn(&mut c, 4, "tx-1", pid, epoch, true).await.0,
        E::InvalidTxnState.code()
    );

    assert_eq!(
        add_partitions(&mut c, 3, "tx-1", pid, epoch, &[("t", 0)]).await,
        [0]
    );
    let batch = txn_batch(&[("a", "1"), ("b", "1")], pid, epoch, 0);
    assert_eq!(
        produce(&mut c, 11, Some("tx-1"), "t", 0, batch).await,
        (0, 0)
    );
    assert_eq!(cluster.high_watermark("t", 0), Some(2));
    assert_eq!(cluster.last_stable_offset("t", 0), Some(0));
    assert_eq!(cluster.open_transactions().len(), 1);
    assert_eq!(cluster.open_transactions()[0].partitions, [("t".into(), 0)]);
    // read_committed sees nothing below the LSO yet; read_uncommitted sees the records.
    let committed = fetch(&mut c, "t", 0, 0, 1).await;
    assert_eq!(
        (committed.high_watermark, committed.last_stable_offset),
        (2, 0)
    );
    assert!(batches(&committed.records).is_empty());
    assert_eq!(
        batches(&fetch(&mut c, "t", 0, 0, 0).await.records),
        [(0, 2, false)]
    );
    assert_eq!(latest(&mut c, "t", 0, 1).await, 0);
    assert_eq!(latest(&mut c, "t", 0, 0).await, 2);

    assert_eq!(end_txn(&mut c, 4, "tx-1", pid, epoch, true).await.0, 0);
    assert!(cluster.open_transactions().is_empty());
    assert_eq!(cluster.high_watermark("t", 0), Some(3)); // the COMMIT marker at 2
    assert_eq!(cluster.last_stable_offset("t", 0), Some(3));
    let committed = fetch(&mut c, "t", 0, 0, 1).await;
    assert_eq!(batches(&committed.records), [(0, 2, false), (2, 1, true)]);
    assert_eq!(committed.last_stable_offset, 3);
    assert!(aborted(&committed).is_empty());
    assert_eq!(latest(&mut c, "t", 0, 1).await, 3);
    // A retried commit is fine; an abort now is not.
    assert_eq!(end_txn(&mut c, 4, "tx-1", pid, epoch, true).await.0, 0);
    assert_eq!(
        end_txn(&mut c, 4, "tx-1", pid, epoch, false).await.0,
        E::InvalidTxnState.code()
    );

    // Second transaction, same epoch under TV1 (sequences go on): aborted.
    assert_eq!(
        add_partitions(&mut c, 3, "tx-1", pid, epoch, &[("t", 0)]).await,
        [0]
    );
    let batch = txn_batch(&[("a", "2")], pid, epoch, 2);
    assert_eq!(
        produce(&mut c, 11, Some("tx-1"), "t", 0, batch).await,
        (0, 3)
    );
    assert_eq!(end_txn(&mut c, 4, "tx-1", pid, epoch, false).await.0, 0);
    assert_eq!(cluster.aborted_transactions("t", 0), [(pid, 3, 4)]);
    let committed = fetch(&mut c, "t", 0, 0, 1).await;
    assert_eq!(aborted(&committed), [(pid, 3)]);
    assert_eq!(committed.last_stable_offset, 5);
    // A fetch past the aborted transaction does not list it.
    assert!(aborted(&fetch(&mut c, "t", 0, 5, 1).await).is_empty());
    // read_uncommitted gets no aborted list.
    assert!(fetch(&mut c, "t", 0, 0, 0)
        .await
        .aborted_transactions
        .is_none());
    let seen: Vec<_> = cluster
        .committed_records("t", 0)
        .into_iter()
        .map(|(o, k, _)| (o, k.unwrap()))
        .collect();
    assert_eq!(seen, [(0, Bytes::from("a")), (1, Bytes::from("b"))]);
    assert_eq!(cluster.transactions()[0].state, "CompleteAbort");
}

#[tokio::test]
async fn a_partition_not_in_the_transaction_is_refused_under_tv1() {
    let cluster = MockCluster::builder()
        .transaction_version(1)
        .build()
        .await
        .unwrap();
    cluster.create_topic("t", 2, no_configs()).unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let (pid, epoch) = init_ok(&mut c, "tx-not-added").await;
    assert_eq!(
        add_partitions(&mut c, 3, "tx-not-added", pid, epoch, &[("t", 0)]).await,
        [0]
    );
    for version in [9, 11, 12] {
        let batch = txn_batch(&[("k", "v")], pid, epoch, 0);
        assert_eq!(
            produce(&mut c, version, Some("tx-not-added"), "t", 1, batch)
                .await
                .0,
            E::InvalidTxnState.code(),
            "Produce v{version}"
        );
    }
    assert_eq!(cluster.high_watermark("t", 1), Some(0));
    // Unknown partitions fail, the others are not attempted.
    assert_eq!(
        add_partitions(
            &mut c,
            3,
            "tx-not-added",
            pid,
            epoch,
            &[("t", 1), ("nope", 0)]
        )
        .await,
        [
            E::OperationNotAttempted.code(),
            E::UnknownTopicOrPartition.code()
        ]
    );
    // An unknown transactional id.
    assert_eq!(
        add_partitions(&mut c, 3, "tx-unknown", pid, epoch, &[("t", 1)]).await,
        [E::InvalidProducerIdMapping.code()]
    );
}

#[tokio::test]
async fn tv2_produce_and_txn_offset_commit_add_implicitly_and_end_txn_bumps_the_epoch() {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster.create_topic("t", 1, no_configs()).unwrap();
    cluster.create_topic("in", 1, no_configs()).unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let tid = "tx-v2";
    let (pid, e0) = init_ok(&mut c, tid).await;
    assert_eq!(e0, 0);
    // Produce v12 naming its transactional id adds the partition: no AddPartitionsToTxn.
    let batch = txn_batch(&[("k", "1")], pid, e0, 0);
    assert_eq!(produce(&mut c, 12, Some(tid), "t", 0, batch).await, (0, 0));
    assert_eq!(cluster.open_transactions()[0].partitions, [("t".into(), 0)]);
    // TxnOffsetCommit v5 adds the group: no AddOffsetsToTxn.
    let code =
        txn_offset_commit(&mut c, 5, tid, "g", (pid, e0), (-1, "", None), ("in", 0, 7)).await;
    assert_eq!(code, 0);
    assert_eq!(cluster.open_transactions()[0].groups, ["g"]);
    assert_eq!(
        offset_fetch_stable(&mut c, "g", "in", 0).await.0,
        E::UnstableOffsetCommit.code()
    );
    assert_eq!(cluster.committed_offset("g", "in", 0), None);

    // EndTxn v5 commits and hands back the bumped epoch.
    let (code, id, e1) = end_txn(&mut c, 5, tid, pid, e0, true).await;
    assert_eq!((code, id, e1), (0, pid, e0 + 1));
    assert_eq!(offset_fetch_stable(&mut c, "g", "in", 0).await, (0, 7));
    assert_eq!(cluster.committed_offset("g", "in", 0), Some(7));
    // The marker carries the new epoch, so the old one is fenced on the partition.
    let stale = txn_batch(&[("k", "x")], pid, e0, 1);
    assert_eq!(
        produce(&mut c, 12, Some(tid), "t", 0, stale).await.0,
        E::InvalidProducerEpoch.code()
    );
    // A retry of the commit (the old epoch) is answered with the current id and epoch.
    assert_eq!(end_txn(&mut c, 5, tid, pid, e0, true).await, (0, pid, e1));
    // ... but an abort with the old epoch is not a retry of anything.
    assert_eq!(
        end_txn(&mut c, 5, tid, pid, e0, false).await.0,
        E::InvalidTxnState.code()
    );

    // The next transaction starts at sequence 0 with the new epoch, and aborts.
    let batch = txn_batch(&[("k", "2")], pid, e1, 0);
    assert_eq!(produce(&mut c, 12, Some(tid), "t", 0, batch).await, (0, 2));
    let code =
        txn_offset_commit(&mut c, 5, tid, "g", (pid, e1), (-1, "", None), ("in", 0, 9)).await;
    assert_eq!(code, 0);
    let (code, _, e2) = end_txn(&mut c, 5, tid, pid, e1, false).await;
    assert_eq!((code, e2), (0, e1 + 1));
    assert_eq!(
        cluster.committed_offset("g", "in", 0),
        Some(7),
        "aborted offsets are dropped"
    );
    assert_eq!(cluster.aborted_transactions("t", 0), [(pid, 2, 3)]);
    // TV2 allows an abort with nothing in the transaction (and bumps); a commit is refused.
    assert_eq!(
        end_txn(&mut c, 5, tid, pid, e2, false).await,
        (0, pid, e2 + 1)
    );
    assert_eq!(
        end_txn(&mut c, 5, tid, pid, e2 + 1, true).await.0,
        E::InvalidTxnState.code()
    );
    // An epoch that is neither current nor a retry is fenced.
    assert_eq!(
        end_txn(&mut c, 5, tid, pid, e0, false).await.0,
        E::ProducerFenced.code()
    );
}

#[tokio::test]
async fn a_new_incarnation_aborts_the_open_transaction_and_fences_the_old_producer() {
    let cluster = MockCluster::builder()
        .transaction_version(1)
        .build()
        .await
        .unwrap();
    cluster.create_topic("t", 1, no_configs()).unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let tid = "tx-fence";
    let (pid, e0) = init_ok(&mut c, tid).await;
    assert_eq!(
        add_partitions(&mut c, 3, tid, pid, e0, &[("t", 0)]).await,
        [0]
    );
    let batch = txn_batch(&[("k", "v")], pid, e0, 0);
    assert_eq!(produce(&mut c, 11, Some(tid), "t", 0, batch).await, (0, 0));

    // The new incarnation: Kafka aborts the open transaction and says to retry.
    assert_eq!(
        init(&mut c, tid, 60_000).await.0,
        E::ConcurrentTransactions.code()
    );
    assert!(cluster.open_transactions().is_empty());
    assert_eq!(cluster.aborted_transactions("t", 0), [(pid, 0, 1)]);
    assert_eq!(cluster.last_stable_offset("t", 0), Some(2));
    let (code, pid2, e2) = init(&mut c, tid, 60_000).await;
    assert_eq!((code, pid2, e2), (0, pid, e0 + 2));

    // The old producer is fenced everywhere, with the code its request version knows.
    assert_eq!(
        add_partitions(&mut c, 3, tid, pid, e0, &[("t", 0)]).await,
        [E::ProducerFenced.code()]
    );
    assert_eq!(
        add_partitions(&mut c, 1, tid, pid, e0, &[("t", 0)]).await,
        [E::InvalidProducerEpoch.code()]
    );
    assert_eq!(
        end_txn(&mut c, 3, tid, pid, e0, true).await.0,
        E::ProducerFenced.code()
    );
    assert_eq!(
        end_txn(&mut c, 1, tid, pid, e0, true).await.0,
        E::InvalidProducerEpoch.code()
    );
    let batch = txn_batch(&[("k", "late")], pid, e0, 1);
    assert_eq!(
        produce(&mut c, 11, Some(tid), "t", 0, batch).await.0,
        E::InvalidProducerEpoch.code()
    );

    // KIP-360: the current producer bumps its own epoch; a retry of that gets the same answer;
    // an older epoch or another producer id is fenced.
    let kip360 = |pid: i64, epoch: i16| {
        init_req(tid, 60_000)
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
    };
    let r = c.send(4, &kip360(pid, e2)).await;
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (0, pid, e2 + 1)
    );
    let r = c.send(4, &kip360(pid, e2)).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, e2 + 1));
    let r = c.send(4, &kip360(pid, e0)).await;
    assert_eq!(r.error_code, E::ProducerFenced.code());
    let r = c.send(3, &kip360(pid, e0)).await;
    assert_eq!(r.error_code, E::InvalidProducerEpoch.code());
    let r = c.send(4, &kip360(pid + 1000, 0)).await;
    assert_eq!(r.error_code, E::ProducerFenced.code());

    // Timeouts above transaction.max.timeout.ms (15 min), or not positive, and empty ids.
    assert_eq!(
        init(&mut c, tid, 900_001).await.0,
        E::InvalidTransactionTimeout.code()
    );
    assert_eq!(
        init(&mut c, tid, 0).await.0,
        E::InvalidTransactionTimeout.code()
    );
    assert_eq!(init(&mut c, "", 1000).await.0, E::InvalidRequest.code());
    // Idempotent producers still get plain ids.
    let r = c
        .send(5, &init_req("x", 1000).with_transactional_id(None))
        .await;
    assert_eq!((r.error_code, r.producer_epoch), (0, 0));
}

#[tokio::test]
async fn txn_offset_commit_is_checked_against_the_group_kip_447() {
    let cluster = MockCluster::builder()
        .transaction_version(1)
        .build()
        .await
        .unwrap();
    cluster.create_topic("in", 1, no_configs()).unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    // A static member joins: generation 1.
    let join = c
        .send(
            7,
            &JoinGroupRequest::default()
                .with_group_id(GroupId(s("g447")))
                .with_session_timeout_ms(30_000)
                .with_rebalance_timeout_ms(5_000)
                .with_member_id(s(""))
                .with_group_instance_id(Some(s("instance-1")))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"m"))]),
        )
        .await;
    assert_eq!(join.error_code, 0);
    let (member, generation) = (join.member_id.to_string(), join.generation_id);

    let tid = "tx-447";
    let (pid, epoch) = init_ok(&mut c, tid).await;
    // TV1: the group must be added first.
    let code = txn_offset_commit(
        &mut c,
        3,
        tid,
        "g447",
        (pid, epoch),
        (generation, &member, Some("instance-1")),
        ("in", 0, 5),
    )
    .await;
    assert_eq!(code, E::InvalidTxnState.code());
    let r = c
        .send(
            3,
            &AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(s(tid)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_group_id(GroupId(s("g447"))),
        )
        .await;
    assert_eq!(r.error_code, 0);

    type Who<'a> = (i32, &'a str, Option<&'a str>);
    let cases: [(Who, i16); 4] = [
        (
            (generation + 1, &member, Some("instance-1")),
            E::IllegalGeneration.code(),
        ),
        (
            (generation, "someone-else", None),
            E::UnknownMemberId.code(),
        ),
        (
            (generation, "someone-else", Some("instance-1")),
            E::FencedInstanceId.code(),
        ),
        ((generation, &member, Some("instance-1")), 0),
    ];
    for (who, expected) in cases {
        let code = txn_offset_commit(&mut c, 3, tid, "g447", (pid, epoch), who, ("in", 0, 5)).await;
        assert_eq!(code, expected, "{who:?}");
    }
    // A stale producer epoch is fenced (v3+: PRODUCER_FENCED; v2: INVALID_PRODUCER_EPOCH).
    let who = (generation, member.as_str(), Some("instance-1"));
    let code = txn_offset_commit(&mut c, 3, tid, "g447", (pid, epoch - 1), who, ("in", 0, 5)).await;
    assert_eq!(code, E::ProducerFenced.code());
    let code = txn_offset_commit(
        &mut c,
        2,
        tid,
        "g447",
        (pid, epoch - 1),
        (-1, "", None),
        ("in", 0, 5),
    )
    .await;
    assert_eq!(code, E::InvalidProducerEpoch.code());

    assert_eq!(cluster.committed_offset("g447", "in", 0), None);
    assert_eq!(end_txn(&mut c, 3, tid, pid, epoch, true).await.0, 0);
    assert_eq!(cluster.committed_offset("g447", "in", 0), Some(5));
}

#[tokio::test]
async fn a_timed_out_transaction_is_aborted_and_its_producer_fenced() {
    for tv in [1i16, 2] {
        let cluster = MockCluster::builder()
            .transaction_version(tv)
            .build()
            .await
            .unwrap();
        cluster.create_topic("t", 1, no_configs()).unwrap();
        let mut c = Raw::connect(&cluster.bootstrap()).await;
        let tid = "tx-timeout";
        let (code, pid, e0) = init(&mut c, tid, 300).await;
        assert_eq!(code, 0);
        assert_eq!(
            add_partitions(&mut c, 3, tid, pid, e0, &[("t", 0)]).await,
            [0]
        );
        let started = Instant::now();
        let batch = txn_batch(&[("k", "v")], pid, e0, 0);
        assert_eq!(produce(&mut c, 11, Some(tid), "t", 0, batch).await, (0, 0));
        wait_until(
            "the coordinator aborts the timed-out transaction",
            || async { cluster.open_transactions().is_empty() },
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_millis(300 + 1500),
            "aborted {:?} after the transaction started (timeout 300 ms)",
            started.elapsed()
        );
        assert_eq!(cluster.aborted_transactions("t", 0), [(pid, 0, 1)]);
        assert_eq!(cluster.last_stable_offset("t", 0), Some(2));
        // Fenced: one bump under TV1, two under TV2 (the fence, then the abort's bump).
        let info = &cluster.transactions()[0];
        assert_eq!(
            (info.state, info.producer_epoch),
            ("CompleteAbort", e0 + tv)
        );
        let version = if tv == 2 { 5 } else { 4 };
        assert_eq!(
            end_txn(&mut c, version, tid, pid, e0, true).await.0,
            E::ProducerFenced.code(),
            "TV{tv}"
        );
        let batch = txn_batch(&[("k", "late")], pid, e0, 1);
        assert_eq!(
            produce(&mut c, 11, Some(tid), "t", 0, batch).await.0,
            E::InvalidProducerEpoch.code()
        );
    }
}

#[tokio::test]
async fn intercepts_apply_to_the_transaction_apis() {
    let cluster = MockCluster::builder()
        .transaction_version(1)
        .build()
        .await
        .unwrap();
    cluster.create_topic("t", 1, no_configs()).unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let tid = "tx-intercepted";
    cluster.intercept(
        ApiKey::InitProducerId,
        Intercept::error(E::CoordinatorLoadInProgress),
    );
    assert_eq!(
        init(&mut c, tid, 60_000).await.0,
        E::CoordinatorLoadInProgress.code()
    );
    let (pid, epoch) = init_ok(&mut c, tid).await;

    cluster.intercept(
        ApiKey::AddPartitionsToTxn,
        Intercept::error(E::NotCoordinator).for_partition("t", 0),
    );
    assert_eq!(
        add_partitions(&mut c, 3, tid, pid, epoch, &[("t", 0)]).await,
        [E::NotCoordinator.code()]
    );
    assert!(
        cluster.open_transactions().is_empty(),
        "the intercepted request was not served"
    );
    assert_eq!(
        add_partitions(&mut c, 3, tid, pid, epoch, &[("t", 0)]).await,
        [0]
    );

    cluster.intercept(
        ApiKey::EndTxn,
        Intercept::error(E::ConcurrentTransactions).times(2),
    );
    for _ in 0..2 {
        assert_eq!(
            end_txn(&mut c, 4, tid, pid, epoch, true).await.0,
            E::ConcurrentTransactions.code()
        );
    }
    assert_eq!(cluster.open_transactions().len(), 1);

    cluster.intercept(ApiKey::TxnOffsetCommit, Intercept::error(E::NotCoordinator));
    let code = txn_offset_commit(
        &mut c,
        3,
        tid,
        "g",
        (pid, epoch),
        (-1, "", None),
        ("t", 0, 1),
    )
    .await;
    assert_eq!(code, E::NotCoordinator.code());
    cluster.intercept(
        ApiKey::AddOffsetsToTxn,
        Intercept::error(E::ConcurrentTransactions),
    );
    let r = c
        .send(
            3,
            &AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(s(tid)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_group_id(GroupId(s("g"))),
        )
        .await;
    assert_eq!(r.error_code, E::ConcurrentTransactions.code());

    cluster.intercept(ApiKey::EndTxn, Intercept::drop_connection());
    let lost = c
        .try_send(
            4,
            &EndTxnRequest::default()
                .with_transactional_id(TransactionalId(s(tid)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(true),
        )
        .await;
    assert!(lost.is_none());
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    assert_eq!(end_txn(&mut c, 4, tid, pid, epoch, true).await.0, 0);
    assert!(cluster.open_transactions().is_empty());
}

/// The address of the transaction coordinator of `tid`, by FindCoordinator v3 and v4.
async fn txn_coordinator(bootstrap: &str, tid: &str) -> String {
    let mut c = Raw::connect(bootstrap.split(',').next().unwrap()).await;
    let v3 = c
        .send(
            3,
            &FindCoordinatorRequest::default()
                .with_key(s(tid))
                .with_key_type(1),
        )
        .await;
    assert_eq!(v3.error_code, 0);
    let v4 = c
        .send(
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s(tid), s("other")]),
        )
        .await;
    assert_eq!(v4.coordinators.len(), 2);
    assert_eq!(v4.coordinators[0].node_id, v3.node_id);
    format!("{}:{}", v3.host, v3.port)
}

#[tokio::test]
async fn the_coordinator_moves_with_a_stopped_broker_and_open_transactions_survive() {
    let cluster = MockCluster::builder()
        .brokers(3)
        .transaction_version(1)
        .build()
        .await
        .unwrap();
    cluster.create_topic("t", 3, no_configs()).unwrap();
    let tid = "tx-moving";
    let coordinator = txn_coordinator(&cluster.bootstrap(), tid).await;
    // Any other broker answers NOT_COORDINATOR.
    let (_, other) = cluster
        .brokers()
        .into_iter()
        .find(|(_, a)| a.to_string() != coordinator)
        .unwrap();
    let mut wrong = Raw::connect(&other.to_string()).await;
    assert_eq!(
        init(&mut wrong, tid, 60_000).await.0,
        E::NotCoordinator.code()
    );

    let mut c = Raw::connect(&coordinator).await;
    let (pid, epoch) = init_ok(&mut c, tid).await;
    let leader = cluster.leader("t", 0).unwrap();
    let leader_addr = cluster
        .brokers()
        .into_iter()
        .find(|(id, _)| *id == leader)
        .unwrap()
        .1;
    assert_eq!(
        add_partitions(&mut c, 3, tid, pid, epoch, &[("t", 0)]).await,
        [0]
    );
    let mut p = Raw::connect(&leader_addr.to_string()).await;
    let batch = txn_batch(&[("k", "v")], pid, epoch, 0);
    assert_eq!(produce(&mut p, 11, Some(tid), "t", 0, batch).await.0, 0);

    let coordinator_id = cluster
        .brokers()
        .into_iter()
        .find(|(_, a)| a.to_string() == coordinator)
        .unwrap()
        .0;
    cluster.stop_broker(coordinator_id).await.unwrap();
    let bootstrap = other.to_string();
    let moved = txn_coordinator(&bootstrap, tid).await;
    assert_ne!(moved, coordinator);
    assert_eq!(
        cluster.open_transactions().len(),
        1,
        "the open transaction survives"
    );
    let mut c = Raw::connect(&moved).await;
    assert_eq!(end_txn(&mut c, 4, tid, pid, epoch, true).await.0, 0);
    assert_eq!(cluster.committed_records("t", 0).len(), 1);
    cluster.restart_broker(coordinator_id).await.unwrap();
    // Back on its first broker, which knows the committed transaction.
    assert_eq!(
        txn_coordinator(&cluster.bootstrap(), tid).await,
        coordinator
    );
    let mut c = Raw::connect(&coordinator).await;
    assert_eq!(end_txn(&mut c, 4, tid, pid, epoch, true).await.0, 0);
}

#[tokio::test]
async fn compaction_stops_at_the_last_stable_offset_and_keeps_markers() {
    let cluster = MockCluster::builder()
        .transaction_version(1)
        .compaction_interval(None)
        .build()
        .await
        .unwrap();
    cluster
        .create_topic("c", 1, [("cleanup.policy", "compact")])
        .unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let tid = "tx-compact";
    let (pid, epoch) = init_ok(&mut c, tid).await;
    let mut seq = 0;
    let mut txn = |records: &'static [(&'static str, &'static str)]| {
        let b = txn_batch(records, pid, epoch, seq);
        seq += records.len() as i32;
        b
    };
    // Committed a=1 b=1 (0, 1; marker 2), aborted a=2 (3; marker 4), open b=2 (5).
    let (b1, b2, b3) = (
        txn(&[("a", "1"), ("b", "1")]),
        txn(&[("a", "2")]),
        txn(&[("b", "2")]),
    );
    for (batch, commit) in [(b1, Some(true)), (b2, Some(false)), (b3, None)] {
        assert_eq!(
            add_partitions(&mut c, 3, tid, pid, epoch, &[("c", 0)]).await,
            [0]
        );
        assert_eq!(produce(&mut c, 11, Some(tid), "c", 0, batch).await.0, 0);
        if let Some(commit) = commit {
            assert_eq!(end_txn(&mut c, 4, tid, pid, epoch, commit).await.0, 0);
        }
    }
    assert_eq!(cluster.last_stable_offset("c", 0), Some(5));
    cluster.compact("c").unwrap();
    let kv = |cluster: &MockCluster| -> Vec<(i64, String, String)> {
        cluster
            .records("c", 0)
            .into_iter()
            .map(|(o, k, v)| {
                let text = |b: Option<Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
                (o, text(k), text(v))
            })
            .collect()
    };
    // The aborted a=2 neither survives nor replaces a=1; b=2 above the LSO does not replace
    // b=1 yet; both markers stay.
    assert_eq!(
        kv(&cluster),
        [
            (0, "a".into(), "1".into()),
            (1, "b".into(), "1".into()),
            (5, "b".into(), "2".into())
        ]
    );
    let all = fetch(&mut c, "c", 0, 0, 0).await;
    let markers: Vec<i64> = batches(&all.records)
        .into_iter()
        .filter(|b| b.2)
        .map(|b| b.0)
        .collect();
    assert_eq!(markers, [2, 4]);
    assert_eq!(end_txn(&mut c, 4, tid, pid, epoch, true).await.0, 0);
    cluster.compact("c").unwrap();
    assert_eq!(
        kv(&cluster),
        [(0, "a".into(), "1".into()), (5, "b".into(), "2".into())]
    );
    let committed = fetch(&mut c, "c", 0, 0, 1).await;
    assert_eq!(committed.last_stable_offset, 7);
    assert_eq!(aborted(&committed), [(pid, 3)]);
}

#[tokio::test]
async fn a_read_committed_long_poll_wakes_up_on_the_commit() {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster.create_topic("t", 1, no_configs()).unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let tid = "tx-poll";
    let (pid, epoch) = init_ok(&mut c, tid).await;
    let batch = txn_batch(&[("k", "v")], pid, epoch, 0);
    assert_eq!(produce(&mut c, 12, Some(tid), "t", 0, batch).await.0, 0);
    let bootstrap = cluster.bootstrap();
    let poll = tokio::spawn(async move {
        let mut f = Raw::connect(&bootstrap).await;
        let r = f
            .send(
                12,
                &FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(10_000)
                    .with_min_bytes(1)
                    .with_max_bytes(1 << 20)
                    .with_isolation_level(1)
                    .with_session_epoch(-1)
                    .with_topics(vec![FetchTopic::default()
                        .with_topic(TopicName(s("t")))
                        .with_partitions(vec![FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1 << 20)
                            .with_current_leader_epoch(-1)
                            .with_log_start_offset(-1)
                            .with_last_fetched_epoch(-1)])]),
            )
            .await;
        r.responses[0].partitions[0].clone()
    });
    wait_until("the long poll arrived", || async {
        common::received(&cluster, ApiKey::Fetch) >= 1
    })
    .await;
    let started = Instant::now();
    assert_eq!(end_txn(&mut c, 5, tid, pid, epoch, true).await.0, 0);
    let got = poll.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(got.last_stable_offset, 2);
    assert_eq!(batches(&got.records), [(0, 1, false), (1, 1, true)]);
}

/// `java -cp <Kafka jars> scripts/java/Transactions.java ARGS`, stdout and stdin piped.
fn java_transactions(args: &[&str]) -> std::process::Child {
    use std::process::{Command, Stdio};
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(repo.join("scripts/kafka"))
        .arg("classpath")
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/kafka: {e}"));
    assert!(
        out.status.success(),
        "this test needs the Kafka jars: run scripts/kafka fetch ({})",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Command::new("java")
        .arg("-cp")
        .arg(String::from_utf8_lossy(&out.stdout).trim())
        .arg(repo.join("scripts/java/Transactions.java"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs Java on PATH: {e}"))
}

/// Runs Transactions.java to the end (on a blocking thread: the mock serves meanwhile) and
/// returns its stdout lines; panics when it fails.
async fn java_lines(args: &[&str]) -> Vec<String> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = java_transactions(&args)
            .wait_with_output()
            .expect("java runs");
        assert!(
            out.status.success(),
            "Transactions.java {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .lines()
            .map(str::to_owned)
            .collect()
    })
    .await
    .unwrap()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ------------------------------------------------------------------ Java, on the mock and on real Kafka
//
// The Java programs run with the same input against a fresh mock and, in the *_same_as_real_kafka
// tests, against the real broker of KAFKA_BOOTSTRAP; what they produced is read back with a
// read_committed consumer of our kafka-client (not the mock's internal views, so the same
// reader serves both brokers) and the two outcomes must be equal.

/// Our client's settings for reading back what the Java programs produced.
fn client(bootstrap: &str) -> kafka_client::ClientConfig {
    kafka_client::ClientConfig::new(bootstrap)
        .expect("bootstrap address")
        .with_client_id("testkit-java-checks")
        .with_request_timeout(Duration::from_secs(15))
}

/// The real broker to compare the mock with; panics (saying what to do) when unset.
fn real_kafka() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
        panic!(
            "this test compares the mock with real Kafka: export \
             KAFKA_BOOTSTRAP=$(scripts/kafka start NAME) (.ci/run runs it in kafka_client_tests)"
        )
    })
}

/// Creates `(name, partitions)` topics (replication factor 1) through the broker's
/// CreateTopics, the same way on the mock and on real Kafka.
async fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    use kafka_client::{Admin, NewTopic};
    Admin::new(client(bootstrap))
        .await
        .expect("admin client")
        .create_topics(
            topics
                .iter()
                .map(|(name, partitions)| NewTopic::new(*name, *partitions, 1))
                .collect(),
        )
        .await
        .expect("create topics");
}

/// The high watermarks of `topic`'s partitions `0..partitions`.
async fn high_watermarks(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use kafka_client::{Admin, OffsetSpec, TopicPartition};
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let listed = Admin::new(client(bootstrap))
        .await
        .expect("admin client")
        .list_offsets(
            tps.iter()
                .map(|tp| (tp.clone(), OffsetSpec::Latest))
                .collect(),
        )
        .await
        .expect("list offsets");
    tps.iter().map(|tp| listed[tp].offset).collect()
}

/// Everything a read_committed consumer of our kafka-client reads from `topic`'s partitions
/// `0..partitions`, per partition in offset order. Each partition is read up to its high
/// watermark, not just its last stable offset: a transaction left open fails the read
/// (within 60 s) instead of hiding records.
async fn read_committed(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> Vec<Vec<kafka_client::ConsumerRecord>> {
    use kafka_client::consumer::IsolationLevel;
    use kafka_client::{Consumer, ConsumerConfig, Offset, TopicPartition};
    let ends = high_watermarks(bootstrap, topic, partitions).await;
    let mut consumer = Consumer::new(
        client(bootstrap),
        ConsumerConfig::default()
            .with_isolation_level(IsolationLevel::ReadCommitted)
            .with_fetch_max_wait(Duration::from_millis(100)),
    )
    .await
    .expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone());
    for tp in &tps {
        consumer.seek(tp, Offset::Earliest).await.expect("seek");
    }
    let mut out = vec![Vec::new(); partitions as usize];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let behind: Vec<(i32, Option<i64>, Option<i64>, i64)> = tps
            .iter()
            .zip(&ends)
            .filter(|(tp, end)| consumer.position(tp).is_none_or(|p| p < **end))
            .map(|(tp, end)| {
                let p = tp.partition;
                (
                    p,
                    consumer.position(tp),
                    consumer.last_stable_offset(tp),
                    *end,
                )
            })
            .collect();
        if behind.is_empty() {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} at {bootstrap}: read_committed did not reach the high watermarks in 60 s \
             (a transaction left open?); (partition, position, last stable offset, high \
             watermark): {behind:?}"
        );
        // recv is cancel-safe; the timeout lets the positions move past trailing markers.
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            let r = r.expect("read_committed consumer");
            out[r.partition as usize].push(r);
        }
    }
}

fn utf8(b: &Option<Bytes>) -> String {
    String::from_utf8(b.as_deref().expect("not null").to_vec()).expect("UTF-8")
}

/// A client of `group` that never joins it, for [`group_offsets`].
async fn group_reader(bootstrap: &str, group: &str) -> kafka_client::GroupConsumer {
    use kafka_client::{ConsumerConfig, GroupConfig, GroupConsumer};
    GroupConsumer::new(
        client(bootstrap),
        ConsumerConfig::default(),
        GroupConfig::new(group),
    )
    .await
    .expect("group client")
}

/// The group's committed offsets of `topic`'s partitions `0..partitions`, from the group
/// coordinator (OffsetFetch; offsets of open transactions are waited for).
async fn group_offsets(
    reader: &kafka_client::GroupConsumer,
    topic: &str,
    partitions: i32,
) -> Vec<Option<i64>> {
    use kafka_client::TopicPartition;
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let committed = reader.committed(&tps).await.expect("committed offsets");
    tps.iter().map(|tp| committed[tp]).collect()
}

/// The names one run of Transactions.java uses (unique: real Kafka keeps topics, groups and
/// transactional ids).
struct JavaTxnNames {
    topic: String,
    txid: String,
    group: String,
    fence_topic: String,
    fence_txid: String,
}

impl JavaTxnNames {
    fn unique() -> Self {
        JavaTxnNames {
            topic: testkit::unique_name("jt"),
            txid: testkit::unique_name("java-tx"),
            group: testkit::unique_name("java-group"),
            fence_topic: testkit::unique_name("jt-fence"),
            fence_txid: testkit::unique_name("java-fence"),
        }
    }
}

/// What Transactions.java's `produce` and `fence` runs left on a broker, as read back by
/// Kafka's Java read_committed consumer and by ours: nothing in it depends on offsets,
/// timing or names, so the mock's must equal real Kafka's.
#[derive(Debug, PartialEq)]
struct JavaTxnOutcome {
    /// `produce`'s stdout: "COMMITTED KEY VALUE" per record of a committed transaction, in
    /// commit order.
    produced: Vec<String>,
    /// Our read_committed consumer, per partition of the 3 in offset order: (key, value).
    committed: Vec<Vec<(String, String)>>,
    /// The Java read_committed consumer's "KEY VALUE" lines, sorted (its order across
    /// partitions is its polls').
    java_consumed: Vec<String>,
    /// The group's committed offsets of the topic's partitions (sendOffsetsToTransaction).
    group_offsets: Vec<Option<i64>>,
    /// `fence`'s stdout: the fenced producer's failure (exception class) and the commit of
    /// the one that fenced it.
    fence: Vec<String>,
    /// Our read_committed consumer on the fence topic (1 partition).
    fence_committed: Vec<Vec<(String, String)>>,
    /// The Java read_committed consumer on the fence topic.
    fence_java_consumed: Vec<String>,
}

/// Runs Transactions.java `produce` (4 transactions, 0 and 2 committed, 1 and 3 aborted, each
/// committing the offset i+1 of partition 0 for the group), `consume` and `fence` against
/// `bootstrap` and reads back what they left.
async fn java_transactions_run(bootstrap: &str, n: &JavaTxnNames) -> JavaTxnOutcome {
    create_topics(bootstrap, &[(&n.topic, 3), (&n.fence_topic, 1)]).await;
    let produced = java_lines(&["produce", bootstrap, &n.topic, &n.txid, "4", &n.group]).await;
    let java_consumed = sorted(java_lines(&["consume", bootstrap, &n.topic]).await);
    let fence = java_lines(&["fence", bootstrap, &n.fence_topic, &n.fence_txid]).await;
    let fence_java_consumed = sorted(java_lines(&["consume", bootstrap, &n.fence_topic]).await);
    let key_values = |parts: Vec<Vec<kafka_client::ConsumerRecord>>| -> Vec<Vec<(String, String)>> {
        parts
            .iter()
            .map(|p| p.iter().map(|r| (utf8(&r.key), utf8(&r.value))).collect())
            .collect()
    };
    JavaTxnOutcome {
        produced,
        committed: key_values(read_committed(bootstrap, &n.topic, 3).await),
        java_consumed,
        group_offsets: group_offsets(&group_reader(bootstrap, &n.group).await, &n.topic, 3).await,
        fence,
        fence_committed: key_values(read_committed(bootstrap, &n.fence_topic, 1).await),
        fence_java_consumed,
    }
}

/// What Transactions.java must have left on any broker.
fn check_java_transactions(o: &JavaTxnOutcome, broker: &str) {
    use kafka_client::producer::partitioner::partition_for_key;
    // Transactions 0 and 2 committed, in that order; 1 and 3 aborted.
    let expected: Vec<(String, String)> = [0, 2]
        .iter()
        .flat_map(|i| (0..3).map(move |j| (format!("t{i}-r{j}"), format!("v{i}-{j}"))))
        .collect();
    let lines = |prefix: &str| -> Vec<String> {
        expected
            .iter()
            .map(|(k, v)| format!("{prefix}{k}\t{v}"))
            .collect()
    };
    assert_eq!(o.produced, lines("COMMITTED\t"), "{broker}");
    // (The aborted transactions may have left nothing in the logs: Java drops the batches it
    // has not sent yet when it aborts. Either way no read_committed consumer sees them.)
    assert_eq!(o.java_consumed, sorted(lines("")), "{broker}");
    // Per partition (Java's default partitioner: murmur2 of the key) in commit order.
    let per_partition: Vec<Vec<(String, String)>> = (0..3)
        .map(|p| {
            expected
                .iter()
                .filter(|(k, _)| partition_for_key(k.as_bytes(), 3) == p)
                .cloned()
                .collect()
        })
        .collect();
    assert_eq!(o.committed, per_partition, "{broker}");
    // The offsets of the last committed transaction, i = 2.
    assert_eq!(o.group_offsets, [Some(3), None, None], "{broker}");
    // A second producer with the same id fences the first and aborts its transaction.
    assert!(
        o.fence.len() == 2
            && o.fence[0].starts_with("FENCED\t")
            && o.fence[1] == "COMMITTED\tsurvivor\tb",
        "{broker}: {:?}",
        o.fence
    );
    let survivor = vec![("survivor".to_owned(), "b".to_owned())];
    assert_eq!(o.fence_committed, [survivor], "{broker}");
    assert_eq!(o.fence_java_consumed, ["survivor\tb"], "{broker}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Java and the Kafka jars; .ci/run runs it"]
async fn java_transactional_producer_and_read_committed_consumer_against_the_mock() {
    for tv in [2i16, 1] {
        let cluster = MockCluster::builder()
            .brokers(2)
            .transaction_version(tv)
            .build()
            .await
            .unwrap();
        let names = JavaTxnNames::unique();
        let outcome = java_transactions_run(&cluster.bootstrap(), &names).await;
        check_java_transactions(&outcome, &format!("the mock, TV{tv}"));
        assert!(cluster.open_transactions().is_empty(), "TV{tv}");
        let info = cluster
            .transactions()
            .into_iter()
            .find(|t| t.transactional_id == names.txid)
            .expect("the producer's transactional id");
        // Under TV2 every EndTxn bumps the epoch (4 transactions); TV1 keeps it.
        let expected_epoch = if tv == 2 { 4 } else { 0 };
        assert_eq!(info.producer_epoch, expected_epoch, "TV{tv}: {info:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP), Java and the Kafka jars; .ci/run runs it"]
async fn java_transactional_producer_on_the_mock_same_as_real_kafka() {
    let real = real_kafka();
    // Transaction version 2, as the real broker (Kafka 4's default).
    let cluster = MockCluster::builder().brokers(2).build().await.unwrap();
    let on_mock = java_transactions_run(&cluster.bootstrap(), &JavaTxnNames::unique()).await;
    let on_kafka = java_transactions_run(&real, &JavaTxnNames::unique()).await;
    check_java_transactions(&on_mock, "the mock");
    check_java_transactions(&on_kafka, &format!("real Kafka at {real}"));
    assert_eq!(
        on_mock, on_kafka,
        "the mock (left) and real Kafka (right) differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Java and the Kafka jars; .ci/run runs it"]
async fn java_producer_whose_transaction_timed_out_cannot_commit_it() {
    use std::io::{BufRead, Write};
    for tv in [2i16, 1] {
        let cluster = MockCluster::builder()
            .transaction_version(tv)
            .build()
            .await
            .unwrap();
        cluster.create_topic("jtt", 1, no_configs()).unwrap();
        let mut child =
            java_transactions(&["timeout", &cluster.bootstrap(), "jtt", "java-timeout"]);
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = tokio::time::timeout(Duration::from_secs(60), lines.recv()).await;
        assert_eq!(first.unwrap().as_deref(), Some("SENT"), "TV{tv}");
        assert_eq!(cluster.open_transactions().len(), 1);
        wait_until(
            "the coordinator aborts the Java producer's transaction",
            || async { cluster.open_transactions().is_empty() },
        )
        .await;
        child.stdin.take().unwrap().write_all(b"commit\n").unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(60), lines.recv()).await;
        let outcome = outcome.unwrap().unwrap_or_default();
        assert!(outcome.starts_with("COMMIT FAILED\t"), "TV{tv}: {outcome}");
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "TV{tv}");
        assert!(cluster.committed_records("jtt", 0).is_empty(), "TV{tv}");
        assert_eq!(
            cluster.last_stable_offset("jtt", 0),
            cluster.high_watermark("jtt", 0)
        );
    }
}

/// What StreamsCount.java (a Kafka Streams exactly_once_v2 count per key) left on a broker,
/// as our read_committed consumer reads it back: per key, in offset order, the (partition,
/// count) of each committed update. A key's updates all come from the task of its input
/// partition, so their order is deterministic (unlike the interleaving of keys).
#[derive(Debug, PartialEq)]
struct StreamsOutcome {
    /// The output topic.
    counts: std::collections::BTreeMap<String, Vec<(i32, i64)>>,
    /// The count store's changelog (`APP-counts-changelog`, 8-byte big-endian counts).
    changelog: std::collections::BTreeMap<String, Vec<(i32, i64)>>,
    /// The application's committed offsets of the input partitions.
    input_offsets: Vec<Option<i64>>,
    /// The input partitions' high watermarks.
    input_ends: Vec<i64>,
}

/// How many records StreamsCount.java counts.
const STREAMS_INPUT: usize = 60;

/// The input, (key, partition) in order: 60 records over 7 keys, key i % 7 to partition
/// (i % 7) % 3 (not where a keyed producer would put them: counts are per key, whichever
/// partition a key is in).
fn streams_input() -> Vec<(String, i32)> {
    (0..STREAMS_INPUT)
        .map(|i| (format!("k{}", i % 7), ((i % 7) % 3) as i32))
        .collect()
}

/// Produces the input with our producer, runs StreamsCount.java until the application has
/// committed every input offset, stops it (gracefully) and reads back what it committed.
async fn streams_count_run(bootstrap: &str) -> StreamsOutcome {
    use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
    use std::collections::BTreeMap;
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};
    let input = testkit::unique_name("words");
    let output = testkit::unique_name("counts");
    let app = testkit::unique_name("count-app");
    create_topics(bootstrap, &[(&input, 3), (&output, 3)]).await;
    let producer = Producer::new(client(bootstrap), ProducerConfig::default())
        .await
        .expect("producer");
    let mut deliveries = Vec::new();
    for (key, partition) in streams_input() {
        let record = ProducerRecord::new(&input)
            .partition(partition)
            .key(key)
            .value("w");
        deliveries.push(producer.send(record).await.expect("send"));
    }
    producer.flush().await;
    for d in deliveries {
        d.await.expect("input delivered");
    }
    producer.close().await.expect("close producer");
    let input_ends = high_watermarks(bootstrap, &input, 3).await;

    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cp = Command::new(repo.join("scripts/kafka"))
        .arg("classpath-of")
        .arg(repo.join("benches/peers/kstreams/pom.xml"))
        .output()
        .expect("scripts/kafka runs");
    assert!(
        cp.status.success(),
        "{}",
        String::from_utf8_lossy(&cp.stderr)
    );
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(String::from_utf8_lossy(&cp.stdout).trim())
        .arg(repo.join("scripts/java/StreamsCount.java"))
        .args([bootstrap, &input, &output, &app])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("this test needs Java on PATH");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(120), lines.recv()).await;
    assert_eq!(
        first.expect("StreamsCount.java starts in 120 s").as_deref(),
        Some("RUNNING"),
        "{bootstrap}"
    );
    // Done when the application committed (transactionally) every input offset.
    let app_offsets = group_reader(bootstrap, &app).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let committed = group_offsets(&app_offsets, &input, 3).await;
        if committed
            .iter()
            .zip(&input_ends)
            .all(|(c, e)| *c == Some(*e))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{bootstrap}: Kafka Streams did not commit the input offsets {input_ends:?} in 90 s \
             (committed: {committed:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.stdin.take().unwrap().write_all(b"stop\n").unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{bootstrap}: StreamsCount.java {status}");

    let per_key = |parts: Vec<Vec<kafka_client::ConsumerRecord>>, decode: fn(&[u8]) -> i64| {
        let mut m: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
        for r in parts.iter().flatten() {
            let value = r.value.as_deref().expect("not a tombstone");
            m.entry(utf8(&r.key))
                .or_default()
                .push((r.partition, decode(value)));
        }
        m
    };
    let decimal = |v: &[u8]| -> i64 { std::str::from_utf8(v).unwrap().parse().unwrap() };
    let big_endian = |v: &[u8]| -> i64 {
        i64::from_be_bytes(v.try_into().expect("an 8-byte Long in the changelog"))
    };
    StreamsOutcome {
        counts: per_key(read_committed(bootstrap, &output, 3).await, decimal),
        changelog: per_key(
            read_committed(bootstrap, &format!("{app}-counts-changelog"), 3).await,
            big_endian,
        ),
        input_offsets: group_offsets(&app_offsets, &input, 3).await,
        input_ends,
    }
}

/// What StreamsCount.java must have left on any broker: exactly once, per key the committed
/// updates are 1, 2, .. n, once each, n the key's count, in the changelog partition of its
/// input partition and in one output partition.
fn check_streams_count(o: &StreamsOutcome, broker: &str) {
    use std::collections::BTreeMap;
    let mut expected: BTreeMap<String, (i32, i64)> = BTreeMap::new();
    for (key, partition) in streams_input() {
        expected.entry(key).or_insert((partition, 0)).1 += 1;
    }
    assert_eq!(
        o.counts.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{broker}: output keys"
    );
    assert_eq!(
        o.changelog.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{broker}: changelog keys"
    );
    for (key, (input_partition, n)) in &expected {
        let counts = &o.counts[key];
        let out_partition = counts[0].0;
        let want: Vec<(i32, i64)> = (1..=*n).map(|c| (out_partition, c)).collect();
        assert_eq!(counts, &want, "{broker}: output updates of {key}");
        let want: Vec<(i32, i64)> = (1..=*n).map(|c| (*input_partition, c)).collect();
        assert_eq!(&o.changelog[key], &want, "{broker}: changelog of {key}");
    }
    assert_eq!(
        o.input_ends.iter().sum::<i64>(),
        STREAMS_INPUT as i64,
        "{broker}"
    );
    let ends: Vec<Option<i64>> = o.input_ends.iter().map(|e| Some(*e)).collect();
    assert_eq!(o.input_offsets, ends, "{broker}: committed input offsets");
}

/// A mock for Kafka Streams: no background compaction, as real Kafka never cleans the
/// active segment, so a fresh changelog keeps every update on both.
async fn streams_mock() -> MockCluster {
    MockCluster::builder()
        .compaction_interval(None)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Java and the Kafka jars; .ci/run runs it"]
async fn kafka_streams_exactly_once_v2_counts_against_the_mock() {
    let cluster = streams_mock().await;
    let outcome = streams_count_run(&cluster.bootstrap()).await;
    check_streams_count(&outcome, "the mock");
    assert!(cluster.open_transactions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP), Java and the Kafka jars; .ci/run runs it"]
async fn kafka_streams_exactly_once_v2_counts_on_the_mock_same_as_real_kafka() {
    let real = real_kafka();
    let cluster = streams_mock().await;
    let on_mock = streams_count_run(&cluster.bootstrap()).await;
    let on_kafka = streams_count_run(&real).await;
    check_streams_count(&on_mock, "the mock");
    check_streams_count(&on_kafka, &format!("real Kafka at {real}"));
    assert_eq!(
        on_mock, on_kafka,
        "the mock (left) and real Kafka (right) differ"
    );
}
