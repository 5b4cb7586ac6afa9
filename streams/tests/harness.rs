//! The whole-app test harness (`streams::testing`): an app with a count-by-key table run as
//! simulated workers over one mock cluster, fed, settled and read back; workers killed,
//! restarted and rebalanced from a seeded scenario; a standby promoted; a failing changelog
//! write reported with nothing committed past it.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use streams::testing::Harness;
use streams::{App, Error, Table, Topic};
use testkit::{ApiKey, Intercept, KafkaCode};

const PARTITIONS: i32 = 3;

/// The app under test: events keyed by a word, counted per key into a table.
struct Counts {
    app: App,
    events: Topic<String, String>,
    counts: Table<String, u64>,
}

impl AsRef<App> for Counts {
    fn as_ref(&self) -> &App {
        &self.app
    }
}

/// The app's builder, with `standbys` standby replicas per table partition.
fn counts_app(standbys: u32) -> impl Fn() -> streams::Result<Counts> {
    move || {
        let app = App::builder("counts")
            .topic_partitions(PARTITIONS)
            .table_standby_replicas(standbys)
            .producer_linger(Duration::from_millis(1))
            .broker_session_timeout(Duration::from_millis(1500))
            .broker_heartbeat_interval(Duration::from_millis(300))
            .build()?;
        let events = app.topic::<String, String>("events");
        let counts = app
            .table::<String, u64>("counts")?
            .with_default(u64::default);
        let table = counts.clone();
        app.agent_builder("count", &events)
            .table(&counts)
            .run(move |mut events| {
                let table = table.clone();
                async move {
                    while let Some(event) = events.next().await {
                        let key = event.key.clone().unwrap_or_default();
                        table.update(&key, |n| *n += 1)?;
                    }
                    Ok::<(), Error>(())
                }
            });
        Ok(Counts {
            app,
            events,
            counts,
        })
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn three_workers_count_every_event_and_commit_to_the_end() {
    let h = Harness::builder()
        .workers(3)
        .build(counts_app(0))
        .await
        .unwrap();
    let events = h.worker(0).events.clone();
    let mut truth = BTreeMap::new();
    for i in 0..30u64 {
        let key = format!("k{}", i % 7);
        *truth.entry(key.clone()).or_insert(0u64) += 1;
        h.send(&events, key, "x".to_owned()).await.unwrap();
    }
    h.settle().await.unwrap();
    assert_eq!(h.table(&h.worker(0).counts).unwrap(), truth);
    let mut committed = 0;
    for p in 0..PARTITIONS {
        let end = h.cluster().high_watermark("events", p).unwrap();
        assert_eq!(h.committed("events", p).unwrap_or(0), end, "events/{p}");
        committed += end;
    }
    assert_eq!(committed, 30);
    // Every partition has one running owner.
    for p in 0..PARTITIONS {
        assert!(h.owner("events", p).is_some(), "events/{p} has no owner");
        assert_eq!(h.owner("events", p), h.table_owner("counts", p));
    }
}

/// What a seeded scenario did and ended with.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Each step, in order.
    trace: Vec<String>,
    /// The table's totals at the end.
    totals: BTreeMap<String, u64>,
    /// How many events of each key were sent.
    truth: BTreeMap<String, u64>,
}

/// Three workers and rounds of events; the seed picks each round's keys and what happens
/// after it: a worker killed (no commit), a dead one restarted (or a forced rebalance), or a
/// settle. Every worker runs again at the end and the app settles.
async fn scenario(seed: u64) -> Outcome {
    let mut h = Harness::builder()
        .workers(3)
        .seed(seed)
        .build(counts_app(0))
        .await
        .unwrap();
    let events = h.worker(0).events.clone();
    let (mut trace, mut truth) = (Vec::new(), BTreeMap::new());
    for round in 0..4 {
        let n = 3 + h.rng().below(6);
        let keys: Vec<String> = (0..n).map(|_| format!("k{}", h.rng().below(5))).collect();
        for key in &keys {
            *truth.entry(key.clone()).or_insert(0) += 1;
            h.send(&events, key.clone(), "x".to_owned()).await.unwrap();
        }
        trace.push(format!("round {round}: {}", keys.join(",")));
        let live = h.live();
        let dead: Vec<usize> = (0..h.len()).filter(|&i| !h.is_live(i)).collect();
        match h.rng().below(3) {
            0 if live.len() > 1 => {
                let w = *h.rng().pick(&live).unwrap();
                h.kill(w).await.unwrap();
                trace.push(format!("kill {w}"));
            }
            1 => match h.rng().pick(&dead).copied() {
                Some(w) => {
                    h.restart(w).await.unwrap();
                    trace.push(format!("restart {w}"));
                }
                None => {
                    let w = h.rebalance().await.unwrap();
                    trace.push(format!("rebalance {w}"));
                }
            },
            _ => {
                h.settle().await.unwrap();
                trace.push("settle".into());
            }
        }
    }
    for w in 0..h.len() {
        if !h.is_live(w) {
            h.restart(w).await.unwrap();
        }
    }
    h.settle().await.unwrap();
    let totals = h.table(&h.worker(0).counts).unwrap();
    for p in 0..PARTITIONS {
        let end = h.cluster().high_watermark("events", p).unwrap();
        assert_eq!(
            h.committed("events", p).unwrap_or(0),
            end,
            "seed {seed}: events/{p}"
        );
    }
    h.shutdown().await.unwrap();
    Outcome {
        trace,
        totals,
        truth,
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_seeded_scenario_of_kills_and_restarts_replays_and_loses_no_event() {
    let first = scenario(7).await;
    // At-least-once: a killed worker's uncommitted events count again, none is lost.
    assert_eq!(
        first.totals.keys().collect::<Vec<_>>(),
        first.truth.keys().collect::<Vec<_>>()
    );
    for (key, &sent) in &first.truth {
        assert!(first.totals[key] >= sent, "{key}: {first:?}");
    }
    assert!(
        first.trace.iter().any(|s| s.starts_with("kill")),
        "{first:?}"
    );
    let again = scenario(7).await;
    assert_eq!(first, again, "the same seed replays the same scenario");
    let other = scenario(8).await;
    assert_ne!(
        first.trace, other.trace,
        "another seed runs another scenario"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn killing_the_active_owner_promotes_its_standby_with_the_table_intact() {
    let mut h = Harness::builder()
        .workers(2)
        .build(counts_app(1))
        .await
        .unwrap();
    let (events, counts) = (h.worker(0).events.clone(), h.worker(0).counts.clone());
    // Four keys of partition 0, three events each.
    let keys: Vec<String> = (0..)
        .map(|k| format!("k{k}"))
        .filter(|k| counts.partition_of(k).unwrap() == 0)
        .take(4)
        .collect();
    for i in 0..12 {
        h.send(&events, keys[i % 4].clone(), "x".to_owned())
            .await
            .unwrap();
    }
    h.settle().await.unwrap();
    let active = h
        .table_owner("counts", 0)
        .expect("partition 0 has an owner");
    let standby = h.standbys("counts", 0);
    assert_eq!(
        standby,
        vec![1 - active],
        "the other worker keeps a standby"
    );
    let standby = standby[0];
    // The standby follows the changelog while the owner works.
    let last = h
        .cluster()
        .high_watermark("counts-counts-changelog", 0)
        .unwrap()
        - 1;
    let followed = || {
        h.app(standby)
            .table_partitions()
            .unwrap()
            .into_iter()
            .find(|p| p.table == "counts" && p.partition == 0)
    };
    advance_until(&h, || {
        followed().and_then(|p| p.applied_offset) == Some(last)
    })
    .await;
    assert!(followed().unwrap().followed > 0, "{:?}", followed());

    h.kill(active).await.unwrap();
    h.settle().await.unwrap();
    assert_eq!(
        h.table_owner("counts", 0),
        Some(standby),
        "the standby took over"
    );
    let counts = &h.worker(standby).counts;
    for key in &keys {
        assert_eq!(counts.get(key).unwrap(), Some(3), "{key}");
    }
    let promoted = h.app(standby).table_partitions().unwrap();
    let p0 = promoted
        .iter()
        .find(|p| p.table == "counts" && p.partition == 0)
        .unwrap();
    assert_eq!(p0.replayed, 0, "a warm standby replays nothing: {p0:?}");
}

/// Advances time until `done` holds, for at most a minute of (virtual) time.
async fn advance_until<W: AsRef<App>>(h: &Harness<W>, mut done: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        h.advance(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for a state");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failing_changelog_write_is_reported_and_nothing_is_committed_past_it() {
    let h = Harness::builder().build(counts_app(0)).await.unwrap();
    let events = h.worker(0).events.clone();
    for _ in 0..3 {
        h.send(&events, "a".to_owned(), "x".to_owned())
            .partition(1)
            .await
            .unwrap();
    }
    h.settle().await.unwrap();
    assert_eq!(h.committed("events", 1), Some(3));

    h.cluster().intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::InvalidRecord)
            .for_partition("counts-counts-changelog", 1)
            .always(),
    );
    h.send(&events, "a".to_owned(), "x".to_owned())
        .partition(1)
        .await
        .unwrap();
    match h.settle().await {
        Err(Error::WorkerFailed { worker: 0, reason }) => {
            assert!(reason.contains("counts-counts-changelog"), "{reason}")
        }
        other => panic!("expected the worker to stop on the failed write, got {other:?}"),
    }
    assert_eq!(
        h.committed("events", 1),
        Some(3),
        "nothing committed past it"
    );
    assert_eq!(h.table(&h.worker(0).counts).unwrap()["a"], 3);
}
