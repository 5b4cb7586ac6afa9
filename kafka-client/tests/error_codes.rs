//! A broker's error code reaches the caller as kafka-client's own `KafkaCode`, by name when
//! the client knows it and by number when it does not (a newer broker's code is kept, not
//! turned into another one).

use kafka_client::admin::{Admin, NewTopic};
use kafka_client::{ClientConfig, Error, KafkaCode};
use testkit::{ApiKey, Intercept, MockCluster};

async fn refused_create(code: KafkaCode) -> Error {
    let cluster = MockCluster::builder().build().await.unwrap();
    cluster.intercept(ApiKey::CreateTopics, Intercept::error(code));
    let admin = Admin::new(ClientConfig::new(&cluster.bootstrap()).unwrap())
        .await
        .unwrap();
    admin
        .create_topics(vec![NewTopic::new("refused", 1, 1)])
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_known_code_arrives_by_name() {
    let err = refused_create(KafkaCode::TopicAuthorizationFailed).await;
    assert_eq!(
        err.code(),
        Some(KafkaCode::TopicAuthorizationFailed),
        "{err}"
    );
    assert!(matches!(err, Error::Broker { .. }), "{err:?}");
    assert!(!err.is_retriable());
    assert!(
        err.to_string().contains("TopicAuthorizationFailed (29)"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_code_is_kept_as_its_number() {
    let newer = KafkaCode::try_from_code(9999).unwrap();
    let err = refused_create(newer).await;
    let code = err.code().expect("the broker's code");
    assert_eq!(code.code(), 9999, "{err}");
    assert_eq!(code.name(), None);
    assert!(!err.is_retriable(), "unknown codes are not retried");
    assert!(err.to_string().contains("unknown error code 9999"), "{err}");
}
