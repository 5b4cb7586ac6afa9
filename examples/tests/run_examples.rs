//! Runs each example as a user would and checks what it prints. `cargo test` builds the
//! examples first, into target/<profile>/examples/.

mod common;

fn run(name: &str, args: &[&str]) -> String {
    common::run(name, args).0
}

#[test]
fn quickstart_round_trips_every_purchase_on_the_embedded_mock() {
    let out = run("quickstart", &[]);
    assert!(out.contains("started an embedded mock Kafka"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("sent ")).count(),
        6,
        "{out}"
    );
    let read: Vec<&str> = out.lines().filter(|l| l.starts_with("read ")).collect();
    assert_eq!(read.len(), 6, "{out}");
    // Keyed records of one user share a partition, in the order they were sent.
    let alice: Vec<&&str> = read.iter().filter(|l| l.contains("\"alice\"")).collect();
    assert!(
        alice[0].contains("EUR") && alice[1].contains("GBP"),
        "{out}"
    );
    assert!(
        out.ends_with("done: 6 purchases produced and consumed\n"),
        "{out}"
    );
}

#[test]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP); .ci/run runs it"]
fn quickstart_runs_against_a_real_broker_when_one_is_named() {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP")
        .expect("KAFKA_BOOTSTRAP must name a real Kafka broker (scripts/kafka start prints one)");
    let out = run("quickstart", &["--broker", &format!("kafka://{bootstrap}")]);
    assert!(!out.contains("embedded mock"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("read ")).count(),
        6,
        "{out}"
    );
}

#[test]
fn exactly_once_demo_doubles_and_totals_every_event() {
    let out = run("exactly_once", &[]);
    assert!(out.contains("sent 12 events"), "{out}");
    // Printed by the agent when the worker stops: ids 0..12 over keys k0, k1, k2, amount = id.
    let mut finals = common::lines(&out, "final ");
    finals.sort_unstable();
    assert_eq!(
        finals,
        [
            "final k0 count=4 sum=18",
            "final k1 count=4 sum=22",
            "final k2 count=4 sum=26"
        ],
        "{out}"
    );
}
