//! Any worker's web server answers for any key: two workers of one app on the mock cluster,
//! each with its web server on a free port and advertising it (no `application_server`
//! given). A key the other worker owns is forwarded there and its answer relayed, or
//! redirected with `?redirect=1`; `/router/` matches the assignment, with and without tables;
//! table routes run on the key's owner; an owner that is down is a 503 naming it, in time.
//! Requests are written on raw TCP sockets (HTTP/1.1, one per connection).

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::response::IntoResponse;
use futures::StreamExt;
use streams::{App, Endpoint, Error, KeyFrom, PartitionStatus, Table};
use testkit::MockCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use common::{wait_until, WAIT};

const PARTITIONS: i32 = 4;

/// A status, the head's lines and a body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// GET `path` with `headers` (each ending in CRLF) on a new connection.
async fn get_with(address: SocketAddr, path: &str, headers: &str) -> Answer {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut bytes))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

async fn get(address: SocketAddr, path: &str) -> Answer {
    get_with(address, path, "").await
}

/// A started worker: an agent sums amounts per key into table `counts`; table `n` has JSON
/// keys; table routes `/count/{key}` and `/count?key=` answer a key's sum and who served it.
struct Worker {
    app: App,
    counts: Table<String, i64>,
    address: SocketAddr,
    endpoint: Endpoint,
}

async fn worker(id: &str, mock: &MockCluster, session: Duration) -> Worker {
    worker_with(id, mock, session, |b| b).await
}

/// [`worker`] with more settings.
async fn worker_with(
    id: &str,
    mock: &MockCluster,
    session: Duration,
    settings: impl FnOnce(streams::AppBuilder) -> streams::AppBuilder,
) -> Worker {
    let builder = App::builder(id)
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .topic_partitions(PARTITIONS)
        .web_enabled(true)
        .web_port(0)
        .producer_linger(Duration::from_millis(1))
        .broker_commit_interval(Duration::from_millis(100))
        .broker_session_timeout(session)
        .broker_heartbeat_interval(session / 5)
        .broker_rebalance_timeout(session * 2);
    let app = settings(builder).build().unwrap();
    let amounts = app.topic::<String, i64>("amounts");
    let counts = app
        .table::<String, i64>("counts")
        .unwrap()
        .with_default(i64::default);
    let _numbers = app
        .table_builder::<u32, u64>("n")
        .key_serializer("json")
        .build()
        .unwrap();
    let table = counts.clone();
    app.agent_builder("sum", &amounts)
        .table(&counts)
        .run(move |mut events| {
            let table = table.clone();
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    table.update(&key, |n| *n += e.value)?;
                }
                Ok::<(), Error>(())
            }
        });
    // Which worker served a table route: its endpoint, known once it started.
    let me: Arc<OnceLock<String>> = Arc::default();
    for (path, key) in [
        ("/count/{key}", KeyFrom::Path("key")),
        ("/count", KeyFrom::Query("key")),
    ] {
        let (table, me) = (counts.clone(), me.clone());
        app.table_route(&counts, path, key, move |_request, key: String| {
            let value = table.get(&key).unwrap();
            let served_by = me.get().cloned();
            async move {
                axum::Json(serde_json::json!({"key": key, "value": value, "served_by": served_by}))
                    .into_response()
            }
        })
        .unwrap();
    }
    app.start().await.unwrap();
    // A worker without a web server has no address: the tests only ask the others.
    let address = app
        .web_address()
        .unwrap_or_else(|| "127.0.0.1:9".parse().unwrap());
    let endpoint = app
        .application_server()
        .unwrap_or_else(|| "nowhere:9".parse().unwrap());
    let _ = me.set(endpoint.to_string());
    Worker {
        app,
        counts,
        address,
        endpoint,
    }
}

fn active(app: &App) -> BTreeSet<i32> {
    app.table_partitions()
        .unwrap()
        .iter()
        .filter(|p| p.table == "counts" && p.status == PartitionStatus::Active)
        .map(|p| p.partition)
        .collect()
}

