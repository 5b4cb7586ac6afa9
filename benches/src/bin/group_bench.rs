//! Consumer-group timings: how long the survivors take to consume a dead member's
//! partitions, and how long three members take to (re)balance 100 partitions.
//!
//! ```text
//! cargo run --release -p benches --bin group_bench                       # in-process mock
//! cargo run --release -p benches --bin group_bench -- --bootstrap 127.0.0.1:9092
//!     [--session-ms 6000] [--heartbeat-ms 1000] [--rounds 3]
//! ```

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_client::admin::{Admin, NewTopic};
use kafka_client::consumer::{AutoOffsetReset, ConsumerConfig};
use kafka_client::group::{GroupConfig, GroupConsumer, RebalanceContext, RebalanceListener};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use tokio::sync::mpsc;

type Owned = Arc<Mutex<BTreeSet<i32>>>;
type Boxed<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

struct Track(Owned);

impl RebalanceListener for Track {
    fn on_partitions_assigned<'a>(
        &'a mut self,
        _: &'a RebalanceContext<'_>,
        tps: &'a [TopicPartition],
    ) -> Boxed<'a> {
        self.0
            .lock()
            .unwrap()
            .extend(tps.iter().map(|tp| tp.partition));
        Box::pin(async {})
    }
    fn on_partitions_revoked<'a>(
        &'a mut self,
        _: &'a RebalanceContext<'_>,
        tps: &'a [TopicPartition],
    ) -> Boxed<'a> {
        let mut owned = self.0.lock().unwrap();
        for tp in tps {
            owned.remove(&tp.partition);
        }
        Box::pin(async {})
    }
    fn on_partitions_lost<'a>(
        &'a mut self,
        ctx: &'a RebalanceContext<'_>,
        tps: &'a [TopicPartition],
    ) -> Boxed<'a> {
        self.on_partitions_revoked(ctx, tps)
    }
}

struct Member {
    owned: Owned,
    task: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Member {
    async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }
}

struct Setup {
    client: ClientConfig,
    session: Duration,
    heartbeat: Duration,
}

impl Setup {
    async fn member(
        &self,
        group: &str,
        topic: &str,
        records: mpsc::UnboundedSender<(i32, Instant)>,
    ) -> Member {
        let config = GroupConfig::new(group)
            .with_session_timeout(self.session)
            .with_heartbeat_interval(self.heartbeat)
            .with_rebalance_timeout(Duration::from_secs(30))
            .with_auto_commit(true)
            .with_auto_commit_interval(Duration::from_millis(500));
        let consumer_config = ConsumerConfig::default()
            .with_auto_offset_reset(AutoOffsetReset::Latest)
            .with_fetch_max_wait(Duration::from_millis(50));
        let mut consumer = GroupConsumer::new(self.client.clone(), consumer_config, config)
            .await
            .expect("group consumer");
        let owned: Owned = Arc::default();
        consumer.set_listener(Track(owned.clone()));
        consumer.subscribe([topic]);
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    r = consumer.recv() => if let Ok(r) = r {
                        let _ = records.send((r.partition, Instant::now()));
                    },
                }
            }
            let _ = consumer.close().await;
        });
        Member {
            owned,
            task,
            stop: Some(stop),
        }
    }
}

fn covered(members: &[&Member], partitions: i32, expect_members: usize) -> bool {
    let sets: Vec<BTreeSet<i32>> = members
        .iter()
        .map(|m| m.owned.lock().unwrap().clone())
        .collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    total == partitions as usize
        && union.len() == partitions as usize
        && sets.iter().filter(|s| !s.is_empty()).count() == expect_members
}

