//! Two workers of one app learn from the group who owns which partition (the router), and
//! `App::query` reads a key here or asks its owner over HTTP. The owner's side is a tiny
//! HTTP server in this test serving `/table/<name>/<key>/` in the agreed format from the
//! owner's table (the real web server lives on another branch).

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use streams::{App, Endpoint, Error, Owner, PartitionStatus, QueryOptions, Table};
use testkit::{ApiKey, Intercept, KafkaCode, MockCluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PARTITIONS: i32 = 4;
const WAIT: Duration = Duration::from_secs(30);
const SESSION: Duration = Duration::from_millis(1500);

fn worker(id: &str, bootstrap: &str, endpoint: &Endpoint) -> (App, Table<String, i64>) {
    let app = App::builder(id)
        .broker(&format!("kafka://{bootstrap}"))
        .topic_partitions(PARTITIONS)
        .table_standby_replicas(1)
        .application_server(&endpoint.to_string())
        .producer_linger(Duration::from_millis(1))
        .broker_commit_interval(Duration::from_millis(100))
        .broker_session_timeout(SESSION)
        .broker_heartbeat_interval(SESSION / 5)
        .broker_rebalance_timeout(SESSION * 2)
        .build()
        .unwrap();
    let amounts = app.topic::<String, i64>("amounts");
    let counts = app
        .table::<String, i64>("counts")
        .unwrap()
        .with_default(i64::default);
    let table = counts.clone();
    app.agent_builder("count", &amounts)
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
    (app, counts)
}

/// Serves `GET /table/counts/<key>/` from `table`: `{"key": k, "value": v}`, or 404.
async fn serve(listener: TcpListener, table: Table<String, i64>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let table = table.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request);
            let path = line.split(' ').nth(1).unwrap_or_default();
            let key = path
                .strip_prefix("/table/counts/")
                .and_then(|k| k.strip_suffix('/'))
                .unwrap_or_default()
                .to_owned();
            let (status, body) = match table.get(&key) {
                Ok(Some(v)) => (
                    "200 OK",
                    serde_json::json!({"key": key, "value": v}).to_string(),
                ),
                _ => ("404 Not Found", "{\"error\":\"no such key\"}".to_owned()),
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        });
    }
}

/// Accepts connections and never answers: a hung peer.
async fn hang(listener: TcpListener) {
    let mut held = Vec::new();
    while let Ok((stream, _)) = listener.accept().await {
        held.push(stream);
    }
}

async fn listener() -> (TcpListener, Endpoint) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap().to_string().parse().unwrap();
    (listener, endpoint)
}

fn active(app: &App) -> BTreeSet<i32> {
    app.table_partitions()
        .unwrap()
        .iter()
        .filter(|p| p.status == PartitionStatus::Active)
        .map(|p| p.partition)
        .collect()
}