/// Waits until the two workers split the partitions and both routers say so.
async fn settled(a: &Worker, b: &Worker) {
    wait_until(
        "both workers own partitions and their routers agree",
        || {
            let (aa, ab) = (active(&a.app), active(&b.app));
            let router = a.app.router();
            let Some(table) = router.tables.get("counts") else {
                return false;
            };
            !aa.is_empty()
                && !ab.is_empty()
                && aa.len() + ab.len() == PARTITIONS as usize
                && router == b.app.router()
                && table.len() == PARTITIONS as usize
                && table.iter().all(|o| {
                    let owner = if aa.contains(&o.partition) { a } else { b };
                    o.active.as_ref() == Some(&owner.endpoint)
                })
        },
    )
    .await;
}

async fn mock() -> MockCluster {
    MockCluster::builder()
        .default_partitions(PARTITIONS)
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap()
}

/// A key of `table` whose partition is in `partitions`.
fn key_in(table: &Table<String, i64>, prefix: &str, partitions: &BTreeSet<i32>) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|k| partitions.contains(&table.partition_of(k).unwrap()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_worker_answers_for_any_key_by_forwarding_or_redirecting() {
    let mock = mock().await;
    let id = testkit::unique_name("routing");
    let a = worker(&id, &mock, common::MOCK_SESSION).await;
    let b = worker(&id, &mock, common::MOCK_SESSION).await;
    // The advertised endpoint is the web server's: the bind address and the port it got.
    for w in [&a, &b] {
        assert_eq!(w.endpoint.to_string(), w.address.to_string());
    }
    settled(&a, &b).await;
    let amounts = a.app.topic::<String, i64>("amounts");
    let keys: Vec<String> = (0..12).map(|k| format!("key-{k}")).collect();
    for (i, k) in keys.iter().enumerate() {
        amounts.send(k.clone(), i as i64 + 1).await.unwrap();
    }
    a.app.wait_caught_up(WAIT).await.unwrap();
    b.app.wait_caught_up(WAIT).await.unwrap();
    settled(&a, &b).await;

    // /router/ on each worker is the router, which matches the assignment (settled).
    let router = serde_json::to_value(a.app.router()).unwrap();
    for w in [&a, &b] {
        let answer = get(w.address, "/router/").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json(), router);
    }
    assert_eq!(
        router["topics"]["amounts"].as_array().unwrap().len(),
        PARTITIONS as usize
    );

    // Every key through either worker: its value, from its owner.
    let (owned_a, owned_b) = (active(&a.app), active(&b.app));
    let mut owners = BTreeSet::new();
    for (i, k) in keys.iter().enumerate() {
        owners.insert(owned_a.contains(&a.counts.partition_of(k).unwrap()));
        for w in [&a, &b] {
            let answer = get(w.address, &format!("/table/counts/{k}/")).await;
            assert_eq!(answer.status, 200, "{k}: {}", answer.body);
            assert_eq!(answer.json()["value"], i as i64 + 1, "{k}: {}", answer.body);
            assert_eq!(answer.header("content-type"), Some("application/json"));
        }
    }
    assert_eq!(owners.len(), 2, "keys of both workers were asked");

    // ?redirect=1 (or true): 307 to the owner's URL for the same path; following it answers.
    let key_b = key_in(&a.counts, "key", &owned_b);
    let key_a = key_in(&a.counts, "key", &owned_a);
    let path = format!("/table/counts/{key_b}/");
    for flag in ["1", "true"] {
        let answer = get(a.address, &format!("{path}?redirect={flag}")).await;
        assert_eq!(answer.status, 307, "{}", answer.body);
        let location = answer.header("location").unwrap().to_owned();
        assert_eq!(location, format!("http://{}{path}", b.endpoint));
        let (host_port, followed_path) = location
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
            .unwrap();
        let followed = get(host_port.parse().unwrap(), &format!("/{followed_path}")).await;
        assert_eq!(followed.status, 200, "{}", followed.body);
        assert!(followed.json()["value"].is_i64(), "{}", followed.body);
    }
    let here = get(a.address, &format!("/table/counts/{key_a}/?redirect=1")).await;
    assert_eq!(
        here.status, 200,
        "a key owned here is answered here: {}",
        here.body
    );

    // 404: an unknown table, a key without a value here and on the other worker.
    let unknown = get(b.address, "/table/nope/x/").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.body.contains("nope"), "{}", unknown.body);
    for partitions in [&owned_a, &owned_b] {
        let absent = key_in(&a.counts, "absent", partitions);
        let answer = get(a.address, &format!("/table/counts/{absent}/")).await;
        assert_eq!(answer.status, 404, "{absent}: {}", answer.body);
    }
    // 400 naming the codec, for a key that does not decode (here or elsewhere).
    let undecodable = get(b.address, "/table/n/abc/").await;
    assert_eq!(undecodable.status, 400, "{}", undecodable.body);
    assert!(
        undecodable.body.contains("\\\"json\\\""),
        "{}",
        undecodable.body
    );

    // A forwarded request for a partition not served here is not forwarded again.
    let looped = get_with(a.address, &path, "streams-forwarded: 1\r\n").await;
    assert_eq!(looped.status, 503, "{}", looped.body);
    assert!(looped.body.contains("out of date"), "{}", looped.body);

    // Table routes: the handler runs on the key's owner, from the path or the query.
    for (key, owner) in [(&key_b, &b), (&key_a, &a)] {
        for path in [format!("/count/{key}"), format!("/count?key={key}")] {
            let answer = get(a.address, &path).await;
            assert_eq!(answer.status, 200, "{path}: {}", answer.body);
            let json = answer.json();
            assert_eq!(json["served_by"], owner.endpoint.to_string(), "{path}");
            assert_eq!(json["key"], key.as_str(), "{path}");
            assert!(json["value"].is_i64(), "{path}: {json}");
        }
    }
    let redirected = get(a.address, &format!("/count?key={key_b}&redirect=1")).await;
    assert_eq!(redirected.status, 307, "{}", redirected.body);
    assert_eq!(
        redirected.header("location"),
        Some(format!("http://{}/count?key={key_b}", b.endpoint).as_str())
    );
    let missing = get(a.address, "/count").await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert!(missing.body.contains("key="), "{}", missing.body);

    a.app.shutdown().await.unwrap();
    b.app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_whose_web_server_is_gone_is_a_503_naming_it_in_time() {
    let mock = mock().await;
    let id = testkit::unique_name("routing-down");
    // Long sessions: the killed worker keeps its partitions while the requests are made.
    let session = Duration::from_secs(20);
    let a = worker(&id, &mock, session).await;
    let b = worker(&id, &mock, session).await;
    settled(&a, &b).await;
    let key_b = key_in(&a.counts, "key", &active(&b.app));
    b.app.abort().await;
    for path in [format!("/table/counts/{key_b}/"), format!("/count/{key_b}")] {
        let started = tokio::time::Instant::now();
        let answer = get(a.address, &path).await;
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{path}: answered after {:?}",
            started.elapsed()
        );
        assert_eq!(answer.status, 503, "{path}: {}", answer.body);
        let json = answer.json();
        assert_eq!(json["owner"], b.endpoint.to_string(), "{json}");
        assert!(
            json["error"]
                .as_str()
                .unwrap()
                .contains(&b.endpoint.to_string()),
            "{json}"
        );
    }
    a.app.shutdown().await.unwrap();
}