async fn wait(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > Duration::from_secs(120) {
            panic!("timed out: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

async fn topic(client: &ClientConfig, name: &str, partitions: i32) {
    Admin::new(client.clone())
        .await
        .expect("admin")
        .create_topics(vec![NewTopic::new(name, partitions, 1)])
        .await
        .expect("create topic");
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let session = Duration::from_millis(
        arg(&args, "--session-ms").map_or(6000, |s| s.parse().expect("--session-ms")),
    );
    let heartbeat = Duration::from_millis(
        arg(&args, "--heartbeat-ms").map_or(1000, |s| s.parse().expect("--heartbeat-ms")),
    );
    let rounds: usize = arg(&args, "--rounds").map_or(3, |s| s.parse().expect("--rounds"));
    let _mock;
    let (bootstrap, target) = match arg(&args, "--bootstrap") {
        Some(b) => (b, "real Kafka"),
        None => {
            let mock = testkit::MockCluster::builder()
                .group_min_session_timeout(Duration::from_millis(100))
                .build()
                .await
                .expect("mock");
            let b = mock.bootstrap();
            _mock = mock;
            (b, "mock cluster")
        }
    };
    let client = ClientConfig::new(&bootstrap)
        .expect("bootstrap")
        .with_client_id("group-bench");
    let setup = Setup {
        client: client.clone(),
        session,
        heartbeat,
    };
    println!("target: {target} ({bootstrap}); session timeout {session:?}, heartbeat {heartbeat:?}, {rounds} rounds");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .expect("producer");

    for round in 0..rounds {
        // 1. Three members over 100 partitions: cold start, a fourth joins, one leaves.
        let name = format!("group-bench-{stamp}-{round}");
        topic(&client, &name, 100).await;
        let group = format!("{name}-g");
        let (tx, _rx) = mpsc::unbounded_channel();
        let start = Instant::now();
        let a = setup.member(&group, &name, tx.clone()).await;
        let b = setup.member(&group, &name, tx.clone()).await;
        let c = setup.member(&group, &name, tx.clone()).await;
        wait("three members balanced", || covered(&[&a, &b, &c], 100, 3)).await;
        let cold = start.elapsed();
        let start = Instant::now();
        let d = setup.member(&group, &name, tx.clone()).await;
        wait("four members balanced", || {
            covered(&[&a, &b, &c, &d], 100, 4)
        })
        .await;
        let join = start.elapsed();
        let start = Instant::now();
        d.close().await;
        wait("back to three", || covered(&[&a, &b, &c], 100, 3)).await;
        let leave = start.elapsed();
        println!(
            "round {round}: 3 members x 100 partitions: cold start {:.0} ms, 4th member joins {:.0} ms, it leaves (LeaveGroup) {:.0} ms",
            cold.as_secs_f64() * 1e3,
            join.as_secs_f64() * 1e3,
            leave.as_secs_f64() * 1e3
        );
        for m in [a, b, c] {
            m.close().await;
        }

        // 2. A member dies without LeaveGroup; time until survivors consume its partitions.
        let name = format!("group-bench-death-{stamp}-{round}");
        topic(&client, &name, 12).await;
        let group = format!("{name}-g");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let a = setup.member(&group, &name, tx.clone()).await;
        let b = setup.member(&group, &name, tx.clone()).await;
        let (dead_tx, _dead_rx) = mpsc::unbounded_channel();
        let c = setup.member(&group, &name, dead_tx).await;
        wait("three members on 12", || covered(&[&a, &b, &c], 12, 3)).await;
        let dead: BTreeSet<i32> = c.owned.lock().unwrap().clone();
        tokio::time::sleep(heartbeat * 2).await;
        let died = Instant::now();
        c.task.abort();
        let _ = c.task.await;
        // Records for the dead member's partitions keep arriving.
        let feeder = {
            let producer_topic = name.clone();
            let dead = dead.clone();
            let producer = &producer;
            async move {
                loop {
                    for &p in &dead {
                        let _ = producer
                            .send(ProducerRecord::new(&producer_topic).partition(p).value("x"))
                            .await;
                    }
                    producer.flush().await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let mut pending = dead.clone();
        let waiter = async {
            while let Some((p, at)) = rx.recv().await {
                if at >= died {
                    pending.remove(&p);
                }
                if pending.is_empty() {
                    return died.elapsed();
                }
            }
            died.elapsed()
        };
        let took = tokio::select! {
            t = waiter => t,
            _ = feeder => unreachable!(),
        };
        println!(
            "round {round}: member death -> survivors consume all {} of its partitions: {:.0} ms (session timeout {:.0} ms)",
            dead.len(),
            took.as_secs_f64() * 1e3,
            session.as_secs_f64() * 1e3
        );
        for m in [a, b] {
            m.close().await;
        }
    }
    producer.close().await.expect("close producer");
}
