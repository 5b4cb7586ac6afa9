//! TLS and SASL: against the mock cluster with TLS and SASL/PLAIN (always), and against a real
//! Kafka SASL_SSL listener with SCRAM when `KAFKA_SASL_SSL_BOOTSTRAP` is set.
//!
//! The certificates are the fixtures in testkit/certs (scripts/gen-test-certs).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kafka_client::admin::{Admin, NewTopic};
use kafka_client::consumer::{AutoOffsetReset, Consumer, ConsumerConfig};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, Error, SaslConfig, TlsConfig, TopicPartition};
use testkit::{ApiKey, MockCluster, MockSasl, MockTls};

fn cert(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testkit/certs")
        .join(name)
}

fn trusted() -> TlsConfig {
    TlsConfig::new().with_ca_file(cert("ca.pem"))
}

async fn mock(sasl: Option<MockSasl>) -> MockCluster {
    let mut builder = MockCluster::builder()
        .tls(MockTls::from_pem_files(cert("server.pem"), cert("server.key")).unwrap());
    if let Some(sasl) = sasl {
        builder = builder.sasl(sasl);
    }
    builder.build().await.unwrap()
}

fn unique(prefix: &str) -> String {
    testkit::unique_name(prefix)
}

/// Creates a topic, produces `n` records and reads them back, all through `config`.
async fn round_trip(config: ClientConfig, n: usize) {
    let topic = unique("security");
    let admin = Admin::new(config.clone()).await.expect("admin");
    admin
        .create_topics(vec![NewTopic::new(&topic, 1, 1)])
        .await
        .expect("create topic");
    let producer = Producer::new(config.clone(), ProducerConfig::default())
        .await
        .expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..n {
        let record = ProducerRecord::new(&topic).value(format!("record {i}"));
        deliveries.push(producer.send(record).await.expect("send"));
    }
    for d in deliveries {
        d.await.expect("delivery");
    }
    producer.close().await.expect("close");
    let mut consumer = Consumer::new(
        config,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..Default::default()
        },
    )
    .await
    .expect("consumer");
    consumer.assign(vec![TopicPartition::new(&topic, 0)]);
    for i in 0..n {
        let record = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a record within 30 s")
            .expect("record");
        assert_eq!(
            record.value.as_deref(),
            Some(format!("record {i}").as_bytes())
        );
    }
    admin
        .delete_topics(vec![topic])
        .await
        .expect("delete topic");
}

#[tokio::test]
async fn tls_round_trip_with_a_ca_file() {
    let cluster = mock(None).await;
    let config = ClientConfig::new(&format!("ssl://{}", cluster.bootstrap()))
        .unwrap()
        .with_tls(trusted());
    round_trip(config, 50).await;
}

#[tokio::test]
async fn an_untrusted_certificate_fails_fast_and_says_so() {
    let cluster = mock(None).await;
    let config = ClientConfig::new(&format!("ssl://{}", cluster.bootstrap()))
        .unwrap()
        .with_tls(TlsConfig::new().with_ca_file(cert("other-ca.pem")));
    let started = Instant::now();
    let Err(err) = Admin::new(config).await else {
        panic!("must fail");
    };
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not signed by a trusted CA"),
        "{err}"
    );
    assert!(!err.is_retriable());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_name_the_certificate_does_not_list_is_refused_unless_overridden() {
    let cluster = mock(None).await;
    let config = ClientConfig::new(&format!("ssl://{}", cluster.bootstrap()))
        .unwrap()
        .with_tls(trusted().with_server_name("kafka.example.com"));
    let Err(err) = Admin::new(config).await else {
        panic!("must fail");
    };
    assert!(err.to_string().contains("not valid for the name"), "{err}");
    // The certificate lists localhost: verifying against it works on the IP address.
    let config = ClientConfig::new(&format!("ssl://{}", cluster.bootstrap()))
        .unwrap()
        .with_tls(trusted().with_server_name("localhost"));
    Admin::new(config).await.expect("server name override");
}

#[tokio::test]
async fn accepting_invalid_certificates_is_an_explicit_opt_out() {
    let cluster = mock(None).await;
    let config = ClientConfig::new(&format!("ssl://{}", cluster.bootstrap()))
        .unwrap()
        .with_tls(
            TlsConfig::new()
                .with_ca_file(cert("other-ca.pem"))
                .danger_accept_invalid_certs(true),
        );
    round_trip(config, 5).await;
}