/// Starts a worker with its web server and another with `settings`, and waits until they split
/// the partitions and the first's router names the second's as `expected`.
async fn pair(
    mock: &MockCluster,
    name: &str,
    settings: impl FnOnce(streams::AppBuilder) -> streams::AppBuilder,
    expected: Option<Endpoint>,
) -> (Worker, Worker) {
    let id = testkit::unique_name(name);
    let a = worker(&id, mock, common::MOCK_SESSION).await;
    let b = worker_with(&id, mock, common::MOCK_SESSION, settings).await;
    wait_until("both workers own partitions and a's router says so", || {
        let (aa, ab) = (active(&a.app), active(&b.app));
        let router = a.app.router();
        let Some(table) = router.tables.get("counts") else {
            return false;
        };
        !aa.is_empty()
            && !ab.is_empty()
            && aa.len() + ab.len() == PARTITIONS as usize
            && table.len() == PARTITIONS as usize
            && table.iter().all(|o| {
                if aa.contains(&o.partition) {
                    o.active.as_ref() == Some(&a.endpoint)
                } else {
                    o.active == expected
                }
            })
    })
    .await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_without_an_endpoint_or_silent_is_a_503_saying_why() {
    let mock = mock().await;
    // b has no web server and no application_server: it advertises nothing.
    let (a, b) = pair(&mock, "routing-none", |b| b.web_enabled(false), None).await;
    assert_eq!(b.app.application_server(), None);
    let key_b = key_in(&a.counts, "key", &active(&b.app));
    let answer = get(a.address, &format!("/table/counts/{key_b}/")).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        answer.body.contains("advertises no web server"),
        "{}",
        answer.body
    );
    a.app.shutdown().await.unwrap();
    b.app.shutdown().await.unwrap();

    // c advertises a listener that accepts and never answers, which wins over its web server.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_end: Endpoint = silent.local_addr().unwrap().to_string().parse().unwrap();
    let hang = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let text = silent_end.to_string();
    let explicit = |b: streams::AppBuilder| b.application_server(&text);
    let (a, c) = pair(&mock, "routing-silent", explicit, Some(silent_end.clone())).await;
    assert_eq!(c.app.application_server(), Some(silent_end.clone()));
    assert_ne!(c.endpoint.to_string(), c.address.to_string());
    let key_c = key_in(&a.counts, "key", &active(&c.app));
    let started = tokio::time::Instant::now();
    let answer = get(a.address, &format!("/count/{key_c}")).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.json()["owner"], text, "{}", answer.body);
    assert!(answer.body.contains("no answer within"), "{}", answer.body);
    assert!(took < Duration::from_secs(8), "answered after {took:?}");
    hang.abort();
    a.app.shutdown().await.unwrap();
    c.app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_of_an_app_without_tables_names_each_partitions_worker() {
    let mock = mock().await;
    let id = testkit::unique_name("routing-stateless");
    let start = |tx: mpsc::UnboundedSender<(usize, i32)>, me: usize| {
        let app = App::builder(&id)
            .broker(&format!("kafka://{}", mock.bootstrap()))
            .topic_partitions(PARTITIONS)
            .web_enabled(true)
            .web_port(0)
            .producer_linger(Duration::from_millis(1))
            .broker_session_timeout(common::MOCK_SESSION)
            .broker_heartbeat_interval(common::MOCK_SESSION / 5)
            .broker_rebalance_timeout(common::MOCK_SESSION * 2)
            .build()
            .unwrap();
        let events = app.topic::<String, String>("events");
        app.agent(&events, move |mut events| {
            let tx = tx.clone();
            async move {
                while let Some(e) = events.next().await {
                    let _ = tx.send((me, e.partition));
                }
            }
        });
        app
    };
    let (tx, mut seen) = mpsc::unbounded_channel();
    let workers = [start(tx.clone(), 0), start(tx, 1)];
    for w in &workers {
        w.start().await.unwrap();
    }
    let endpoints: Vec<Endpoint> = workers
        .iter()
        .map(|w| w.application_server().unwrap())
        .collect();
    wait_until("both workers routed, and the routers agree", || {
        let router = workers[0].router();
        let Some(partitions) = router.topics.get("events") else {
            return false;
        };
        let holders: BTreeSet<_> = partitions.iter().filter_map(|o| o.active.clone()).collect();
        router == workers[1].router()
            && partitions.len() == PARTITIONS as usize
            && partitions.iter().all(|o| o.active.is_some())
            && holders.len() == 2
    })
    .await;
    let router = workers[0].router();
    assert!(router.tables.is_empty());
    for w in &workers {
        let answer = get(w.web_address().unwrap(), "/router/").await;
        assert_eq!(answer.json(), serde_json::to_value(&router).unwrap());
    }
    // The partitions each worker's agent reads are those the router names it for.
    let events = workers[0].topic::<String, String>("events");
    let sent = 40;
    for k in 0..sent {
        events.send(format!("k-{k}"), "x".to_owned()).await.unwrap();
    }
    let mut read = vec![BTreeSet::new(), BTreeSet::new()];
    for _ in 0..sent {
        let (me, partition) = tokio::time::timeout(WAIT, seen.recv())
            .await
            .expect("every event is read")
            .unwrap();
        read[me].insert(partition);
    }
    for (me, partitions) in read.iter().enumerate() {
        for p in partitions {
            let owner = router
                .topic_partition("events", *p)
                .and_then(|o| o.active.clone());
            assert_eq!(owner.as_ref(), Some(&endpoints[me]), "partition {p}");
        }
    }
    assert_eq!(
        read[0].len() + read[1].len(),
        PARTITIONS as usize,
        "{read:?}"
    );
    for w in &workers {
        w.shutdown().await.unwrap();
    }
}

