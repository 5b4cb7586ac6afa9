//! The tables example's command line as a user runs it, in separate processes beside a running
//! worker: `send`, `agents` and `topics` work (declaring a table opens no store); `tables` and
//! `reset` say a running worker holds the store and exit 1. And static membership: a worker
//! killed with SIGKILL and restarted under the same `--instance-id` takes its partitions back
//! at once, where one without it waits out the session timeout (10 s in the example).
//! `status` shows the running worker (its partitions, web server, readiness and a lag that
//! reaches 0) and the group once it stopped; `tables --key/--partition` read values through
//! the worker's web server while it holds the store, and from the store once it stopped.
//! The broker is a mock cluster in this test process.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::MockCluster;

mod common;

use common::worker::{Stop, Worker};

const WAIT: Duration = Duration::from_secs(60);
/// The example's `broker_session_timeout`.
const SESSION: Duration = Duration::from_secs(10);

struct Setup {
    bootstrap: String,
    app: String,
    topic: String,
    store: String,
    dir: tempfile::TempDir,
    _mock: MockCluster,
}

async fn setup(name: &str) -> Setup {
    let mock = MockCluster::builder()
        .default_partitions(3)
        .build()
        .await
        .unwrap();
    let app = testkit::unique_name(name);
    let dir = tempfile::tempdir().unwrap();
    Setup {
        bootstrap: mock.bootstrap(),
        topic: format!("{app}-purchases"),
        store: format!("redb://{}", dir.path().display()),
        app,
        dir,
        _mock: mock,
    }
}

impl Setup {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(common::example("tables"));
        cmd.args(["--broker", &format!("kafka://{}", self.bootstrap)])
            .args(args)
            .env("TABLES_APP", &self.app)
            .env("TABLES_TOPIC", &self.topic)
            .env("TABLES_STORE", &self.store)
            .env_remove("WORKER_INSTANCE_ID")
            .env("RUST_LOG", "warn,streams::runtime::tables=info");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Starts a worker; its stdout and stderr lines are gathered in order.
    fn worker(&self, args: &[&str]) -> Worker {
        spawn(self.command(&[&["worker", "--no-web"], args].concat()))
    }

    /// Starts a worker whose web server listens on `port` and is advertised to the group.
    fn web_worker(&self, port: u16, args: &[&str]) -> Worker {
        let port = port.to_string();
        let mut command = self.command(&[&["worker", "--web-port", &port], args].concat());
        command.env("TABLES_APPLICATION_SERVER", format!("127.0.0.1:{port}"));
        spawn(command)
    }

