//! A worker stops with its first failure, not with what that failure caused: a changelog
//! write that fails sets its table partition back to recovering before the committer halts,
//! and an agent writing to that partition meanwhile fails because of it. On the mock cluster
//! with two brokers (the changelog's partitions on different leaders) and its intercepts.

use std::time::Duration;

use futures::StreamExt;
use streams::{App, Error};
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};

const WAIT: Duration = Duration::from_secs(30);

/// Waits until the app's worker stopped by itself, then returns how it ended.
async fn stopped_by_itself(app: &App) -> Result<(), Error> {
    tokio::time::timeout(WAIT, app.stopped())
        .await
        .expect("the worker stops by itself");
    app.shutdown().await
}

/// A changelog write that fails sets its table partition back to recovering before the
/// committer halts: an agent still writing to that partition meanwhile fails as a consequence
/// (the partition is not owned yet). The worker must stop with the changelog write, the first
/// failure, not with the agent's. Here the other partition's write is slow, which keeps the
/// committer from halting for a while after the first write failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_changelog_write_and_not_the_agent_writes_it_makes_fail_stops_the_worker() {
    let mock = MockCluster::builder()
        .brokers(2)
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let id = "first-failure-wins";
    let app = App::builder(id)
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .topic_partitions(2)
        .broker_commit_interval(Duration::from_millis(200))
        .producer_linger(Duration::from_millis(1))
        .build()
        .unwrap();
    let input = app.topic::<String, i64>("sizes");
    let counts = app
        .table::<String, i64>("counts")
        .unwrap()
        .with_default(i64::default);
    let table = counts.clone();
    app.agent_builder("count", &input)
        .table(&counts)
        .run(move |mut events| {
            let table = table.clone();
            async move {
                while let Some(e) = events.next().await {
                    table.update(&e.key.clone().unwrap_or_default(), |n| *n += 1)?;
                }
                Ok::<(), Error>(())
            }
        });
    app.start().await.unwrap();
    let changelog = format!("{id}-counts-changelog");
    assert_ne!(mock.leader(&changelog, 0), mock.leader(&changelog, 1));
    mock.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::InvalidRecord).for_partition(&changelog, 0),
    );
    mock.intercept(
        ApiKey::Produce,
        Intercept::delay(Duration::from_millis(500)).for_partition(&changelog, 1),
    );
    // Keys of both partitions; partition 0's keep coming while its write fails.
    let key_of = |p: i32| {
        (0..)
            .map(|i| format!("key-{i}"))
            .find(|k| counts.partition_of(k).unwrap() == p)
            .unwrap()
    };
    let (k0, k1) = (key_of(0), key_of(1));
    mock.append("sizes", 1, &[(Some(k1.as_str()), Some("1"))])
        .unwrap();
    let feeding = {
        let app = app.clone();
        tokio::spawn(async move {
            while !app.is_stopping() {
                let _ = input.send(k0.clone(), 1).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let err = stopped_by_itself(&app).await.expect_err("the write fails");
    feeding.abort();
    assert!(
        matches!(&err, Error::ChangelogWrite { table, partition: 0, .. } if table == "counts"),
        "{err}"
    );
}
