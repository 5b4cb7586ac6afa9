//! The commit path under failures: every failure between an event and its commit stops the
//! worker with nothing committed past it (on the commit timer, at shutdown, on revocation),
//! `App::commit` and `App::flush` return what they met, and a commit never moves an offset
//! backwards. On the mock cluster, with its intercepts and its record of every commit.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{broker, mock, on_mock, stopped_by_itself, wait_until, Broker, WAIT};
use futures::StreamExt;
use streams::{App, Error, Topic};
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};

/// The producer's default `max_request_size` is 1 MiB: this value can never be written.
const TOO_LARGE: i64 = 2 * 1024 * 1024;

fn app(id: &str, broker: &Broker, partitions: i32, commit_every: Duration) -> App {
    broker
        .app(id)
        .topic_partitions(partitions)
        .broker_commit_interval(commit_every)
        .broker_rebalance_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The input topic of app `id` (real Kafka keeps topics between runs).
fn sizes(id: &str) -> String {
    format!("{id}-sizes")
}

/// An agent that stores `"x" * n` under each event's key in table `blobs`; counts events.
fn blob_app(app: &App) -> (Topic<String, i64>, Arc<AtomicUsize>) {
    let input = app.topic::<String, i64>(&sizes(app.id()));
    let blobs = app.table::<String, String>("blobs").unwrap();
    let processed = Arc::new(AtomicUsize::new(0));
    let (table, count) = (blobs.clone(), processed.clone());
    app.agent_builder("store", &input)
        .table(&blobs)
        .run(move |mut events| {
            let (table, count) = (table.clone(), count.clone());
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    table.insert(&key, "x".repeat(e.value as usize))?;
                    count.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), Error>(())
            }
        });
    (input, processed)
}

fn assert_changelog_write(err: &Error) {
    assert!(
        matches!(err, Error::ChangelogWrite { table, partition: 0, .. } if table == "blobs"),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("max_request_size"), "{text}");
    assert!(text.contains("restart"), "{text}");
}

/// The events: `a` at offset 0, the unwritable `big` at offset 1.
async fn send_small_then_too_large(input: &Topic<String, i64>) {
    input.send("a".to_owned(), 10).await.unwrap();
    input.send("big".to_owned(), TOO_LARGE).await.unwrap();
}

/// A started `blob_app` (committing every `commit_every`) whose agent wrote `a`, then the
/// value too large to write.
async fn too_large_write_processed(id: &str, broker: &Broker, commit_every: Duration) -> App {
    let app = app(id, broker, 1, commit_every);
    let (input, processed) = blob_app(&app);
    app.start().await.unwrap();
    send_small_then_too_large(&input).await;
    wait_until("both events processed", || {
        processed.load(Ordering::SeqCst) == 2
    })
    .await;
    app
}

