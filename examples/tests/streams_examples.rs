//! Runs each streams example (the Faust talk's demos) as a user would and checks what it
//! prints. `cargo test` builds the examples first, into target/<profile>/examples/.

mod common;
use common::{lines, run};

/// With KAFKA_BOOTSTRAP set, also against real Kafka.
fn brokers() -> Vec<Vec<String>> {
    let mut v = vec![vec![]];
    if let Ok(b) = std::env::var("KAFKA_BOOTSTRAP") {
        v.push(vec!["--broker".into(), format!("kafka://{b}")]);
    }
    v
}

#[test]
fn hello_prints_every_purchase() {
    let (out, _) = run("hello", &[]);
    let got = lines(&out, "purchase: ");
    assert_eq!(got.len(), 4, "{out}");
    assert!(out.contains("purchase: alice bought 3 EUR"), "{out}");
}

#[test]
fn deserialization_keeps_valid_purchases_and_names_the_failing_fields() {
    let (out, err) = run("deserialization", &[]);
    assert_eq!(lines(&out, "valid purchase: ").len(), 2, "{out}");
    let skipped: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("skipped a record"))
        .collect();
    assert_eq!(skipped.len(), 4, "{err}");
    for expected in [
        "purchases/0@1 at field `amount`: invalid type",
        "purchases/0@2 at field `currency`: validation failed",
        "purchases/0@3 at field `amount`: validation failed",
        "purchases/0@4: missing field `amount`",
    ] {
        assert!(err.contains(expected), "{expected} not in\n{err}");
    }
}

#[test]
fn serialization_shows_binary_json_on_the_wire_and_values_decoded() {
    let (out, _) = run("serialization", &[]);
    let wire = lines(&out, "on the wire: ");
    assert_eq!(wire.len(), 3, "{out}");
    // base64 of {"from":"alice","text":"hello"} in a JSON string
    assert!(
        wire[0].ends_with("\"eyJmcm9tIjoiYWxpY2UiLCJ0ZXh0IjoiaGVsbG8ifQ==\""),
        "{out}"
    );
    assert!(out.contains("decoded: alice says \"hello\""), "{out}");
    assert_eq!(lines(&out, "decoded: ").len(), 3, "{out}");
}

#[test]
fn streams_enumerates_into_the_destination_topic() {
    for args in brokers() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, _) = run("streams", &args);
        let dest = lines(&out, "dest-topic: ");
        if args.is_empty() {
            assert_eq!(
                dest,
                vec![
                    "dest-topic: #0 apple",
                    "dest-topic: #1 banana",
                    "dest-topic: #2 cherry",
                    "dest-topic: #3 damson",
                    "dest-topic: #4 elder"
                ],
                "{out}"
            );
        } else {
            // A real broker keeps the topics of earlier runs: at least this run's five.
            assert!(dest.len() >= 5, "{out}");
        }
    }
}

#[test]
fn processors_transform_and_delete_the_pii_field() {
    let (out, _) = run("processors", &[]);
    let processed = lines(&out, "processed: ");
    assert_eq!(
        processed,
        vec![
            r#"processed: {"username":"alice","currency":"EUR"}"#,
            r#"processed: {"username":"bob","currency":"USD"}"#
        ],
        "{out}"
    );
    assert!(!processed.iter().any(|l| l.contains("credit_card")));
}

#[test]
fn operations_group_by_currency_and_filter() {
    let (out, _) = run("operations", &[]);
    assert_eq!(lines(&out, "large purchase: ").len(), 4, "{out}");
    assert!(
        out.contains("total EUR: 42\ntotal GBP: 25\ntotal USD: 40\n"),
        "{out}"
    );
}

#[test]
fn wordcount_counts_every_word() {
    let (out, _) = run("wordcount", &[]);
    assert!(out.contains("count the: 4\n"), "{out}");
    assert!(out.contains("count fox: 2\n"), "{out}");
    assert!(out.contains("count dog: 2\n"), "{out}");
    assert_eq!(lines(&out, "count ").len(), 10, "{out}");
}

#[test]
fn the_cli_lists_agents_and_topics_and_explains_itself() {
    let (help, _) = run("hello", &["--help"]);
    for word in [
        "worker",
        "send",
        "agents",
        "topics",
        "--broker",
        "--loglevel",
    ] {
        assert!(help.contains(word), "{word} missing from\n{help}");
    }
    let (agents, _) = run("operations", &["agents"]);
    assert!(agents.contains("totals.group_by(currency)"), "{agents}");
    assert!(
        agents.contains("operations-app-totals-currency-repartition"),
        "{agents}"
    );
    let (topics, _) = run("serialization", &["topics"]);
    assert!(
        topics.contains("greetings") && topics.contains("binary|json"),
        "{topics}"
    );
    let (sent, _) = run(
        "hello",
        &[
            "send",
            "purchases",
            "--key",
            "zoe",
            r#"{"username":"zoe","currency":"EUR","amount":1}"#,
        ],
    );
    assert!(sent.starts_with("sent to purchases/"), "{sent}");
}

#[test]
fn send_puts_a_record_in_the_partition_asked_for() {
    let (sent, _) = run(
        "hello",
        &[
            "send",
            "purchases",
            "--partition",
            "2",
            r#"{"username":"zoe","currency":"EUR","amount":1}"#,
        ],
    );
    assert_eq!(sent, "sent to purchases/2 at offset 0\n");
}

/// The issue's scenario: a broker that refuses the worker's session timeout. The worker
/// stops at once with an error that names the setting, and the process exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_the_group_refuses_exits_non_zero_and_says_why() {
    let mock = testkit::MockCluster::builder()
        .group_min_session_timeout(std::time::Duration::from_secs(1_000_000))
        .build()
        .await
        .unwrap();
    let broker = format!("kafka://{}", mock.bootstrap());
    let out = tokio::process::Command::new(common::example("operations"))
        .args(["--broker", &broker, "worker", "--no-web"])
        .env_remove("RUST_LOG")
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), out)
        .await
        .expect("the worker gives up by itself")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("InvalidSessionTimeout"), "{stderr}");
    assert!(stderr.contains("broker_session_timeout"), "{stderr}");
    assert!(
        stderr.lines().count() < 20,
        "one error, not a retry loop:\n{stderr}"
    );
}

#[test]
fn tables_totals_every_purchase_by_currency() {
    for args in brokers() {
        // Its own app and topic: on real Kafka other examples write to `purchases` too, and
        // the app reads its topic from the start.
        let app = testkit::unique_name("tables-test");
        let output = std::process::Command::new(common::example("tables"))
            .args(&args)
            .env("TABLES_APP", &app)
            .env("TABLES_TOPIC", format!("{app}-purchases"))
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "tables failed:\n{out}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Each purchase prints its currency's new total once.
        assert_eq!(lines(&out, "EUR total: ").len(), 3, "{out}");
        assert_eq!(lines(&out, "USD total: ").len(), 2, "{out}");
        assert_eq!(lines(&out, "GBP total: ").len(), 2, "{out}");
        let mut finals = lines(&out, "final ");
        finals.sort();
        assert_eq!(
            finals,
            ["final EUR: 43", "final GBP: 27", "final USD: 45"],
            "{out}"
        );
    }
}