    /// Runs a command with `--json`, which must succeed, and parses its output.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(&[args, &["--json"]].concat());
        assert!(out.status.success(), "{args:?} failed: {}", text(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)))
    }

    /// Runs `status --json` until `done` holds for its document; returns that document.
    fn status_until(
        &self,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let doc = self.json(&["status"]);
            if done(&doc) {
                return doc;
            }
            assert!(
                Instant::now() < deadline,
                "status never showed {what}: {doc:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends one purchase through the CLI's `send`, as a separate process.
    fn send(&self, user: &str, currency: &str, amount: i64) {
        let value = format!(r#"{{"username":"{user}","currency":"{currency}","amount":{amount}}}"#);
        let out = self.run(&["send", &self.topic, "--key", user, &value]);
        assert!(out.status.success(), "send failed: {}", text(&out));
    }
}

/// Starts `command` as a worker; its stdout and stderr lines are gathered in order.
fn spawn(command: Command) -> Worker {
    Worker::spawn("tables worker", command)
}

/// Waits until the worker printed a line containing `needle`; returns when it did.
fn wait_line(worker: &mut Worker, needle: &str) -> Instant {
    worker.wait_lines(needle, 1, WAIT);
    Instant::now()
}

/// A free port on 127.0.0.1 for a worker's web server.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_agents_and_topics_work_beside_a_worker_and_tables_says_it_holds_the_store() {
    let s = setup("cli-beside").await;
    let mut worker = s.worker(&[]);
    // It opened its store and holds its partitions.
    wait_line(&mut worker, "table partition recovered");

    for command in ["agents", "topics"] {
        let out = s.run(&[command]);
        assert!(out.status.success(), "{command} failed: {}", text(&out));
    }
    let out = s.run(&["topics"]);
    assert!(text(&out).contains(&s.topic), "{}", text(&out));

    s.send("alice", "EUR", 3);
    wait_line(&mut worker, "EUR total: 3");

    let file = s.dir.path().join(format!("{}-currency_total.redb", s.app));
    let lookup = ["tables", "--table", "currency_total", "--key", "EUR"];
    for args in [&["tables"][..], &["reset", "--yes"][..], &lookup[..]] {
        let out = s.run(args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {said}");
        assert!(
            said.contains("held by a running worker"),
            "{args:?}: {said}"
        );
        assert!(
            said.contains(&file.display().to_string()),
            "{args:?}: {said}"
        );
    }
    // Nothing was reset: the worker counts on from its total.
    s.send("bob", "EUR", 4);
    wait_line(&mut worker, "EUR total: 7");
    worker.stop(Stop::Interrupt);

    // Stopped, `tables` reads the store.
    let out = s.run(&["tables"]);
    assert!(out.status.success(), "tables failed: {}", text(&out));
    assert!(text(&out).contains("currency_total"), "{}", text(&out));
}

/// Starts a worker with `args`, kills it with SIGKILL once it counted a purchase, restarts it
/// with the same `args` and returns how long after the restart a new purchase was counted.
async fn restart_after_sigkill(s: &Setup, args: &[&str]) -> Duration {
    let mut first = s.worker(args);
    wait_line(&mut first, "table partition recovered");
    s.send("alice", "EUR", 3);
    wait_line(&mut first, "EUR total: 3");
    first.stop(Stop::Kill);

    let restarted = Instant::now();
    let mut second = s.worker(args);
    // Another currency: the killed worker's uncommitted purchase may be counted again.
    s.send("bob", "USD", 4);
    let counted = wait_line(&mut second, "USD total: 4");
    second.stop(Stop::Interrupt);
    counted - restarted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_restarted_under_its_instance_id_takes_its_partitions_back_at_once() {
    let s = setup("cli-static").await;
    let took = restart_after_sigkill(&s, &["--instance-id", "w1"]).await;
    eprintln!("static member: a new purchase counted {took:?} after the restart");
    assert!(
        took < SESSION / 2,
        "a static member waited {took:?} for its partitions"
    );

    // Without a name, the new worker waits until the killed one's session expires.
    let s = setup("cli-dynamic").await;
    let took = restart_after_sigkill(&s, &[]).await;
    eprintln!("dynamic member: a new purchase counted {took:?} after the restart");
    assert!(
        took >= SESSION / 2,
        "a dynamic member got its partitions back after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_table_values_beside_a_worker_through_its_web_server_then_from_the_store() {
    let s = setup("cli-status").await;
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let mut worker = s.web_worker(port, &["--instance-id", "w1"]);
    wait_line(&mut worker, "table partition recovered");
    s.send("alice", "EUR", 3);
    s.send("bob", "USD", 4);
    wait_line(&mut worker, "EUR total: 3");
    wait_line(&mut worker, "USD total: 4");

    // The member, its partitions and web server; the lag reaches 0 once the events are
    // committed, and every table partition is recovered on it.
    let doc = s.status_until("the worker ready with no lag", |doc| {
        let members = doc["members"].as_array().unwrap();
        let partitions = doc["partitions"].as_array().unwrap();
        members.len() == 1
            && members[0]["ready"] == "ready"
            && !partitions.is_empty()
            && partitions.iter().all(|p| p["lag"] == 0)
    });
    assert_eq!(doc["group"], s.app.as_str(), "{doc:#}");
    assert_eq!(doc["state"], "Stable", "{doc:#}");
    let member = &doc["members"][0];
    assert_eq!(member["instance_id"], "w1", "{doc:#}");
    assert_eq!(member["endpoint"], endpoint.as_str(), "{doc:#}");
    let member_id = member["member_id"].as_str().unwrap();
    let on_topic = member["active"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|tp| tp["topic"] == s.topic.as_str())
        .count();
    assert_eq!(on_topic, 3, "{doc:#}");
    let purchases: Vec<&serde_json::Value> = doc["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == s.topic.as_str())
        .collect();
    assert_eq!(purchases.len(), 3, "{doc:#}");
    assert!(purchases.iter().all(|p| p["member_id"] == member_id));
    // Partitions without a record have nothing committed (null), and no lag either.
    let committed: i64 = purchases
        .iter()
        .filter_map(|p| p["committed"].as_i64())
        .sum();
    assert_eq!(committed, 2, "{doc:#}");
    let tables = doc["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 3, "{doc:#}");
    assert!(tables
        .iter()
        .all(|t| t["state"] == "recovered" && t["active"] == member_id));
    let out = s.run(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("web {endpoint}, ready")),
        "{}",
        text(&out)
    );

    // The worker holds the store: values come from its web server.
    let key = ["tables", "--table", "currency_total", "--key", "EUR"];
    let doc = s.json(&key);
    assert_eq!(doc["from"], "worker", "{doc:#}");
    assert_eq!(doc["endpoint"], endpoint.as_str(), "{doc:#}");
    assert_eq!(doc["entries"][0]["key"], "EUR", "{doc:#}");
    assert_eq!(doc["entries"][0]["value"], 3, "{doc:#}");
    let eur = doc["entries"][0]["partition"].as_i64().unwrap().to_string();
    let part = ["tables", "--table", "currency_total", "--partition", &eur];
    let doc = s.json(&part);
    assert_eq!(doc["from"], "worker", "{doc:#}");
    assert!(
        doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["key"] == "EUR" && e["value"] == 3),
        "{doc:#}"
    );
    let out = s.run(&["tables", "--table", "currency_total", "--key", "GBP"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no value for key \"GBP\""),
        "{}",
        text(&out)
    );
    worker.stop(Stop::Interrupt);

    // Stopped: a static member stays in the group until its session times out, its web
    // server gone (readiness unknown); then no member, the commits stay (no lag), the
    // partitions unassigned.
    let doc = s.json(&["status"]);
    if let Some(member) = doc["members"].as_array().unwrap().first() {
        assert_eq!(member["ready"], "unknown", "{doc:#}");
    }
    let doc = s.status_until("no member", |doc| doc["members"] == serde_json::json!([]));
    assert_eq!(doc["state"], "Empty", "{doc:#}");
    assert!(
        doc["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["lag"] == 0 && p["member_id"].is_null()),
        "{doc:#}"
    );
    assert!(
        doc["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "unassigned"),
        "{doc:#}"
    );

    // And the values come from the store.
    let doc = s.json(&key);
    assert_eq!(doc["from"], "store", "{doc:#}");
    assert_eq!(doc["entries"][0]["value"], 3, "{doc:#}");
    let doc = s.json(&part);
    assert_eq!(doc["from"], "store", "{doc:#}");
    assert!(
        doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["key"] == "EUR" && e["value"] == 3),
        "{doc:#}"
    );
    let out = s.run(&key);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("\"EUR\"  3"), "{}", text(&out));
    assert!(
        text(&out).contains("from this machine's store"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_without_workers_and_keys_the_key_codec_refuses() {
    let s = setup("cli-badkey").await;
    // Nothing ever ran: a group without members.
    let doc = s.json(&["status"]);
    assert_eq!(doc["members"], serde_json::json!([]), "{doc:#}");
    assert!(doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["state"] == "unassigned"));

    // Keys of a json key codec are JSON text: EUR is not, "EUR" is (and has no value).
    let mut command = s.command(&["tables", "--table", "currency_total", "--key", "EUR"]);
    let out = command
        .env("TABLES_KEY_SERIALIZER", "json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("key codec \"json\""), "{}", text(&out));
    let mut command = s.command(&["tables", "--table", "currency_total", "--key", "\"EUR\""]);
    let out = command
        .env("TABLES_KEY_SERIALIZER", "json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no value for key"), "{}", text(&out));

    let out = s.run(&["tables", "--table", "nope", "--key", "EUR"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("declares currency_total"),
        "{}",
        text(&out)
    );
    // --key or --partition needs --table, and --table one of them: usage errors.
    assert_eq!(s.run(&["tables", "--key", "EUR"]).status.code(), Some(2));
    assert_eq!(
        s.run(&["tables", "--table", "currency_total"])
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_kept_in_memory_is_read_from_its_worker() {
    let s = setup("cli-memory").await;
    let port = free_port();
    let mut command = s.command(&["worker", "--web-port", &port.to_string()]);
    command
        .env("TABLES_STORE", "memory://")
        .env("TABLES_APPLICATION_SERVER", format!("127.0.0.1:{port}"));
    let mut worker = spawn(command);
    wait_line(&mut worker, "table partition recovered");
    s.send("alice", "EUR", 5);
    wait_line(&mut worker, "EUR total: 5");
    let lookup = [
        "tables",
        "--table",
        "currency_total",
        "--key",
        "EUR",
        "--json",
    ];
    let deadline = Instant::now() + WAIT;
    // The group may still be settling right after the start: until it names the owner, the
    // (empty) local store answers that the key has no value.
    let doc = loop {
        let out = s
            .command(&lookup)
            .env("TABLES_STORE", "memory://")
            .output()
            .unwrap();
        if out.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "{}", text(&out));
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(doc["from"], "worker", "{doc:#}");
    assert_eq!(doc["entries"][0]["value"], 5, "{doc:#}");
    worker.stop(Stop::Interrupt);
}