/// Nothing past offset 1 (`big`) was ever committed (every commit, on the mock; the last one
/// on real Kafka), and a commit at 1 had `a` in the changelog first.
async fn assert_nothing_committed_past_big(broker: &Broker, id: &str) {
    let committed = broker.committed(id, &sizes(id)).await;
    assert!(
        committed.is_none_or(|c| c <= 1),
        "committed past the failed write: {committed:?}"
    );
    let Some(mock) = &broker.mock else { return };
    for commit in mock.commit_history(id) {
        assert!(
            commit.offset <= 1,
            "committed past the failed write: {commit:?}"
        );
        if commit.offset == 1 {
            let changelog = mock.records(&format!("{id}-blobs-changelog"), 0);
            assert!(changelog
                .iter()
                .any(|(_, k, _)| k.as_deref() == Some(&b"a"[..])));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_write_the_producer_refuses_stops_the_worker_before_its_event_is_committed() {
    let broker = broker().await;
    let id = &testkit::unique_name("refused-on-timer");
    let app = too_large_write_processed(id, &broker, Duration::from_millis(50)).await;
    let err = stopped_by_itself(&app).await.expect_err("the write fails");
    assert_changelog_write(&err);
    assert_nothing_committed_past_big(&broker, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_write_refused_at_shutdown_commits_nothing_past_it() {
    let broker = broker().await;
    let id = &testkit::unique_name("refused-at-shutdown");
    // No commit before the shutdown's.
    let app = too_large_write_processed(id, &broker, Duration::from_secs(600)).await;
    let err = app.shutdown().await.expect_err("the write fails");
    assert_changelog_write(&err);
    // Neither the shutdown's commit nor the revocation of leaving the group committed.
    assert_eq!(broker.committed(id, &sizes(id)).await, None);
    if let Some(mock) = &broker.mock {
        assert_eq!(mock.commit_history(id), vec![]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_write_refused_on_revocation_stops_the_worker_with_nothing_committed() {
    let broker = broker().await;
    let id = &testkit::unique_name("refused-on-revocation");
    let first = too_large_write_processed(id, &broker, Duration::from_secs(600)).await;
    // A second worker joins: the first one's partition is revoked, and its flush fails there.
    let second = app(id, &broker, 1, Duration::from_secs(600));
    let _ = blob_app(&second);
    let joining = tokio::spawn(async move {
        let started = second.start().await;
        (second, started)
    });
    let err = stopped_by_itself(&first)
        .await
        .expect_err("the write fails");
    assert_changelog_write(&err);
    let (second, _) = joining.await.unwrap();
    // The second worker reads both events again (nothing was committed) and fails the same way.
    let _ = tokio::time::timeout(WAIT, second.shutdown()).await;
    assert_nothing_committed_past_big(&broker, id).await;
    assert_eq!(broker.committed(id, &sizes(id)).await, None);
}

/// A started app (no commit of its own) whose agent processed one event of `numbers`.
async fn one_event_processed(id: &str, broker: &Broker) -> App {
    let app = app(id, broker, 1, Duration::from_secs(600));
    let input = app.topic::<String, i64>("numbers");
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    app.agent(&input, move |mut stream| async move {
        while stream.next().await.is_some() {
            s.fetch_add(1, Ordering::SeqCst);
        }
    });
    app.start().await.unwrap();
    input.send("k".to_owned(), 1).await.unwrap();
    wait_until("the event processed", || seen.load(Ordering::SeqCst) == 1).await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_broker_refuses_for_good_is_returned_by_app_commit_and_stops_the_worker() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let id = "commit-refused";
    let app = one_event_processed(id, &broker).await;
    mock.intercept(
        ApiKey::OffsetCommit,
        Intercept::error(KafkaCode::GroupAuthorizationFailed).always(),
    );
    let err = app.commit().await.expect_err("the broker refuses");
    assert!(matches!(err, Error::Commit { .. }), "{err}");
    assert!(
        err.to_string().contains("GroupAuthorizationFailed"),
        "{err}"
    );
    let stopped = stopped_by_itself(&app).await.expect_err("stopped on it");
    assert!(
        stopped.to_string().contains("GroupAuthorizationFailed"),
        "{stopped}"
    );
    assert_eq!(mock.committed_offset(id, "numbers", 0), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_refused_while_the_group_moves_is_returned_and_the_next_one_succeeds() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let id = "commit-retried";
    let app = one_event_processed(id, &broker).await;
    // The coordinator says the group is rebalancing: this commit is refused, the worker runs
    // on and commits later (here, when it rejoins, or on request).
    mock.intercept(
        ApiKey::OffsetCommit,
        Intercept::error(KafkaCode::RebalanceInProgress),
    );
    let err = tokio::time::timeout(WAIT, app.commit())
        .await
        .expect("the commit answers in time")
        .expect_err("the group is moving");
    assert!(matches!(err, Error::Commit { .. }), "{err}");
    assert!(err.to_string().contains("RebalanceInProgress"), "{err}");
    wait_until("a later commit", || {
        mock.committed_offset(id, "numbers", 0) == Some(1)
    })
    .await;
    app.commit().await.expect("commits go on");
    assert!(!app.is_stopping());
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_flush_returns_records_that_were_not_delivered() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let app = app("flush-fails", &broker, 1, Duration::from_millis(50));
    let output = app.topic::<String, String>("flushed");
    app.start().await.unwrap();
    mock.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::InvalidRecord)
            .for_partition("flushed", 0)
            .always(),
    );
    output.send("k".to_owned(), "v".to_owned()).await.unwrap();
    let err = app.flush().await.expect_err("the record was refused");
    assert!(matches!(err, Error::Delivery { records: 1, .. }), "{err}");
    let _ = app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_fails_stops_the_worker_and_its_event_is_not_committed() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let id = "agent-fails";
    let app = app(id, &broker, 1, Duration::from_millis(20));
    let input = app.topic::<String, i64>("numbers");
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    app.agent(&input, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            if *n == 3 {
                return Err(format!("cannot handle {}", *n));
            }
            s.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });
    app.start().await.unwrap();
    for n in 0..6 {
        input.send("k".to_owned(), n).await.unwrap();
    }
    let err = stopped_by_itself(&app).await.expect_err("the agent failed");
    assert!(
        matches!(&err, Error::AgentFailed { source, .. } if source.to_string() == "cannot handle 3"),
        "{err}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    let committed = mock.committed_offset(id, "numbers", 0);
    assert!(committed.is_none_or(|c| c <= 3), "committed {committed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_panics_stops_the_worker_naming_the_panic() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let id = "agent-panics";
    let app = app(id, &broker, 1, Duration::from_millis(20));
    let input = app.topic::<String, i64>("numbers");
    app.agent(&input, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            assert!(*n != 2, "two is not welcome");
        }
    });
    app.start().await.unwrap();
    for n in 0..4 {
        input.send("k".to_owned(), n).await.unwrap();
    }
    let err = stopped_by_itself(&app)
        .await
        .expect_err("the agent panicked");
    assert!(err.to_string().contains("two is not welcome"), "{err}");
    let committed = mock.committed_offset(id, "numbers", 0);
    assert!(committed.is_none_or(|c| c <= 2), "committed {committed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_offsets_that_cannot_be_listed_stop_the_worker_after_retries() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let id = "no-start-offsets";
    let app = app(id, &broker, 1, Duration::from_millis(50));
    let input = app.topic::<String, i64>("numbers");
    app.agent(&input, |mut stream| async move {
        while stream.next().await.is_some() {}
    });
    input_topic_exists(mock, "numbers").await;
    mock.intercept(
        ApiKey::ListOffsets,
        Intercept::error(KafkaCode::UnknownServerError).always(),
    );
    let started = app.start().await;
    let err = match started {
        Err(e) => e,
        Ok(()) => stopped_by_itself(&app).await.expect_err("no start offsets"),
    };
    assert!(
        matches!(err, Error::StartOffsets { attempts: 5, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("numbers"), "{err}");
}

async fn input_topic_exists(mock: &MockCluster, topic: &str) {
    mock.create_topic(topic, 1, std::iter::empty::<(String, String)>())
        .unwrap();
}

/// Commits race rebalances here: the agent's sends are slow to be acknowledged (so a commit
/// spends a while preparing) while workers join and leave. The mock's record of every commit
/// must show no partition's offset going down, and every event processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_racing_rebalances_never_move_an_offset_backwards() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let id = "never-backwards";
    let worker = |processed: Arc<AtomicUsize>| {
        let app = app(id, &broker, 4, Duration::from_millis(10));
        let input = app.topic::<String, i64>("events");
        let output = app.topic::<String, i64>("echoes");
        app.agent(&input, move |mut stream| {
            let (output, processed) = (output.clone(), processed.clone());
            async move {
                while let Some(e) = stream.next().await {
                    output.send(e.key.clone().unwrap_or_default(), *e).await?;
                    processed.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), Error>(())
            }
        });
        (app, input)
    };
    let processed = Arc::new(AtomicUsize::new(0));
    let (first, input) = worker(processed.clone());
    first.start().await.unwrap();
    mock.intercept(
        ApiKey::Produce,
        Intercept::delay(Duration::from_millis(40)).always(),
    );
    let sending = tokio::spawn(async move {
        for n in 0..1_500i64 {
            input.send(format!("k{}", n % 40), n).await.unwrap();
            if n % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    for _ in 0..3 {
        let (second, _) = worker(processed.clone());
        second.start().await.unwrap();
        // How long the second worker takes part (a workload, not a synchronization: the
        // checks below wait for observable states).
        tokio::time::sleep(Duration::from_millis(300)).await;
        second.shutdown().await.unwrap();
    }
    sending.await.unwrap();
    mock.clear_intercepts();
    first.wait_caught_up(WAIT).await.unwrap();
    first.shutdown().await.unwrap();
    assert!(processed.load(Ordering::SeqCst) >= 1_500);
    let regressions = mock.commit_regressions(id);
    assert!(
        regressions.is_empty(),
        "offsets went backwards: {regressions:?}"
    );
    let committed: i64 = (0..4)
        .map(|p| mock.committed_offset(id, "events", p).unwrap_or(0))
        .sum();
    assert_eq!(committed, 1_500);
}

/// An agent over `numbers` that fails on 3 the first `failures` times it sees it; records what
/// it processed.
fn failing_on_three(app: &App, failures: usize) -> (Topic<String, i64>, Arc<Mutex<Vec<i64>>>) {
    let input = app.topic::<String, i64>("numbers");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let left = Arc::new(AtomicUsize::new(failures));
    let s = seen.clone();
    app.agent_builder("picky", &input).run(move |mut stream| {
        let (seen, left) = (s.clone(), left.clone());
        async move {
            while let Some(n) = stream.next().await {
                let fail = *n == 3
                    && left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1))
                        .is_ok();
                if fail {
                    return Err(format!("cannot handle {}", *n));
                }
                seen.lock().unwrap().push(*n);
            }
            Ok(())
        }
    });
    (input, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_agent_restarts_from_the_last_commit_when_the_app_allows_it() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let id = "agent-restarts";
    let app = broker
        .app(id)
        .broker_commit_interval(Duration::from_millis(20))
        .restart_failed_agents(1)
        .build()
        .unwrap();
    let (input, seen) = failing_on_three(&app, 1);
    app.start().await.unwrap();
    for n in 0..6 {
        input.send("k".to_owned(), n).await.unwrap();
    }
    wait_until("every event processed after the restart", || {
        mock.committed_offset(id, "numbers", 0) == Some(6)
    })
    .await;
    assert!(!app.is_stopping());
    app.shutdown().await.expect("the restarted worker runs on");
    let seen = seen.lock().unwrap().clone();
    // 3 failed once and was read again (and what was not committed before it).
    assert!((0..6).all(|n| seen.contains(&n)), "{seen:?}");
    assert_eq!(seen.iter().filter(|n| **n == 3).count(), 1, "{seen:?}");
    assert!(
        mock.commit_regressions(id).is_empty(),
        "{:?}",
        mock.commit_history(id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_keeps_failing_stops_the_worker_once_its_restarts_are_used() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let id = "agent-restarts-used";
    let app = broker
        .app(id)
        .broker_commit_interval(Duration::from_millis(20))
        .restart_failed_agents(2)
        .build()
        .unwrap();
    let (input, seen) = failing_on_three(&app, usize::MAX);
    app.start().await.unwrap();
    for n in 0..6 {
        input.send("k".to_owned(), n).await.unwrap();
    }
    let err = stopped_by_itself(&app).await.expect_err("it keeps failing");
    assert!(
        matches!(&err, Error::AgentFailed { source, .. } if source.to_string() == "cannot handle 3"),
        "{err}"
    );
    assert!(!seen.lock().unwrap().contains(&4));
    let committed = mock.committed_offset(id, "numbers", 0);
    assert!(committed.is_none_or(|c| c <= 3), "committed {committed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_while_the_broker_does_not_answer_ends_within_its_timeouts() {
    let broker = on_mock(mock().await);
    let mock = broker.mock();
    let id = "unanswered-stop";
    let app = broker
        .app(id)
        .broker_commit_interval(Duration::from_secs(600))
        .worker_shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let input = app.topic::<String, i64>("numbers");
    let output = app.topic::<String, i64>("echoes");
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    app.agent(&input, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            output.send("k".to_owned(), *n).await?;
            s.fetch_add(1, Ordering::SeqCst);
        }
        Ok::<(), Error>(())
    });
    app.start().await.unwrap();
    // The broker takes the echoes but never answers.
    mock.intercept(
        ApiKey::Produce,
        Intercept::no_response().for_partition("echoes", 0).always(),
    );
    input.send("k".to_owned(), 1).await.unwrap();
    wait_until("the echo sent", || sent.load(Ordering::SeqCst) == 1).await;
    let started = std::time::Instant::now();
    let stopped = tokio::time::timeout(WAIT, app.shutdown())
        .await
        .expect("the stop is bounded");
    // Three bounded steps (commit, leaving the group, the last deliveries), each 0.5 s.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let err = stopped.expect_err("the echo was never acknowledged");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // Its event was not committed.
    assert_eq!(mock.committed_offset(id, "numbers", 0), None);
}
