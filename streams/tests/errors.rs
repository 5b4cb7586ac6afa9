//! Errors that stop the app, and errors that pass: start fails when the app cannot work, a
//! record the app could not deliver stops it without committing the event that sent it. On
//! the mock cluster, with its intercepts.

use std::time::{Duration, Instant};

use futures::StreamExt;
use streams::{App, Error};
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};

fn app(id: &str, bootstrap: &str) -> App {
    App::builder(id)
        .broker(&format!("kafka://{bootstrap}"))
        .topic_partitions(1)
        .broker_commit_interval(Duration::from_millis(50))
        .producer_linger(Duration::from_millis(1))
        .broker_session_timeout(Duration::from_millis(1500))
        .broker_heartbeat_interval(Duration::from_millis(300))
        .build()
        .unwrap()
}

async fn mock() -> MockCluster {
    MockCluster::builder()
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap()
}

/// A cluster that creates no topic by itself and answers every CreateTopics with `code`.
async fn refusing_topic_creation(code: KafkaCode) -> MockCluster {
    let mock = MockCluster::builder()
        .auto_create_topics(false)
        .build()
        .await
        .unwrap();
    mock.intercept(ApiKey::CreateTopics, Intercept::error(code).always());
    mock
}

fn with_agent(app: &App) {
    let topic = app.topic::<String, String>("input");
    app.agent(&topic, |mut stream| async move {
        while let Some(value) = stream.next().await {
            drop(value);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_timeout_the_broker_refuses_fails_start_and_names_the_setting() {
    let mock = MockCluster::builder()
        .group_min_session_timeout(Duration::from_secs(1000))
        .build()
        .await
        .unwrap();
    let app = app("refused", &mock.bootstrap());
    with_agent(&app);
    let started = Instant::now();
    let err = app
        .start()
        .await
        .expect_err("the broker refuses the session timeout");
    assert!(matches!(err, Error::Group { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("InvalidSessionTimeout"), "{text}");
    assert!(text.contains("broker_session_timeout"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up in time"
    );
    // It tried once, not in a loop.
    let joins = mock
        .requests()
        .iter()
        .filter(|r| r.api_key == ApiKey::JoinGroup)
        .count();
    assert!(joins <= 2, "{joins} JoinGroup requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_source_topic_that_cannot_be_created_fails_start() {
    let mock = refusing_topic_creation(KafkaCode::TopicAuthorizationFailed).await;
    let app = app("missing", &mock.bootstrap());
    with_agent(&app);
    let err = app.start().await.expect_err("no source topic");
    assert!(
        matches!(&err, Error::MissingTopic { topic } if topic == "input"),
        "{err}"
    );
    assert!(err.to_string().contains("create it"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_never_settles_fails_start_after_broker_api_timeout() {
    // Every topic creation answered "no controller yet": a cluster still electing one.
    let mock = refusing_topic_creation(KafkaCode::NotController).await;
    let app = App::builder("unsettled")
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .topic_partitions(1)
        .broker_api_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    with_agent(&app);
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(50), app.start())
        .await
        .expect("start gives up well before the 60 s default")
        .expect_err("the topic can never be created");
    let waited = started.elapsed();
    // The creation's failure is logged; start names the topic it could not get.
    assert!(
        matches!(&err, Error::MissingTopic { topic } if topic == "input"),
        "{err}"
    );
    // It waited the cluster out for about the configured time (the last pause that would end
    // past it is not taken), not the 60 s default, then gave up.
    assert!(waited >= Duration::from_secs(2), "gave up after {waited:?}");
    let attempts = mock
        .requests()
        .iter()
        .filter(|r| r.api_key == ApiKey::CreateTopics)
        .count();
    assert!(attempts >= 3, "{attempts} CreateTopics requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_brokers_fail_start_with_the_address() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let app = app("unreachable", &addr.to_string());
    with_agent(&app);
    let err = tokio::time::timeout(Duration::from_secs(120), app.start())
        .await
        .expect("start gives up")
        .expect_err("nothing listens there");
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undelivered_record_stops_the_app_without_committing_its_event() {
    let mock = mock().await;
    let app = app("undelivered", &mock.bootstrap());
    let input = app.topic::<String, String>("input");
    let output = app.topic::<String, String>("output");
    let out = output.clone();
    app.agent(&input, move |mut stream| async move {
        while let Some(value) = stream.next().await {
            out.send(value.key.clone().unwrap_or_default(), &value.value)
                .await?;
        }
        Ok::<(), Error>(())
    });
    app.start().await.unwrap();
    // The broker refuses every write to the output topic, without hope of retry.
    mock.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::InvalidRecord)
            .for_partition("output", 0)
            .always(),
    );
    input.send("k".to_owned(), "v".to_owned()).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        app.stopped().await;
        app.shutdown().await
    })
    .await
    .expect("the app stops by itself");
    let err = outcome.expect_err("a delivery failure");
    let Error::Delivery {
        records: 1,
        last: Some(last),
    } = &err
    else {
        panic!("{err}");
    };
    // The Kafka error itself, not its text: where it went and the broker's code.
    assert_eq!((last.topic.as_str(), last.partition), ("output", 0));
    assert!(
        matches!(&*last.error, kafka_client::Error::Broker { code, .. } if *code == KafkaCode::InvalidRecord),
        "{:?}",
        last.error
    );
    assert_eq!(mock.committed_offset("undelivered", "input", 0), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_fetch_errors_pass_and_every_event_is_processed() {
    let mock = mock().await;
    let app = app("retriable", &mock.bootstrap());
    let input = app.topic::<String, i64>("input");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    app.agent(&input, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            s.lock().unwrap().push(*n);
        }
    });
    app.start().await.unwrap();
    mock.intercept(
        ApiKey::Fetch,
        Intercept::error(KafkaCode::NotLeaderOrFollower).times(5),
    );
    for n in 0..20 {
        input.send("k".to_owned(), n).await.unwrap();
    }
    app.wait_caught_up(Duration::from_secs(30)).await.unwrap();
    app.shutdown().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), (0..20).collect::<Vec<_>>());
    assert_eq!(mock.committed_offset("retriable", "input", 0), Some(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_id_is_set_before_start_and_never_empty() {
    let mock = MockCluster::builder().build().await.unwrap();
    let app = App::builder("instance-id-app")
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .build()
        .unwrap();
    let err = app.set_worker_instance_id(" ").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSetting { name, .. } if name == "worker_instance_id"),
        "{err}"
    );
    app.set_worker_instance_id("w1").unwrap();
    app.start().await.unwrap();
    let err = app.set_worker_instance_id("w2").unwrap_err();
    assert!(matches!(err, Error::AlreadyRunning { .. }), "{err}");
    app.shutdown().await.unwrap();
}
