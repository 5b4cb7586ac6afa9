//! The worker's web server on the mock cluster: health and readiness, a table's entries and
//! keys as JSON (404 and 400 where due), the HTML overview, an app page, a busy port as a
//! start error, and malformed requests that leave the server answering and events flowing.
//! Requests are written on raw TCP sockets (HTTP/1.1, one per connection).

use std::net::SocketAddr;
use std::time::Duration;

use axum::response::IntoResponse;
use futures::StreamExt;
use streams::{App, Error, Table};
use testkit::{ApiKey, Intercept, MockCluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

/// A status and a body.
struct Answer {
    status: u16,
    body: String,
}

/// Writes `request` as is on a new connection and reads the answer until the server closes.
async fn raw(address: SocketAddr, request: &[u8]) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(request).await?;
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut bytes))
        .await
        .map_err(|_| std::io::Error::other("no answer in time"))??;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Ok(Answer { status, body })
}

/// GET `path`.
async fn get(address: SocketAddr, path: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    raw(address, request.as_bytes()).await.unwrap()
}

/// A running worker with its web server on a free port: an agent counts words into table
/// `t` and reports each count.
struct Worker {
    app: App,
    words: streams::Topic<String, String>,
    counted: mpsc::UnboundedReceiver<u64>,
    address: SocketAddr,
}

async fn cluster() -> MockCluster {
    MockCluster::builder()
        .default_partitions(2)
        .build()
        .await
        .unwrap()
}

/// Worker of app `id` on `cluster`, started.
async fn worker(cluster: &MockCluster, id: &str) -> Worker {
    let app = App::builder(id)
        .broker(&format!("kafka://{}", cluster.bootstrap()))
        .topic_partitions(2)
        .web_enabled(true)
        .web_port(0)
        .build()
        .unwrap();
    let words = app.topic::<String, String>("words");
    let counts: Table<String, u64> = app.table("t").unwrap().with_default(u64::default);
    // Keys in JSON: a key that is not a number does not decode.
    let _numbers = app
        .table_builder::<u32, u64>("n")
        .key_serializer("json")
        .build()
        .unwrap();
    let (done, counted) = mpsc::unbounded_channel();
    let table = counts.clone();
    app.agent_builder("count-words", &words)
        .table(&counts)
        .run(move |mut words| {
            let (table, done) = (table.clone(), done.clone());
            async move {
                while let Some(word) = words.next().await {
                    let n = table.update(&*word, |n| *n += 1)?;
                    let _ = done.send(n);
                }
                Ok::<(), Error>(())
            }
        });
    app.page("/hello", |request: axum::extract::Request| async move {
        format!("hello from {}", request.uri().path()).into_response()
    })
    .unwrap();
    app.start().await.unwrap();
    let address = app.web_address().expect("the web server runs");
    Worker {
        app,
        words,
        counted,
        address,
    }
}

impl Worker {
    /// Sends `word` keyed by itself and waits until the agent counted it.
    async fn count(&mut self, word: &str) -> u64 {
        self.words
            .send(word.to_owned(), word.to_owned())
            .await
            .unwrap();
        tokio::time::timeout(WAIT, self.counted.recv())
            .await
            .expect("the agent counts the word")
            .unwrap()
    }

