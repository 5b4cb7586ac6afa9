//! The tables example's command line as a user runs it, in separate processes beside a running
//! worker: `send`, `agents` and `topics` work (declaring a table opens no store); `tables` and
//! `reset` say a running worker holds the store and exit 1. And static membership: a worker
//! killed with SIGKILL and restarted under the same `--instance-id` takes its partitions back
//! at once, where one without it waits out the session timeout (10 s in the example).
//! The broker is a mock cluster in this test process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use testkit::MockCluster;

mod common;

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
        let mut child = self
            .command(&[&["worker", "--no-web"], args].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(line);
            }
        });
        Worker {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Sends one purchase through the CLI's `send`, as a separate process.
    fn send(&self, user: &str, currency: &str, amount: i64) {
        let value = format!(r#"{{"username":"{user}","currency":"{currency}","amount":{amount}}}"#);
        let out = self.run(&["send", &self.topic, "--key", user, &value]);
        assert!(out.status.success(), "send failed: {}", text(&out));
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Worker {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Worker {
    /// Waits until the worker printed a line containing `needle`; returns when it did.
    fn wait_line(&mut self, needle: &str) -> Instant {
        let deadline = Instant::now() + WAIT;
        if self.seen.iter().any(|l| l.contains(needle)) {
            return Instant::now();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return Instant::now();
                    }
                }
                Err(_) => panic!("worker did not print {needle:?}:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn kill(mut self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        if signal == "-INT" {
            assert!(status.success(), "worker exited with {status}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_agents_and_topics_work_beside_a_worker_and_tables_says_it_holds_the_store() {
    let s = setup("cli-beside").await;
    let mut worker = s.worker(&[]);
    // It opened its store and holds its partitions.
    worker.wait_line("table partition recovered");

    for command in ["agents", "topics"] {
        let out = s.run(&[command]);
        assert!(out.status.success(), "{command} failed: {}", text(&out));
    }
    let out = s.run(&["topics"]);
    assert!(text(&out).contains(&s.topic), "{}", text(&out));

    s.send("alice", "EUR", 3);
    worker.wait_line("EUR total: 3");

    let file = s.dir.path().join(format!("{}-currency_total.redb", s.app));
    for args in [&["tables"][..], &["reset", "--yes"][..]] {
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
    worker.wait_line("EUR total: 7");
    worker.kill("-INT");

    // Stopped, `tables` reads the store.
    let out = s.run(&["tables"]);
    assert!(out.status.success(), "tables failed: {}", text(&out));
    assert!(text(&out).contains("currency_total"), "{}", text(&out));
}

/// Starts a worker with `args`, kills it with SIGKILL once it counted a purchase, restarts it
/// with the same `args` and returns how long after the restart a new purchase was counted.
async fn restart_after_sigkill(s: &Setup, args: &[&str]) -> Duration {
    let mut first = s.worker(args);
    first.wait_line("table partition recovered");
    s.send("alice", "EUR", 3);
    first.wait_line("EUR total: 3");
    first.kill("-KILL");

    let restarted = Instant::now();
    let mut second = s.worker(args);
    // Another currency: the killed worker's uncommitted purchase may be counted again.
    s.send("bob", "USD", 4);
    let counted = second.wait_line("USD total: 4");
    second.kill("-INT");
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