/// The warnings this test binary logged, through one global subscriber installed once. (A
/// scoped, thread-local subscriber per test raced tracing's global per-callsite interest cache
/// when tests ran in parallel: a warning could go unrecorded.) Each test counts only the lines
/// that name one of its own mock's brokers.
struct Logs {
    lines: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Logs {
    fn capture() -> Self {
        static LINES: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
            std::sync::OnceLock::new();
        let lines = LINES
            .get_or_init(|| {
                let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                let sink = lines.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::WARN)
                    .with_ansi(false)
                    .with_writer(move || Sink(sink.clone()))
                    .finish();
                tracing::subscriber::set_global_default(subscriber)
                    .expect("no other global subscriber in this test binary");
                lines
            })
            .clone();
        // A callsite that another test was registering while the subscriber was being
        // installed may have cached "never" (tracing's interest cache): ask every callsite
        // again now that the subscriber is there.
        tracing::callsite::rebuild_interest_cache();
        Logs { lines }
    }

    /// Checks that every connection `cluster` saw warned with `needle`, once per connection,
    /// not per request. Each connection warns before its first request, so a connection still
    /// opening when the round trip ended may have warned without being counted yet: at least
    /// one each, and far fewer than the requests.
    fn assert_one_per_connection(&self, cluster: &MockCluster, needle: &str) {
        let warned = self.count(cluster, needle);
        let opened = connections(cluster);
        assert!(
            opened >= 2,
            "admin, producer and consumer connect: {opened}"
        );
        assert!(
            warned >= opened,
            "{warned} warnings for {opened} connections"
        );
        assert!(warned < cluster.requests().len(), "{warned}");
    }

    /// How many lines contain `needle` and name a broker of `cluster`.
    fn count(&self, cluster: &MockCluster, needle: &str) -> usize {
        let ports: Vec<String> = cluster
            .brokers()
            .iter()
            .map(|(_, addr)| format!(":{}", addr.port()))
            .collect();
        let lines = self.lines.lock().unwrap();
        String::from_utf8_lossy(&lines)
            .lines()
            .filter(|l| l.contains(needle) && ports.iter().any(|p| l.contains(p.as_str())))
            .count()
    }
}

struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Connections the cluster saw: each opens with one ApiVersions request.
fn connections(cluster: &MockCluster) -> usize {
    cluster
        .requests()
        .iter()
        .filter(|r| r.api_key == ApiKey::ApiVersions)
        .count()
}

#[tokio::test]
async fn accepting_invalid_certificates_warns_on_every_connection() {
    let logs = Logs::capture();
    let cluster = mock(None).await;
    let config = ClientConfig::new(&format!("ssl://{}", cluster.bootstrap()))
        .unwrap()
        .with_tls(TlsConfig::new().danger_accept_invalid_certs(true));
    round_trip(config, 2).await;
    logs.assert_one_per_connection(&cluster, "danger_accept_invalid_certs");
}