    /// Waits until `/ready` says 200.
    async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let answer = get(self.address, "/ready").await;
            if answer.status == 200 {
                return;
            }
            assert_eq!(answer.status, 503, "{}", answer.body);
            assert!(
                answer.body.contains("recovering") || answer.body.contains("joining"),
                "{}",
                answer.body
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "never ready: {}",
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_tables_overview_and_pages() {
    let cluster = cluster().await;
    let mut w = worker(&cluster, &testkit::unique_name("web")).await;
    let health = get(w.address, "/health").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    w.ready().await;
    for word in ["ann", "bob", "ann"] {
        w.count(word).await;
    }

    let listed = get(w.address, "/table/t/").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(
        items,
        &vec![
            serde_json::json!({"key": "ann", "value": 2}),
            serde_json::json!({"key": "bob", "value": 1}),
        ]
    );
    let first = get(w.address, "/table/t/?limit=1").await;
    let first: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert_eq!(first["next"], "ann");
    let rest = get(w.address, "/table/t/?limit=1&after=ann").await;
    let rest: serde_json::Value = serde_json::from_str(&rest.body).unwrap();
    assert_eq!(rest["items"][0]["key"], "bob");
    assert_eq!(rest["next"], serde_json::Value::Null);

    let ann = get(w.address, "/table/t/ann/").await;
    assert_eq!(ann.status, 200, "{}", ann.body);
    let ann: serde_json::Value = serde_json::from_str(&ann.body).unwrap();
    assert_eq!(
        (ann["key"].clone(), ann["value"].clone()),
        ("ann".into(), 2.into())
    );
    // ?partition=N: that partition's entries only (the CLI's `tables --partition` beside a
    // worker); a partition not active here is 421, a bad number 400.
    let mut seen = 0;
    for p in 0..2 {
        let page = get(w.address, &format!("/table/t/?partition={p}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page: serde_json::Value = serde_json::from_str(&page.body).unwrap();
        assert_eq!(page["partitions"], serde_json::json!([p]));
        let items = page["items"].as_array().unwrap();
        let has_ann = items.iter().any(|i| i["key"] == "ann");
        assert_eq!(has_ann, ann["partition"] == p, "{page}");
        seen += items.len();
    }
    assert_eq!(seen, 2);
    assert_eq!(get(w.address, "/table/t/?partition=7").await.status, 421);
    assert_eq!(get(w.address, "/table/t/?partition=x").await.status, 400);

    // /metrics: the Prometheus exposition, parsed; the three events are counted.
    let metrics = get(w.address, "/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let scrape =
        prometheus_parse::Scrape::parse(metrics.body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let events_in: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "streams_events_in_total")
        .map(|s| match s.value {
            // The parser reads OpenMetrics counters (`# TYPE x counter`, samples `x_total`)
            // as untyped.
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("not a single value: {other:?}"),
        })
        .sum();
    assert_eq!(events_in, 3.0, "{}", metrics.body);

    // /router/: every partition of table t, as the assignment gave them (all to this worker,
    // which advertises no endpoint).
    let router = get(w.address, "/router/").await;
    assert_eq!(router.status, 200, "{}", router.body);
    let router: serde_json::Value = serde_json::from_str(&router.body).unwrap();
    let partitions = router["tables"]["t"].as_array().expect("table t routed");
    let numbers: Vec<i64> = partitions
        .iter()
        .map(|p| p["partition"].as_i64().unwrap())
        .collect();
    let owned: Vec<i64> = w
        .app
        .table_partitions()
        .unwrap()
        .into_iter()
        .filter(|p| p.table == "t")
        .map(|p| i64::from(p.partition))
        .collect();
    assert_eq!(numbers, owned, "{router}");

    let missing = get(w.address, "/table/t/zed/").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let unknown = get(w.address, "/table/nope/").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.body.contains("nope"), "{}", unknown.body);
    let undecodable = get(w.address, "/table/n/abc/").await;
    assert_eq!(undecodable.status, 400, "{}", undecodable.body);
    assert!(
        undecodable.body.contains("\\\"json\\\""),
        "{}",
        undecodable.body
    );

    let overview = get(w.address, "/").await;
    assert_eq!(overview.status, 200);
    for name in ["count-words", "words", "t", "n", "active"] {
        assert!(
            overview.body.contains(&format!("<td>{name}</td>")),
            "{name}: {}",
            overview.body
        );
    }
    let page = get(w.address, "/hello").await;
    assert_eq!(
        (page.status, page.body.as_str()),
        (200, "hello from /hello")
    );
    assert_eq!(get(w.address, "/no/such/page").await.status, 404);

    w.app.shutdown().await.unwrap();
    assert!(
        TcpStream::connect(w.address).await.is_err(),
        "the server stops with the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_leave_the_server_answering_and_events_flowing() {
    let cluster = cluster().await;
    let mut w = worker(&cluster, &testkit::unique_name("web")).await;
    w.ready().await;
    let big_header = format!(
        "GET /health HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    for i in 0..200 {
        let request = match i % 5 {
            0 => {
                format!("GET /../../etc/passwd{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            }
            1 => format!("NOT HTTP AT ALL {i}\r\n\r\n"),
            2 => big_header.clone(),
            3 => {
                format!("GET /table/t/%ff%fe{i}/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            }
            _ => "GET /health HTTP/1.1\r\nContent-Length: nope\r\n\r\n".to_owned(),
        };
        // The server may close without answering, or answer 4xx: never 2xx or 5xx.
        if let Ok(answer) = raw(w.address, request.as_bytes()).await {
            assert!(
                answer.status == 0 || (400..500).contains(&answer.status),
                "request {i}: {} {}",
                answer.status,
                answer.body
            );
            if i % 5 == 2 {
                assert_eq!(answer.status, 431, "a 100 kB header is refused");
            }
        }
    }
    assert_eq!(get(w.address, "/health").await.status, 200);
    assert_eq!(w.count("after").await, 1, "events still flow");
    w.app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_is_a_start_error_naming_the_address() {
    let cluster = MockCluster::builder().build().await.unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let app = App::builder(&testkit::unique_name("web-busy"))
        .broker(&format!("kafka://{}", cluster.bootstrap()))
        .web_enabled(true)
        .web_port(port)
        .build()
        .unwrap();
    let topic = app.topic::<String, String>("in");
    app.agent(
        &topic,
        |mut s| async move { while s.next().await.is_some() {} },
    );
    let err = app.start().await.unwrap_err();
    assert!(matches!(err, Error::WebBind { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.to_string().contains("--web-port"), "{err}");
}

#[tokio::test]
async fn pages_at_the_servers_own_paths_or_with_captures_are_refused() {
    let app = App::builder("pages").build().unwrap();
    let page = |_: axum::extract::Request| async { "x".into_response() };
    for path in ["/health", "/table/x", "/", "no-slash", "/a/{b}", "/a*"] {
        let err = app.page(path, page).unwrap_err();
        assert!(matches!(err, Error::WebPage { .. }), "{path}: {err}");
    }
    app.page("/ok", page).unwrap();
    let err = app.page("/ok", page).unwrap_err();
    assert!(err.to_string().contains("already registered"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_naming_a_recovering_partition_then_200() {
    let cluster = cluster().await;
    let id = testkit::unique_name("web-ready");
    let mut w = worker(&cluster, &id).await;
    w.ready().await;
    w.count("ann").await;
    w.count("ann").await;
    w.app.commit().await.unwrap();
    w.app.shutdown().await.unwrap();
    drop(w);

    // A new worker with an empty memory store replays the changelog; ann's partition's first
    // changelog fetch is held back, so that it stays recovering for a while.
    let partition = kafka_client::producer::partitioner::partition_for_key(b"ann", 2);
    cluster.intercept(
        ApiKey::Fetch,
        Intercept::delay(Duration::from_secs(3))
            .for_partition(format!("{id}-t-changelog"), partition)
            .times(1),
    );
    let w = worker(&cluster, &id).await;
    let answer = get(w.address, "/ready").await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert!(
        body["recovering"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"table": "t", "partition": partition})),
        "{body}"
    );
    let key = get(w.address, "/table/t/ann/").await;
    assert_eq!(
        key.status, 503,
        "a recovering partition is not read: {}",
        key.body
    );
    w.ready().await;
    let ann = get(w.address, "/table/t/ann/").await;
    assert_eq!(ann.status, 200, "{}", ann.body);
    assert!(ann.body.contains("\"value\":2"), "{}", ann.body);
    w.app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_lists_an_agent_failure_that_restarted_the_worker() {
    let cluster = cluster().await;
    let app = App::builder(&testkit::unique_name("web-errors"))
        .broker(&format!("kafka://{}", cluster.bootstrap()))
        .topic_partitions(2)
        .restart_failed_agents(1)
        .web_enabled(true)
        .web_port(0)
        .build()
        .unwrap();
    let words = app.topic::<String, String>("words");
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done, mut seen) = mpsc::unbounded_channel();
    app.agent_builder("fragile", &words).run(move |mut words| {
        let (failed, done) = (failed.clone(), done.clone());
        async move {
            while let Some(word) = words.next().await {
                if !failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    return Err(Error::Demo {
                        source: format!("cannot <handle> {}", *word).into(),
                    });
                }
                let _ = done.send(word.to_string());
            }
            Ok::<(), Error>(())
        }
    });
    app.start().await.unwrap();
    let address = app.web_address().unwrap();
    words.send("w".to_owned(), "boom".to_owned()).await.unwrap();
    // After the restart the event is read again and handled.
    let again = tokio::time::timeout(WAIT, seen.recv()).await.unwrap();
    assert_eq!(again.as_deref(), Some("boom"));
    let overview = get(address, "/").await;
    assert!(overview.body.contains("Recent errors"), "{}", overview.body);
    assert!(
        overview.body.contains("cannot &lt;handle&gt; boom"),
        "the error, escaped: {}",
        overview.body
    );
    app.shutdown().await.unwrap();
}
