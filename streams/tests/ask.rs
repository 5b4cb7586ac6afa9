//! Agents as services (Faust's `agent.ask`, `map`, `kvmap`, `join`): requests carry a reply
//! topic and a correlation id, `process` agents answer with their results, across workers;
//! every way a request can go wrong is an error for its asker, never a hang; a reply is
//! covered by the commit protocol like any send. On the mock cluster.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{mock, mock_app, stopped_by_itself, wait_until, WAIT};
use futures::StreamExt;
use streams::{Agent, App, Error, Sink};
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};

fn app(id: &str, mock: &MockCluster) -> App {
    mock_app(id, mock)
        .broker_commit_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

/// An app whose agent `double` answers each number with its double.
fn doubler(id: &str, mock: &MockCluster) -> (App, Agent<String, i64, i64>) {
    let app = app(id, mock);
    let numbers = app.topic::<String, i64>("numbers");
    let double = app
        .agent_builder("double", &numbers)
        .process(|stream| stream.map(|n| *n * 2));
    (app, double)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_gets_the_agents_result_for_the_request() {
    let mock = mock().await;
    let (app, double) = doubler("ask-one", &mock);
    app.start().await.unwrap();
    assert_eq!(double.ask(21).await.unwrap(), 42);
    assert_eq!(double.ask_keyed("k".to_owned(), 5).await.unwrap(), 10);
    let topic = app
        .reply_topic()
        .expect("the first ask made the reply topic");
    assert!(topic.starts_with("ask-one-reply-"), "{topic}");
    app.shutdown().await.unwrap();
    assert!(
        !mock.topics().contains(&topic),
        "a clean shutdown deletes the reply topic"
    );
}

/// A worker of app `id` tagged `tag`, whose agent answers `<tag>:<partition>:<value>`.
fn tagged(id: &str, mock: &MockCluster, tag: &'static str) -> (App, Agent<String, String, String>) {
    let app = app(id, mock);
    let names = app.topic::<String, String>("names").partitions(2);
    let whoami = app
        .agent_builder("whoami", &names)
        .process(move |stream| stream.map(move |e| format!("{tag}:{}:{}", e.partition, e.value)));
    (app, whoami)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_gets_the_reply_of_the_worker_that_owns_the_keys_partition() {
    let mock = mock().await;
    let (a, whoami) = tagged("ask-two", &mock, "a");
    let (b, _) = tagged("ask-two", &mock, "b");
    a.start().await.unwrap();
    b.start().await.unwrap(); // returns once the group split the partitions between a and b
    let pairs: Vec<(String, String)> = (0..20)
        .map(|i| (format!("key-{i}"), format!("v{i}")))
        .collect();
    let replies: Vec<(String, streams::Result<String>)> = whoami.kvmap(pairs).collect().await;
    let mut owners: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, reply) in replies {
        let reply = reply.unwrap();
        let [tag, partition, value] = reply.split(':').collect::<Vec<_>>()[..] else {
            panic!("{reply}");
        };
        assert_eq!(value, format!("v{}", &key[4..]));
        owners
            .entry(partition.to_owned())
            .or_default()
            .insert(tag.to_owned());
    }
    assert_eq!(owners.len(), 2, "both partitions were asked: {owners:?}");
    assert!(
        owners.values().all(|tags| tags.len() == 1),
        "one owner each: {owners:?}"
    );
    let tags: BTreeSet<_> = owners.values().flatten().cloned().collect();
    assert!(
        tags.contains("b"),
        "worker b answered worker a's requests: {owners:?}"
    );
    assert!(
        b.reply_topic().is_none(),
        "b never asked, so it has no reply topic"
    );
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_map_and_kvmap_get_every_reply() {
    let mock = mock().await;
    let app = app("ask-many", &mock);
    let words = app.topic::<String, String>("words");
    let echo = app.agent_builder("echo", &words).process(|stream| {
        stream.map(|e| format!("{}={}", e.key.clone().unwrap_or_default(), e.value))
    });
    app.start().await.unwrap();

    let values: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
    let joined = echo.join(values.clone()).await.unwrap();
    let expected: Vec<String> = values.iter().map(|v| format!("={v}")).collect();
    assert_eq!(joined, expected, "join keeps the input order");

    let mut mapped: Vec<String> = echo.map(values.clone()).map(|r| r.unwrap()).collect().await;
    mapped.sort();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(mapped, sorted, "map yields every reply");

    let pairs: Vec<(String, String)> = (0..30)
        .map(|i| (format!("k{i}"), format!("w{i}")))
        .collect();
    let replies: Vec<(String, streams::Result<String>)> = echo.kvmap(pairs).collect().await;
    assert_eq!(replies.len(), 30);
    for (key, reply) in replies {
        assert_eq!(
            reply.unwrap(),
            format!("{key}=w{}", &key[1..]),
            "kvmap sends each value with its key"
        );
    }
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_agent_yields_nothing_for_times_out() {
    let mock = mock().await;
    let app = mock_app("ask-timeout", &mock)
        .reply_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let numbers = app.topic::<String, i64>("numbers");
    let evens = app.agent_builder("evens", &numbers).process(|stream| {
        stream
            .map(|e| e.into_value())
            .filter(|n| std::future::ready(n % 2 == 0))
    });
    app.start().await.unwrap();
    let timeout = Duration::from_millis(300);
    let err = evens.ask_with_timeout(3, timeout).await.unwrap_err();
    assert!(
        matches!(&err, Error::ReplyTimeout { agent, timeout: t } if agent == "evens" && *t == timeout),
        "{err}"
    );
    let err = evens.ask(5).await.unwrap_err();
    assert!(
        matches!(&err, Error::ReplyTimeout { timeout: t, .. } if *t == Duration::from_millis(200)),
        "ask waits the app's reply_timeout: {err}"
    );
    let four = evens.ask_with_timeout(4, WAIT).await.unwrap();
    assert_eq!(four, 4, "the agent goes on");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_fails_on_a_request_tells_its_asker() {
    let mock = mock().await;
    let app = app("ask-fails", &mock);
    let numbers = app.topic::<String, i64>("numbers");
    let checked = app
        .agent_builder("checked", &numbers)
        .try_process(|stream| {
            stream.map(|n| match *n {
                13 => Err(format!("{} is unlucky", *n)),
                n => Ok(n),
            })
        });
    app.start().await.unwrap();
    assert_eq!(checked.ask(1).await.unwrap(), 1);
    // Well within the wait: the failure comes at once, not at the timeout.
    let err = checked.ask_with_timeout(13, WAIT).await.unwrap_err();
    assert!(
        matches!(&err, Error::AgentFailedRequest { agent, reason } if agent == "checked" && reason == "13 is unlucky"),
        "{err}"
    );
    let stopped = stopped_by_itself(&app).await.unwrap_err();
    assert!(matches!(stopped, Error::AgentFailed { .. }), "{stopped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_panics_on_a_request_tells_its_asker() {
    let mock = mock().await;
    let app = app("ask-panics", &mock);
    let numbers = app.topic::<String, i64>("numbers");
    let fragile = app.agent_builder("fragile", &numbers).process(|stream| {
        stream.map(|n| {
            assert!(*n != 7, "seven breaks me");
            *n
        })
    });
    app.start().await.unwrap();
    let err = fragile.ask_with_timeout(7, WAIT).await.unwrap_err();
    assert!(
        matches!(&err, Error::AgentFailedRequest { reason, .. } if reason.contains("seven breaks me")),
        "{err}"
    );
    assert!(stopped_by_itself(&app).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_is_not_the_asked_type_is_a_decode_error() {
    let mock = mock().await;
    let app = app("ask-decode", &mock);
    let words = app.topic::<String, String>("words");
    let echo = app
        .agent_builder("echo", &words)
        .process(|stream| stream.map(|e| e.into_value()));
    app.start().await.unwrap();
    let as_number = echo.with_reply_type::<u64>();
    let err = as_number.ask("not a number".to_owned()).await.unwrap_err();
    assert!(
        matches!(&err, Error::ReplyDecode { agent, .. } if agent == "echo"),
        "{err}"
    );
    assert_eq!(echo.ask("fine".to_owned()).await.unwrap(), "fine");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cast_reaches_the_agent_and_gets_no_reply() {
    let mock = mock().await;
    let app = app("ask-cast", &mock);
    let numbers = app.topic::<String, i64>("numbers");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let double = app
        .agent_builder("double", &numbers)
        .sink(Sink::func("seen", move |n: i64| s.lock().unwrap().push(n)))
        .process(|stream| stream.map(|n| *n * 2));
    app.start().await.unwrap();
    assert_eq!(double.ask(1).await.unwrap(), 2);
    double.cast(2).await.unwrap();
    wait_until("the cast value reached the agent", || {
        seen.lock().unwrap().contains(&4)
    })
    .await;
    assert_eq!(double.ask(3).await.unwrap(), 6);
    // Replies go in order of the requests: had the cast got one, it would be here.
    let topic = app.reply_topic().unwrap();
    assert_eq!(
        mock.records(&topic, 0).len(),
        2,
        "one reply per ask, none for the cast"
    );
    assert_eq!(*seen.lock().unwrap(), [2, 4, 6], "sinks get every result");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_what_cannot_answer_is_an_immediate_error() {
    let mock = mock().await;
    let (app, double) = doubler("ask-early", &mock);
    let err = double.ask(1).await.unwrap_err();
    assert!(matches!(err, Error::NotStarted), "{err}");
    let logs = app.topic::<String, String>("logs");
    let logger = app
        .agent_builder("logger", &logs)
        .run(|mut stream| async move { while stream.next().await.is_some() {} });
    app.start().await.unwrap();
    let err = logger.ask("hello".to_owned()).await.unwrap_err();
    assert!(
        matches!(&err, Error::AgentCannotReply { agent } if agent == "logger"),
        "{err}"
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_is_not_delivered_keeps_its_request_uncommitted() {
    let mock = mock().await;
    let id = "ask-undelivered";
    let (app, double) = doubler(id, &mock);
    app.start().await.unwrap();
    assert_eq!(double.ask(1).await.unwrap(), 2);
    app.commit().await.unwrap();
    assert_eq!(mock.committed_offset(id, "numbers", 0), Some(1));
    let topic = app.reply_topic().unwrap();
    mock.intercept(
        ApiKey::Produce,
        Intercept::error(KafkaCode::InvalidRecord)
            .for_partition(topic.as_str(), 0)
            .always(),
    );
    let err = double
        .ask_with_timeout(2, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReplyTimeout { .. }), "{err}");
    let stopped = stopped_by_itself(&app).await.unwrap_err();
    assert!(matches!(stopped, Error::Delivery { .. }), "{stopped}");
    assert_eq!(
        mock.committed_offset(id, "numbers", 0),
        Some(1),
        "the request whose reply was refused is not committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_works_under_exactly_once() {
    let mock = mock().await;
    let app = mock_app("ask-eos", &mock)
        .broker_commit_interval(Duration::from_millis(50))
        .processing_guarantee("exactly_once")
        .build()
        .unwrap();
    let numbers = app.topic::<String, i64>("numbers");
    let double = app
        .agent_builder("double", &numbers)
        .process(|stream| stream.map(|n| *n * 2));
    app.start().await.unwrap();
    // The reply is written in the agent's transaction and read once it commits.
    assert_eq!(double.join(vec![1, 2, 3]).await.unwrap(), [2, 4, 6]);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_may_answer_with_another_type_than_it_is_asked_with() {
    let mock = mock().await;
    let app = app("ask-yields", &mock);
    let words = app.topic::<String, String>("words");
    let lengths = Arc::new(Mutex::new(Vec::new()));
    let l = lengths.clone();
    let length = app
        .agent_builder("length", &words)
        .yields::<usize>()
        .sink(Sink::func("lengths", move |n: usize| {
            l.lock().unwrap().push(n)
        }))
        .process(|stream| stream.map(|w| w.len()));
    app.start().await.unwrap();
    assert_eq!(
        length.join(vec!["a".into(), "abc".into()]).await.unwrap(),
        [1, 3]
    );
    assert_eq!(*lengths.lock().unwrap(), [1, 3]);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_added_before_yields_are_refused_at_start() {
    let mock = mock().await;
    let app = app("ask-lost-sinks", &mock);
    let words = app.topic::<String, String>("words");
    app.agent_builder("length", &words)
        .sink(Sink::func("words-seen", |_: String| {}))
        .yields::<usize>()
        .process(|stream| stream.map(|w| w.len()));
    let err = app.start().await.unwrap_err();
    assert!(
        matches!(&err, Error::SinksBeforeYields { agent, sinks } if agent == "length" && sinks == &["words-seen"]),
        "{err}"
    );
}
