//! The worker's web server under 10,000 malformed requests while an agent keeps processing
//! events (issue 22's "Bad input"): bad paths and methods, invalid request lines, garbage,
//! heads over the size limit, percent-encoding errors, keys that do not decode, pipelined
//! bad requests, and slow clients that send half a head (or nothing) and stall. Every
//! well-formed request is answered 4xx, `/health` keeps answering, events keep flowing, no
//! connection's task panics, and the slow clients are dropped (open connections fall back).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use prometheus_parse::{Scrape, Value};
use streams::{App, Error, Table};
use testkit::MockCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// Requests in the flood, slow clients included.
const REQUESTS: usize = 10_000;
/// Connections sending at once.
const CONCURRENCY: usize = 48;
/// Slow clients, held open all at once beside the flood: a burst past std's accept queue of
/// 128, whose overflow left idle clients connected on their side only, for seconds.
const SLOW: usize = 500;
/// How long the server lets a client take over a request's head, here.
const HEAD_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest an answer (or a close) may take.
const ANSWER: Duration = Duration::from_secs(10);

/// The value of the single-valued sample `name` in the app's metrics.
fn metric(app: &App, name: &str) -> f64 {
    let text = app.metrics_text();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition");
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name)
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        })
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// What a request must get.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
    /// Well-formed but wrong: answered with these 4xx statuses, one per request in it.
    Statuses(Vec<u16>),
    /// Malformed: a 4xx or a closed connection, never a 2xx, 3xx or 5xx.
    FourOrClose,
    /// A head over the limit: 431, unless the server's close (with the rest of the head
    /// unread) reset the connection before the answer was read.
    TooLarge,
}

/// The `i`-th malformed request: its bytes and what it must get.
fn malformed(i: usize) -> (Vec<u8>, Expect) {
    let close = "Host: t\r\nConnection: close\r\n\r\n";
    let text = |s: String, e| (s.into_bytes(), e);
    match i % 10 {
        0 => text(format!("GET /no/such/page/{i} HTTP/1.1\r\n{close}"), Expect::Statuses(vec![404])),
        1 => text(format!("DELETE /health HTTP/1.1\r\n{close}"), Expect::Statuses(vec![405])),
        2 => text(format!("BREW{i} /ready HTTP/1.1\r\n{close}"), Expect::Statuses(vec![405])),
        // Not UTF-8 once decoded.
        3 => text(format!("GET /table/t/%ff%fe{i}/ HTTP/1.1\r\n{close}"), Expect::Statuses(vec![400])),
        // Table n's keys are JSON numbers.
        4 => text(format!("GET /table/n/abc{i}/ HTTP/1.1\r\n{close}"), Expect::Statuses(vec![400])),
        5 => text(format!("NOT HTTP AT ALL {i}\r\n\r\n"), Expect::FourOrClose),
        // Garbage bytes (a fixed pseudo-random run, no line structure).
        6 => {
            let mut x = i as u64 | 1;
            let bytes = (0..512)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            (bytes, Expect::FourOrClose)
        }
        // A head twice the server's limit (16 KiB).
        7 => text(
            format!("GET /health HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(32 * 1024)),
            Expect::TooLarge,
        ),
        8 => text(
            "GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n".into(),
            Expect::FourOrClose,
        ),
        // Three pipelined wrong requests on one kept-alive connection: an unknown table, a
        // key that is not UTF-8, a method the route does not take.
        _ => text(
            format!(
                "GET /table/nope{i}/ HTTP/1.1\r\nHost: t\r\n\r\nGET /table/t/%C3%28/ HTTP/1.1\r\nHost: t\r\n\r\nPOST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n{close}"
            ),
            Expect::Statuses(vec![404, 400, 405]),
        ),
    }
}

/// The status codes of every response in `bytes` (pipelined responses one after another;
/// the bodies are JSON or plain text, never a status line).
fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(at, m)| {
            text.get(at + m.len()..at + m.len() + 3)
                .and_then(|s| s.parse().ok())
        })
        .collect()
}

