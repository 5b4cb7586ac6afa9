//! Consumer groups against the mock cluster (default) or real Kafka (`KAFKA_BOOTSTRAP`):
//! balanced assignment, a member's death, static membership, cooperative rebalancing,
//! commits, reset policy, and mixed groups with a Java member.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::group::{consumer_config, covers, describe, wait_until, Env, Tracker};
use common::unique;
use kafka_client::consumer::AutoOffsetReset;
use kafka_client::group::{CooperativeStickyAssignor, GroupConsumer, RoundRobinAssignor};
use kafka_client::{Error, TopicPartition};

const WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_twelve_partitions_evenly_then_a_dead_member_is_replaced() {
    let env = Env::new(1).await;
    let topic = env.topic("group-share", 12).await;
    let group = unique("g-share");
    env.produce(&topic, 12, 5).await;

    let a = env.member("a", env.group(&group), &topic, true).await;
    let b = env.member("b", env.group(&group), &topic, true).await;
    let c = env.member("c", env.group(&group), &topic, true).await;
    let all = [&a, &b, &c];
    wait_until(
        WAIT,
        "three members with four partitions each, everything consumed and committed",
        || {
            let views: Vec<_> = all.iter().map(|m| m.view()).collect();
            covers(&views, 12)
                && views.iter().all(|v| v.owned.len() == 4)
                && views.iter().map(|v| v.committed.len()).sum::<usize>() == 12
                && views
                    .iter()
                    .flat_map(|v| v.committed.values())
                    .all(|&o| o == 5)
        },
        || describe(&all),
    )
    .await;
    let generation = a.view().generation;
    assert!(
        all.iter().all(|m| m.view().generation == generation),
        "{}",
        describe(&all)
    );

    // c dies without LeaveGroup; more records arrive while it is dead.
    let dead = c.kill().await;
    env.produce(&topic, 12, 3).await;
    let survivors = [&a, &b];
    let took = wait_until(
        WAIT,
        "the survivors own all twelve partitions",
        || covers(&survivors.iter().map(|m| m.view()).collect::<Vec<_>>(), 12),
        || describe(&survivors),
    )
    .await;
    assert!(
        took >= env.session_timeout / 2,
        "rebalanced after {took:?}: before the session timeout?"
    );
    wait_until(
        WAIT,
        "the dead member's new records consumed",
        || {
            let got: usize = survivors
                .iter()
                .map(|m| {
                    m.view()
                        .records
                        .iter()
                        .filter(|(p, _)| dead.owned.contains(p))
                        .count()
                })
                .sum();
            got >= dead.owned.len() * 3
        },
        || describe(&survivors),
    )
    .await;
    // Nothing before the dead member's last commit came again.
    for m in survivors {
        let v = m.view();
        for &(p, offset) in &v.records {
            if let Some(&committed) = dead.committed.get(&p) {
                assert!(
                    offset >= committed,
                    "{}: {p}@{offset} again, committed {committed}",
                    m.name
                );
            }
        }
        // Each record of the dead member's partitions once.
        let mut seen = BTreeSet::new();
        for r in v.records.iter().filter(|(p, _)| dead.owned.contains(p)) {
            assert!(seen.insert(*r), "{}: {r:?} twice", m.name);
        }
    }
    assert!(a.view().generation > generation);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarts_without_a_rebalance() {
    let env = Env::new(1).await;
    let topic = env.topic("group-static", 6).await;
    let group = unique("g-static");
    env.produce(&topic, 6, 2).await;

    let a = env.member("a", env.group(&group), &topic, true).await;
    wait_until(
        WAIT,
        "a owns everything",
        || a.view().owned.len() == 6,
        || describe(&[&a]),
    )
    .await;
    let static_config = || {
        env.group(&group)
            .with_group_instance_id("worker-b")
            .with_session_timeout(env.session_timeout * 3)
    };
    let b = env.member("b", static_config(), &topic, true).await;
    wait_until(
        WAIT,
        "a and b share the partitions",
        || covers(&[a.view(), b.view()], 6) && b.view().owned.len() == 3,
        || describe(&[&a, &b]),
    )
    .await;
    let before = a.view();
    let b_before = b.view();
    b.close().await;

    // Back within the session timeout, under the same instance id.
    let b2 = env.member("b2", static_config(), &topic, true).await;
    wait_until(
        WAIT,
        "the restarted static member has its partitions back",
        || b2.view().owned == b_before.owned,
        || describe(&[&a, &b2]),
    )
    .await;
    assert_eq!(
        b2.view().generation,
        b_before.generation,
        "{}",
        describe(&[&a, &b2])
    );
    // A rebalance, had one been started, would reach both members with their next
    // heartbeats and commits: let them consume and commit one more round, and (on the
    // mock, where requests are counted) heartbeat several times.
    let heartbeats = |env: &Env| {
        env.mock.as_ref().map_or(0, |m| {
            m.requests()
                .iter()
                .filter(|r| r.api_key == kafka_protocol::messages::ApiKey::Heartbeat)
                .count()
        })
    };
    let heartbeats_before = heartbeats(&env);
    let records_before = a.view().records.len() + b2.view().records.len();
    env.produce(&topic, 6, 2).await;
    wait_until(
        WAIT,
        "both members consume and commit another round",
        || {
            let (va, vb) = (a.view(), b2.view());
            va.records.len() + vb.records.len() >= records_before + 12
                && (0..6)
                    .all(|p| va.committed.get(&p).max(vb.committed.get(&p)).copied() == Some(4))
        },
        || describe(&[&a, &b2]),
    )
    .await;
    if env.mock.is_some() {
        wait_until(
            WAIT,
            "the members heartbeat several more times",
            || heartbeats(&env) >= heartbeats_before + 6,
            || describe(&[&a, &b2]),
        )
        .await;
    }
    let after = a.view();
    assert_eq!(
        after.generation,
        before.generation,
        "{}",
        describe(&[&a, &b2])
    );
    assert_eq!(
        after.events,
        before.events,
        "a saw a rebalance: {}",
        describe(&[&a, &b2])
    );
    a.close().await;
    b2.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_rebalancing_revokes_only_what_moves() {
    let env = Env::new(1).await;
    let topic = env.topic("group-coop", 8).await;
    let group = unique("g-coop");
    env.produce(&topic, 8, 2).await;
    let coop = || {
        env.group(&group)
            .with_assignors(vec![Arc::new(CooperativeStickyAssignor::default())])
    };
    let a = env.member("a", coop(), &topic, true).await;
    wait_until(
        WAIT,
        "a owns everything",
        || a.view().owned.len() == 8,
        || describe(&[&a]),
    )
    .await;
    let b = env.member("b", coop(), &topic, true).await;
    wait_until(
        WAIT,
        "a and b own four each",
        || covers(&[a.view(), b.view()], 8) && a.view().owned.len() == 4,
        || describe(&[&a, &b]),
    )
    .await;
    let v = a.view();
    // a never gave up the four it kept: one revocation of exactly the four that moved.
    let revoked: Vec<&String> = v
        .events
        .iter()
        .filter(|e| e.starts_with("revoked"))
        .collect();
    assert_eq!(revoked.len(), 1, "{:?}", v.events);
    assert!(
        v.events.iter().all(|e| !e.starts_with("lost")),
        "{:?}",
        v.events
    );
    // a kept consuming its partitions during the rebalance: new records there arrive.
    let kept: Vec<i32> = v.owned.iter().copied().collect();
    env.produce(&topic, 8, 1).await;
    wait_until(
        WAIT,
        "a receives new records of the partitions it kept",
        || {
            a.view()
                .records
                .iter()
                .filter(|(p, o)| kept.contains(p) && *o == 2)
                .count()
                == kept.len()
        },
        || describe(&[&a, &b]),
    )
    .await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundrobin_and_commits_survive_a_restart_of_the_group() {
    let env = Env::new(1).await;
    let topic = env.topic("group-rr", 4).await;
    let group = unique("g-rr");
    env.produce(&topic, 4, 10).await;
    let config = env
        .group(&group)
        .with_assignors(vec![Arc::new(RoundRobinAssignor)]);
    let mut consumer = GroupConsumer::new(env.client(), consumer_config(), config.clone())
        .await
        .unwrap();
    consumer.subscribe([topic.as_str()]);
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for _ in 0..20 {
        let r = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap()
            .unwrap();
        last.insert(r.partition, r.offset);
    }
    assert_eq!(consumer.assignment().len(), 4);
    consumer.commit().await.unwrap();
    let tps: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new(&topic, p)).collect();
    let committed = consumer.committed(&tps).await.unwrap();
    for tp in &tps {
        assert_eq!(committed[tp], consumer.position(tp), "{tp}");
    }
    // An async commit of explicit offsets, awaited later.
    let pending = consumer.commit_offsets_async([(tps[0].clone(), 1)]);
    pending.await.unwrap();
    assert_eq!(
        consumer.committed(&tps[..1]).await.unwrap()[&tps[0]],
        Some(1)
    );
    consumer.commit().await.unwrap();
    consumer.close().await.unwrap();

    // A new member resumes from the commits: exactly the 20 records not yet read.
    let mut again = GroupConsumer::new(env.client(), consumer_config(), config)
        .await
        .unwrap();
    again.subscribe([topic.as_str()]);
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let r = tokio::time::timeout(WAIT, again.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            last.get(&r.partition).is_none_or(|&l| r.offset > l),
            "{}@{} again",
            r.partition,
            r.offset
        );
        assert!(seen.insert((r.partition, r.offset)));
    }
    again.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_policy_none_names_the_partition_without_a_commit() {
    let env = Env::new(1).await;
    let topic = env.topic("group-none", 1).await;
    let group = unique("g-none");
    env.produce(&topic, 1, 1).await;
    let mut consumer = GroupConsumer::new(
        env.client(),
        consumer_config().with_auto_offset_reset(AutoOffsetReset::None),
        env.group(&group),
    )
    .await
    .unwrap();
    consumer.subscribe([topic.as_str()]);
    let err = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap_err();
    match &err {
        Error::NoPosition {
            topic: t,
            partition,
        } => assert_eq!((t.as_str(), *partition), (topic.as_str(), 0)),
        other => panic!("expected NoPosition, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("{topic}/0")), "{err}");
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_the_group() {
    let env = Env::new(1).await;
    let topic = env.topic("group-poll", 2).await;
    let group = unique("g-poll");
    env.produce(&topic, 2, 1).await;
    let mut slow = GroupConsumer::new(
        env.client(),
        consumer_config(),
        env.group(&group)
            .with_max_poll_interval(Duration::from_secs(2))
            .with_rebalance_timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let (tracker, slow_view) = Tracker::new();
    slow.set_listener(tracker);
    slow.subscribe([topic.as_str()]);
    let _ = tokio::time::timeout(WAIT, slow.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(slow.assignment().len(), 2);
    let first_generation = slow.generation();
    let other = env.member("other", env.group(&group), &topic, false).await;
    // `slow` never polls again; after max_poll_interval it leaves and `other` gets both.
    wait_until(
        WAIT,
        "the live member owns both",
        || other.view().owned.len() == 2,
        || describe(&[&other]),
    )
    .await;
    // When `slow` polls again it learns it lost its partitions and rejoins: it gets one
    // partition back in a later generation and reads it (nothing was committed) from 0.
    let record = tokio::time::timeout(WAIT, slow.recv())
        .await
        .expect("slow reads again after rejoining")
        .expect("recv after rejoining");
    assert_eq!(record.offset, 0);
    let events = slow_view.lock().unwrap().events.clone();
    assert_eq!(
        events.len(),
        3,
        "assigned, lost, assigned again: {events:?}"
    );
    assert!(events[0].starts_with("assigned"), "{events:?}");
    assert_eq!(events[1], "lost [0, 1]", "{events:?}");
    assert!(events[2].starts_with("assigned"), "{events:?}");
    assert!(slow.generation() > first_generation);
    assert_eq!(slow.assignment().len(), 1);
    wait_until(
        WAIT,
        "the live member gives one partition to the rejoined one",
        || other.view().owned.len() == 1,
        || describe(&[&other]),
    )
    .await;
    let mine = slow.assignment()[0].partition;
    assert!(!other.view().owned.contains(&mine));
    other.close().await;
    slow.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_describes_a_group_and_reads_its_commits_from_outside() {
    let env = Env::new(1).await;
    let topic = env.topic("group-describe", 2).await;
    let group = unique("g-describe");
    env.produce(&topic, 2, 3).await;
    let admin = kafka_client::Admin::new(env.client()).await.unwrap();
    let tps: Vec<TopicPartition> = (0..2).map(|p| TopicPartition::new(&topic, p)).collect();

    // Before anyone joined: no such group, nothing committed.
    let none = admin.describe_group(&group).await.unwrap();
    assert!(none.members.is_empty(), "{none:?}");
    assert!(matches!(none.state.as_str(), "Dead" | "Empty"), "{none:?}");
    let committed = admin.committed_offsets(&group, &tps).await.unwrap();
    assert_eq!(committed[&tps[0]], None);

    let config = env.group(&group).with_group_instance_id("w1");
    let mut consumer = GroupConsumer::new(env.client(), consumer_config(), config)
        .await
        .unwrap();
    consumer.subscribe([topic.as_str()]);
    for _ in 0..6 {
        tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap()
            .unwrap();
    }
    consumer.commit().await.unwrap();

    let described = admin.describe_group(&group).await.unwrap();
    assert_eq!(described.state, "Stable", "{described:?}");
    assert_eq!(described.protocol_type, "consumer");
    assert_eq!(described.members.len(), 1, "{described:?}");
    let member = &described.members[0];
    assert_eq!(member.member_id, consumer.member_id());
    assert_eq!(member.group_instance_id.as_deref(), Some("w1"));
    let subscription = member.subscription.as_ref().expect("decoded subscription");
    assert_eq!(subscription.topics, vec![topic.clone()]);
    let mut assigned = member.assignment.as_ref().unwrap().partitions.clone();
    assigned.sort();
    assert_eq!(assigned, tps);

    let committed = admin.committed_offsets(&group, &tps).await.unwrap();
    for tp in &tps {
        assert_eq!(committed[tp], Some(3), "{tp}");
    }
    consumer.close().await.unwrap();
}
