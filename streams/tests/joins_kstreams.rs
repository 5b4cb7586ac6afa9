//! Stream-table and stream-global-table joins equal to Kafka Streams' on the same input (issue
//! 23, item 5): scripts/java/JoinsStreamTable.java and our app run the same join over the same
//! topics on real Kafka, in phases (table records, then events, then table updates and deletes,
//! then events, each phase applied by both apps before the next), and their outputs must be
//! equal record for record (key, value and timestamp). A backlog run writes every table record
//! and then the events before either app starts: Kafka Streams (timestamp-ordered for a KTable,
//! bootstrapped for a GlobalKTable) and ours (`JoinBuilder::bootstrap`) must give the same
//! records there too. The tests that need KAFKA_BOOTSTRAP,
//! Java and the Kafka jars are `#[ignore]`d otherwise (.ci/run's kafka_client_tests runs them);
//! ours alone runs on the mock against the written-out expectation (which Kafka Streams gives).

mod common;
#[path = "common/kstreams.rs"]
mod kstreams;

use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kstreams::{KStreamsApp, Record};
use streams::{JoinedStream, Table, Topic};

/// Partitions of every topic (co-partitioned).
const PARTITIONS: i32 = 3;

fn rec(key: &str, value: Option<&str>, ts: i64) -> Record {
    (Some(key.to_owned()), value.map(str::to_owned), ts)
}

/// Phase 1: the profiles table.
fn profiles_1() -> Vec<Record> {
    vec![
        rec("alice", Some("gold"), 1_000),
        rec("bob", Some("silver"), 1_000),
        rec("carol", Some("bronze"), 1_000),
    ]
}

/// Phase 3: an update, a delete (tombstone) and a new key.
fn profiles_2() -> Vec<Record> {
    vec![
        rec("alice", Some("platinum"), 5_000),
        rec("bob", None, 5_000),
        rec("dave", Some("new"), 5_000),
    ]
}

/// Phase 2 and 4 purchases, keyed by user (stream-table join); "lamp" is out of order.
fn purchases(phase: u8) -> Vec<Record> {
    match phase {
        2 => vec![
            rec("alice", Some("book"), 2_000),
            rec("bob", Some("pen"), 2_100),
            rec("dave", Some("cup"), 2_200),
            rec("alice", Some("lamp"), 1_500),
        ],
        _ => vec![
            rec("alice", Some("desk"), 6_000),
            rec("bob", Some("ink"), 6_100),
            rec("dave", Some("mug"), 6_200),
            rec("carol", Some("tea"), 900),
        ],
    }
}

/// The same purchases keyed by purchase id, the user in the value ("user:item"), for the
/// global join's key extractor.
fn orders(phase: u8) -> Vec<Record> {
    purchases(phase)
        .into_iter()
        .enumerate()
        .map(|(i, (user, item, ts))| {
            let value = format!("{}:{}", user.unwrap(), item.unwrap());
            (Some(format!("o{phase}-{i}")), Some(value), ts)
        })
        .collect()
}

/// The table value each key has after `records`, for the phase waits.
fn last_values(records: &[Record]) -> Vec<(String, Option<String>)> {
    let mut last = std::collections::BTreeMap::new();
    for (k, v, _) in records {
        last.insert(k.clone().unwrap(), v.clone());
    }
    last.into_iter().collect()
}

/// The names of one run.
struct Names {
    app: String,
    table: String,
    stream: String,
    output: String,
}

impl Names {
    async fn create(side: &str) -> Names {
        Self::create_on(&kstreams::bootstrap(), side).await
    }

    async fn create_on(bootstrap: &str, side: &str) -> Names {
        let n = Names {
            app: kstreams::unique(&format!("joins-{side}")),
            table: kstreams::unique("profiles"),
            stream: kstreams::unique("purchases"),
            output: kstreams::unique("enriched"),
        };
        kstreams::create_topics(
            bootstrap,
            &[
                (&n.table, PARTITIONS),
                (&n.stream, PARTITIONS),
                (&n.output, PARTITIONS),
            ],
        )
        .await;
        n
    }
}

