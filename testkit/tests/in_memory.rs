//! The in-memory cluster: our client over `MockCluster::connector` pipes, no sockets, on
//! tokio's paused (virtual) clock on a current-thread runtime.

use std::io::ErrorKind;
use std::time::Duration;

use kafka_client::consumer::AutoOffsetReset;
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, GroupConfig, GroupConsumer, TopicPartition,
};
use testkit::MockCluster;
use tokio::time::Instant;

fn client(cluster: &MockCluster) -> ClientConfig {
    ClientConfig::new(&cluster.bootstrap())
        .unwrap()
        .with_connector(cluster.connector())
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn produce_and_consume_over_pipes() {
    let cluster = MockCluster::builder()
        .brokers(2)
        .in_memory()
        .build()
        .await
        .unwrap();
    assert_eq!(cluster.bootstrap(), "mock-broker-1:9092,mock-broker-2:9092");
    cluster
        .create_topic("greetings", 2, std::iter::empty::<(String, String)>())
        .unwrap();
    // Partition 1 led by broker 2: the client must follow the advertised in-memory address.
    cluster.move_leader("greetings", 1, 2).unwrap();

    let producer = Producer::new(client(&cluster), ProducerConfig::default())
        .await
        .unwrap();
    for (partition, name) in [(0, "alice"), (1, "bob")] {
        let record = ProducerRecord::new("greetings")
            .partition(partition)
            .key(name)
            .value(format!("hello {name}"));
        producer.send(record).await.unwrap().await.unwrap();
    }
    producer.close().await.unwrap();
    assert_eq!(cluster.records("greetings", 1).len(), 1);

    let config = ConsumerConfig::default().with_auto_offset_reset(AutoOffsetReset::Earliest);
    let mut consumer = Consumer::new(client(&cluster), config).await.unwrap();
    consumer.assign(vec![
        TopicPartition::new("greetings", 0),
        TopicPartition::new("greetings", 1),
    ]);
    let mut got = Vec::new();
    for _ in 0..2 {
        let r = consumer.recv().await.unwrap();
        got.push((r.partition, r.value.unwrap()));
    }
    got.sort();
    assert_eq!(
        got,
        [(0, "hello alice".into()), (1, "hello bob".into())] as [(i32, bytes::Bytes); 2]
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_silent_member_expires_after_its_session_timeout_in_virtual_time() {
    let cluster = MockCluster::builder().in_memory().build().await.unwrap();
    cluster
        .create_topic("work", 2, std::iter::empty::<(String, String)>())
        .unwrap();
    let session = Duration::from_secs(10);
    let heartbeat = Duration::from_secs(1);
    // A rebalance deadline far beyond the session: only session expiry can end the join early.
    let group = GroupConfig::new("g")
        .with_session_timeout(session)
        .with_heartbeat_interval(heartbeat)
        .with_rebalance_timeout(Duration::from_secs(120));
    let member = |name: &str| {
        GroupConsumer::new(
            client(&cluster).with_client_id(name),
            ConsumerConfig::default(),
            group.clone(),
        )
    };

    let mut a = member("a").await.unwrap();
    a.subscribe(["work"]);
    a.group_work().await.unwrap();
    assert_eq!(a.assignment().len(), 2);
    // Heartbeats are on: a stays in the group while virtual time passes.
    tokio::time::sleep(session * 3).await;
    drop(a); // no LeaveGroup, no more heartbeats
    let dropped = Instant::now();

    let mut b = member("b").await.unwrap();
    b.subscribe(["work"]);
    tokio::time::timeout(Duration::from_secs(60), b.group_work())
        .await
        .expect("b joined before the rebalance deadline")
        .unwrap();
    let took = dropped.elapsed();
    let mut owned = b.assignment();
    owned.sort_by_key(|tp| tp.partition);
    assert_eq!(
        owned,
        [
            TopicPartition::new("work", 0),
            TopicPartition::new("work", 1)
        ]
    );
    assert!(
        took >= session - heartbeat * 2 && took < Duration::from_secs(60),
        "b got everything {took:?} (virtual) after a went silent; its session is {session:?}"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn unknown_addresses_stopped_brokers_and_a_dropped_cluster_are_refused() {
    let cluster = MockCluster::builder()
        .brokers(2)
        .in_memory()
        .build()
        .await
        .unwrap();
    let connector = cluster.connector();
    let refused = |r: std::io::Result<_>| r.err().map(|e| e.kind());

    assert_eq!(
        refused(connector.connect("nowhere:9092").await),
        Some(ErrorKind::ConnectionRefused)
    );
    let unreachable = ClientConfig::new("nowhere:9092")
        .unwrap()
        .with_connector(cluster.connector())
        .with_request_timeout(Duration::from_secs(2));
    assert!(Admin::new(unreachable).await.is_err());

    cluster.stop_broker(2).await.unwrap();
    assert_eq!(
        refused(connector.connect("mock-broker-2:9092").await),
        Some(ErrorKind::ConnectionRefused)
    );
    assert!(connector.connect("mock-broker-1:9092").await.is_ok());
    cluster.restart_broker(2).await.unwrap();
    assert!(connector.connect("mock-broker-2:9092").await.is_ok());
    let admin = Admin::new(client(&cluster)).await.unwrap();
    assert_eq!(admin.describe_cluster().await.unwrap().brokers.len(), 2);

    drop(cluster);
    assert_eq!(
        refused(connector.connect("mock-broker-1:9092").await),
        Some(ErrorKind::ConnectionRefused)
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn stopping_a_broker_closes_its_pipes() {
    use tokio::io::AsyncReadExt;
    let cluster = MockCluster::builder().in_memory().build().await.unwrap();
    let mut pipe = cluster
        .connector()
        .connect("mock-broker-1:9092")
        .await
        .unwrap();
    tokio::task::yield_now().await; // the broker side starts serving
    cluster.stop_broker(1).await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(1), pipe.read(&mut buf)).await;
    assert_eq!(read.expect("the pipe closed").unwrap(), 0);
}
