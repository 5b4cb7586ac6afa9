//! A worker stopped with Ctrl-C (SIGINT) finishes its in-flight events and commits them, so a
//! restarted worker processes nothing twice. The broker is a mock cluster in this test process;
//! the example runs as its own process, as a user would run it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::MockCluster;

mod common;

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
    let mut child = Command::new(common::example("hello"))
        .args(["--broker", broker, "worker", "--no-web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while seen.len() < expect {
        let line = lines.next().expect("worker ended early").unwrap();
        if line.starts_with("purchase:") {
            seen.push(line);
        }
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "worker did not stop within 30 s of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "worker exited with {status}");
    seen
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