/// The backlog: every table record of both table phases (updates, a delete, a new key),
/// then the events of phase 4 whose timestamps come after them (so that Kafka Streams'
/// timestamp-ordered KTable join and its bootstrapped GlobalKTable join agree), all written
/// before the app starts.
fn backlog(global: bool) -> (Vec<Record>, Vec<Record>) {
    let table = profiles_1().into_iter().chain(profiles_2()).collect();
    let events = if global { orders(4) } else { purchases(4) };
    let events = events
        .into_iter()
        .filter(|(_, _, ts)| *ts >= 5_000)
        .collect();
    (table, events)
}

/// Writes the backlog, then runs JoinsStreamTable.java in `mode` until it committed every
/// event; its output, sorted.
async fn kafka_streams_backlog_run(mode: &str, global: bool) -> Vec<Record> {
    let bootstrap = kstreams::bootstrap();
    let n = Names::create("kstreams-backlog").await;
    let (table, events) = backlog(global);
    kstreams::produce(&bootstrap, &n.table, &table).await;
    kstreams::produce(&bootstrap, &n.stream, &events).await;
    let app = KStreamsApp::start(
        "JoinsStreamTable",
        &[&bootstrap, &n.app, mode, &n.table, &n.stream, &n.output],
    )
    .await;
    kstreams::wait_committed(&bootstrap, &n.app, &n.stream, PARTITIONS).await;
    app.stop().await;
    sorted(kstreams::read_all(&bootstrap, &n.output, PARTITIONS).await)
}

/// Runs JoinsStreamTable.java in `mode` over the phases; its output, sorted.
async fn kafka_streams_run(mode: &str, global: bool) -> Vec<Record> {
    let bootstrap = kstreams::bootstrap();
    let n = Names::create("kstreams").await;
    let mut app = KStreamsApp::start(
        "JoinsStreamTable",
        &[&bootstrap, &n.app, mode, &n.table, &n.stream, &n.output],
    )
    .await;
    let events = |phase| {
        if global {
            orders(phase)
        } else {
            purchases(phase)
        }
    };
    for (table, phase) in [(profiles_1(), 2), (profiles_2(), 4)] {
        kstreams::produce(&bootstrap, &n.table, &table).await;
        for (key, value) in last_values(&table) {
            app.wait_for(&key, value.as_deref()).await;
        }
        kstreams::produce(&bootstrap, &n.stream, &events(phase)).await;
        kstreams::wait_committed(&bootstrap, &n.app, &n.stream, PARTITIONS).await;
    }
    app.stop().await;
    sorted(kstreams::read_all(&bootstrap, &n.output, PARTITIONS).await)
}

/// Runs our join (`mode` as JoinsStreamTable.java's) over the phases on `bootstrap`; its
/// output, sorted.
async fn ours_run(bootstrap: &str, session: Duration, mode: &str) -> Vec<Record> {
    ours_run_with(bootstrap, session, mode, false).await
}

/// [`ours_run`], or with `backlog` over the [`backlog`] written before the app starts.
async fn ours_run_with(
    bootstrap: &str,
    session: Duration,
    mode: &str,
    backlog_first: bool,
) -> Vec<Record> {
    let n = Names::create_on(bootstrap, "ours").await;
    if backlog_first {
        let (table, events) = backlog(mode.starts_with("global"));
        kstreams::produce(bootstrap, &n.table, &table).await;
        kstreams::produce(bootstrap, &n.stream, &events).await;
    }
    let app = common::app_on(&n.app, bootstrap, session)
        .broker_commit_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let raw = |name: &str| {
        app.topic::<String, String>(name)
            .value_serializer("raw")
            .partitions(PARTITIONS)
    };
    let (profiles, stream, output) = (raw(&n.table), raw(&n.stream), raw(&n.output));
    let global = mode.starts_with("global");
    let mut table = app.table_builder::<String, String>("profiles");
    if global {
        table = table.global();
    }
    let table = table.from_topic(&profiles).unwrap();
    let agent = app.agent_builder("enrich", &stream);
    let user = |v: &String| v.split_once(':').map(|(user, _)| user.to_owned());
    match mode {
        "left" => drop(agent.join(&table).run(joiner(&output, |f| f))),
        "inner" => drop(agent.inner_join(&table).run(joiner(&output, Some))),
        "global-left" => drop(agent.join_global(&table, user).run(joiner(&output, |f| f))),
        "global" => drop(
            agent
                .inner_join_global(&table, user)
                .run(joiner(&output, Some)),
        ),
        other => panic!("unknown mode {other}"),
    }
    app.start().await.unwrap();
    if backlog_first {
        kstreams::wait_committed(bootstrap, &n.app, &n.stream, PARTITIONS).await;
        app.shutdown().await.unwrap();
        return sorted(kstreams::read_all(bootstrap, &n.output, PARTITIONS).await);
    }
    let events = |phase| {
        if global {
            orders(phase)
        } else {
            purchases(phase)
        }
    };
    for (records, phase) in [(profiles_1(), 2), (profiles_2(), 4)] {
        kstreams::produce(bootstrap, &n.table, &records).await;
        for (key, value) in last_values(&records) {
            wait_for(&table, &key, value.as_deref()).await;
        }
        kstreams::produce(bootstrap, &n.stream, &events(phase)).await;
        kstreams::wait_committed(bootstrap, &n.app, &n.stream, PARTITIONS).await;
    }
    app.shutdown().await.unwrap();
    sorted(kstreams::read_all(bootstrap, &n.output, PARTITIONS).await)
}