#[test]
fn table_routes_with_a_missing_capture_or_a_conflicting_path_are_refused() {
    let app = App::builder("routes").build().unwrap();
    let counts = app.table::<String, i64>("counts").unwrap();
    let handler = |_: axum::extract::Request, _key: String| async { "x".into_response() };
    app.table_route(&counts, "/c/{key}", KeyFrom::Path("key"), handler)
        .unwrap();
    for (path, key) in [
        ("/d/{id}", KeyFrom::Path("key")),      // no {key}
        ("/c/{other}", KeyFrom::Path("other")), // conflicts with /c/{key}
        ("/c/{key}", KeyFrom::Path("key")),     // taken
        ("/table/{key}", KeyFrom::Path("key")), // the server's own
        ("/e/x{key}", KeyFrom::Path("key")),    // not a whole segment
        ("/f/{*rest}", KeyFrom::Query("k")),    // a wildcard
    ] {
        let err = app.table_route(&counts, path, key, handler).unwrap_err();
        assert!(matches!(err, Error::WebPage { .. }), "{path}: {err}");
    }
    app.table_route(&counts, "/c", KeyFrom::Query("key"), handler)
        .unwrap();
    let err = app
        .page("/c", |_: axum::extract::Request| async {
            "x".into_response()
        })
        .unwrap_err();
    assert!(err.to_string().contains("already registered"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_server_answers_health_while_the_worker_joins() {
    let mock = mock().await;
    // The first join is answered late: the worker is joining for that long.
    mock.intercept(
        testkit::ApiKey::JoinGroup,
        testkit::Intercept::delay(Duration::from_secs(3)).times(1),
    );
    let app = App::builder(&testkit::unique_name("routing-join"))
        .broker(&format!("kafka://{}", mock.bootstrap()))
        .topic_partitions(PARTITIONS)
        .web_enabled(true)
        .web_port(0)
        .build()
        .unwrap();
    let events = app.topic::<String, String>("events");
    app.agent(&events, |mut events| async move {
        while events.next().await.is_some() {}
    });
    let starting = tokio::spawn({
        let app = app.clone();
        async move { app.start().await }
    });
    let mut address = None;
    wait_until("the web server listens", || {
        address = app.web_address();
        address.is_some()
    })
    .await;
    let address = address.unwrap();
    let health = get(address, "/health").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    for path in ["/ready", "/router/", "/table/x/y/"] {
        let answer = get(address, path).await;
        assert_eq!(answer.status, 503, "{path}: {}", answer.body);
        assert!(answer.body.contains("joining"), "{path}: {}", answer.body);
    }
    starting.await.unwrap().unwrap();
    let router = get(address, "/router/").await;
    assert_eq!(router.status, 200, "{}", router.body);
    app.shutdown().await.unwrap();
}
