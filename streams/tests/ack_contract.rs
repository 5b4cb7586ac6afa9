//! The ack contract: an event's offset is committed only after the agent finished with it,
//! whatever `futures::StreamExt` combinators it used. Each test pulls events into an agent that
//! processes the first ten and then blocks before processing the rest, commits, crashes (abort:
//! no graceful stop, no final commit), and checks that a restarted app gets every unprocessed
//! event again. On the mock cluster, or on real Kafka when KAFKA_BOOTSTRAP is set.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{pending, ready, BoxFuture};
use futures::{FutureExt, StreamExt};
use streams::{AgentStream, App};
use testkit::MockCluster;

const WAIT: Duration = Duration::from_secs(30);
const EVENTS: i64 = 25;
/// Values below this are processed; the agent blocks on the first one at or above it.
const BLOCK_AT: i64 = 10;

/// What an agent pulled from its stream and what it finished processing.
#[derive(Default)]
struct Probe {
    pulled: AtomicUsize,
    processed: Mutex<Vec<i64>>,
}

impl Probe {
    /// Processes `n`, or blocks forever from `BLOCK_AT` on (a crash comes first).
    async fn process(&self, n: i64) {
        if n >= BLOCK_AT {
            pending::<()>().await;
        }
        self.processed.lock().unwrap().push(n);
    }
}

type Body = fn(AgentStream<String, i64>, Arc<Probe>) -> BoxFuture<'static, ()>;

/// The mock, or real Kafka when KAFKA_BOOTSTRAP is set (whose sessions last 6 s at least).
struct Broker {
    bootstrap: String,
    session: Duration,
    _mock: Option<MockCluster>,
}

async fn broker() -> Broker {
    if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") {
        return Broker {
            bootstrap,
            session: Duration::from_secs(6),
            _mock: None,
        };
    }
    let mock = MockCluster::builder()
        .default_partitions(1)
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    Broker {
        bootstrap: mock.bootstrap(),
        session: Duration::from_millis(1500),
        _mock: Some(mock),
    }
}

impl Broker {
    /// The group's committed offset of `topic`/0, read as any client would.
    async fn committed(&self, group: &str, topic: &str) -> Option<i64> {
        use kafka_client::consumer::ConsumerConfig;
        use kafka_client::group::{GroupConfig, GroupConsumer};
        let client = kafka_client::ClientConfig::new(&self.bootstrap).unwrap();
        let reader = GroupConsumer::new(client, ConsumerConfig::default(), GroupConfig::new(group))
            .await
            .unwrap();
        let tp = kafka_client::TopicPartition::new(topic, 0);
        let committed = reader.committed(std::slice::from_ref(&tp)).await.unwrap();
        committed.get(&tp).copied().flatten()
    }
}

fn app(id: &str, broker: &Broker) -> App {
    App::builder(id)
        .broker(&format!("kafka://{}", broker.bootstrap))
        .topic_partitions(1)
        .broker_commit_interval(Duration::from_millis(50))
        .producer_linger(Duration::from_millis(1))
        .broker_session_timeout(broker.session)
        .broker_heartbeat_interval(Duration::from_millis(300))
        .build()
        .unwrap()
}

/// A name of its own per run, so runs on one real broker do not meet.
fn unique(name: &str) -> String {
    testkit::unique_name(name)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `body` until it pulled `pulls` events and processed `processed`, commits, crashes,
/// restarts, and checks that nothing unprocessed was committed.
async fn crash_and_restart(id: &str, body: Body, pulls: usize, processed: &[i64]) {
    let broker = broker().await;
    let id = &unique(id);
    let topic = unique("work");
    let probe = Arc::new(Probe::default());
    let first = app(id, &broker);
    let work = first.topic::<String, i64>(&topic);
    let p = probe.clone();
    first.agent(&work, move |stream| body(stream, p));
    first.start().await.unwrap();
    for n in 0..EVENTS {
        work.send(format!("k{n}"), n).await.unwrap();
    }
    wait_until("the agent pulled and processed what it can", || {
        probe.pulled.load(Ordering::SeqCst) >= pulls
            && probe.processed.lock().unwrap().len() == processed.len()
    })
    .await;
    first.commit().await.unwrap();
    let committed = broker.committed(id, &topic).await.unwrap_or(0);
    first.abort().await;
    let mut done = probe.processed.lock().unwrap().clone();
    done.sort();
    assert_eq!(done, processed);
    assert_eq!(
        committed, BLOCK_AT,
        "committed past an event that was pulled but not processed"
    );

    // A new worker of the same app gets every event that was not processed.
    let second = app(id, &broker);
    let work2 = second.topic::<String, i64>(&topic);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    second.agent(&work2, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            s.lock().unwrap().push(*n);
        }
    });
    second.start().await.unwrap();
    second.wait_caught_up(WAIT).await.unwrap();
    second.shutdown().await.unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, (BLOCK_AT..EVENTS).collect::<Vec<_>>());
}

