//! Produce purchases keyed by user and read them back, on an embedded mock Kafka cluster
//! (or a real one: `cargo run --example quickstart -- --broker kafka://127.0.0.1:9092`).
//!
//! ```text
//! cargo run --example quickstart
//! ```

use kafka_client::admin::{Admin, NewTopic};
use kafka_client::consumer::{Consumer, ConsumerConfig, Offset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::{ClientConfig, TopicPartition};
use testkit::MockCluster;

const PURCHASES: [(&str, &str, u32); 6] = [
    ("alice", "EUR", 3),
    ("bob", "USD", 12),
    ("carol", "EUR", 7),
    ("alice", "GBP", 1),
    ("dave", "USD", 40),
    ("bob", "EUR", 5),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let broker = match (args.next().as_deref(), args.next()) {
        (Some("--broker"), Some(url)) => Some(url),
        (None, _) => None,
        _ => return Err("usage: quickstart [--broker kafka://host:port]".into()),
    };
    // Keep the mock alive for the whole run; it shuts down when dropped.
    let (bootstrap, _mock) = match broker {
        Some(url) => (url, None),
        None => {
            let mock = MockCluster::builder().build().await?;
            println!("started an embedded mock Kafka at {}", mock.bootstrap());
            (mock.bootstrap(), Some(mock))
        }
    };
    let client = ClientConfig::new(&bootstrap)?.with_client_id("quickstart");

    let topic = "purchases";
    let admin = Admin::new(client.clone()).await?;
    match admin.create_topics(vec![NewTopic::new(topic, 3, 1)]).await {
        Ok(()) => println!("created topic {topic} with 3 partitions"),
        Err(e) if e.code() == Some(kafka_client::KafkaCode::TopicAlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }

    let producer = Producer::new(client.clone(), ProducerConfig::default()).await?;
    for (user, currency, amount) in PURCHASES {
        let value = format!(r#"{{"username":"{user}","currency":"{currency}","amount":{amount}}}"#);
        let written = producer
            .send(
                ProducerRecord::new(topic)
                    .key(user)
                    .value(value)
                    .header("source", "quickstart"),
            )
            .await?
            .await?;
        println!(
            "sent {user:>5} {amount:>3} {currency} -> partition {} offset {}",
            written.partition, written.offset
        );
    }
    producer.close().await?;

    let mut consumer = Consumer::new(client, ConsumerConfig::default()).await?;
    let partitions: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(topic, p)).collect();
    consumer.assign(partitions.clone());
    for tp in &partitions {
        consumer.seek(tp, Offset::Earliest).await?;
    }
    for _ in 0..PURCHASES.len() {
        let record = consumer.recv().await?;
        let key = String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned();
        let value =
            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
        println!(
            "read {key:>5} from partition {} offset {}: {value}",
            record.partition, record.offset
        );
    }
    println!("done: {} purchases produced and consumed", PURCHASES.len());
    Ok(())
}
