//! Consumer-group faults injected through the mock cluster's control API (always on a mock,
//! also when KAFKA_BOOTSTRAP names real Kafka): the coordinator moves or is loading, the group rebalances under a member,
//! the member's generation or id is refused, a connection drops in the middle of SyncGroup.
//! In every case the member recovers and rejoins, consumes everything, and no committed
//! offset is lost or moved backwards.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::group::{describe, wait_until, Env, Member};
use common::unique;
use kafka_protocol::messages::ApiKey;
use testkit::{Intercept, KafkaCode, MockCluster};

const WAIT: Duration = Duration::from_secs(30);
const PARTITIONS: i32 = 4;
const PER_ROUND: usize = 10;

/// A member consuming (and committing every record) while `fault` is injected.
struct Run {
    env: Arc<Env>,
    topic: String,
    group: String,
    member: Member,
    violations: Arc<Mutex<Vec<String>>>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Run {
    /// Starts a member and waits until the first round is consumed and committed.
    async fn start(brokers: usize) -> Run {
        let env = Arc::new(Env::mock(brokers).await);
        let topic = env.topic("group-faults", PARTITIONS).await;
        let group = unique("g-faults");
        env.produce(&topic, PARTITIONS, PER_ROUND).await;
        let member = env.member("m", env.group(&group), &topic, true).await;
        wait_until(
            WAIT,
            "first round committed",
            || {
                member
                    .view()
                    .committed
                    .values()
                    .filter(|&&o| o == PER_ROUND as i64)
                    .count()
                    == PARTITIONS as usize
            },
            || describe(&[&member]),
        )
        .await;
        let violations = Arc::new(Mutex::new(Vec::new()));
        let watcher = tokio::spawn(watch(
            env.clone(),
            group.clone(),
            topic.clone(),
            violations.clone(),
        ));
        Run {
            env,
            topic,
            group,
            member,
            violations,
            watcher,
        }
    }

    fn mock(&self) -> &MockCluster {
        self.env.mock.as_ref().expect("mock")
    }

    /// Waits until the member's partitions are lost (not revoked).
    async fn wait_lost(&self) {
        wait_until(
            WAIT,
            "partitions lost",
            || {
                self.member
                    .view()
                    .events
                    .iter()
                    .any(|e| e.starts_with("lost"))
            },
            || describe(&[&self.member]),
        )
        .await;
    }

    /// Produces a second round and waits until it is consumed and committed; checks that
    /// committed offsets only ever moved forward.
    async fn finish(self) -> common::group::View {
        self.env.produce(&self.topic, PARTITIONS, PER_ROUND).await;
        let end = 2 * PER_ROUND as i64;
        let mock = self.mock();
        wait_until(
            WAIT,
            "second round consumed and committed",
            || {
                (0..PARTITIONS)
                    .all(|p| mock.committed_offset(&self.group, &self.topic, p) == Some(end))
                    && self.member.view().owned.len() == PARTITIONS as usize
            },
            || describe(&[&self.member]),
        )
        .await;
        self.watcher.abort();
        let violations = self.violations.lock().unwrap().clone();
        assert!(
            violations.is_empty(),
            "committed offsets moved back or vanished: {violations:?}"
        );
        let view = self.member.view();
        // Every record was delivered (at least once).
        for p in 0..PARTITIONS {
            for o in 0..end {
                assert!(
                    view.records.contains(&(p, o)),
                    "{p}@{o} never delivered: {}",
                    describe(&[&self.member])
                );
            }
        }
        self.member.close().await;
        view
    }

    /// [`finish`](Self::finish), returning the number of FindCoordinator requests seen.
    async fn finish_keep(self) -> usize {
        let env = self.env.clone();
        self.finish().await;
        count(env.mock.as_ref().expect("mock"), ApiKey::FindCoordinator)
    }
}

/// Records any committed offset that decreases or disappears.
async fn watch(env: Arc<Env>, group: String, topic: String, violations: Arc<Mutex<Vec<String>>>) {
    let mock = env.mock.as_ref().expect("mock");
    let mut last: Vec<Option<i64>> = vec![None; PARTITIONS as usize];
    loop {
        for p in 0..PARTITIONS {
            let now = mock.committed_offset(&group, &topic, p);
            let before = last[p as usize];
            if before.is_some() && now.is_none_or(|n| Some(n) < before) {
                violations
                    .lock()
                    .unwrap()
                    .push(format!("{p}: {before:?} -> {now:?}"));
            }
            last[p as usize] = now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn count(mock: &MockCluster, api: ApiKey) -> usize {
    mock.requests().iter().filter(|r| r.api_key == api).count()
}

/// Waits until the mock has seen at least `n` requests of `api`.
async fn wait_requests(run: &Run, api: ApiKey, n: usize) {
    let mock = run.mock();
    wait_until(
        WAIT,
        &format!("{n} {api:?} requests"),
        || count(mock, api) >= n,
        || format!("{} seen; {}", count(mock, api), describe(&[&run.member])),
    )
    .await;
}

/// Makes the member rejoin: its next heartbeat hears that the group is rebalancing.
fn force_rejoin(mock: &MockCluster) {
    mock.intercept(
        ApiKey::Heartbeat,
        Intercept::error(KafkaCode::RebalanceInProgress),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_coordinator_makes_the_member_find_it_again() {
    let run = Run::start(1).await;
    let mock = run.mock();
    let finds = count(mock, ApiKey::FindCoordinator);
    for api in [ApiKey::Heartbeat, ApiKey::OffsetCommit, ApiKey::JoinGroup] {
        mock.intercept(api, Intercept::error(KafkaCode::NotCoordinator).times(2));
    }
    let joins = count(mock, ApiKey::JoinGroup);
    force_rejoin(mock);
    wait_requests(&run, ApiKey::JoinGroup, joins + 3).await;
    let finds_after = run.finish_keep().await;
    assert!(finds_after > finds, "FindCoordinator was not sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_broker_stops_and_the_group_moves() {
    let run = Run::start(3).await;
    let mock = run.mock();
    let coordinator = mock
        .requests()
        .iter()
        .rev()
        .find(|r| {
            matches!(
                r.api_key,
                ApiKey::Heartbeat | ApiKey::SyncGroup | ApiKey::OffsetCommit
            )
        })
        .map(|r| r.broker)
        .expect("the coordinator was used");
    mock.stop_broker(coordinator).await.unwrap();
    wait_until(
        WAIT,
        "heartbeats reach another broker",
        || {
            mock.requests()
                .iter()
                .rev()
                .take(50)
                .any(|r| r.api_key == ApiKey::Heartbeat && r.broker != coordinator)
        },
        || describe(&[&run.member]),
    )
    .await;
    mock.restart_broker(coordinator).await.unwrap();
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_load_in_progress_is_waited_out() {
    let run = Run::start(1).await;
    let mock = run.mock();
    let joins = count(mock, ApiKey::JoinGroup);
    for (api, times) in [
        (ApiKey::JoinGroup, 3),
        (ApiKey::OffsetFetch, 2),
        (ApiKey::OffsetCommit, 2),
    ] {
        mock.intercept(
            api,
            Intercept::error(KafkaCode::CoordinatorLoadInProgress).times(times),
        );
    }
    force_rejoin(mock);
    wait_requests(&run, ApiKey::JoinGroup, joins + 4).await;
    wait_requests(&run, ApiKey::OffsetFetch, 3).await;
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_in_progress_refuses_a_commit_and_the_member_rejoins() {
    let run = Run::start(1).await;
    let mock = run.mock();
    let generation = run.member.view().generation;
    mock.intercept(
        ApiKey::OffsetCommit,
        Intercept::error(KafkaCode::RebalanceInProgress),
    );
    force_rejoin(mock);
    wait_until(
        WAIT,
        "a new generation",
        || run.member.view().generation > generation,
        || describe(&[&run.member]),
    )
    .await;
    let view = run.finish().await;
    assert!(
        view.commit_errors
            .iter()
            .any(|e| e.contains("RebalanceInProgress") || e.contains("rebalanc")),
        "the refused commit was not reported: {:?}",
        view.commit_errors
    );
    assert!(
        view.generation > generation,
        "no new generation: {:?}",
        view.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_generation_loses_the_partitions_and_rejoins() {
    let run = Run::start(1).await;
    let mock = run.mock();
    let generation = run.member.view().generation;
    mock.intercept(
        ApiKey::Heartbeat,
        Intercept::error(KafkaCode::IllegalGeneration),
    );
    run.wait_lost().await;
    mock.intercept(
        ApiKey::OffsetCommit,
        Intercept::error(KafkaCode::IllegalGeneration),
    );
    let view = run.finish().await;
    assert!(view.generation > generation, "{:?}", view.events);
    assert!(
        view.commit_errors
            .iter()
            .any(|e| e.contains("IllegalGeneration")),
        "the refused commit was not reported: {:?}",
        view.commit_errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_member_id_joins_again_as_a_new_member() {
    let run = Run::start(1).await;
    let mock = run.mock();
    let member_id = run.member.view().member_id.clone();
    mock.intercept(
        ApiKey::Heartbeat,
        Intercept::error(KafkaCode::UnknownMemberId),
    );
    run.wait_lost().await;
    let view = run.finish().await;
    assert!(
        view.events.iter().any(|e| e.starts_with("lost")),
        "{:?}",
        view.events
    );
    assert_ne!(view.member_id, member_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_during_sync_group_is_recovered() {
    let run = Run::start(1).await;
    let mock = run.mock();
    let syncs = count(mock, ApiKey::SyncGroup);
    mock.intercept(ApiKey::SyncGroup, Intercept::drop_connection());
    force_rejoin(mock);
    // The dropped SyncGroup, then a successful one after rejoining.
    wait_requests(&run, ApiKey::SyncGroup, syncs + 2).await;
    run.finish().await;
}
