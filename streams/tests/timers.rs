//! Timers, crontabs and tasks on a running app: a leader-only timer fires on exactly one of
//! three workers and moves to another when its worker crashes; a plain timer fires on every
//! worker; a task runs once per worker start; `stop_app_on_error` stops the worker; under
//! exactly-once a task's sends are part of the worker's transaction; bad declarations are
//! refused with errors that name the timer.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{mock_app, stopped_by_itself, wait_until, MOCK_SESSION, WAIT};
use futures::StreamExt;
use streams::{AgentFailure, App, Error};
use testkit::MockCluster;

const TICK: Duration = Duration::from_millis(100);

/// Which worker fired the leader-only timer, in order.
type LeaderFires = Arc<Mutex<Vec<usize>>>;

/// What one worker saw.
#[derive(Default)]
struct Seen {
    /// Fires of its timer that runs on every worker.
    everywhere: AtomicUsize,
    /// Runs of its start-up task.
    task: AtomicUsize,
}

/// Worker `index` of app `id`: an agent over `<id>-in` (so that it joins the group), a
/// leader-only timer that logs `index` into `leader`, a timer on every worker and a task.
fn worker(id: &str, mock: &MockCluster, index: usize, leader: &LeaderFires) -> (App, Arc<Seen>) {
    let app = mock_app(id, mock).build().unwrap();
    let input = app.topic::<String, String>(&format!("{id}-in"));
    app.agent(&input, |mut events| async move {
        while events.next().await.is_some() {}
    });
    let seen = Arc::new(Seen::default());
    let fires = leader.clone();
    app.timer("leader-tick", TICK)
        .on_leader()
        .run(move || {
            fires.lock().unwrap().push(index);
            async {}
        })
        .unwrap();
    let counted = seen.clone();
    app.timer("tick", TICK)
        .run(move || {
            counted.everywhere.fetch_add(1, Ordering::SeqCst);
            async {}
        })
        .unwrap();
    let counted = seen.clone();
    app.task("warm-up")
        .run(move || {
            counted.task.fetch_add(1, Ordering::SeqCst);
            async {}
        })
        .unwrap();
    (app, seen)
}