/// Sends request `i` on a new connection and checks what came back.
async fn send_malformed(address: SocketAddr, i: usize) {
    let (request, expect) = malformed(i);
    let mut stream = TcpStream::connect(address)
        .await
        .expect("the server accepts");
    // The server may answer and close while a long malformed head is still being written.
    let written = stream.write_all(&request).await;
    let mut bytes = Vec::new();
    let read = timeout(ANSWER, stream.read_to_end(&mut bytes))
        .await
        .unwrap_or_else(|_| panic!("request {i} ({expect:?}): neither answered nor closed"));
    let got = statuses(&bytes);
    match expect {
        Expect::Statuses(want) => {
            written.unwrap_or_else(|e| panic!("request {i}: {e}"));
            read.unwrap_or_else(|e| panic!("request {i}: {e}"));
            assert_eq!(
                got,
                want,
                "request {i}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Expect::TooLarge => assert!(
            got == [431] || (got.is_empty() && (written.is_err() || read.is_err())),
            "request {i}: {got:?} {written:?} {read:?}"
        ),
        Expect::FourOrClose => assert!(
            got.iter().all(|s| (400..500).contains(s)),
            "request {i}: {}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// A slow client: sends part of a head (a third of them nothing, a third a byte at a time)
/// and stalls; the server must close the connection soon after its head timeout.
async fn slow_client(address: SocketAddr, n: usize) {
    let mut stream = TcpStream::connect(address)
        .await
        .expect("the server accepts");
    let head = b"GET /health HTTP/1.1\r\nHost: te";
    let started = Instant::now();
    match n % 3 {
        0 => {}
        1 => stream.write_all(head).await.unwrap(),
        _ => {
            // A byte every 100 ms: the whole head is late, though bytes keep coming.
            for byte in head {
                if stream.write_all(&[*byte]).await.is_err() {
                    break; // closed by the server
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let mut bytes = Vec::new();
    let closed = timeout(ANSWER, stream.read_to_end(&mut bytes)).await;
    assert!(
        closed.is_ok(),
        "slow client {n} still open after {ANSWER:?}"
    );
    let got = statuses(&bytes);
    assert!(
        got.iter().all(|s| (400..500).contains(s)),
        "slow client {n}: {}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(
        started.elapsed() >= HEAD_TIMEOUT / 2,
        "slow client {n} dropped too early"
    );
}

/// GET /health on a new connection: its status, or why none came within `ANSWER`.
async fn health(address: SocketAddr) -> Result<u16, String> {
    let attempt = async {
        let mut stream = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| e.to_string())?;
        statuses(&bytes)
            .first()
            .copied()
            .ok_or_else(|| "no status".to_owned())
    };
    timeout(ANSWER, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {ANSWER:?}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_malformed_requests_leave_the_server_up_and_events_flowing() {
    let test_started = Instant::now();
    let cluster = MockCluster::builder().build().await.unwrap();
    let app = App::builder(&testkit::unique_name("web-flood"))
        .broker(&format!("kafka://{}", cluster.bootstrap()))
        .topic_partitions(2)
        .producer_linger(Duration::from_millis(1))
        .web_enabled(true)
        .web_port(0)
        .build()
        .unwrap();
    app.set_web_head_timeout(HEAD_TIMEOUT).unwrap();
    let words = app.topic::<String, String>("words");
    let counts: Table<String, u64> = app.table("t").unwrap().with_default(u64::default);
    let _numbers = app
        .table_builder::<u32, u64>("n")
        .key_serializer("json")
        .build()
        .unwrap();
    let processed = Arc::new(AtomicU64::new(0));
    let (table, seen) = (counts.clone(), processed.clone());
    app.agent_builder("count-words", &words)
        .table(&counts)
        .run(move |mut events| {
            let (table, seen) = (table.clone(), seen.clone());
            async move {
                while let Some(word) = events.next().await {
                    table.update(&*word, |n| *n += 1)?;
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), Error>(())
            }
        });
    app.start().await.unwrap();
    let address = app.web_address().unwrap();

    // Events keep coming, a few hundred a second, until the end.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (words, stop) = (words.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let word = format!("w{}", n % 50);
                words.send(word.clone(), word).await.unwrap();
                n += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    common::wait_until("events flow", || processed.load(Ordering::SeqCst) > 0).await;

    // The slow clients, all open at once, and the flood beside them.
    let slow: Vec<_> = (0..SLOW)
        .map(|n| tokio::spawn(slow_client(address, n)))
        .collect();
    let next = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let next = next.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= REQUESTS - SLOW {
                        break;
                    }
                    send_malformed(address, i).await;
                }
            })
        })
        .collect();

    // While the flood lasts: /health answers, events are processed, slow clients are held.
    let mut peak_open = 0.0f64;
    let mut last = (processed.load(Ordering::SeqCst), Instant::now());
    let mut longest_stall = Duration::ZERO;
    while !flood.iter().all(|f| f.is_finished()) {
        peak_open = peak_open.max(metric(&app, "streams_web_connections"));
        assert_eq!(health(address).await, Ok(200), "/health during the flood");
        let now = processed.load(Ordering::SeqCst);
        if now > last.0 {
            longest_stall = longest_stall.max(last.1.elapsed());
            last = (now, Instant::now());
        }
        assert!(
            last.1.elapsed() < Duration::from_secs(5),
            "no event processed for {:?} during the flood",
            last.1.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let flood_took = test_started.elapsed();
    for task in flood.into_iter().chain(slow) {
        task.await.expect("a client's checks held");
    }
    let during = processed.load(Ordering::SeqCst);

    assert_eq!(health(address).await, Ok(200), "/health after the flood");
    // Events still flow after it.
    let deadline = Instant::now() + ANSWER;
    while processed.load(Ordering::SeqCst) < during + 20 {
        assert!(Instant::now() < deadline, "events stopped after the flood");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    feeder.await.unwrap();

    // The gauge saw the slow clients held (sampled every 100 ms: not all at their peak).
    assert!(
        peak_open >= (SLOW / 10) as f64,
        "the slow clients were held open at once (peak {peak_open})"
    );
    assert_eq!(metric(&app, "streams_web_connection_panics_total"), 0.0);
    // Every connection was closed: the slow ones dropped, the others answered.
    common::wait_until("open connections back to 0", || {
        metric(&app, "streams_web_connections") == 0.0
    })
    .await;
    eprintln!(
        "{REQUESTS} requests in {flood_took:?}, longest event stall {longest_stall:?}, peak open {peak_open}, {} events",
        processed.load(Ordering::SeqCst)
    );
    app.shutdown().await.unwrap();
    assert!(
        test_started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        test_started.elapsed()
    );
}
