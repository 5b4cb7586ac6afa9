//! Windowed stream-stream joins equal to Kafka Streams' on the same input (issue 23, item 5):
//! scripts/java/JoinsWindowed.java and our app run the same inner, left and outer joins
//! (within 100 ms, grace 50 ms) over the same records, one record at a time (each processed
//! and committed by the app before the next is produced, so both see one order), with
//! out-of-order timestamps and a late record. The sets of results (key, value, timestamp)
//! must be equal, but for the one documented difference: Kafka Streams sends a late left
//! event (left and outer joins) at once as unmatched, ours drops it (see `StreamJoinBuilder`).
//! The comparison needs KAFKA_BOOTSTRAP, Java and the Kafka jars: `#[ignore]`d otherwise
//! (.ci/run's kafka_client_tests runs it); ours alone runs on the mock against the expected
//! results written out.

mod common;
#[path = "common/kstreams.rs"]
mod kstreams;

use std::collections::BTreeSet;
use std::time::Duration;

use kstreams::{KStreamsApp, Record};
use streams::App;

const WITHIN_MS: i64 = 100;
const GRACE_MS: i64 = 50;
const B: i64 = 1_000_000;
/// The late record's value.
const LATE: &str = "a0";

/// `(side, key, value, timestamp)`, in the order produced.
fn input() -> Vec<(char, &'static str, &'static str, i64)> {
    vec![
        ('L', "a", "a1", B),
        ('R', "a", "A1", B + 50),    // pairs with a1
        ('L', "b", "b1", B + 100),   // never matched
        ('R', "c", "C1", B + 120),   // never matched
        ('R', "a", "A0", B - 20),    // out of order within grace: pairs with a1
        ('L', "a", LATE, B - 500),   // late: more than within + grace behind stream time
        ('L', "d", "d1", B + 200),   // d1 and D1 are 150 apart: no pair
        ('R', "d", "D1", B + 350),   // closes b1 and C1
        ('L', "e", "e1", B + 1_000), // closes d1 and D1
    ]
}

fn rec(key: &str, value: &str, ts: i64) -> Record {
    (Some(key.to_owned()), Some(value.to_owned()), ts)
}

/// What Kafka Streams' semantics give, written out (without its unmatched late record).
fn expected(mode: &str) -> BTreeSet<Record> {
    let mut out = BTreeSet::from([rec("a", "a1+A1", B + 50), rec("a", "a1+A0", B)]);
    if mode != "inner" {
        out.extend([rec("b", "b1+-", B + 100), rec("d", "d1+-", B + 200)]);
    }
    if mode == "outer" {
        out.extend([rec("c", "-+C1", B + 120), rec("d", "-+D1", B + 350)]);
    }
    out
}

struct Names {
    app: String,
    left: String,
    right: String,
    output: String,
}

impl Names {
    async fn create_on(bootstrap: &str, side: &str) -> Names {
        let n = Names {
            app: kstreams::unique(&format!("window-join-{side}")),
            left: kstreams::unique("left"),
            right: kstreams::unique("right"),
            output: kstreams::unique("joined"),
        };
        kstreams::create_topics(bootstrap, &[(&n.left, 1), (&n.right, 1), (&n.output, 1)]).await;
        n
    }

    /// Produces the input one record at a time, each committed by `group` before the next.
    async fn feed(&self, bootstrap: &str) {
        for (side, key, value, ts) in input() {
            let topic = if side == 'L' { &self.left } else { &self.right };
            kstreams::produce(bootstrap, topic, &[rec(key, value, ts)]).await;
            kstreams::wait_committed(bootstrap, &self.app, topic, 1).await;
        }
    }
}

/// Runs JoinsWindowed.java in `mode`; its results.
async fn kafka_streams_run(mode: &str) -> BTreeSet<Record> {
    let bootstrap = kstreams::bootstrap();
    let n = Names::create_on(&bootstrap, "kstreams").await;
    let app = KStreamsApp::start(
        "JoinsWindowed",
        &[
            &bootstrap,
            &n.app,
            mode,
            &WITHIN_MS.to_string(),
            &GRACE_MS.to_string(),
            &n.left,
            &n.right,
            &n.output,
        ],
    )
    .await;
    n.feed(&bootstrap).await;
    app.stop().await;
    kstreams::read_all(&bootstrap, &n.output, 1)
        .await
        .into_iter()
        .collect()
}

/// Runs our join in `mode` on `bootstrap`; its results.
async fn ours_run(bootstrap: &str, session: Duration, mode: &str) -> BTreeSet<Record> {
    let n = Names::create_on(bootstrap, "ours").await;
    let app: App = common::app_on(&n.app, bootstrap, session)
        .broker_commit_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let raw = |name: &str| app.topic::<String, String>(name).value_serializer("raw");
    let (left, right, output) = (raw(&n.left), raw(&n.right), raw(&n.output));
    let join = app
        .stream_join("windowed", &left, &right)
        .within(Duration::from_millis(WITHIN_MS as u64))
        .grace(Duration::from_millis(GRACE_MS as u64));
    let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "-".into());
    let handle = match mode {
        "inner" => join.inner().sink(&output, |l, r| format!("{l}+{r}")),
        "left" => join
            .left()
            .sink(&output, move |l, r| format!("{l}+{}", show(r))),
        _ => join
            .outer()
            .sink(&output, move |l, r| format!("{}+{}", show(l), show(r))),
    }
    .unwrap();
    app.start().await.unwrap();
    n.feed(bootstrap).await;
    assert_eq!(handle.late_events(), 1, "{mode}: the late record");
    app.shutdown().await.unwrap();
    kstreams::read_all(bootstrap, &n.output, 1)
        .await
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_joins_give_kafka_streams_pairs_on_the_mock() {
    for mode in ["inner", "left", "outer"] {
        let mock = common::mock().await;
        let ours = ours_run(&mock.bootstrap(), common::MOCK_SESSION, mode).await;
        assert_eq!(ours, expected(mode), "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP), Java and the Kafka jars; .ci/run runs it"]
async fn windowed_joins_same_as_kafka_streams() {
    let bootstrap = kstreams::bootstrap();
    for mode in ["inner", "left", "outer"] {
        let theirs = kafka_streams_run(mode).await;
        let ours = ours_run(&bootstrap, Duration::from_secs(6), mode).await;
        // The documented difference: Kafka Streams sends the late left record unmatched (left
        // and outer joins; Kafka 4.4 does), ours drops it.
        let (late, theirs): (BTreeSet<Record>, BTreeSet<Record>) = theirs
            .into_iter()
            .partition(|(_, v, _)| v.as_deref() == Some(&format!("{LATE}+-")));
        let want_late = match mode {
            "inner" => BTreeSet::new(),
            _ => BTreeSet::from([rec("a", &format!("{LATE}+-"), B - 500)]),
        };
        assert_eq!(
            late, want_late,
            "{mode}: Kafka Streams' unmatched late record"
        );
        assert_eq!(
            ours, theirs,
            "{mode}: ours (left) and Kafka Streams' (right) differ"
        );
        assert_eq!(ours, expected(mode), "{mode}");
    }
}