/// The body of our joining agent: JoinsStreamTable.java's joiner, "value|table value" ("null"
/// for none), sent to `out` with the event's key and timestamp. `found` reads the table
/// value of the join's shape (inner: `W`, left: `Option<W>`).
fn joiner<J: Send + 'static>(
    out: &Topic<String, String>,
    found: fn(J) -> Option<String>,
) -> impl Fn(JoinedStream<String, String, J>) -> BoxFuture<'static, streams::Result<()>> {
    let out = out.clone();
    move |mut events| {
        let out = out.clone();
        async move {
            while let Some(event) = events.next().await {
                let at = event.time().expect("a timestamp");
                let key = event.key.clone().expect("keyed");
                let (value, other) = event.into_value();
                let other = found(other);
                let joined = format!("{value}|{}", other.as_deref().unwrap_or("null"));
                out.send_at(key, joined, at).await?;
            }
            Ok(())
        }
        .boxed()
    }
}

/// Waits until our table holds `want` for `key`.
async fn wait_for(table: &Table<String, String>, key: &str, want: Option<&str>) {
    let what = format!("table value of {key} is {want:?}");
    common::wait_until(&what, || {
        table.get(key).is_ok_and(|got| got.as_deref() == want)
    })
    .await;
}

fn sorted(mut records: Vec<Record>) -> Vec<Record> {
    records.sort();
    records
}

/// What the left join of the phases gives (Kafka Streams' semantics, written out).
fn expected_left() -> Vec<Record> {
    sorted(vec![
        rec("alice", Some("book|gold"), 2_000),
        rec("bob", Some("pen|silver"), 2_100),
        rec("dave", Some("cup|null"), 2_200),
        rec("alice", Some("lamp|gold"), 1_500),
        rec("alice", Some("desk|platinum"), 6_000),
        rec("bob", Some("ink|null"), 6_100),
        rec("dave", Some("mug|new"), 6_200),
        rec("carol", Some("tea|bronze"), 900),
    ])
}

fn expected_inner() -> Vec<Record> {
    expected_left()
        .into_iter()
        .filter(|(_, v, _)| !v.as_deref().unwrap().ends_with("|null"))
        .collect()
}

