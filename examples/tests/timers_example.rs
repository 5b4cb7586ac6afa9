//! The timers example: its demo reports through the leader-only timer; and as three worker
//! processes of one app, against a mock cluster in this test process, the leader-only timer
//! ticks in exactly one of them; SIGKILL that one (no commit, no LeaveGroup) and another takes
//! the timer over once the group notices, within a session timeout and a rebalance.

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::MockCluster;

mod common;

use common::worker::{Stop, Worker};

const WAIT: Duration = Duration::from_secs(60);
const SESSION: Duration = Duration::from_millis(1500);
const TICK: &str = "leader tick from ";

/// Starts a `timers` worker named `name`.
fn start(bootstrap: &str, app: &str, name: &str) -> Worker {
    let mut command = Command::new(common::example("timers"));
    command
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
        .env("RUST_LOG", "warn");
    Worker::spawn(name, command)
}

/// The running workers' output as (worker, line), in the order it was read.
struct Output {
    workers: Vec<Worker>,
    seen: Vec<(String, String)>,
}

impl Output {
    /// Reads the next line of any worker, waiting up to 100 ms for one.
    fn next_line(&mut self) -> Option<(String, String)> {
        let deadline = Instant::now() + Duration::from_millis(100);
        loop {
            // Each worker in turn first, so none waits behind another's lines.
            let n = self.workers.len();
            let first = self.seen.len() % n;
            for i in 0..n {
                let w = &mut self.workers[(first + i) % n];
                if let Some(line) = w.next_line(Duration::ZERO).map(str::to_owned) {
                    let line = (w.name().to_owned(), line);
                    self.seen.push(line.clone());
                    return Some(line);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Reads lines until `n` more leader ticks came; returns the workers that ticked.
    fn next_ticks(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut ticks = Vec::new();
        while ticks.len() < n {
            assert!(
                Instant::now() < deadline,
                "no {n} leader ticks in {WAIT:?}; output:\n{}",
                self.dump()
            );
            let Some((worker, line)) = self.next_line() else {
                continue;
            };
            if let Some(from) = line.strip_prefix(TICK) {
                assert_eq!(from, worker, "a worker printed another's name");
                ticks.push(worker);
            }
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
    let mut output = Output {
        workers: ["w0", "w1", "w2"]
            .iter()
            .map(|name| start(&mock.bootstrap(), &app, name))
            .collect(),
        seen: Vec::new(),
    };

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
        output.next_line();
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
    let dead = output
        .workers
        .iter()
        .position(|w| w.name() == leader)
        .unwrap();
    output.workers.remove(dead).stop(Stop::Kill);
    let killed = Instant::now();
    // Only the survivors' lines are read from here on.
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

    for worker in output.workers.drain(..) {
        worker.stop(Stop::Interrupt);
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
