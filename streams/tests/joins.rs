//! Stream-table and stream-global-table joins on the mock: a table an agent keeps (Faust
//! style), the checks at start, the decode-error policy on either side of a join and for a key
//! extractor, and the commit protocol when the join's output cannot be sent. (The semantics
//! against Kafka Streams, with updates and deletes between events: joins_kstreams.rs.)

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{mock, mock_app, stopped_by_itself, wait_until};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::{App, Error, OnDecodeError, Table, Topic};
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Purchase {
    user: String,
    item: String,
}

/// A loyalty level, 0 to 100. It serializes any number but reads back only 0..=100, so a
/// table can hold a value that does not decode (as after a change of the value type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
struct Level(u32);

impl TryFrom<u32> for Level {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        if n <= 100 {
            Ok(Level(n))
        } else {
            Err(format!("a level is at most 100, not {n}"))
        }
    }
}

impl From<Level> for u32 {
    fn from(l: Level) -> u32 {
        l.0
    }
}

fn app(id: &str, mock: &MockCluster) -> App {
    mock_app(id, mock)
        .broker_commit_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

/// Table `levels`, kept by an agent from topic `levels-in` (a negative number deletes).
fn kept_levels(app: &App) -> (Topic<String, i64>, Table<String, Level>) {
    let input = app.topic::<String, i64>("levels-in");
    let levels = app.table::<String, Level>("levels").unwrap();
    let table = levels.clone();
    app.agent_builder("keep-levels", &input)
        .table(&levels)
        .run(move |mut events| {
            let table = table.clone();
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    match u32::try_from(e.value) {
                        Ok(n) => table.insert(&key, Level(n))?,
                        Err(_) => {
                            table.remove(&key)?;
                        }
                    }
                }
                Ok::<(), Error>(())
            }
        });
    (input, levels)
}

/// What the joining agents saw: (agent, item, level).
type Seen = Arc<Mutex<Vec<(String, String, Option<u32>)>>>;

fn seen_of(seen: &Seen, agent: &str) -> Vec<(String, Option<u32>)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(a, _, _)| a == agent)
        .map(|(_, item, level)| (item.clone(), *level))
        .collect()
}

