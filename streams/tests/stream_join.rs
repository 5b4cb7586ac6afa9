//! Windowed stream-stream joins on the mock cluster: pairs, unmatched results after the
//! close, late events, both sides at once, restart and rebalance, failed sends, decode
//! errors and co-partitioning.

mod common;
#[path = "common/kstreams.rs"]
mod kstreams;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{mock, mock_app, stopped_by_itself, wait_until, WAIT};
use futures::StreamExt;
use streams::{App, Error, OnDecodeError, StreamJoin, Timestamp, Topic};
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};

const WITHIN: Duration = Duration::from_millis(10);
const GRACE: Duration = Duration::from_millis(5);

fn app(id: &str, cluster: &MockCluster) -> App {
    mock_app(id, cluster)
        .broker_commit_interval(Duration::from_millis(30))
        .build()
        .unwrap()
}

struct Topics {
    left: Topic<String, String>,
    right: Topic<String, String>,
}

fn topics(app: &App, partitions: i32) -> Topics {
    Topics {
        left: app.topic::<String, String>("left").partitions(partitions),
        right: app.topic::<String, String>("right").partitions(partitions),
    }
}

fn show(v: Option<&String>) -> String {
    v.cloned().unwrap_or_else(|| "-".into())
}

/// The three joins of `left` and `right`, each to its own topic, values `l+r` (`-`: none).
fn three_joins(app: &App, t: &Topics) -> [StreamJoin; 3] {
    let builder = |name: &str| {
        app.stream_join(name, &t.left, &t.right)
            .within(WITHIN)
            .grace(GRACE)
    };
    let out = |name: &str| app.topic::<String, String>(&format!("{name}-out"));
    [
        builder("inner")
            .inner()
            .sink(&out("inner"), |l, r| format!("{l}+{r}"))
            .unwrap(),
        builder("left")
            .left()
            .sink(&out("left"), |l, r| format!("{l}+{}", show(r)))
            .unwrap(),
        builder("outer")
            .outer()
            .sink(&out("outer"), |l, r| format!("{}+{}", show(l), show(r)))
            .unwrap(),
    ]
}

