//! Helpers shared by the streams integration tests: a broker (the mock, or real Kafka when
//! `KAFKA_BOOTSTRAP` is set), an app builder with short group timings, and waits with a
//! deadline.
#![allow(dead_code)] // each test file uses its own part

use std::time::Duration;

use bytes::Bytes;
use streams::{App, AppBuilder, Error};
use testkit::MockCluster;

/// The longest any test waits for a state.
pub const WAIT: Duration = Duration::from_secs(30);

/// A mock cluster whose groups accept short sessions (workers come and go quickly).
pub async fn mock() -> MockCluster {
    MockCluster::builder()
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap()
}

/// Where a test runs: the mock, or real Kafka for the tests that need no intercept.
pub struct Broker {
    pub bootstrap: String,
    /// The session timeout workers use (real Kafka refuses less than 6 s).
    pub session: Duration,
    pub mock: Option<MockCluster>,
}

/// Real Kafka when KAFKA_BOOTSTRAP is set, else a mock.
pub async fn broker() -> Broker {
    if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") {
        return Broker {
            bootstrap,
            session: Duration::from_secs(6),
            mock: None,
        };
    }
    on_mock(mock().await)
}

/// A mock, always (tests with intercepts).
pub fn on_mock(mock: MockCluster) -> Broker {
    Broker {
        bootstrap: mock.bootstrap(),
        session: MOCK_SESSION,
        mock: Some(mock),
    }
}

impl Broker {
    /// The group's committed offset of `topic`/0, read as any client would.
    pub async fn committed(&self, group: &str, topic: &str) -> Option<i64> {
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

    /// Every record of `topic`/`partition` as (key, value), on the mock or read back from
    /// real Kafka up to the partition's end.
    pub async fn records(
        &self,
        topic: &str,
        partition: i32,
    ) -> Vec<(Option<Bytes>, Option<Bytes>)> {
        if let Some(mock) = &self.mock {
            return mock
                .records(topic, partition)
                .into_iter()
                .map(|(_, k, v)| (k, v))
                .collect();
        }
        use kafka_client::admin::{Admin, OffsetSpec};
        use kafka_client::consumer::{Consumer, ConsumerConfig, Offset};
        let client = kafka_client::ClientConfig::new(&self.bootstrap).unwrap();
        let tp = kafka_client::TopicPartition::new(topic, partition);
        let admin = Admin::new(client.clone()).await.unwrap();
        let end = admin
            .list_offsets(vec![(tp.clone(), OffsetSpec::Latest)])
            .await
            .unwrap()[&tp]
            .offset;
        let mut consumer = Consumer::new(client, ConsumerConfig::default())
            .await
            .unwrap();
        consumer.assign(vec![tp.clone()]);
        consumer.seek(&tp, Offset::Earliest).await.unwrap();
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while consumer.position(&tp).unwrap_or(0) < end {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{tp} not read to its end"
            );
            let Ok(record) =
                tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
            else {
                continue;
            };
            let record = record.unwrap();
            out.push((record.key, record.value));
        }
        out
    }

    /// The mock (for tests with intercepts or its records).
    pub fn mock(&self) -> &MockCluster {
        self.mock
            .as_ref()
            .expect("a test with intercepts runs on the mock")
    }

    /// An app on this broker (see [`app_on`]).
    pub fn app(&self, id: &str) -> AppBuilder {
        app_on(id, &self.bootstrap, self.session)
    }
}

/// An app on `bootstrap` with one partition per topic, sends that go out at once and a group
/// that notices workers come and go within a session.
pub fn app_on(id: &str, bootstrap: &str, session: Duration) -> AppBuilder {
    App::builder(id)
        .broker(&format!("kafka://{bootstrap}"))
        .topic_partitions(1)
        .producer_linger(Duration::from_millis(1))
        .broker_session_timeout(session)
        .broker_heartbeat_interval(Duration::from_millis(300))
}

/// An app on `mock` (see [`app_on`]).
pub fn mock_app(id: &str, mock: &MockCluster) -> AppBuilder {
    app_on(id, &mock.bootstrap(), MOCK_SESSION)
}

/// The session timeout of workers on the mock.
pub const MOCK_SESSION: Duration = Duration::from_millis(1500);

/// Polls `done` until it holds; fails the test after [`WAIT`].
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the app's worker stopped by itself, then returns how it ended.
pub async fn stopped_by_itself(app: &App) -> Result<(), Error> {
    tokio::time::timeout(WAIT, app.stopped())
        .await
        .expect("the worker stops by itself");
    app.shutdown().await
}