/// Waits until `table` holds `want` for `key` (`None`: no value).
async fn wait_level(table: &Table<String, Level>, key: &str, want: Option<u32>) {
    wait_until(&format!("level of {key} is {want:?}"), || {
        table.get(key).is_ok_and(|got| got.map(|l| l.0) == want)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_an_agent_keeps_joins_each_event_with_its_value_when_the_event_comes() {
    let mock = mock().await;
    let app = app("kept-join", &mock);
    let (levels_in, levels) = kept_levels(&app);
    let purchases = app.topic::<String, Purchase>("purchases");
    let seen = Seen::default();
    let s = seen.clone();
    app.agent_builder("left", &purchases)
        .join(&levels)
        .run(move |mut events| {
            let s = s.clone();
            async move {
                while let Some(e) = events.next().await {
                    let (p, level) = e.into_value();
                    s.lock()
                        .unwrap()
                        .push(("left".into(), p.item, level.map(|l| l.0)));
                }
            }
        });
    let s = seen.clone();
    app.agent_builder("inner", &purchases)
        .inner_join(&levels)
        .run(move |mut events| {
            let s = s.clone();
            async move {
                while let Some(e) = events.next().await {
                    let (p, level) = e.into_value();
                    s.lock()
                        .unwrap()
                        .push(("inner".into(), p.item, Some(level.0)));
                }
            }
        });
    app.start().await.unwrap();
    let buy = |user: &str, item: &str| Purchase {
        user: user.into(),
        item: item.into(),
    };
    levels_in.send("ann".to_owned(), 10).await.unwrap();
    wait_level(&levels, "ann", Some(10)).await;
    purchases
        .send("ann".to_owned(), buy("ann", "book"))
        .await
        .unwrap();
    purchases
        .send("bob".to_owned(), buy("bob", "pen"))
        .await
        .unwrap();
    wait_until("both agents saw the first purchases", || {
        seen_of(&seen, "left").len() == 2 && seen_of(&seen, "inner").len() == 1
    })
    .await;
    // Between events: an update, a new key, a delete.
    levels_in.send("ann".to_owned(), 20).await.unwrap();
    levels_in.send("bob".to_owned(), 5).await.unwrap();
    wait_level(&levels, "bob", Some(5)).await;
    purchases
        .send("ann".to_owned(), buy("ann", "lamp"))
        .await
        .unwrap();
    purchases
        .send("bob".to_owned(), buy("bob", "ink"))
        .await
        .unwrap();
    wait_until("both agents saw the second purchases", || {
        seen_of(&seen, "left").len() == 4 && seen_of(&seen, "inner").len() == 3
    })
    .await;
    levels_in.send("ann".to_owned(), -1).await.unwrap();
    wait_level(&levels, "ann", None).await;
    purchases
        .send("ann".to_owned(), buy("ann", "desk"))
        .await
        .unwrap();
    wait_until("the left join saw the last purchase", || {
        seen_of(&seen, "left").len() == 5
    })
    .await;
    app.wait_caught_up(common::WAIT).await.unwrap();
    app.shutdown().await.unwrap();
    let item = |i: &str, l: Option<u32>| (i.to_owned(), l);
    assert_eq!(
        seen_of(&seen, "left"),
        vec![
            item("book", Some(10)),
            item("pen", None),
            item("lamp", Some(20)),
            item("ink", Some(5)),
            item("desk", None),
        ]
    );
    assert_eq!(
        seen_of(&seen, "inner"),
        vec![
            item("book", Some(10)),
            item("lamp", Some(20)),
            item("ink", Some(5))
        ],
        "the inner join drops events without a table value"
    );
    // Every event is done, the dropped ones too.
    assert_eq!(mock.committed_offset("kept-join", "purchases", 0), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_of_a_stream_and_a_table_partitioned_differently_does_not_start() {
    let mock = mock().await;
    let app = app("not-co-partitioned", &mock);
    let purchases = app.topic::<String, Purchase>("purchases").partitions(2);
    let levels = app
        .table_builder::<String, Level>("levels")
        .partitions(3)
        .build()
        .unwrap();
    app.agent_builder("enrich", &purchases)
        .join(&levels)
        .run(|mut events| async move { while events.next().await.is_some() {} });
    let err = app.start().await.expect_err("not co-partitioned");
    assert!(
        matches!(&err, Error::JoinNotCoPartitioned { agent, stream, table, stream_partitions: 2, table_partitions: 3 }
            if agent == "enrich" && stream == "purchases" && table == "levels"),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains(".partitions(2)"), "says what to do: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_through_a_key_extractor_needs_a_global_table() {
    let mock = mock().await;
    let app = app("not-global", &mock);
    let purchases = app.topic::<String, Purchase>("orders");
    let levels = app.table::<String, Level>("levels").unwrap();
    app.agent_builder("enrich", &purchases)
        .join_global(&levels, |p: &Purchase| Some(p.user.clone()))
        .run(|mut events| async move { while events.next().await.is_some() {} });
    let err = app.start().await.expect_err("not global");
    assert!(
        matches!(&err, Error::JoinTableNotGlobal { agent, stream, table }
            if agent == "enrich" && stream == "orders" && table == "levels"),
        "{err}"
    );
    assert!(err.to_string().contains(".global()"), "{err}");
}

/// One run of the decode-error policy test: `events` appended raw (key, JSON value) to
/// `purchases`, table `levels` holding ann = 10 and a value that does not decode for cat.
/// Returns the items joined, the keys dead-lettered and the committed offset.
async fn policy_run(
    id: &str,
    policy: OnDecodeError,
    events: &[(&str, &str)],
    joined: usize,
    dead: usize,
) -> (Vec<String>, Vec<String>, Option<i64>) {
    let mock = mock().await;
    let app = app(id, &mock);
    let levels = app.table::<String, Level>("levels").unwrap();
    let purchases = app
        .topic::<String, Purchase>("purchases")
        .on_decode_error(policy);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    app.agent_builder("enrich", &purchases)
        .join(&levels)
        .run(move |mut events| {
            let s = s.clone();
            async move {
                while let Some(e) = events.next().await {
                    s.lock().unwrap().push(e.into_value().0.item);
                }
            }
        });
    // The table's writer: an agent of `levels-in`, writing Level(n) as given.
    let levels_in = app.topic::<String, u32>("levels-in");
    let table = levels.clone();
    app.agent_builder("keep", &levels_in)
        .table(&levels)
        .run(move |mut events| {
            let table = table.clone();
            async move {
                while let Some(e) = events.next().await {
                    table.insert(e.key.as_deref().unwrap_or_default(), Level(e.value))?;
                }
                Ok::<(), Error>(())
            }
        });
    app.start().await.unwrap();
    levels_in.send("ann".to_owned(), 10).await.unwrap();
    levels_in.send("cat".to_owned(), 500).await.unwrap(); // stored, but does not decode
    wait_level(&levels, "ann", Some(10)).await;
    wait_until("cat's bad level stored", || {
        levels.contains_key("cat").unwrap_or(false)
    })
    .await;
    for (key, value) in events {
        mock.append("purchases", 0, &[(Some(*key), Some(*value))])
            .unwrap();
    }
    wait_until("the events handled", || {
        seen.lock().unwrap().len() == joined && mock.records("dead-letters", 0).len() == dead
    })
    .await;
    app.commit().await.unwrap();
    app.shutdown().await.unwrap();
    // After the final commit of shutdown: a stopped agent's later events were never done.
    let committed = mock.committed_offset(id, "purchases", 0);
    let letters = mock
        .records("dead-letters", 0)
        .into_iter()
        .map(|(_, k, _)| String::from_utf8(k.unwrap().to_vec()).unwrap())
        .collect();
    let seen = seen.lock().unwrap().clone();
    (seen, letters, committed)
}

const GOOD: (&str, &str) = ("ann", r#"{"user":"ann","item":"book"}"#);
const BAD_EVENT: (&str, &str) = ("bob", r#"{"user":"bob","item":7}"#);
const BAD_TABLE_VALUE: (&str, &str) = ("cat", r#"{"user":"cat","item":"pen"}"#);
const GOOD_TOO: (&str, &str) = ("ann", r#"{"user":"ann","item":"lamp"}"#);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_and_bad_table_values_are_skipped_under_skip() {
    let events = [GOOD, BAD_EVENT, BAD_TABLE_VALUE, GOOD_TOO];
    let (seen, letters, committed) =
        policy_run("join-skip", OnDecodeError::Skip, &events, 2, 0).await;
    assert_eq!(seen, ["book", "lamp"]);
    assert!(letters.is_empty());
    assert_eq!(committed, Some(4), "skipped events are done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_and_bad_table_values_are_dead_lettered_under_dead_letter() {
    let events = [GOOD, BAD_EVENT, BAD_TABLE_VALUE, GOOD_TOO];
    let policy = OnDecodeError::DeadLetter("dead-letters".into());
    let (seen, letters, committed) = policy_run("join-dead", policy, &events, 2, 2).await;
    assert_eq!(seen, ["book", "lamp"]);
    let mut letters = letters;
    letters.sort(); // each dead letter is sent by its own task
    assert_eq!(
        letters,
        ["bob", "cat"],
        "the bad event and the one with a bad table value"
    );
    assert_eq!(committed, Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_stops_the_join_under_stop() {
    let events = [GOOD, BAD_EVENT, GOOD_TOO];
    let (seen, _, committed) =
        policy_run("join-stop-event", OnDecodeError::Stop, &events, 1, 0).await;
    assert_eq!(seen, ["book"]);
    assert_eq!(committed, Some(1), "committed up to the bad event only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_table_value_stops_the_join_under_stop() {
    let events = [GOOD, BAD_TABLE_VALUE, GOOD_TOO];
    let (seen, _, committed) =
        policy_run("join-stop-table", OnDecodeError::Stop, &events, 1, 0).await;
    assert_eq!(seen, ["book"]);
    assert_eq!(
        committed,
        Some(1),
        "committed up to the event with the bad table value only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_extractor_that_finds_no_key_follows_the_decode_error_policy() {
    let mock = mock().await;
    let app = app("extractor", &mock);
    let countries_in = app.topic::<String, String>("countries-in");
    let countries = app
        .table_builder::<String, String>("countries")
        .global()
        .from_topic(&countries_in)
        .unwrap();
    // Orders keyed by order id; the user is in the value, or not.
    let orders = app
        .topic::<String, serde_json::Value>("orders")
        .on_decode_error(OnDecodeError::DeadLetter("dead-letters".into()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    app.agent_builder("ship", &orders)
        .inner_join_global(&countries, |o: &serde_json::Value| {
            o["user"].as_str().map(str::to_owned)
        })
        .run(move |mut events| {
            let s = s.clone();
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    let (_, country) = e.into_value();
                    s.lock().unwrap().push((key, country));
                }
            }
        });
    app.start().await.unwrap();
    countries_in
        .send("ann".to_owned(), "FR".to_owned())
        .await
        .unwrap();
    wait_until("ann's country kept", || {
        countries.get("ann").is_ok_and(|c| c.is_some())
    })
    .await;
    let order = |id: &str, v: serde_json::Value| orders.send(id.to_owned(), v);
    order("o1", serde_json::json!({"user": "ann"}))
        .await
        .unwrap();
    order("o2", serde_json::json!({"customer": "ann"}))
        .await
        .unwrap();
    order("o3", serde_json::json!({"user": "zed"}))
        .await
        .unwrap();
    order("o4", serde_json::json!({"user": "ann"}))
        .await
        .unwrap();
    wait_until("o1 and o4 shipped, o2 dead-lettered", || {
        seen.lock().unwrap().len() == 2 && mock.records("dead-letters", 0).len() == 1
    })
    .await;
    app.wait_caught_up(common::WAIT).await.unwrap();
    app.shutdown().await.unwrap();
    let fr = |o: &str| (o.to_owned(), "FR".to_owned());
    assert_eq!(
        *seen.lock().unwrap(),
        [fr("o1"), fr("o4")],
        "o3: no country, dropped"
    );
    let letters = mock.records("dead-letters", 0);
    assert_eq!(letters[0].1.as_deref(), Some(&b"o2"[..]));
    assert_eq!(mock.committed_offset("extractor", "orders", 0), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_result_that_cannot_be_sent_commits_nothing_past_its_event() {
    let mock = mock().await;
    let app = app("join-produce-fails", &mock);
    let (levels_in, levels) = kept_levels(&app);
    let purchases = app.topic::<String, Purchase>("purchases");
    let enriched = app.topic::<String, String>("enriched");
    let out = enriched.clone();
    app.agent_builder("enrich", &purchases)
        .join(&levels)
        .run(move |mut events| {
            let out = out.clone();
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    let (p, level) = e.into_value();
                    out.send(key, format!("{}@{:?}", p.item, level)).await?;
                }
                Ok::<(), Error>(())
            }
        });
    app.start().await.unwrap();
    levels_in.send("ann".to_owned(), 10).await.unwrap();
    wait_level(&levels, "ann", Some(10)).await;
    let buy = |item: &str| Purchase {
        user: "ann".into(),
        item: item.into(),
    };
    purchases.send("ann".to_owned(), buy("book")).await.unwrap();
    wait_until("book enriched", || mock.records("enriched", 0).len() == 1).await;
    app.commit().await.unwrap();
    assert_eq!(
        mock.committed_offset("join-produce-fails", "purchases", 0),
        Some(1)
    );
    mock.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::InvalidRecord)
            .for_partition("enriched", 0)
            .always(),
    );
    purchases.send("ann".to_owned(), buy("lamp")).await.unwrap();
    purchases.send("ann".to_owned(), buy("desk")).await.unwrap();
    let err = stopped_by_itself(&app).await.expect_err("the send failed");
    assert!(matches!(err, Error::Delivery { .. }), "{err}");
    for commit in mock.commit_history("join-produce-fails") {
        if commit.topic == "purchases" {
            assert!(
                commit.offset <= 1,
                "committed past the failed send: {commit:?}"
            );
        }
    }
    assert_eq!(
        mock.committed_offset("join-produce-fails", "purchases", 0),
        Some(1)
    );
}
