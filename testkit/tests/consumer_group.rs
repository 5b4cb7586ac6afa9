//! The group coordinator over the wire: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, DescribeGroups, ListGroups, OffsetCommit, OffsetFetch.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Raw;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;
use testkit::MockCluster;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn join_req(member: &str, meta: &'static [u8]) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(5_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(meta))])
}

async fn coordinator(cluster: &MockCluster, group: &str) -> String {
    let first = cluster.bootstrap().split(',').next().unwrap().to_owned();
    let mut c = Raw::connect(&first).await;
    let r = c
        .send(3, &FindCoordinatorRequest::default().with_key(s(group)))
        .await;
    assert_eq!(r.error_code, 0);
    let r4 = c
        .send(
            4,
            &FindCoordinatorRequest::default().with_coordinator_keys(vec![s(group)]),
        )
        .await;
    assert_eq!(r4.coordinators[0].node_id, r.node_id);
    format!("{}:{}", r.host, r.port)
}

/// Whether `check` holds for the state and member count of group "g" (DescribeGroups on a
/// connection of its own).
async fn group_state(addr: &str, check: impl Fn(&str, usize) -> bool) -> bool {
    let mut c = Raw::connect(addr).await;
    let d = c
        .send(
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]),
        )
        .await;
    let g = &d.groups[0];
    check(g.group_state.as_str(), g.members.len())
}

/// Joins with MEMBER_ID_REQUIRED handling; returns the join response.
async fn join(c: &mut Raw, meta: &'static [u8]) -> JoinGroupResponse {
    let first = c.send(7, &join_req("", meta)).await;
    assert_eq!(first.error_code, E::MemberIdRequired.code());
    assert!(!first.member_id.is_empty());
    c.send(7, &join_req(&first.member_id, meta)).await
}

#[tokio::test]
async fn two_members_join_sync_heartbeat_leave() {
    let cluster = MockCluster::builder().brokers(3).build().await.unwrap();
    let addr = coordinator(&cluster, "g").await;
    let mut a = Raw::connect(&addr).await;
    let mut b = Raw::connect(&addr).await;

    // A alone: generation 1, A leads.
    let ja = join(&mut a, b"meta-a").await;
    assert_eq!((ja.error_code, ja.generation_id), (0, 1));
    assert_eq!(ja.leader, ja.member_id);
    let sa = a
        .send(
            5,
            &SyncGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(1)
                .with_member_id(ja.member_id.clone())
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")))
                .with_assignments(vec![SyncGroupRequestAssignment::default()
                    .with_member_id(ja.member_id.clone())
                    .with_assignment(Bytes::from_static(b"all"))]),
        )
        .await;
    assert_eq!((sa.error_code, &sa.assignment[..]), (0, &b"all"[..]));

    // B joins: A learns of the rebalance from its heartbeat and rejoins.
    let b_join = tokio::spawn(async move {
        let r = join(&mut b, b"meta-b").await;
        (b, r)
    });
    common::wait_until("B's join puts the group into PreparingRebalance", || {
        group_state(&addr, |state, _| state == "PreparingRebalance")
    })
    .await;
    let hb = a
        .send(
            4,
            &HeartbeatRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(1)
                .with_member_id(ja.member_id.clone()),
        )
        .await;
    assert_eq!(hb.error_code, E::RebalanceInProgress.code());
    let ja2 = a.send(7, &join_req(&ja.member_id, b"meta-a")).await;
    let (mut b, jb) = b_join.await.unwrap();
    assert_eq!((ja2.error_code, jb.error_code), (0, 0));
    assert_eq!((ja2.generation_id, jb.generation_id), (2, 2));
    assert_eq!(ja2.leader, ja.member_id, "the leader stays");
    let mut metas: Vec<Vec<u8>> = ja2.members.iter().map(|m| m.metadata.to_vec()).collect();
    metas.sort();
    assert_eq!(
        metas,
        vec![b"meta-a".to_vec(), b"meta-b".to_vec()],
        "member metadata passes through untouched"
    );
    assert!(jb.members.is_empty());

    // B syncs first and waits for the leader's assignment.
    let bid = jb.member_id.clone();
    let b_sync = tokio::spawn(async move {
        let r = b
            .send(
                3,
                &SyncGroupRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_generation_id(2)
                    .with_member_id(bid),
            )
            .await;
        (b, r)
    });
    common::wait_until("the coordinator has B's SyncGroup", || {
        let n = common::received(&cluster, ApiKey::SyncGroup);
        async move { n >= 2 }
    })
    .await;
    assert!(
        !b_sync.is_finished(),
        "B's sync must wait for the leader's assignment"
    );
    let assignments = vec![
        SyncGroupRequestAssignment::default()
            .with_member_id(ja.member_id.clone())
            .with_assignment(Bytes::from_static(b"p0")),
        SyncGroupRequestAssignment::default()
            .with_member_id(jb.member_id.clone())
            .with_assignment(Bytes::from_static(b"p1")),
    ];
    let sa = a
        .send(
            3,
            &SyncGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(2)
                .with_member_id(ja.member_id.clone())
                .with_assignments(assignments),
        )
        .await;
    let (mut b, sb) = b_sync.await.unwrap();
    assert_eq!(
        (&sa.assignment[..], &sb.assignment[..]),
        (&b"p0"[..], &b"p1"[..])
    );

    // Heartbeats: fine, stale generation, unknown member.
    let hb = |gen: i32, member: &StrBytes| {
        HeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_generation_id(gen)
            .with_member_id(member.clone())
    };
    assert_eq!(b.send(4, &hb(2, &jb.member_id)).await.error_code, 0);
    assert_eq!(
        b.send(4, &hb(1, &jb.member_id)).await.error_code,
        E::IllegalGeneration.code()
    );
    assert_eq!(
        b.send(4, &hb(2, &s("ghost"))).await.error_code,
        E::UnknownMemberId.code()
    );

    // Describe and list.
    let d = a
        .send(
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]),
        )
        .await;
    assert_eq!(d.groups[0].group_state.as_str(), "Stable");
    assert_eq!(d.groups[0].protocol_data.as_str(), "range");
    assert_eq!(d.groups[0].members.len(), 2);
    let l = a.send(4, &ListGroupsRequest::default()).await;
    assert_eq!(l.groups.len(), 1);

    // B leaves; A's heartbeat sees the rebalance; A alone gets generation 3.
    let leave = b
        .send(
            3,
            &LeaveGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_members(vec![leave_group_request::MemberIdentity::default()
                    .with_member_id(jb.member_id.clone())]),
        )
        .await;
    assert_eq!(leave.members[0].error_code, 0);
    assert_eq!(
        a.send(4, &hb(2, &ja.member_id)).await.error_code,
        E::RebalanceInProgress.code()
    );
    let ja3 = a.send(7, &join_req(&ja.member_id, b"meta-a")).await;
    assert_eq!(
        (ja3.error_code, ja3.generation_id, ja3.members.len()),
        (0, 3, 1)
    );
}

