//! The operator CLI as a user runs it, through the `tables` example: `send` refuses a value
//! that does not decode as the topic's type (exit 1, nothing written), `--raw` sends it anyway,
//! `--json` prints documents a script parses, unknown codecs are usage errors (exit 2), and
//! `completions` prints a shell script. The broker is a mock cluster in this test process.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use testkit::MockCluster;

mod common;

/// Runs the `tables` example with `args`, its app and topic named by `app`.
fn tables(app: &str, args: &[&str]) -> Output {
    Command::new(common::example("tables"))
        .args(args)
        .env("TABLES_APP", app)
        .env("TABLES_TOPIC", format!("{app}-purchases"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The JSON document on stdout of a run that must have succeeded.
fn document(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", text(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_refuses_what_the_topic_type_cannot_read_and_raw_sends_it_anyway() {
    let mock = MockCluster::builder().build().await.unwrap();
    let broker = format!("kafka://{}", mock.bootstrap());
    let app = testkit::unique_name("cli-send");
    let topic = format!("{app}-purchases");
    let send = |value: &str, more: &[&str]| {
        let mut args = vec!["--broker", &broker, "send", &topic, value, "-p", "0"];
        args.extend_from_slice(more);
        tables(&app, &args)
    };

    let bad = r#"{"username":"ann","currency":"EUR","amount":"x"}"#;
    let refused = send(bad, &["--key", "ann"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "error: value does not decode as the topic's value type ({topic}): \
             amount: invalid type: string \"x\", expected i64"
        )),
        "{stderr}"
    );
    assert_eq!(text(&refused.stdout), "");

    // The refused value was not written: the first record of the partition is at offset 0.
    let good = r#"{"username":"ann","currency":"EUR","amount":3}"#;
    let doc = document(&send(good, &["--key", "ann", "--json"]));
    assert_eq!(
        doc,
        serde_json::json!({"sent": [{"topic": topic, "partition": 0, "offset": 0}]})
    );

    let doc = document(&send(bad, &["--raw", "--json", "--repeat", "2"]));
    let offsets: Vec<&Value> = doc["sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["offset"])
        .collect();
    assert_eq!(offsets, [1, 2]);

    // Without --json, the human line as before.
    let out = send(good, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("sent to {topic}/0 at offset 3\n")
    );
}

#[test]
fn usage_errors_exit_with_2_and_name_what_is_known() {
    let app = testkit::unique_name("cli-usage");
    let out = tables(
        &app,
        &["send", "t", "{}", "--value-serializer", "json|gzip"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--value-serializer") && stderr.contains("binary, json, raw"),
        "{stderr}"
    );
    let out = tables(&app, &["agents", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn listings_as_json_parse_with_their_documented_fields() {
    let app = testkit::unique_name("cli-json");
    let agents = document(&tables(&app, &["agents", "--json"]));
    // The `totals` agent reads the repartition topic its group_by stage writes.
    let totals = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "totals")
        .unwrap_or_else(|| panic!("{agents}"));
    assert!(
        totals["topic"].as_str().unwrap().ends_with("-repartition"),
        "{agents}"
    );
    assert!(
        totals["topic"].is_string() && totals["concurrency"].is_u64(),
        "{agents}"
    );
    assert!(totals["sinks"].is_array(), "{agents}");

    let topics = document(&tables(&app, &["topics", "--json"]));
    let purchases = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == format!("{app}-purchases"))
        .unwrap_or_else(|| panic!("{topics}"));
    assert_eq!(purchases["key_serializer"], "raw");
    assert_eq!(purchases["value_serializer"], "json");
    assert_eq!(purchases["partitions"], 3);
    assert_eq!(purchases["internal"], false);
}

#[test]
fn completions_print_a_script_naming_the_commands() {
    let out = tables("tables-app", &["completions", "bash"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = text(&out.stdout);
    for word in [
        "send",
        "agents",
        "tables",
        "completions",
        "--value-serializer",
    ] {
        assert!(script.contains(word), "{word} missing from:\n{script}");
    }
    let out = tables("tables-app", &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_a_long_send_with_exit_code_130() {
    use common::worker::{Stop, Worker};

    let mock = MockCluster::builder().build().await.unwrap();
    let app = testkit::unique_name("cli-interrupt");
    let broker = format!("kafka://{}", mock.bootstrap());
    let topic = format!("{app}-purchases");
    let good = r#"{"username":"ann","currency":"EUR","amount":3}"#;
    let mut command = Command::new(common::example("tables"));
    command
        .args([
            "--broker",
            &broker,
            "send",
            &topic,
            good,
            "--repeat",
            "100000000",
        ])
        .env("TABLES_APP", &app)
        .env("TABLES_TOPIC", &topic)
        .env_remove("RUST_LOG");
    // Killed when the test fails: it would send for hours.
    let mut send = Worker::spawn("send --repeat", command);
    // Once a record is out, `send` is in its loop and listens for Ctrl-C.
    send.wait_lines("sent to ", 1, Duration::from_secs(60));
    let out = send.end(Stop::Interrupt, Duration::from_secs(60));
    assert!(
        out.stdout
            .first()
            .is_some_and(|l| l.starts_with("sent to ")),
        "{:?}",
        out.stdout.first()
    );
    let stderr = out.stderr.join("\n");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("error: interrupted (Ctrl-C) after sending"),
        "{stderr}"
    );
}
