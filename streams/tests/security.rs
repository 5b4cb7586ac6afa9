//! An app on brokers that want TLS and SASL: `sasl_ssl://` with `broker_tls` and
//! `broker_credentials`, on the mock cluster's TLS + SASL/PLAIN listener (the fixture
//! certificates of testkit/certs). SCRAM against real Kafka is kafka-client's security suite.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kafka_client::{SaslConfig, TlsConfig};
use streams::{App, Error};
use testkit::{MockCluster, MockSasl, MockTls};

fn cert(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testkit/certs")
        .join(name)
}

async fn secure_mock() -> MockCluster {
    MockCluster::builder()
        .group_min_session_timeout(Duration::from_millis(500))
        .tls(MockTls::from_pem_files(cert("server.pem"), cert("server.key")).unwrap())
        .sasl(MockSasl::plain([("alice", "alice-secret")]))
        .build()
        .await
        .unwrap()
}

fn app(mock: &MockCluster, password: Option<&str>) -> App {
    let mut builder = App::builder("secure")
        .broker(&format!("sasl_ssl://{}", mock.bootstrap()))
        .broker_tls(TlsConfig::new().with_ca_file(cert("ca.pem")))
        .topic_partitions(1)
        .broker_session_timeout(Duration::from_millis(1500))
        .broker_heartbeat_interval(Duration::from_millis(300));
    if let Some(password) = password {
        builder = builder.broker_credentials(SaslConfig::plain("alice", password));
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_consumes_and_commits_over_tls_with_sasl() {
    let mock = secure_mock().await;
    let app = app(&mock, Some("alice-secret"));
    let numbers = app.topic::<String, u32>("numbers");
    let sum = Arc::new(AtomicU32::new(0));
    let s = sum.clone();
    app.agent(&numbers, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            s.fetch_add(*n, Ordering::SeqCst);
        }
    });
    app.start().await.unwrap();
    for n in 1..=10 {
        numbers.send("k".to_owned(), n).await.unwrap();
    }
    app.wait_caught_up(Duration::from_secs(30)).await.unwrap();
    app.shutdown().await.unwrap();
    assert_eq!(sum.load(Ordering::SeqCst), 55);
    assert_eq!(mock.committed_offset("secure", "numbers", 0), Some(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_start_and_says_so() {
    let mock = secure_mock().await;
    let app = app(&mock, Some("wrong"));
    let err = tokio::time::timeout(Duration::from_secs(60), app.start())
        .await
        .expect("start gives up")
        .expect_err("the broker refuses the password");
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains("password"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_brokers_without_credentials_are_a_configuration_error() {
    let mock = secure_mock().await;
    let app = app(&mock, None);
    let err = app.start().await.expect_err("no credentials");
    assert!(err.to_string().contains("broker_credentials"), "{err}");
}

/// Credentials on a `kafka://` URL are refused, not sent over plain TCP as if the URL had
/// said `sasl_plaintext://`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_on_a_plaintext_url_are_refused_not_inferred() {
    let mock = MockCluster::builder()
        .sasl(MockSasl::plain([("alice", "alice-secret")]))
        .build()
        .await
        .unwrap();
    let app = App::builder("plain")
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .broker_credentials(SaslConfig::plain("alice", "alice-secret"))
        .build()
        .unwrap();
    let err = app.start().await.expect_err("credentials on kafka://");
    assert!(err.to_string().contains("sasl_plaintext://"), "{err}");
    assert!(mock.requests().is_empty(), "nothing was sent");
}