/// Credentials on a plain `kafka://` URL are refused before anything is sent; only an
/// explicit `sasl_plaintext://` sends them over plain TCP, and PLAIN there warns once per
/// connection.
#[tokio::test]
async fn sasl_over_plain_tcp_needs_an_explicit_sasl_plaintext_url() {
    let logs = Logs::capture();
    let cluster = MockCluster::builder()
        .sasl(MockSasl::plain([("alice", "alice-secret")]))
        .build()
        .await
        .unwrap();
    for url in [
        cluster.bootstrap(),
        format!("kafka://{}", cluster.bootstrap()),
    ] {
        let config = ClientConfig::new(&url)
            .unwrap()
            .with_sasl(SaslConfig::plain("alice", "alice-secret"));
        let Err(err) = Admin::new(config).await else {
            panic!("credentials on {url} must not be sent");
        };
        assert!(
            matches!(err, Error::SaslWithoutSaslProtocol { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("sasl_plaintext://"), "{err}");
    }
    assert_eq!(connections(&cluster), 0, "nothing was sent");
    assert_eq!(logs.count(&cluster, "SASL/PLAIN over plain TCP"), 0);

    let config = ClientConfig::new(&format!("sasl_plaintext://{}", cluster.bootstrap()))
        .unwrap()
        .with_sasl(SaslConfig::plain("alice", "alice-secret"));
    round_trip(config, 2).await;
    logs.assert_one_per_connection(&cluster, "SASL/PLAIN over plain TCP");
}

#[tokio::test]
async fn plaintext_to_a_tls_listener_is_an_error_not_a_hang() {
    let cluster = mock(None).await;
    let config = ClientConfig::new(&cluster.bootstrap())
        .unwrap()
        .with_request_timeout(Duration::from_secs(3));
    assert!(Admin::new(config).await.is_err());
}

#[tokio::test]
async fn sasl_plain_over_tls_round_trip() {
    let cluster = mock(Some(MockSasl::plain([("alice", "alice-secret")]))).await;
    let config = ClientConfig::new(&format!("sasl_ssl://{}", cluster.bootstrap()))
        .unwrap()
        .with_tls(trusted())
        .with_sasl(SaslConfig::plain("alice", "alice-secret"));
    round_trip(config, 20).await;
    let authenticated = cluster
        .requests()
        .iter()
        .filter(|r| r.api_key == ApiKey::SaslAuthenticate)
        .count();
    assert!(authenticated >= 1);
}

#[tokio::test]
async fn a_wrong_password_fails_once_with_an_error_that_says_so() {
    let cluster = mock(Some(MockSasl::plain([("alice", "alice-secret")]))).await;
    let config = ClientConfig::new(&format!("sasl_ssl://{}", cluster.bootstrap()))
        .unwrap()
        .with_tls(trusted())
        .with_sasl(SaslConfig::plain("alice", "wrong"));
    let Err(err) = Admin::new(config).await else {
        panic!("must fail");
    };
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(
        err.to_string().contains("check the user name and password"),
        "{err}"
    );
    assert!(!err.is_retriable());
    let attempts = cluster
        .requests()
        .iter()
        .filter(|r| r.api_key == ApiKey::SaslAuthenticate)
        .count();
    assert_eq!(attempts, 1, "bad credentials must not be retried");
}

#[tokio::test]
async fn sasl_without_credentials_is_a_configuration_error() {
    let cluster = mock(Some(MockSasl::plain([("alice", "alice-secret")]))).await;
    let config = ClientConfig::new(&format!("sasl_ssl://{}", cluster.bootstrap()))
        .unwrap()
        .with_tls(trusted());
    let Err(err) = Admin::new(config).await else {
        panic!("must fail");
    };
    assert!(err.to_string().contains("with_sasl"), "{err}");
}

/// KIP-368: the mock closes a connection whose session expired at its next request; the
/// client re-authenticates on the same connection before that.
#[tokio::test]
async fn sessions_are_renewed_on_the_same_connection() {
    let cluster = mock(Some(
        MockSasl::plain([("alice", "alice-secret")]).session_lifetime(Duration::from_millis(600)),
    ))
    .await;
    let config = ClientConfig::new(&format!("sasl_ssl://{}", cluster.bootstrap()))
        .unwrap()
        .with_tls(trusted())
        .with_sasl(SaslConfig::plain("alice", "alice-secret"));
    let admin = Admin::new(config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        admin.describe_cluster().await.expect("describe cluster");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count = |key| {
        cluster
            .requests()
            .iter()
            .filter(|r| r.api_key == key)
            .count()
    };
    assert!(
        count(ApiKey::SaslAuthenticate) >= 4,
        "{}",
        count(ApiKey::SaslAuthenticate)
    );
    assert_eq!(
        count(ApiKey::ApiVersions),
        1,
        "the connection was reopened instead"
    );
}

// ------------------------------------------------------------ real Kafka (SASL_SSL + SCRAM)

/// `KAFKA_SASL_SSL_BOOTSTRAP` and the CA file and SCRAM user `scripts/kafka start NAME
/// --secure` (`scripts/kafka env NAME`) prints.
fn real_kafka() -> (String, PathBuf, String, String) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run scripts/kafka start NAME --secure and load `scripts/kafka env NAME`")
        })
    };
    (
        var("KAFKA_SASL_SSL_BOOTSTRAP"),
        PathBuf::from(var("KAFKA_SASL_SSL_CA")),
        var("KAFKA_SASL_USER"),
        var("KAFKA_SASL_PASSWORD"),
    )
}

fn real_config(sasl: SaslConfig, ca: PathBuf, bootstrap: &str) -> ClientConfig {
    ClientConfig::new(&format!("sasl_ssl://{bootstrap}"))
        .unwrap()
        .with_tls(TlsConfig::new().with_ca_file(ca))
        .with_sasl(sasl)
}

#[tokio::test]
#[ignore = "needs a Kafka SASL_SSL listener: KAFKA_SASL_SSL_BOOTSTRAP etc. from scripts/kafka start NAME --secure"]
async fn real_kafka_scram_over_tls_round_trip() {
    let (bootstrap, ca, user, password) = real_kafka();
    for sasl in [
        SaslConfig::scram_sha256(&user, &password),
        SaslConfig::scram_sha512(&user, &password),
    ] {
        round_trip(real_config(sasl, ca.clone(), &bootstrap), 100).await;
    }
}