fn pulled(probe: &Arc<Probe>) -> impl FnMut(&streams::Event<String, i64>) {
    let probe = probe.clone();
    move |_| {
        probe.pulled.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_let_loop() {
    fn body(stream: AgentStream<String, i64>, probe: Arc<Probe>) -> BoxFuture<'static, ()> {
        async move {
            let mut stream = stream.inspect(pulled(&probe));
            while let Some(n) = stream.next().await {
                probe.process(*n).await;
            }
        }
        .boxed()
    }
    crash_and_restart(
        "ack-while-let",
        body,
        11,
        &(0..BLOCK_AT).collect::<Vec<_>>(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_then_map_to_values() {
    fn body(stream: AgentStream<String, i64>, probe: Arc<Probe>) -> BoxFuture<'static, ()> {
        async move {
            let mut values = stream
                .inspect(pulled(&probe))
                .filter(|n| ready(**n % 2 == 0))
                .map(|n| n.into_value());
            while let Some(n) = values.next().await {
                probe.process(n).await;
            }
        }
        .boxed()
    }
    let evens: Vec<i64> = (0..BLOCK_AT).filter(|n| n % 2 == 0).collect();
    crash_and_restart("ack-filter-map", body, 11, &evens).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_then_filter_and_map() {
    // `items()` yields keys and values without building events (their holds released as
    // they are yielded): still done only once the agent asks for the next.
    fn body(stream: AgentStream<String, i64>, probe: Arc<Probe>) -> BoxFuture<'static, ()> {
        async move {
            let counter = probe.clone();
            let mut values = stream
                .items()
                .inspect(move |_| {
                    counter.pulled.fetch_add(1, Ordering::SeqCst);
                })
                .filter(|(key, n)| ready(key.is_some() && n % 2 == 0))
                .map(|(_, n)| n);
            while let Some(n) = values.next().await {
                probe.process(n).await;
            }
        }
        .boxed()
    }
    let evens: Vec<i64> = (0..BLOCK_AT).filter(|n| n % 2 == 0).collect();
    crash_and_restart("ack-items", body, 11, &evens).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_ten() {
    fn body(stream: AgentStream<String, i64>, probe: Arc<Probe>) -> BoxFuture<'static, ()> {
        async move {
            let mut chunks = stream.inspect(pulled(&probe)).chunks(10);
            while let Some(chunk) = chunks.next().await {
                for n in chunk {
                    probe.process(*n).await;
                }
            }
        }
        .boxed()
    }
    crash_and_restart("ack-chunks", body, 20, &(0..BLOCK_AT).collect::<Vec<_>>()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_batches_within_a_time() {
    fn body(stream: AgentStream<String, i64>, probe: Arc<Probe>) -> BoxFuture<'static, ()> {
        async move {
            // Our own `take` yields values: the batch counts once the agent asks for the next.
            let mut batches = stream.take(10, Duration::from_millis(100));
            while let Some(batch) = batches.next().await {
                probe.pulled.fetch_add(batch.len(), Ordering::SeqCst);
                for n in batch {
                    probe.process(n).await;
                }
            }
        }
        .boxed()
    }
    crash_and_restart("ack-take", body, 20, &(0..BLOCK_AT).collect::<Vec<_>>()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_unordered_over_futures() {
    fn body(stream: AgentStream<String, i64>, probe: Arc<Probe>) -> BoxFuture<'static, ()> {
        async move {
            let worker = probe.clone();
            let mut done = stream
                .inspect(pulled(&probe))
                .map(move |event| {
                    let probe = worker.clone();
                    async move {
                        probe.process(*event).await;
                        event
                    }
                })
                .buffer_unordered(8);
            while let Some(event) = done.next().await {
                drop(event);
            }
        }
        .boxed()
    }
    crash_and_restart(
        "ack-buffer-unordered",
        body,
        18,
        &(0..BLOCK_AT).collect::<Vec<_>>(),
    )
    .await;
}
