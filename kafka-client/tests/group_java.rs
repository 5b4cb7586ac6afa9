//! Mixed groups: our member and a Java `KafkaConsumer` (scripts/java/GroupMember.java) in one
//! group split the partitions, with `range` and with `cooperative-sticky`. Needs real Kafka
//! (`KAFKA_BOOTSTRAP`), `java` and the Kafka jars, so `#[ignore]`d; .ci/run runs it with
//! `--include-ignored`, where a missing prerequisite fails it.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::group::{describe, wait_until, Env};
use common::unique;
use kafka_client::group::{Assignor, CooperativeStickyAssignor, RangeAssignor};

const WAIT: Duration = Duration::from_secs(60);

/// A running GroupMember.java and the lines it printed.
struct JavaMember {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl JavaMember {
    fn start(bootstrap: &str, topic: &str, group: &str, strategy: &str) -> JavaMember {
        let mut child = common::java_command("GroupMember.java")
            .args([bootstrap, topic, group, strategy, "120"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start java: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        JavaMember {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The partitions of the last `ASSIGNED` line.
    fn assignment(&self) -> Option<BTreeSet<i32>> {
        let lines = self.lines.lock().unwrap();
        let last = lines.iter().rev().find(|l| l.starts_with("ASSIGNED "))?;
        let list = last.split(' ').nth(2).unwrap_or("");
        Some(
            list.split(',')
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect(),
        )
    }

    fn stop(mut self) -> Vec<String> {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = writeln!(stdin, "stop");
        }
        let _ = self.child.wait();
        // The reader thread ends at EOF, after the last line; joining it is the wait.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let lines = self.lines.lock().unwrap().clone();
        lines
    }
}

impl Drop for JavaMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With `java_first` the Java member joins first and leads the group (its assignor runs and
/// we decode its assignment); otherwise ours leads.
async fn mixed_group(java_strategy: &str, ours: Vec<Arc<dyn Assignor>>, java_first: bool) {
    common::real_kafka();
    let env = Env::new(1).await;
    let topic = env.topic("group-java", 6).await;
    let group = unique("g-java");
    env.produce(&topic, 6, 5).await;
    let config = env.group(&group).with_assignors(ours);
    let (ours, java) = if java_first {
        let java = JavaMember::start(&env.bootstrap, &topic, &group, java_strategy);
        wait_until(
            WAIT,
            "the Java member owns everything",
            || java.assignment().is_some_and(|a| a.len() == 6),
            || format!("{:?}", java.lines.lock().unwrap()),
        )
        .await;
        (env.member("rust", config, &topic, true).await, java)
    } else {
        let ours = env.member("rust", config, &topic, true).await;
        wait_until(
            WAIT,
            "our member owns everything",
            || ours.view().owned.len() == 6,
            || describe(&[&ours]),
        )
        .await;
        let java = JavaMember::start(&env.bootstrap, &topic, &group, java_strategy);
        (ours, java)
    };
    wait_until(
        WAIT,
        "our member and the Java member split the six partitions",
        || {
            let mine = ours.view().owned;
            match java.assignment() {
                Some(theirs) => {
                    mine.len() == 3
                        && theirs.len() == 3
                        && mine.is_disjoint(&theirs)
                        && mine.union(&theirs).count() == 6
                }
                None => false,
            }
        },
        || {
            format!(
                "{} java: {:?}",
                describe(&[&ours]),
                java.lines.lock().unwrap()
            )
        },
    )
    .await;

    // The Java member leaves; ours gets everything back.
    let lines = java.stop();
    assert!(lines.iter().any(|l| l == "CLOSED"), "{lines:?}");
    wait_until(
        WAIT,
        "our member owns everything again",
        || ours.view().owned.len() == 6,
        || describe(&[&ours]),
    )
    .await;
    let view = ours.close().await;
    assert!(view.recv_errors.is_empty(), "{:?}", view.recv_errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP) and Java; .ci/run runs it with --include-ignored"]
async fn a_java_member_and_ours_split_partitions_with_range() {
    let ours: Vec<Arc<dyn Assignor>> = vec![
        Arc::new(RangeAssignor),
        Arc::new(CooperativeStickyAssignor::default()),
    ];
    mixed_group("range", ours.clone(), false).await;
    mixed_group("range,cooperative-sticky", ours, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real Kafka (KAFKA_BOOTSTRAP) and Java; .ci/run runs it with --include-ignored"]
async fn a_java_member_and_ours_split_partitions_with_cooperative_sticky() {
    let ours: Vec<Arc<dyn Assignor>> = vec![Arc::new(CooperativeStickyAssignor::default())];
    mixed_group("cooperative-sticky", ours.clone(), false).await;
    mixed_group("cooperative-sticky", ours, true).await;
}
