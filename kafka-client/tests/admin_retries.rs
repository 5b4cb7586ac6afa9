//! The admin client's retries against the mock cluster's injected errors: answers that only
//! wait for the cluster to settle (a leader being elected, a new topic's partition its leader
//! has not loaded yet, a controller change) are retried until `default_api_timeout`, then a
//! clear error; a topic that does not exist is still an error within seconds.

use std::time::{Duration, Instant};

use kafka_client::admin::OffsetSpec;
use kafka_client::{Admin, ClientConfig, Error, NewTopic, TopicPartition};
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};

async fn mock() -> MockCluster {
    MockCluster::builder()
        .auto_create_topics(false)
        .build()
        .await
        .unwrap()
}

async fn admin(cluster: &MockCluster, api_timeout: Duration) -> Admin {
    let client = ClientConfig::new(&cluster.bootstrap())
        .unwrap()
        .with_default_api_timeout(api_timeout);
    Admin::new(client).await.unwrap()
}

/// A topic "t" of one partition holding three records.
fn topic_of_three(cluster: &MockCluster) -> TopicPartition {
    cluster
        .create_topic("t", 1, Vec::<(String, String)>::new())
        .unwrap();
    for i in 0..3 {
        let v = format!("v{i}");
        cluster
            .append("t", 0, &[(Some("k"), Some(v.as_str()))])
            .unwrap();
    }
    TopicPartition::new("t", 0)
}

fn list_offsets_requests(cluster: &MockCluster) -> usize {
    cluster
        .requests()
        .iter()
        .filter(|r| r.api_key == ApiKey::ListOffsets)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_waits_out_a_new_topics_leader_past_six_attempts() {
    let cluster = mock().await;
    let tp = topic_of_three(&cluster);
    let admin = admin(&cluster, Duration::from_secs(60)).await;
    // Nine refusals in a row, as a broker gives right after a topic is created: more than
    // the six attempts the lookup used to give up after.
    for code in [
        KafkaCode::NotLeaderOrFollower,
        KafkaCode::LeaderNotAvailable,
        KafkaCode::UnknownTopicOrPartition,
    ] {
        cluster.intercept(ApiKey::ListOffsets, Intercept::error(code).times(3));
    }
    let before = list_offsets_requests(&cluster);
    let listed = admin
        .list_offsets(vec![(tp.clone(), OffsetSpec::Latest)])
        .await
        .unwrap();
    assert_eq!(listed[&tp].offset, 3);
    assert_eq!(list_offsets_requests(&cluster) - before, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_gives_up_at_the_default_api_timeout_with_the_last_error() {
    let cluster = mock().await;
    let tp = topic_of_three(&cluster);
    let timeout = Duration::from_millis(4500);
    let admin = admin(&cluster, timeout).await;
    cluster.intercept(
        ApiKey::ListOffsets,
        Intercept::error(KafkaCode::NotLeaderOrFollower).always(),
    );
    let started = Instant::now();
    let err = admin
        .list_offsets(vec![(tp.clone(), OffsetSpec::Latest)])
        .await
        .unwrap_err();
    let took = started.elapsed();
    // Pauses of 0.1, 0.2, 0.4, 0.8, 1 and 1 s (3.5 s) fit in 4.5 s; the next would not.
    let Error::RetriesExhausted { attempts, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*attempts, 7, "{err}");
    assert_eq!(err.code(), Some(KafkaCode::NotLeaderOrFollower), "{err}");
    assert!(
        err.to_string().contains("gave up after 7 attempts in"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(3500),
        "gave up after {took:?}"
    );
    assert!(took < timeout + Duration::from_secs(10), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_of_a_topic_that_does_not_exist_fails_within_seconds() {
    let cluster = mock().await;
    topic_of_three(&cluster);
    let admin = admin(&cluster, Duration::from_secs(60)).await;
    let missing = TopicPartition::new("no-such-topic", 0);
    let started = Instant::now();
    let err = admin
        .list_offsets(vec![(missing, OffsetSpec::Latest)])
        .await
        .unwrap_err();
    let took = started.elapsed();
    let Error::RetriesExhausted { attempts, last, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*attempts, 6, "{err}");
    assert!(
        matches!(**last, Error::UnknownPartition { ref topic, .. } if topic == "no-such-topic"),
        "{err}"
    );
    // Six attempts, 2.5 s of pauses: far from the 60 s a leader election may take.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_waits_out_a_controller_change_past_six_attempts() {
    let cluster = mock().await;
    let admin = admin(&cluster, Duration::from_secs(60)).await;
    admin
        .create_topics(vec![NewTopic::new("grows", 1, 1)])
        .await
        .unwrap();
    cluster.intercept(
        ApiKey::CreatePartitions,
        Intercept::error(KafkaCode::NotController).times(8),
    );
    admin.create_partitions("grows", 3).await.unwrap();
    assert_eq!(
        admin
            .describe_topic("grows")
            .await
            .unwrap()
            .partitions
            .len(),
        3
    );
}