/// Every record of `topic` (all partitions) as (key, value), in log order per partition.
fn outputs(cluster: &MockCluster, topic: &str, partitions: i32) -> Vec<(String, String)> {
    (0..partitions)
        .flat_map(|p| cluster.records(topic, p))
        .map(|(_, k, v)| {
            let key = String::from_utf8(k.expect("a key").to_vec()).unwrap();
            (key, serde_json::from_slice(&v.expect("a value")).unwrap())
        })
        .collect()
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn wait_for_set(
    cluster: &MockCluster,
    topic: &str,
    partitions: i32,
    want: &BTreeSet<(String, String)>,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got: BTreeSet<_> = outputs(cluster, topic, partitions).into_iter().collect();
        if got == *want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic}: got {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends one event and waits until every join filed it, so that the order of events across
/// the two topics is the order sent.
async fn send(t: &Topics, joins: &[StreamJoin], side: char, key: &str, at: i64, value: &str) {
    let before: Vec<u64> = joins.iter().map(StreamJoin::filed_events).collect();
    let topic = if side == 'L' { &t.left } else { &t.right };
    topic
        .send_at(key.to_owned(), value.to_owned(), Timestamp::from_millis(at))
        .await
        .unwrap();
    wait_until("the event filed by every join", || {
        joins
            .iter()
            .zip(&before)
            .all(|(j, b)| j.filed_events() > *b)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inner_left_and_outer_joins_pair_within_the_window_and_send_unmatched_only_after_close() {
    let cluster = mock().await;
    let app = app("join-kinds", &cluster);
    let t = topics(&app, 1);
    let joins = three_joins(&app, &t);
    // Each inner result with its record timestamp, read back by an agent.
    let stamped = Arc::new(Mutex::new(BTreeSet::new()));
    let seen = stamped.clone();
    let inner_out = app.topic::<String, String>("inner-out");
    app.agent_builder("read-inner", &inner_out)
        .run(move |mut results| {
            let seen = seen.clone();
            async move {
                while let Some(r) = results.next().await {
                    seen.lock().unwrap().insert((r.value.clone(), r.timestamp));
                }
            }
        });
    app.start().await.unwrap();
    // within 10, grace 5: an event older than stream time - 15 is late; an event's window
    // closes when stream time passes its time + 15.
    send(&t, &joins, 'L', "a", 100, "a1").await;
    send(&t, &joins, 'R', "a", 105, "A1").await; // pairs with a1
    send(&t, &joins, 'L', "b", 110, "b1").await; // never matched
    send(&t, &joins, 'R', "c", 112, "C1").await; // never matched
    send(&t, &joins, 'R', "a", 98, "A0").await; // out of order, within grace: pairs with a1
    send(&t, &joins, 'L', "a", 90, "a0").await; // late (90 < 112 - 15): dropped
    send(&t, &joins, 'L', "d", 120, "d1").await; // d's window closes after 135
    send(&t, &joins, 'R', "d", 135, "D1").await; // 15 from d1: too far; closes b1 and C1
    let pairs = [("a", "a1+A1"), ("a", "a1+A0")];
    wait_for_set(&cluster, "inner-out", 1, &set(&pairs)).await;
    let mut left = pairs.to_vec();
    left.push(("b", "b1+-"));
    wait_for_set(&cluster, "left-out", 1, &set(&left)).await;
    let mut outer = left.clone();
    outer.push(("c", "-+C1"));
    wait_for_set(&cluster, "outer-out", 1, &set(&outer)).await;
    // d1's and D1's windows are still open: nothing unmatched for them yet. Stream time 200
    // closes them.
    send(&t, &joins, 'L', "e", 200, "e1").await;
    left.push(("d", "d1+-"));
    outer.extend([("d", "d1+-"), ("d", "-+D1")]);
    wait_for_set(&cluster, "left-out", 1, &set(&left)).await;
    wait_for_set(&cluster, "outer-out", 1, &set(&outer)).await;
    let metrics = app.metrics_text();
    for join in &joins {
        assert_eq!(join.late_events(), 1, "{}", join.name());
        // Exported per join, under its buffer table's name.
        let line = format!(
            "streams_late_events_total{{table=\"{}-buffers\"}} 1",
            join.name()
        );
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    // Each result once, stamped with the later of its two events' times.
    assert_eq!(outputs(&cluster, "outer-out", 1).len(), outer.len());
    wait_until("the inner results read back", || {
        stamped.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        *stamped.lock().unwrap(),
        BTreeSet::from([("a1+A1".to_owned(), 105), ("a1+A0".to_owned(), 100)])
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_both_sides_arriving_together_pair_exactly_once() {
    let cluster = mock().await;
    let app = app("join-race", &cluster);
    let t = topics(&app, 4);
    let out = app.topic::<String, String>("race-out");
    let join = app
        .stream_join("race", &t.left, &t.right)
        .within(Duration::from_secs(60))
        .inner()
        .sink(&out, |l, r| format!("{l}+{r}"))
        .unwrap();
    app.start().await.unwrap();
    // 200 keys, three events a side each, all at one time: both sides sent at once.
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let send_side = |topic: Topic<String, String>, tag: &'static str| {
        let keys = keys.clone();
        tokio::spawn(async move {
            for n in 0..3 {
                for k in &keys {
                    topic
                        .send_at(
                            k.clone(),
                            format!("{tag}{n}"),
                            Timestamp::from_millis(1_000),
                        )
                        .await
                        .unwrap();
                }
            }
        })
    };
    let (l, r) = (
        send_side(t.left.clone(), "l"),
        send_side(t.right.clone(), "r"),
    );
    l.await.unwrap();
    r.await.unwrap();
    wait_until("every event filed", || join.filed_events() == 1_200).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = outputs(&cluster, "race-out", 4);
        if got.len() >= 200 * 9 {
            let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
            for pair in got {
                *counts.entry(pair).or_default() += 1;
            }
            assert_eq!(counts.len(), 200 * 9, "every pair");
            assert!(counts.values().all(|n| *n == 1), "a pair sent twice");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every pair sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.shutdown().await.unwrap();
}

/// Sends left events for keys `k0..k{n}` at time 1000, and waits until they were filed and
/// committed.
async fn buffer_left(app: &App, t: &Topics, join: &StreamJoin, n: usize) {
    for i in 0..n {
        t.left
            .send_at(
                format!("k{i}"),
                format!("l{i}"),
                Timestamp::from_millis(1_000),
            )
            .await
            .unwrap();
    }
    wait_until("the left events filed", || join.filed_events() == n as u64).await;
    app.commit().await.unwrap();
}

fn race_join(app: &App, t: &Topics) -> StreamJoin {
    let out = app.topic::<String, String>("pairs");
    app.stream_join("pairs", &t.left, &t.right)
        .within(Duration::from_secs(60))
        .inner()
        .sink(&out, |l, r| format!("{l}+{r}"))
        .unwrap()
}

fn expected_pairs(n: usize) -> BTreeSet<(String, String)> {
    (0..n)
        .map(|i| (format!("k{i}"), format!("l{i}+r{i}")))
        .collect()
}

async fn send_right(t: &Topics, n: usize) {
    for i in 0..n {
        t.right
            .send_at(
                format!("k{i}"),
                format!("r{i}"),
                Timestamp::from_millis(1_010),
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_survive_a_restart_on_redb() {
    let cluster = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let redb = format!("redb://{}", dir.path().display());
    let build = || {
        mock_app("join-restart", &cluster)
            .topic_partitions(2)
            .store(&redb)
            .broker_commit_interval(Duration::from_millis(30))
            .build()
            .unwrap()
    };
    let first = build();
    let t = topics(&first, 2);
    let join = race_join(&first, &t);
    first.start().await.unwrap();
    buffer_left(&first, &t, &join, 50).await;
    first.shutdown().await.unwrap();

    drop((first, t, join)); // closes the store file
                            // The left events are in the store (and its changelog) only: the right events find them.
    let second = build();
    let t = topics(&second, 2);
    let _join = race_join(&second, &t);
    second.start().await.unwrap();
    send_right(&t, 50).await;
    wait_for_set(&cluster, "pairs", 2, &expected_pairs(50)).await;
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_lost_in_a_crash_are_rebuilt_from_the_replayed_events() {
    let cluster = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let redb = format!("redb://{}", dir.path().display());
    let build = |commit_every| {
        mock_app("join-crash", &cluster)
            .topic_partitions(2)
            .store(&redb)
            .broker_commit_interval(commit_every)
            .build()
            .unwrap()
    };
    // No commit before the crash: the buffers never reached the store or the changelog.
    let first = build(Duration::from_secs(600));
    let t = topics(&first, 2);
    let join = race_join(&first, &t);
    first.start().await.unwrap();
    for i in 0..50 {
        t.left
            .send_at(
                format!("k{i}"),
                format!("l{i}"),
                Timestamp::from_millis(1_000),
            )
            .await
            .unwrap();
    }
    wait_until("the left events filed", || join.filed_events() == 50).await;
    first.abort().await;
    drop((first, t, join));
    let second = build(Duration::from_millis(30));
    let t = topics(&second, 2);
    let _join = race_join(&second, &t);
    second.start().await.unwrap();
    send_right(&t, 50).await;
    wait_for_set(&cluster, "pairs", 2, &expected_pairs(50)).await;
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_exactly_once_a_crash_mid_transaction_sends_no_pair_twice() {
    let cluster = mock().await;
    let build = || {
        mock_app("join-eos", &cluster)
            .processing_guarantee("exactly_once")
            .worker_instance_id("w1")
            .broker_commit_interval(Duration::from_millis(100))
            .broker_rebalance_timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    };
    let send_pairs = |t: &Topics, from: usize, to: usize| {
        let (left, right) = (t.left.clone(), t.right.clone());
        async move {
            for i in from..to {
                let at = Timestamp::from_millis(1_000);
                left.send_at(format!("k{i}"), format!("l{i}"), at)
                    .await
                    .unwrap();
                right
                    .send_at(format!("k{i}"), format!("r{i}"), at)
                    .await
                    .unwrap();
            }
        }
    };
    let first = build();
    let t = topics(&first, 1);
    let join = race_join(&first, &t);
    first.start().await.unwrap();
    send_pairs(&t, 0, 50).await;
    first.wait_caught_up(WAIT).await.unwrap();
    // More pairs, made into the open transaction, then a crash: no commit, no abort.
    send_pairs(&t, 50, 100).await;
    wait_until("pairs made into the open transaction", || {
        join.filed_events() > 120
    })
    .await;
    first.abort().await;
    drop((first, t, join));
    // The same worker restarted: its producer fences the old one and aborts its transaction.
    let second = build();
    let t = topics(&second, 1);
    let _join = race_join(&second, &t);
    second.start().await.unwrap();
    second.wait_caught_up(WAIT).await.unwrap();
    second.shutdown().await.unwrap();
    let committed = kstreams::read_all(&cluster.bootstrap(), "pairs", 1).await;
    let pairs: Vec<(String, String)> = committed
        .into_iter()
        .map(|(k, v, _)| (k.unwrap(), serde_json::from_str(&v.unwrap()).unwrap()))
        .collect();
    let unique: BTreeSet<_> = pairs.iter().cloned().collect();
    assert_eq!(unique, expected_pairs(100));
    assert_eq!(pairs.len(), 100, "a pair sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_move_with_their_partitions_when_a_second_worker_joins() {
    let cluster = mock().await;
    let build = || {
        mock_app("join-rebalance", &cluster)
            .topic_partitions(4)
            .broker_commit_interval(Duration::from_millis(30))
            .build()
            .unwrap()
    };
    let first = build();
    let t = topics(&first, 4);
    let join = race_join(&first, &t);
    first.start().await.unwrap();
    buffer_left(&first, &t, &join, 100).await;
    let second = build();
    let t2 = topics(&second, 4);
    let second_join = race_join(&second, &t2);
    second.start().await.unwrap();
    // Both workers own partitions (the assignor hands partition N of both topics and of
    // the buffers to one worker: the other's events would fail to find it otherwise).
    wait_until("the partitions shared", || {
        join.stored_entries().unwrap_or(0) > 0 && second_join.stored_entries().unwrap_or(0) > 0
    })
    .await;
    send_right(&t2, 100).await;
    wait_for_set(&cluster, "pairs", 4, &expected_pairs(100)).await;
    assert!(join.filed_events() > 100 && second_join.filed_events() > 0);
    second.shutdown().await.unwrap();
    first.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_cannot_be_sent_commits_nothing_past_it() {
    let cluster = mock().await;
    let id = "join-refused";
    let first = app(id, &cluster);
    let t = topics(&first, 1);
    let _join = race_join(&first, &t);
    first.start().await.unwrap();
    cluster.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::InvalidRecord)
            .for_partition("pairs", 0)
            .always(),
    );
    t.left
        .send_at(
            "k0".to_owned(),
            "l0".to_owned(),
            Timestamp::from_millis(1_000),
        )
        .await
        .unwrap();
    t.right
        .send_at(
            "k0".to_owned(),
            "r0".to_owned(),
            Timestamp::from_millis(1_010),
        )
        .await
        .unwrap();
    let err = stopped_by_itself(&first)
        .await
        .expect_err("the pair was refused");
    assert!(err.to_string().contains("pairs"), "{err}");
    // The right event's offset did not get past the refused pair (the left event's may have
    // been committed before). Its buffer entry may have reached the changelog: a commit that
    // began between the event's update and the refused send flushes the tables before it
    // checks the producer (the commit protocol's order), and that commit then stops.
    assert_eq!(cluster.committed_offset(id, "right", 0), None);
    cluster.clear_intercepts();
    let second = app(id, &cluster);
    let t = topics(&second, 1);
    let _join = race_join(&second, &t);
    second.start().await.unwrap();
    wait_for_set(&cluster, "pairs", 1, &expected_pairs(1)).await;
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_events_of_either_side_follow_the_decode_policy() {
    let cluster = mock().await;
    let app = app("join-decode", &cluster);
    let left = app.topic::<String, u32>("nums-left").partitions(1);
    let right = app
        .topic::<String, u32>("nums-right")
        .partitions(1)
        .on_decode_error(OnDecodeError::DeadLetter("bad-nums".into()));
    let out = app.topic::<String, u32>("sums");
    let join = app
        .stream_join("sums", &left, &right)
        .within(WITHIN)
        .inner()
        .sink(&out, |l, r| l + r)
        .unwrap();
    let raw_left = app.topic::<String, String>("nums-left");
    let raw_right = app.topic::<String, String>("nums-right");
    app.start().await.unwrap();
    let at = Timestamp::from_millis(1_000);
    raw_left
        .send_at("a".to_owned(), "one".to_owned(), at)
        .await
        .unwrap();
    raw_right
        .send_at("a".to_owned(), "two".to_owned(), at)
        .await
        .unwrap();
    left.send_at("a".to_owned(), 1, at).await.unwrap();
    right.send_at("a".to_owned(), 2, at).await.unwrap();
    // The bad left record is skipped (the default), the bad right one dead-lettered.
    wait_until("the good events filed", || join.filed_events() == 2).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while cluster.records("sums", 0).len() != 1 || cluster.records("bad-nums", 0).len() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sum or no dead letter"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, _, sum) = &cluster.records("sums", 0)[0];
    assert_eq!(sum.as_deref(), Some(&b"3"[..]));
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_with_different_partition_counts_are_refused_at_start() {
    let cluster = mock().await;
    let app = app("join-copart", &cluster);
    let left = app.topic::<String, String>("two").partitions(2);
    let right = app.topic::<String, String>("three").partitions(3);
    let out = app.topic::<String, String>("never");
    app.stream_join("mismatch", &left, &right)
        .within(WITHIN)
        .inner()
        .sink(&out, |l, r| format!("{l}{r}"))
        .unwrap();
    let err = app.start().await.expect_err("not co-partitioned");
    assert!(
        matches!(err, Error::StreamJoinNotCoPartitioned { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("two") && text.contains("three") && text.contains("mismatch"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_without_within_is_refused() {
    let app = App::builder("join-no-within").build().unwrap();
    let (l, r) = (app.topic::<String, u8>("l"), app.topic::<String, u8>("r"));
    let out = app.topic::<String, u8>("o");
    let err = app
        .stream_join("j", &l, &r)
        .left()
        .sink(&out, |l, _| *l)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::JoinSetting {
                setting: "within",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buffers_stay_flat_over_a_long_run() {
    let cluster = mock().await;
    let app = app("join-flat", &cluster);
    let t = topics(&app, 1);
    let out = app.topic::<String, String>("flat-out");
    let join = app
        .stream_join("flat", &t.left, &t.right)
        .within(Duration::from_secs(1))
        .grace(Duration::from_secs(30))
        .outer()
        .sink(&out, |l, r| format!("{}+{}", show(l), show(r)))
        .unwrap();
    app.start().await.unwrap();
    // 1,000 events 1 s apart, each side in turn (in steps of 10, so that neither topic's
    // reading runs more than the grace ahead): a buffered event expires 32 s on, so about 32
    // events (each with its due entries) are buffered at any time, not 1,000.
    for step in 0..100i64 {
        for i in step * 10..step * 10 + 10 {
            let topic = if i % 2 == 0 { &t.left } else { &t.right };
            topic
                .send_at(
                    format!("k{}", i % 7),
                    format!("v{i}"),
                    Timestamp::from_millis(i * 1_000),
                )
                .await
                .unwrap();
        }
        wait_until("the step filed", || {
            join.filed_events() == (step as u64 + 1) * 10
        })
        .await;
    }
    assert_eq!(join.late_events(), 0);
    wait_until("the buffers flat", || join.stored_entries().unwrap() <= 120).await;
    app.shutdown().await.unwrap();
}