#[tokio::test]
#[ignore = "needs a Kafka SASL_SSL listener: KAFKA_SASL_SSL_BOOTSTRAP etc. from scripts/kafka start NAME --secure"]
async fn real_kafka_wrong_password_and_untrusted_certificate_say_which() {
    let (bootstrap, ca, user, _) = real_kafka();
    let Err(err) = Admin::new(real_config(
        SaslConfig::scram_sha512(&user, "wrong"),
        ca,
        &bootstrap,
    ))
    .await
    else {
        panic!("wrong password must fail");
    };
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(
        err.to_string().contains("check the user name and password"),
        "{err}"
    );
    let Err(err) = Admin::new(real_config(
        SaslConfig::scram_sha512(&user, "wrong"),
        cert("other-ca.pem"),
        &bootstrap,
    ))
    .await
    else {
        panic!("untrusted certificate must fail");
    };
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not signed by a trusted CA"),
        "{err}"
    );
}

/// A consumer group through SASL_SSL: join, consume, commit, read the commit back.
async fn group_round_trip(config: ClientConfig) {
    use kafka_client::group::{GroupConfig, GroupConsumer};
    let topic = unique("security-group");
    let admin = Admin::new(config.clone()).await.expect("admin");
    admin
        .create_topics(vec![NewTopic::new(&topic, 2, 1)])
        .await
        .expect("create topic");
    let producer = Producer::new(config.clone(), ProducerConfig::default())
        .await
        .expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..20 {
        let record = ProducerRecord::new(&topic)
            .key(format!("k{i}"))
            .value(format!("v{i}"));
        deliveries.push(producer.send(record).await.expect("send"));
    }
    for d in deliveries {
        d.await.expect("delivery");
    }
    producer.close().await.expect("close");
    let mut group = GroupConsumer::new(
        config,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..Default::default()
        },
        GroupConfig::new(unique("security-group")),
    )
    .await
    .expect("group consumer");
    group.subscribe(vec![topic.clone()]);
    for _ in 0..20 {
        tokio::time::timeout(Duration::from_secs(60), group.recv())
            .await
            .expect("a record within 60 s")
            .expect("record");
    }
    group.commit().await.expect("commit");
    let partitions = [
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    ];
    let committed = group.committed(&partitions).await.expect("committed");
    let total: i64 = committed.values().map(|o| o.unwrap_or(0)).sum();
    assert_eq!(total, 20, "{committed:?}");
    group.close().await.expect("leave");
    admin
        .delete_topics(vec![topic])
        .await
        .expect("delete topic");
}

#[tokio::test]
#[ignore = "needs a Kafka SASL_SSL listener: KAFKA_SASL_SSL_BOOTSTRAP etc. from scripts/kafka start NAME --secure"]
async fn real_kafka_group_over_scram_and_tls() {
    let (bootstrap, ca, user, password) = real_kafka();
    group_round_trip(real_config(
        SaslConfig::scram_sha256(&user, &password),
        ca,
        &bootstrap,
    ))
    .await;
}

/// scripts/kafka gives SASL sessions 10 s (`connections.max.reauth.ms`): a client working
/// for 25 s must re-authenticate at least twice, or the broker closes its connections.
#[tokio::test]
#[ignore = "needs a Kafka SASL_SSL listener: KAFKA_SASL_SSL_BOOTSTRAP etc. from scripts/kafka start NAME --secure"]
async fn real_kafka_a_client_outlives_its_sasl_session() {
    let (bootstrap, ca, user, password) = real_kafka();
    let admin = Admin::new(real_config(
        SaslConfig::scram_sha512(&user, &password),
        ca,
        &bootstrap,
    ))
    .await
    .expect("admin");
    let deadline = Instant::now() + Duration::from_secs(25);
    while Instant::now() < deadline {
        admin.describe_cluster().await.expect("describe cluster");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let cluster = MockCluster::builder()
        .tls(
            MockTls::with_client_auth(cert("server.pem"), cert("server.key"), cert("ca.pem"))
                .unwrap(),
        )
        .build()
        .await
        .unwrap();
    let url = format!("ssl://{}", cluster.bootstrap());
    let with_cert = ClientConfig::new(&url)
        .unwrap()
        .with_tls(trusted().with_client_cert(cert("client.pem"), cert("client.key")));
    round_trip(with_cert, 5).await;
    // Without one, the broker refuses the handshake (TLS 1.3 reports it with the first read).
    let without = ClientConfig::new(&url)
        .unwrap()
        .with_tls(trusted())
        .with_request_timeout(Duration::from_secs(5));
    let Err(err) = Admin::new(without).await else {
        panic!("a broker requiring a client certificate must refuse");
    };
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("TlsConfig::client_cert"), "{err}");
    assert!(!err.is_retriable());
}
