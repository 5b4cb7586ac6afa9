//! Stream-table and stream-global-table joins equal to Kafka Streams' on the same input (issue
//! 23, item 5): scripts/java/JoinsStreamTable.java and our app run the same join over the same
//! topics on real Kafka, in phases (table records, then events, then table updates and deletes,
//! then events, each phase applied by both apps before the next), and their outputs must be
//! equal record for record. Needs KAFKA_BOOTSTRAP, Java and the Kafka jars (`#[ignore]`d
//! otherwise; .ci/run's kafka_client_tests runs them).

mod common;
#[path = "common/kstreams.rs"]
mod kstreams;

use kstreams::{KStreamsApp, Record};

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
        let n = Names {
            app: kstreams::unique(&format!("joins-{side}")),
            table: kstreams::unique("profiles"),
            stream: kstreams::unique("purchases"),
            output: kstreams::unique("enriched"),
        };
        kstreams::create_topics(
            &kstreams::bootstrap(),
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