fn standby(app: &App) -> BTreeSet<i32> {
    app.table_partitions()
        .unwrap()
        .iter()
        .filter(|p| p.status == PartitionStatus::Standby)
        .map(|p| p.partition)
        .collect()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A key of `table` whose partition is in `partitions`.
fn key_in(table: &Table<String, i64>, prefix: &str, partitions: &BTreeSet<i32>) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|k| partitions.contains(&table.partition_of(k).unwrap()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_a_router_and_query_the_owner_of_a_key() {
    let mock = MockCluster::builder()
        .default_partitions(PARTITIONS)
        .group_min_session_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let id = format!("router-{}", std::process::id());
    // a's endpoint hangs (accepts, never answers); b's serves b's table.
    let (hung, a_end) = listener().await;
    let (served, b_end) = listener().await;
    let (a, counts_a) = worker(&id, &mock.bootstrap(), &a_end);
    let (b, counts_b) = worker(&id, &mock.bootstrap(), &b_end);
    let hung = tokio::spawn(hang(hung));
    let server = tokio::spawn(serve(served, counts_b.clone()));
    a.start().await.unwrap();
    b.start().await.unwrap();
    wait_until("both workers active, each a standby of the other", || {
        let (aa, ab) = (active(&a), active(&b));
        !aa.is_empty()
            && !ab.is_empty()
            && aa.len() + ab.len() == PARTITIONS as usize
            && standby(&a) == ab
            && standby(&b) == aa
    })
    .await;
    let amounts = a.topic::<String, i64>("amounts");
    let keys: Vec<String> = (0..12).map(|k| format!("key-{k}")).collect();
    for k in &keys {
        amounts.send(k.clone(), 5).await.unwrap();
    }
    a.wait_caught_up(WAIT).await.unwrap();
    b.wait_caught_up(WAIT).await.unwrap();

    // Both routers agree, and match the actual assignment.
    wait_until("the routers agree", || a.router() == b.router()).await;
    let router = a.router();
    let (owned_a, owned_b) = (active(&a), active(&b));
    let table = &router.tables["counts"];
    assert_eq!(table.len(), PARTITIONS as usize, "{router:?}");
    for owners in table {
        let (owner, other) = if owned_a.contains(&owners.partition) {
            (&a_end, &b_end)
        } else {
            assert!(owned_b.contains(&owners.partition), "{router:?}");
            (&b_end, &a_end)
        };
        assert_eq!(owners.active.as_ref(), Some(owner), "{router:?}");
        assert_eq!(owners.standbys, vec![other.clone()], "{router:?}");
    }
    assert_eq!(router.topics["amounts"].len(), PARTITIONS as usize);
    let json = serde_json::to_value(&router).unwrap();
    assert_eq!(
        json["tables"]["counts"][0]["active"]
            .as_str()
            .map(str::to_owned),
        table[0].active.as_ref().map(Endpoint::to_string)
    );

    // owner_of names the owner; query reads locally or asks the owner over HTTP.
    for k in &keys {
        let owner = if owned_a.contains(&counts_a.partition_of(k).unwrap()) {
            &a_end
        } else {
            &b_end
        };
        assert_eq!(
            a.owner_of(&counts_a, k).unwrap().as_ref(),
            Some(owner),
            "{k}"
        );
        assert_eq!(
            b.owner_of(&counts_b, k).unwrap().as_ref(),
            Some(owner),
            "{k}"
        );
        assert_eq!(a.query(&counts_a, k).await.unwrap(), Some(5), "{k} from a");
    }
    let missing = key_in(&counts_a, "missing", &owned_b);
    assert_eq!(a.query(&counts_a, &missing).await.unwrap(), None);

    // A key a owns, asked by b: a hangs, so the query fails within its timeout naming a.
    let of_a = keys
        .iter()
        .find(|k| owned_a.contains(&counts_a.partition_of(*k).unwrap()))
        .unwrap();
    let partition = counts_a.partition_of(of_a).unwrap();
    let quick = QueryOptions::default().timeout(Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    let hung_error = b
        .query_with(&counts_b, of_a, quick.clone())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    match &hung_error {
        Error::PeerUnavailable {
            endpoint,
            partition: p,
            ..
        } => assert_eq!((endpoint, *p), (&a_end.to_string(), partition)),
        other => panic!("{other:?}"),
    }
    // b's standby copy may answer when fresh enough, and says how fresh.
    let deadline = tokio::time::Instant::now() + WAIT;
    let from_standby = loop {
        let q = b
            .query_with(
                &counts_b,
                of_a,
                QueryOptions::max_lag(0).timeout(quick.timeout),
            )
            .await;
        match q {
            Ok(q) if q.value == Some(5) => break q,
            _ => assert!(tokio::time::Instant::now() < deadline, "{q:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((from_standby.from, from_standby.lag), (Owner::Standby, 0));
    // The standby falls behind: its changelog fetches fail while a record is appended to
    // the changelog. A loose bound still reads the copy and reports the lag. (A fetch already
    // in flight may take the first record: append until the lag shows.)
    let changelog = format!("{id}-counts-changelog");
    mock.intercept(
        ApiKey::Fetch,
        Intercept::error(KafkaCode::NotLeaderOrFollower)
            .for_partition(changelog.clone(), partition)
            .always(),
    );
    let stale = key_in(&counts_a, "stale", &BTreeSet::from([partition]));
    let deadline = tokio::time::Instant::now() + WAIT;
    let behind = loop {
        // String keys are stored as their text, values as JSON.
        mock.append(&changelog, partition, &[(Some(&stale), Some("9"))])
            .unwrap();
        let q = b
            .query_with(&counts_b, of_a, QueryOptions::max_lag(u64::MAX))
            .await
            .unwrap();
        if q.lag > 0 {
            break q;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the standby never lagged"
        );
    };
    assert_eq!((behind.from, behind.value), (Owner::Standby, Some(5)));
    let applied = b
        .table_partitions()
        .unwrap()
        .into_iter()
        .find(|p| p.partition == partition)
        .and_then(|p| p.applied_offset)
        .unwrap();
    let end = mock.high_watermark(&changelog, partition).unwrap();
    assert_eq!(behind.lag, (end - applied - 1) as u64);
    // Fetching again, the copy catches up: the appended key reads with no lag.
    mock.clear_intercepts();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let q = b
            .query_with(
                &counts_b,
                &stale,
                QueryOptions::max_lag(0).timeout(quick.timeout),
            )
            .await;
        if let Ok(q) = &q {
            if q.value == Some(9) {
                assert_eq!((q.from, q.lag), (Owner::Standby, 0));
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{q:?} {:?} {:?} {stale}",
            b.table_partitions(),
            mock.records(&changelog, partition)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nobody listens at a's endpoint any more: refused at once.
    hung.abort();
    let _ = hung.await;
    let refused = b.query_with(&counts_b, of_a, quick).await.unwrap_err();
    assert!(
        matches!(&refused, Error::PeerUnavailable { endpoint, .. } if *endpoint == a_end.to_string()),
        "{refused:?}"
    );

    // a crashes; after the rebalance b's router names b as the owner of everything.
    a.abort().await;
    wait_until("b owns every partition", || {
        let r = b.router();
        active(&b).len() == PARTITIONS as usize
            && r.tables["counts"]
                .iter()
                .all(|o| o.active.as_ref() == Some(&b_end))
            && r.tables["counts"].iter().all(|o| o.standbys.is_empty())
    })
    .await;
    assert_eq!(b.query(&counts_b, of_a).await.unwrap(), Some(5));
    b.shutdown().await.unwrap();
    server.abort();
}

#[test]
fn a_bad_application_server_fails_the_build() {
    for bad in ["nohost", "host:port", ":6066"] {
        let built = App::builder("router-bad").application_server(bad).build();
        assert!(
            matches!(&built, Err(Error::InvalidSetting { name, .. }) if name == "application_server"),
            "{bad}: {built:?}"
        );
    }
    let app = App::builder("router-good")
        .application_server("worker-1:6066")
        .build()
        .unwrap();
    assert_eq!(
        app.settings()
            .application_server
            .as_ref()
            .map(|e| e.to_string()),
        Some("worker-1:6066".to_owned())
    );
    // Not started: no routes yet.
    assert_eq!(app.router().generation, -1);
    assert!(app.router().tables.is_empty());
}
