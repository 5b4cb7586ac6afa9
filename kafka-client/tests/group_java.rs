//! Mixed groups: our member and a Java `KafkaConsumer` (scripts/java/GroupMember.java) in one
//! group split the partitions, with `range` and with `cooperative-sticky`. Runs only against
//! real Kafka (`KAFKA_BOOTSTRAP`) with `java` and the Kafka jars (`scripts/kafka classpath`).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
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
}

impl JavaMember {
    fn start(bootstrap: &str, topic: &str, group: &str, strategy: &str) -> Option<JavaMember> {
        let (repo, classpath) = common::java_classpath()?;
        let mut child = match Command::new("java")
            .arg("-cp")
            .arg(classpath)
            .arg(repo.join("scripts/java/GroupMember.java"))
            .args([bootstrap, topic, group, strategy, "120"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("skipped: cannot run java: {e}");
                return None;
            }
        };
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Some(JavaMember { child, lines })
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
        std::thread::sleep(Duration::from_millis(100));
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
    if std::env::var("KAFKA_BOOTSTRAP").is_err() {
        eprintln!("skipped: mixed groups need real Kafka (KAFKA_BOOTSTRAP)");
        return;
    }
    let env = Env::new(1).await;
    let topic = env.topic("group-java", 6).await;
    let group = unique("g-java");
    env.produce(&topic, 6, 5).await;
    let config = env.group(&group).with_assignors(ours);
    let (ours, java) = if java_first {
        let Some(java) = JavaMember::start(&env.bootstrap, &topic, &group, java_strategy) else {
            return;
        };
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
        let Some(java) = JavaMember::start(&env.bootstrap, &topic, &group, java_strategy) else {
            ours.close().await;
            return;
        };
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
async fn a_java_member_and_ours_split_partitions_with_range() {
    let ours: Vec<Arc<dyn Assignor>> = vec![
        Arc::new(RangeAssignor),
        Arc::new(CooperativeStickyAssignor::default()),
    ];
    mixed_group("range", ours.clone(), false).await;
    mixed_group("range,cooperative-sticky", ours, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_java_member_and_ours_split_partitions_with_cooperative_sticky() {
    let ours: Vec<Arc<dyn Assignor>> = vec![Arc::new(CooperativeStickyAssignor::default())];
    mixed_group("cooperative-sticky", ours.clone(), false).await;
    mixed_group("cooperative-sticky", ours, true).await;
}