#[tokio::test]
async fn silent_member_is_evicted_after_its_session_timeout() {
    let cluster = MockCluster::builder()
        .group_min_session_timeout(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let addr = cluster.bootstrap();
    let mut a = Raw::connect(&addr).await;
    let mut req = join_req("", b"m");
    req.session_timeout_ms = 300;
    let first = a.send(5, &req).await;
    req.member_id = first.member_id.clone();
    let j = a.send(5, &req).await;
    assert_eq!(j.error_code, 0);
    a.send(
        3,
        &SyncGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_generation_id(j.generation_id)
            .with_member_id(j.member_id.clone()),
    )
    .await;
    common::wait_until("the silent member's session expires", || {
        group_state(&addr, |_, members| members == 0)
    })
    .await;
    let hb = a
        .send(
            4,
            &HeartbeatRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(j.generation_id)
                .with_member_id(j.member_id.clone()),
        )
        .await;
    assert_eq!(hb.error_code, E::UnknownMemberId.code());
    // Kafka's bounds apply by default.
    let strict = MockCluster::builder().build().await.unwrap();
    let mut c = Raw::connect(&strict.bootstrap()).await;
    let mut req = join_req("", b"m");
    req.session_timeout_ms = 300;
    assert_eq!(
        c.send(5, &req).await.error_code,
        E::InvalidSessionTimeout.code()
    );
}

#[tokio::test]
async fn static_member_rejoins_without_a_rebalance() {
    let cluster = MockCluster::builder().build().await.unwrap();
    let mut a = Raw::connect(&cluster.bootstrap()).await;
    let mut req = join_req("", b"m");
    req.group_instance_id = Some(s("instance-1"));
    let j = a.send(7, &req).await;
    assert_eq!(
        j.error_code, 0,
        "static members need no MEMBER_ID_REQUIRED round"
    );
    a.send(
        5,
        &SyncGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_generation_id(j.generation_id)
            .with_member_id(j.member_id.clone())
            .with_group_instance_id(Some(s("instance-1")))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(j.member_id.clone())
                .with_assignment(Bytes::from_static(b"x"))]),
    )
    .await;
    // The process restarts: same instance id, no member id.
    let mut b = Raw::connect(&cluster.bootstrap()).await;
    let j2 = b.send(7, &req).await;
    assert_eq!(j2.error_code, 0);
    assert_ne!(j2.member_id, j.member_id);
    // The old incarnation is fenced.
    let hb = a
        .send(
            4,
            &HeartbeatRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(j.generation_id)
                .with_member_id(j.member_id.clone())
                .with_group_instance_id(Some(s("instance-1"))),
        )
        .await;
    assert_eq!(hb.error_code, E::FencedInstanceId.code());
}

#[tokio::test]
async fn offsets_commit_and_fetch() {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster
        .create_topic("t", 2, std::iter::empty::<(String, String)>())
        .unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    let commit = |gen: i32, member: &str, offset: i64| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s("og")))
            .with_generation_id_or_member_epoch(gen)
            .with_member_id(s(member))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_metadata(Some(s("meta"))),
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(9)
                        .with_committed_offset(offset),
                ])])
    };
    // Simple (group-less) commit.
    for v in [2i16, 8] {
        let r = c.send(v, &commit(-1, "", 42)).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        assert_eq!(
            r.topics[0].partitions[1].error_code,
            E::UnknownTopicOrPartition.code()
        );
    }
    assert_eq!(cluster.committed_offset("og", "t", 0), Some(42));
    // A wrong member of an empty group is refused.
    assert_eq!(
        c.send(8, &commit(3, "who", 1)).await.topics[0].partitions[0].error_code,
        E::UnknownMemberId.code()
    );
    let fetch_old = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("og")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partition_indexes(vec![0, 1])]));
    for v in [1i16, 5, 7] {
        let r = c.send(v, &fetch_old).await;
        let p = &r.topics[0].partitions;
        assert_eq!(
            (p[0].committed_offset, p[0].metadata.as_deref()),
            (42, Some("meta"))
        );
        assert_eq!(p[1].committed_offset, -1);
    }
    let all = c
        .send(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(s("og")))
                .with_topics(None),
        )
        .await;
    assert_eq!(all.topics.len(), 1);
    let multi = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("og")))
            .with_topics(None),
    ]);
    let r = c.send(8, &multi).await;
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 42);
}
