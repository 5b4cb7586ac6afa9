//! In-memory channels (`app.channel()`): a topic agent sinks into a channel that a channel
//! agent reads, in order; a full channel makes senders wait; a stopped app's channel refuses
//! sends; a failing channel agent stops the worker as a failing agent does; `agents()` lists
//! channel agents too.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{wait_until, WAIT};
use futures::StreamExt;
use streams::{App, Channel, Error, Topic};

/// A one-partition app whose agent `forward` sends every value of its topic into `channel`.
fn forwarding(
    broker: &common::Broker,
    id: &str,
    capacity: usize,
) -> (App, Topic<String, i64>, Channel<i64>) {
    let app = broker
        .app(id)
        .topic_partitions(1)
        .broker_commit_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let input = app.topic::<String, i64>(&format!("{id}-numbers"));
    let channel = app.channel_with_capacity::<i64>("numbers", capacity);
    app.agent_builder("forward", &input)
        .sink(&channel)
        .process(|events| events.map(|e| e.value));
    (app, input, channel)
}

/// Registers a channel agent that collects what it reads.
fn collect(app: &App, channel: &Channel<i64>) -> Arc<Mutex<Vec<i64>>> {
    let got: Arc<Mutex<Vec<i64>>> = Arc::default();
    let sink = got.clone();
    app.channel_agent("collect", channel)
        .run(move |mut values| {
            let sink = sink.clone();
            async move {
                while let Some(v) = values.next().await {
                    sink.lock().unwrap().push(v);
                }
            }
        });
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_go_from_a_topic_agent_through_a_channel_to_a_channel_agent_in_order() {
    let broker = common::on_mock(common::mock().await);
    let id = &testkit::unique_name("channel-order");
    let (app, input, channel) = forwarding(&broker, id, 4);
    let got = collect(&app, &channel);
    app.start().await.unwrap();
    for n in 0..50 {
        input.send("k".to_owned(), n).await.unwrap();
    }
    wait_until("50 values through the channel", || {
        got.lock().unwrap().len() == 50
    })
    .await;
    assert_eq!(*got.lock().unwrap(), (0..50).collect::<Vec<_>>());
    // Accepted by the channel: the topic's events are done and committed.
    app.commit().await.unwrap();
    assert_eq!(
        broker
            .mock()
            .committed_offset(id, &format!("{id}-numbers"), 0),
        Some(50)
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_channel_makes_send_wait_until_a_channel_agent_takes_a_value() {
    let broker = common::on_mock(common::mock().await);
    let id = &testkit::unique_name("channel-full");
    let (app, _, channel) = forwarding(&broker, id, 2);
    let got = collect(&app, &channel);
    // Before the start nothing reads the channel: two values fit, the third waits.
    channel.send(1).await.unwrap();
    channel.send(2).await.unwrap();
    assert_eq!(channel.len(), 2);
    let third = tokio::spawn({
        let channel = channel.clone();
        async move { channel.send(3).await }
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), async {
            while !third.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_err(),
        "a send into a full channel returned"
    );
    app.start().await.unwrap();
    tokio::time::timeout(WAIT, third)
        .await
        .expect("the send gets room once the agent reads")
        .unwrap()
        .unwrap();
    wait_until("three values read", || got.lock().unwrap().len() == 3).await;
    assert_eq!(*got.lock().unwrap(), vec![1, 2, 3]);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_after_the_app_stopped_fails_also_one_waiting_for_room() {
    let broker = common::on_mock(common::mock().await);
    let id = &testkit::unique_name("channel-closed");
    // No channel agent: the channel fills up.
    let (app, _, channel) = forwarding(&broker, id, 1);
    app.start().await.unwrap();
    channel.send(1).await.unwrap();
    let waiting = tokio::spawn({
        let channel = channel.clone();
        async move { channel.send(2).await }
    });
    app.shutdown().await.unwrap();
    let err = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("the waiting send ends when the app stops")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, Error::ChannelClosed { ref channel } if channel == "numbers"),
        "{err}"
    );
    let err = tokio::time::timeout(WAIT, channel.send(3))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        err.to_string().contains("channel numbers is closed"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_channel_agent_stops_the_worker_as_an_agent_failure() {
    let broker = common::on_mock(common::mock().await);
    let id = &testkit::unique_name("channel-fails");
    let (app, input, channel) = forwarding(&broker, id, 4);
    app.channel_agent("refuse", &channel)
        .concurrency(2)
        .run(|mut values| async move {
            match values.next().await {
                Some(v) => Err(Error::validation("value", format!("{v} refused"))),
                None => Ok(()),
            }
        });
    app.start().await.unwrap();
    input.send("k".to_owned(), 7).await.unwrap();
    let err = common::stopped_by_itself(&app).await.unwrap_err();
    assert!(
        matches!(err, Error::AgentFailed { ref agent, .. } if agent == "refuse"),
        "{err}"
    );
    assert!(err.to_string().contains("7 refused"), "{err}");
}

#[test]
fn agents_lists_channel_agents_after_the_topic_agents_marked_as_channel_agents() {
    let app = App::builder("channel-listing").build().unwrap();
    let input = app.topic::<String, i64>("numbers-in");
    let channel = app.channel::<i64>("numbers");
    app.agent_builder("forward", &input)
        .sink(&channel)
        .process(|events| events.map(|e| e.value));
    collect(&app, &channel);
    let listed: Vec<_> = app
        .agents()
        .into_iter()
        .map(|a| (a.name, a.topic, a.channel, a.sinks))
        .collect();
    assert_eq!(
        listed,
        vec![
            (
                "forward".to_owned(),
                "numbers-in".to_owned(),
                false,
                vec!["channel numbers".to_owned()]
            ),
            ("collect".to_owned(), "numbers".to_owned(), true, vec![]),
        ]
    );
}