/// Ours on a fresh mock.
async fn ours_on_mock(mode: &str) -> Vec<Record> {
    let mock = common::mock().await;
    ours_run(&mock.bootstrap(), common::MOCK_SESSION, mode).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_table_joins_give_kafka_streams_records_on_the_mock() {
    assert_eq!(ours_on_mock("left").await, expected_left());
    assert_eq!(ours_on_mock("inner").await, expected_inner());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_table_joins_give_kafka_streams_records_on_the_mock() {
    assert_eq!(ours_on_mock("global-left").await, expected_global_left());
    assert_eq!(ours_on_mock("global").await, expected_global_inner());
}

/// Ours and Kafka Streams on real Kafka, the same phases: equal outputs.
async fn same_as_kafka_streams(mode: &str, global: bool) {
    let bootstrap = kstreams::bootstrap();
    let theirs = kafka_streams_run(mode, global).await;
    let ours = ours_run(&bootstrap, Duration::from_secs(6), mode).await;
    assert_eq!(
        ours, theirs,
        "{mode}: ours (left) and Kafka Streams' (right) differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP), Java and the Kafka jars; .ci/run runs it"]
async fn stream_table_joins_same_as_kafka_streams() {
    same_as_kafka_streams("left", false).await;
    same_as_kafka_streams("inner", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP), Java and the Kafka jars; .ci/run runs it"]
async fn global_table_joins_same_as_kafka_streams() {
    same_as_kafka_streams("global-left", true).await;
    same_as_kafka_streams("global", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP), Java and the Kafka jars; .ci/run runs it"]
async fn kafka_streams_stream_table_joins_give_the_expected_records() {
    assert_eq!(kafka_streams_run("left", false).await, expected_left());
    assert_eq!(kafka_streams_run("inner", false).await, expected_inner());
}

/// What the global left join of the phases gives: keyed by order, "user:item|profile", the
/// profile as in [`expected_left`] (the same events at the same table states).
fn expected_global_left() -> Vec<Record> {
    let profile: std::collections::BTreeMap<(String, String), String> = expected_left()
        .into_iter()
        .map(|(user, joined, _)| {
            let (item, profile) = joined.as_deref().unwrap().split_once('|').unwrap();
            ((user.unwrap(), item.to_owned()), profile.to_owned())
        })
        .collect();
    let joined = orders(2)
        .into_iter()
        .chain(orders(4))
        .map(|(order, value, ts)| {
            let value = value.unwrap();
            let (user, item) = value.split_once(':').unwrap();
            let p = &profile[&(user.to_owned(), item.to_owned())];
            (order, Some(format!("{value}|{p}")), ts)
        });
    sorted(joined.collect())
}

fn expected_global_inner() -> Vec<Record> {
    expected_global_left()
        .into_iter()
        .filter(|(_, v, _)| !v.as_deref().unwrap().ends_with("|null"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP), Java and the Kafka jars; .ci/run runs it"]
async fn kafka_streams_global_table_joins_give_the_expected_records() {
    assert_eq!(
        kafka_streams_run("global-left", true).await,
        expected_global_left()
    );
    assert_eq!(
        kafka_streams_run("global", true).await,
        expected_global_inner()
    );
}

/// What the left join of the backlog gives: the phase-4 events after the table's updates
/// (Kafka Streams: by timestamp for a KTable, bootstrapped for a GlobalKTable; ours: the
/// bootstrap, `JoinBuilder::bootstrap`).
fn expected_backlog(global: bool, inner: bool) -> Vec<Record> {
    let all = if global {
        expected_global_left()
    } else {
        expected_left()
    };
    let (_, events) = backlog(global);
    all.into_iter()
        .filter(|(k, v, ts)| {
            events.iter().any(|(ek, ev, ets)| {
                ek == k && ets == ts && v.as_deref().unwrap().starts_with(ev.as_deref().unwrap())
            })
        })
        .filter(|(_, v, _)| !inner || !v.as_deref().unwrap().ends_with("|null"))
        .collect()
}

/// Ours on a fresh mock, started on the backlog.
async fn ours_backlog_on_mock(mode: &str) -> Vec<Record> {
    let mock = common::mock().await;
    ours_run_with(&mock.bootstrap(), common::MOCK_SESSION, mode, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_started_on_a_backlog_give_kafka_streams_records_on_the_mock() {
    assert_eq!(
        ours_backlog_on_mock("left").await,
        expected_backlog(false, false)
    );
    assert_eq!(
        ours_backlog_on_mock("inner").await,
        expected_backlog(false, true)
    );
    assert_eq!(
        ours_backlog_on_mock("global-left").await,
        expected_backlog(true, false)
    );
    assert_eq!(
        ours_backlog_on_mock("global").await,
        expected_backlog(true, true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP), Java and the Kafka jars; .ci/run runs it"]
async fn joins_started_on_a_backlog_same_as_kafka_streams() {
    let bootstrap = kstreams::bootstrap();
    for (mode, global, inner) in [
        ("left", false, false),
        ("inner", false, true),
        ("global-left", true, false),
        ("global", true, true),
    ] {
        let theirs = kafka_streams_backlog_run(mode, global).await;
        assert_eq!(
            theirs,
            expected_backlog(global, inner),
            "{mode}: Kafka Streams"
        );
        let ours = ours_run_with(&bootstrap, Duration::from_secs(6), mode, true).await;
        assert_eq!(
            ours, theirs,
            "{mode}: ours (left) and Kafka Streams' (right) differ"
        );
    }
}
