//! A worker stopped with Ctrl-C (SIGINT) finishes its in-flight events and commits them, so a
//! restarted worker processes nothing twice. The broker is a mock cluster in this test process;
//! the example runs as its own process, as a user would run it.

use std::process::Command;
use std::time::Duration;

use testkit::MockCluster;

mod common;

use common::worker::{self, Stop, Worker};

fn send(broker: &str, user: &str, amount: u32) {
    let value = format!(r#"{{"username":"{user}","currency":"EUR","amount":{amount}}}"#);
    let out = Command::new(common::example("hello"))
        .args([
            "--broker",
            broker,
            "send",
            "purchases",
            "--key",
            user,
            &value,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `hello worker` until it printed `expect` purchases, then interrupts it; returns the
/// purchases it printed.
fn work_then_interrupt(broker: &str, expect: usize) -> Vec<String> {
    let mut command = Command::new(common::example("hello"));
    command
        .args(["--broker", broker, "worker", "--no-web"])
        .env("RUST_LOG", worker::log_filter());
    let mut w = Worker::spawn("hello worker", command);
    w.wait_until(
        &format!("{expect} purchases"),
        Duration::from_secs(60),
        |lines| lines.iter().filter(|l| l.starts_with("purchase:")).count() >= expect,
    );
    let exited = w.end(Stop::Interrupt, Duration::from_secs(30));
    assert!(
        exited.status.success(),
        "worker exited with {}:\n{}",
        exited.status,
        exited.lines.join("\n")
    );
    exited
        .stdout
        .into_iter()
        .filter(|l| l.starts_with("purchase:"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_commits_what_was_processed_and_a_restart_resumes_after_it() {
    let cluster = MockCluster::builder().build().await.unwrap();
    let broker = format!("kafka://{}", cluster.bootstrap());
    let b = broker.clone();
    let first = tokio::task::spawn_blocking(move || {
        for (i, user) in ["alice", "bob", "carol"].iter().enumerate() {
            send(&b, user, i as u32 + 1);
        }
        work_then_interrupt(&b, 3)
    })
    .await
    .unwrap();
    assert_eq!(first.len(), 3);

    let committed: i64 = (0..3)
        .map(|p| {
            cluster
                .committed_offset("hello-app", "purchases", p)
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(
        committed, 3,
        "the three processed events are committed at shutdown"
    );

    // A new worker sees only what came after the commit.
    let b = broker.clone();
    let second = tokio::task::spawn_blocking(move || {
        send(&b, "dave", 9);
        work_then_interrupt(&b, 1)
    })
    .await
    .unwrap();
    assert_eq!(second.len(), 1);
    assert!(second[0].contains("dave"), "{second:?}");
}
