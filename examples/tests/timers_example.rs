//! The timers example: its demo reports through the leader-only timer; and as three worker
//! processes of one app, against a mock cluster in this test process, the leader-only timer ticks in exactly one of them; SIGKILL that one (no
//! commit, no LeaveGroup) and another takes the timer over once the group notices, within a
//! session timeout and a rebalance.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use testkit::MockCluster;

mod common;

const WAIT: Duration = Duration::from_secs(60);
const SESSION: Duration = Duration::from_millis(1500);
const TICK: &str = "leader tick from ";

/// A running `timers` worker; its output lines go to the shared channel as (worker, line).
struct Worker {
    name: String,
    child: Child,
}

impl Worker {
    fn start(
        bootstrap: &str,
        app: &str,
        name: &str,
        lines: &mpsc::Sender<(String, String)>,
    ) -> Self {
        let mut child = Command::new(common::example("timers"))
            .args([
                "--broker",
                &format!("kafka://{bootstrap}"),
                "worker",
                "--no-web",
            ])
            .env("TIMERS_APP", app)
            .env("TIMERS_WORKER", name)
            .env("TIMERS_INTERVAL_MS", "100")
            .env("TIMERS_SESSION_MS", SESSION.as_millis().to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (tx, name) = (lines.clone(), name.to_owned());
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send((name.clone(), line));
                }
            });
        }
        Worker {
            name: name.to_owned(),
            child,
        }
    }

    fn kill(&mut self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
        self.child.wait().unwrap();
    }
}

/// The output of all workers, with what was read so far.
struct Output {
    lines: mpsc::Receiver<(String, String)>,
    seen: Vec<(String, String)>,
}

impl Output {
    /// Reads lines until `n` more leader ticks came; returns the workers that ticked.
    fn next_ticks(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut ticks = Vec::new();
        while ticks.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((worker, line)) = self.lines.recv_timeout(left) else {
                panic!("no {n} leader ticks in {WAIT:?}; output:\n{}", self.dump());
            };
            if let Some(from) = line.strip_prefix(TICK) {
                assert_eq!(from, worker, "a worker printed another's name");
                ticks.push(worker.clone());
            }
            self.seen.push((worker, line));
        }
        ticks
    }

    fn dump(&self) -> String {
        let lines: Vec<_> = self.seen.iter().map(|(w, l)| format!("{w}: {l}")).collect();
        lines.join("\n")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_only_timer_moves_when_its_worker_process_is_killed() {
    let mock = MockCluster::builder()
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let app = testkit::unique_name("timers-kill");
    let (tx, lines) = mpsc::channel();
    let mut output = Output {
        lines,
        seen: Vec::new(),
    };
    let mut workers: Vec<_> = ["w0", "w1", "w2"]
        .iter()
        .map(|name| Worker::start(&mock.bootstrap(), &app, name, &tx))
        .collect();

    // Once the three have joined, one ticks. Workers joining move the group (and maybe its
    // leader), so the check waits for every worker's start-up task first.
    let deadline = Instant::now() + WAIT;
    while (0..3).any(|i| {
        !output
            .seen
            .iter()
            .any(|(w, l)| l == &format!("worker w{i} started") && w == &format!("w{i}"))
    }) {
        assert!(
            Instant::now() < deadline,
            "workers did not start:\n{}",
            output.dump()
        );
        if let Ok(line) = output.lines.recv_timeout(Duration::from_millis(100)) {
            output.seen.push(line);
        }
    }
    let ticks = output.next_ticks(10);
    let ticks = &ticks[ticks.len() - 5..]; // the group has settled by then
    let leader = ticks[0].clone();
    assert!(
        ticks.iter().all(|w| *w == leader),
        "several leaders: {ticks:?}\n{}",
        output.dump()
    );

    // SIGKILL the leader: the others notice after the session timeout and rebalance.
    let dead = workers.iter().position(|w| w.name == leader).unwrap();
    workers[dead].kill("-KILL");
    let killed = Instant::now();
    // Ticks it printed before dying may still be in the pipe.
    let new_leader = loop {
        let tick = output.next_ticks(1).remove(0);
        if tick != leader {
            break tick;
        }
    };
    let took = killed.elapsed();
    assert!(
        took <= SESSION + Duration::from_secs(5),
        "took over after {took:?}"
    );
    let ticks = output.next_ticks(10);
    assert!(
        ticks.iter().all(|w| *w == new_leader),
        "several leaders after the kill: {ticks:?}\n{}",
        output.dump()
    );

    for (i, worker) in workers.iter_mut().enumerate() {
        if i != dead {
            worker.kill("-INT");
        }
    }
}

#[test]
fn the_demo_reports_from_its_leader_only_timer() {
    let (stdout, _) = common::run("timers", &[]);
    assert_eq!(common::lines(&stdout, "worker ").len(), 1, "{stdout}");
    assert!(
        common::lines(&stdout, "received: report from ").len() >= 3,
        "{stdout}"
    );
}