/// Waits until the leader-only timer fired `n` more times; returns the workers that fired.
async fn next_leader_fires(leader: &LeaderFires, n: usize) -> Vec<usize> {
    let from = leader.lock().unwrap().len();
    wait_until("leader-only timer fires", || {
        leader.lock().unwrap().len() >= from + n
    })
    .await;
    let fires = leader.lock().unwrap()[from..].to_vec();
    fires
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_only_timer_fires_on_one_worker_and_moves_when_that_worker_crashes() {
    let mock = common::mock().await;
    let id = testkit::unique_name("timers-leader");
    let leader = LeaderFires::default();
    let workers: Vec<_> = (0..3).map(|i| worker(&id, &mock, i, &leader)).collect();
    for (app, _) in &workers {
        app.start().await.unwrap();
    }

    // Exactly one worker fires the leader-only timer.
    let fires = next_leader_fires(&leader, 10).await;
    let first = fires[0];
    assert!(
        fires.iter().all(|w| *w == first),
        "several leaders: {fires:?}"
    );

    // Every worker fires its plain timer, and ran its task once.
    for (i, (_, seen)) in workers.iter().enumerate() {
        wait_until(&format!("worker {i}'s plain timer fires"), || {
            seen.everywhere.load(Ordering::SeqCst) >= 3
        })
        .await;
        assert_eq!(seen.task.load(Ordering::SeqCst), 1, "worker {i}'s task");
    }

    // The leader crashes (no commit, no LeaveGroup): another worker takes the timer over once
    // the group notices, within a session timeout and a rebalance.
    workers[first].0.abort().await;
    let crashed = Instant::now();
    wait_until("another worker fires the leader-only timer", || {
        leader.lock().unwrap().last() != Some(&first)
    })
    .await;
    let took = crashed.elapsed();
    let margin = Duration::from_secs(5);
    assert!(took <= MOCK_SESSION + margin, "took over after {took:?}");
    let fires = next_leader_fires(&leader, 10).await;
    let second = fires[0];
    assert_ne!(second, first);
    assert!(
        fires.iter().all(|w| *w == second),
        "several leaders: {fires:?}"
    );

    for (i, (app, seen)) in workers.iter().enumerate() {
        if i != first {
            assert_eq!(seen.task.load(Ordering::SeqCst), 1, "worker {i}'s task");
            app.shutdown().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_without_agents_form_a_group_for_their_leader_only_timer() {
    let mock = common::mock().await;
    let id = testkit::unique_name("timers-only");
    let leader = LeaderFires::default();
    let mut apps = Vec::new();
    for index in 0..2 {
        let app = mock_app(&id, &mock).build().unwrap();
        let fires = leader.clone();
        app.timer("leader-tick", TICK)
            .on_leader()
            .run(move || {
                fires.lock().unwrap().push(index);
                async {}
            })
            .unwrap();
        // start() returns once the worker is in the group (through `<id>-__leader`).
        tokio::time::timeout(WAIT, app.start())
            .await
            .unwrap()
            .unwrap();
        apps.push(app);
    }
    let fires = next_leader_fires(&leader, 10).await;
    let fires = &fires[5..]; // the second worker has joined by then
    assert!(
        fires.iter().all(|w| *w == fires[0]),
        "several leaders: {fires:?}"
    );
    assert!(
        apps[0]
            .topics()
            .iter()
            .any(|t| t.name == format!("{id}-__leader") && t.internal),
        "the leader topic is listed as internal"
    );
    for app in &apps {
        app.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_timer_with_stop_app_on_error_stops_the_worker() {
    let mock = common::mock().await;
    let id = testkit::unique_name("timers-fail");
    let app = mock_app(&id, &mock).build().unwrap();
    let input = app.topic::<String, String>(&format!("{id}-in"));
    app.agent(&input, |mut events| async move {
        while events.next().await.is_some() {}
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    app.timer("flaky", TICK)
        .run(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>("passes") }
        })
        .unwrap();
    app.timer("fatal", TICK * 5)
        .stop_app_on_error()
        .run(|| async { Err::<(), _>("out of paper") })
        .unwrap();
    app.start().await.unwrap();
    match stopped_by_itself(&app).await {
        Err(Error::TimerFailed {
            timer,
            source: AgentFailure::Returned(source),
        }) => {
            assert_eq!(timer, "fatal");
            assert_eq!(source.to_string(), "out of paper");
        }
        other => panic!("expected TimerFailed, got {other:?}"),
    }
    // The timer without stop_app_on_error failed at each of its ticks and went on.
    assert!(
        calls.load(Ordering::SeqCst) >= 3,
        "the flaky timer kept its schedule"
    );
}

/// An exactly-once worker named `w1` whose start-up task sends "hello" to `<id>-out`.
fn greeter(id: &str, mock: &MockCluster, commit_interval: Duration) -> App {
    let app = mock_app(id, mock)
        .processing_guarantee("exactly_once")
        .worker_instance_id("w1")
        .broker_commit_interval(commit_interval)
        .transaction_timeout(commit_interval * 3)
        .build()
        .unwrap();
    let input = app.topic::<String, String>(&format!("{id}-in"));
    app.agent(&input, |mut events| async move {
        while events.next().await.is_some() {}
    });
    let out = app.topic::<String, String>(&format!("{id}-out"));
    app.task("greet")
        .run(move || {
            let out = out.clone();
            async move { out.send_value("hello".to_owned()).await }
        })
        .unwrap();
    app
}

/// The values of `<topic>`/0 a read_committed consumer sees, read to the partition's end.
async fn read_committed(mock: &MockCluster, topic: &str) -> Vec<String> {
    use kafka_client::admin::{Admin, OffsetSpec};
    use kafka_client::consumer::{Consumer, ConsumerConfig, IsolationLevel, Offset};
    let client = kafka_client::ClientConfig::new(&mock.bootstrap()).unwrap();
    let tp = kafka_client::TopicPartition::new(topic, 0);
    let admin = Admin::new(client.clone()).await.unwrap();
    let end = admin
        .list_offsets(vec![(tp.clone(), OffsetSpec::Latest)])
        .await
        .unwrap()[&tp]
        .offset;
    let config = ConsumerConfig::default().with_isolation_level(IsolationLevel::ReadCommitted);
    let mut consumer = Consumer::new(client, config).await.unwrap();
    consumer.assign(vec![tp.clone()]);
    consumer.seek(&tp, Offset::Earliest).await.unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while consumer.position(&tp).unwrap_or(0) < end {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{tp} not read to its end"
        );
        let Ok(record) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
        else {
            continue;
        };
        let value = record.unwrap().value.unwrap_or_default();
        out.push(String::from_utf8_lossy(&value).into_owned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_exactly_once_a_tasks_sends_commit_with_the_workers_transaction() {
    let mock = common::mock().await;
    let id = testkit::unique_name("timers-eos");
    let out = format!("{id}-out");
    // The first worker sends, then crashes before its transaction commits.
    let first = greeter(&id, &mock, Duration::from_secs(10));
    first.start().await.unwrap();
    wait_until("the first greeting in the log", || {
        mock.records(&out, 0).len() == 1
    })
    .await;
    first.abort().await;
    // Its replacement (same name) fences it, which aborts its open transaction, and greets
    // again; its commit makes that greeting visible.
    let second = greeter(&id, &mock, Duration::from_secs(10));
    second.start().await.unwrap();
    wait_until("the second greeting in the log", || {
        mock.records(&out, 0).len() >= 2
    })
    .await;
    second.commit().await.unwrap();
    // One greeting (JSON), though both are in the log: the first was aborted with its transaction.
    assert_eq!(
        read_committed(&mock, &out).await,
        vec!["\"hello\"".to_owned()]
    );
    second.shutdown().await.unwrap();
}

#[test]
fn bad_declarations_are_refused_naming_the_timer() {
    let app = App::builder("timers-bad").build().unwrap();
    match app.timer("never", Duration::ZERO).run(|| async {}) {
        Err(Error::InvalidInterval { timer }) => assert_eq!(timer, "never"),
        other => panic!("expected InvalidInterval, got {other:?}"),
    }
    match app.crontab("typo", "*/5 * * *").run(|| async {}) {
        Err(e @ Error::InvalidCron { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("typo") && text.contains("*/5 * * *"),
                "{text}"
            );
        }
        other => panic!("expected InvalidCron, got {other:?}"),
    }
    match app
        .crontab("report", "0 9 * * *")
        .timezone("Europe/Pariss")
        .run(|| async {})
    {
        Err(Error::UnknownTimeZone { timer, zone }) => {
            assert_eq!((timer.as_str(), zone.as_str()), ("report", "Europe/Pariss"))
        }
        other => panic!("expected UnknownTimeZone, got {other:?}"),
    }
    // February 30th never comes.
    match app.crontab("never", "0 0 30 2 *").run(|| async {}) {
        Err(Error::InvalidCron { timer, .. }) => assert_eq!(timer, "never"),
        other => panic!("expected InvalidCron, got {other:?}"),
    }
    app.crontab("ok", "*/5 * * * *")
        .timezone("Asia/Kolkata")
        .run(|| async {})
        .unwrap();
}

#[test]
fn a_name_taken_by_another_timer_crontab_or_task_is_refused_naming_both() {
    let app = App::builder("timers-twice").build().unwrap();
    app.timer("report", Duration::from_secs(1))
        .run(|| async {})
        .unwrap();
    app.task("warm-up").run(|| async {}).unwrap();
    match app.timer("report", Duration::from_secs(5)).run(|| async {}) {
        Err(e @ Error::DuplicateService { .. }) => {
            assert_eq!(
                e.to_string(),
                "timer report: the name is already taken by a timer of this app; give each \
                 timer, crontab and task its own name"
            );
        }
        other => panic!("expected DuplicateService, got {other:?}"),
    }
    match app.crontab("warm-up", "*/5 * * * *").run(|| async {}) {
        Err(Error::DuplicateService {
            kind,
            name,
            taken_by,
        }) => assert_eq!(
            (kind, name.as_str(), taken_by),
            ("crontab", "warm-up", "task")
        ),
        other => panic!("expected DuplicateService, got {other:?}"),
    }
    match app.task("report").on_leader().run(|| async {}) {
        Err(Error::DuplicateService { kind, taken_by, .. }) => {
            assert_eq!((kind, taken_by), ("task", "timer"))
        }
        other => panic!("expected DuplicateService, got {other:?}"),
    }
    // A refused declaration takes no name; a new name is fine.
    app.crontab("nightly", "0 0 * * *")
        .run(|| async {})
        .unwrap();
}
