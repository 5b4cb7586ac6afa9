//! Two workers of one app share the partitions; when one dies, the other takes its
//! partitions over and nothing is lost. On the mock by default, on real Kafka with
//! KAFKA_BOOTSTRAP set.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use streams::App;

fn worker(id: &str, bootstrap: &str, seen: Arc<Mutex<Vec<u32>>>, topic: &str) -> App {
    let app = App::builder(id)
        .broker(&format!("kafka://{bootstrap}"))
        .topic_partitions(4)
        .broker_commit_interval(Duration::from_millis(100))
        .broker_session_timeout(Duration::from_secs(6))
        .broker_heartbeat_interval(Duration::from_millis(500))
        .broker_rebalance_timeout(Duration::from_secs(10))
        .producer_linger(Duration::from_millis(1))
        .build()
        .unwrap();
    let numbers = app.topic::<String, u32>(topic);
    app.agent(&numbers, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            seen.lock().unwrap().push(*n);
        }
    });
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_partitions_and_survive_the_death_of_one() {
    let (_mock, bootstrap) = match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) => (None, b),
        Err(_) => {
            let mock = testkit::MockCluster::builder()
                .default_partitions(4)
                .build()
                .await
                .unwrap();
            let b = mock.bootstrap();
            (Some(mock), b)
        }
    };
    let run = std::process::id();
    let (id, topic) = (format!("scale-{run}"), format!("numbers-{run}"));
    let (seen_a, seen_b) = (Arc::default(), Arc::default());
    let a = worker(&id, &bootstrap, Arc::clone(&seen_a), &topic);
    let b = worker(&id, &bootstrap, Arc::clone(&seen_b), &topic);
    a.start().await.unwrap();
    b.start().await.unwrap();
    let numbers = a.topic::<String, u32>(&topic);
    for n in 0..200u32 {
        numbers.send(format!("key-{n}"), n).await.unwrap();
    }
    a.wait_caught_up(Duration::from_secs(30)).await.unwrap();
    b.wait_caught_up(Duration::from_secs(30)).await.unwrap();
    let (na, nb) = (seen_a.lock().unwrap().len(), seen_b.lock().unwrap().len());
    assert!(na > 0 && nb > 0, "both workers work: {na} and {nb}");
    assert_eq!(na + nb, 200);

    // b dies without leaving; a gets its partitions after the session timeout.
    b.abort().await;
    for n in 200..300u32 {
        numbers.send(format!("key-{n}"), n).await.unwrap();
    }
    a.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let all: BTreeSet<u32> = seen_a
            .lock()
            .unwrap()
            .iter()
            .chain(seen_b.lock().unwrap().iter())
            .copied()
            .collect();
        if all.len() == 300 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lost {} records",
            300 - all.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.shutdown().await.unwrap();
}
