//! Admin client against the broker named by KAFKA_BOOTSTRAP, else the mock.

mod common;

use kafka_client::admin::{CreateTopicsOptions, NewTopic, OffsetSpec};
use kafka_client::producer::ProducerRecord;
use kafka_client::{KafkaCode, TopicPartition};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_describe_grow_and_delete_a_topic() {
    let bootstrap = common::bootstrap().await;
    let admin = common::admin(&bootstrap).await;
    let name = common::unique("admin-topic");

    let topic = NewTopic::new(&name, 3, 1)
        .with_config("cleanup.policy", "compact")
        .with_config("retention.ms", "3600000");
    admin.create_topics(vec![topic.clone()]).await.unwrap();
    let info = admin.describe_topic(&name).await.unwrap();
    assert_eq!(info.partitions.len(), 3);
    assert!(info
        .partitions
        .iter()
        .all(|p| p.leader >= 0 && p.replicas.len() == 1));

    let configs = admin.describe_configs(&name).await.unwrap();
    let get = |key: &str| configs.iter().find(|c| c.name == key).cloned().unwrap();
    assert_eq!(get("cleanup.policy").value.as_deref(), Some("compact"));
    assert!(!get("cleanup.policy").is_default);
    assert_eq!(get("retention.ms").value.as_deref(), Some("3600000"));
    assert!(get("segment.bytes").is_default);

    // Creating it again is a typed error, or nothing with ignore_existing.
    let err = admin.create_topics(vec![topic.clone()]).await.unwrap_err();
    assert_eq!(err.code(), Some(KafkaCode::TopicAlreadyExists), "{err}");
    let options = CreateTopicsOptions {
        ignore_existing: true,
        ..Default::default()
    };
    admin
        .create_topics_with(vec![topic], options)
        .await
        .unwrap();

    admin.create_partitions(&name, 5).await.unwrap();
    assert_eq!(
        admin.describe_topic(&name).await.unwrap().partitions.len(),
        5
    );
    let err = admin.create_partitions(&name, 2).await.unwrap_err();
    assert_eq!(err.code(), Some(KafkaCode::InvalidPartitions), "{err}");

    admin.delete_topics(vec![name.clone()]).await.unwrap();
    assert!(admin.describe_topic(&name).await.is_err());
    let err = admin.delete_topics(vec![name.clone()]).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(KafkaCode::UnknownTopicOrPartition),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_topics_are_rejected_with_the_broker_reason() {
    let bootstrap = common::bootstrap().await;
    let admin = common::admin(&bootstrap).await;
    let err = admin
        .create_topics(vec![NewTopic::new("bad/name", 1, 1)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(KafkaCode::InvalidTopicException), "{err}");
    let name = common::unique("admin-badconfig");
    let bad = NewTopic::new(&name, 1, 1).with_config("cleanup.policy", "sometimes");
    let err = admin.create_topics(vec![bad]).await.unwrap_err();
    assert_eq!(err.code(), Some(KafkaCode::InvalidConfig), "{err}");
    // validate_only creates nothing.
    let options = CreateTopicsOptions {
        validate_only: true,
        ..Default::default()
    };
    admin
        .create_topics_with(vec![NewTopic::new(&name, 1, 1)], options)
        .await
        .unwrap();
    assert!(admin.describe_topic(&name).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_earliest_latest_and_by_timestamp() {
    let bootstrap = common::bootstrap().await;
    let admin = common::admin(&bootstrap).await;
    let name = common::topic(&bootstrap, "admin-offsets", 2).await;
    let p0 = TopicPartition::new(&name, 0);
    let p1 = TopicPartition::new(&name, 1);

    let empty = admin
        .list_offsets(vec![
            (p0.clone(), OffsetSpec::Earliest),
            (p1.clone(), OffsetSpec::Latest),
        ])
        .await
        .unwrap();
    assert_eq!((empty[&p0].offset, empty[&p1].offset), (0, 0));

    let base = 1_600_000_000_000i64;
    let records = (0..5)
        .map(|i| {
            ProducerRecord::new(&name)
                .partition(0)
                .value("v")
                .timestamp(base + i * 1000)
        })
        .collect();
    common::produce(&bootstrap, records).await;

    let listed = admin
        .list_offsets(vec![
            (p0.clone(), OffsetSpec::Earliest),
            (p1.clone(), OffsetSpec::Latest),
            (TopicPartition::new(&name, 0), OffsetSpec::Latest),
        ])
        .await
        .unwrap();
    assert_eq!(listed[&p0].offset, 5); // the later request for p0 (Latest) wins the map slot
    assert_eq!(listed[&p1].offset, 0);

    let at = |ms| admin.list_offsets(vec![(p0.clone(), OffsetSpec::Timestamp(ms))]);
    let found = at(base + 2500).await.unwrap()[&p0];
    assert_eq!((found.offset, found.timestamp), (3, base + 3000));
    assert_eq!(at(base - 1).await.unwrap()[&p0].offset, 0);
    assert_eq!(at(base + 10_000).await.unwrap()[&p0].offset, -1);

    let err = admin
        .list_offsets(vec![(TopicPartition::new(&name, 7), OffsetSpec::Latest)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&format!("{name}/7")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_lists_the_brokers() {
    let bootstrap = common::bootstrap().await;
    let admin = common::admin(&bootstrap).await;
    let cluster = admin.describe_cluster().await.unwrap();
    assert!(!cluster.brokers.is_empty());
    assert!(cluster
        .cluster_id
        .as_deref()
        .is_some_and(|id| !id.is_empty()));
    let ids: Vec<i32> = cluster.brokers.iter().map(|b| b.id).collect();
    assert!(
        cluster.controller_id == -1 || ids.contains(&cluster.controller_id),
        "{cluster:?}"
    );
    assert!(cluster
        .brokers
        .iter()
        .all(|b| b.port > 0 && !b.host.is_empty()));
}
