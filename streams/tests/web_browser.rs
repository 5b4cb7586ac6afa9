//! The worker's overview page `/` loaded by a real headless browser (Debian's chromium, as an
//! operator would open it): the DOM it builds names the agents, the tables, each assigned
//! partition with its lag and the table partitions' state. Ignored unless asked for
//! (`.ci/run` installs chromium and runs it); `CHROMIUM` names the binary (default `chromium`).

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::wait_until;
use futures::StreamExt;
use streams::{App, Error, Table};
use testkit::MockCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the browser may take to load and dump the page.
const BROWSER_WAIT: Duration = Duration::from_secs(60);

/// The body of `GET /` read on a raw connection (to wait for the page's state cheaply).
async fn overview(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The rows (cells' text) of the HTML table under the heading `title` in `html`: the DOM
/// as chromium serialises it (`<tbody>` inserted, cells as `<td>text</td>`).
fn rows(html: &str, title: &str) -> Vec<Vec<String>> {
    let heading = format!("<h2>{title}</h2>");
    let start = html
        .find(&heading)
        .unwrap_or_else(|| panic!("no heading {title:?} in {html}"));
    let rest = &html[start + heading.len()..];
    let end = rest.find("</table>").unwrap_or(0);
    rest[..end]
        .split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td>")
                .skip(1)
                .map(|cell| cell.split("</td>").next().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|cells| !cells.is_empty())
        .collect()
}

/// Runs headless chromium on `url` and returns the DOM it dumps; fails the test after
/// [`BROWSER_WAIT`] (the browser is killed).
fn dump_dom(url: &str) -> String {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(&binary)
        // As root in a container: no sandbox; no GPU; a fresh profile per run.
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {binary} (apt-get install chromium): {e}"));
    let deadline = std::time::Instant::now() + BROWSER_WAIT;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{binary} did not load {url} within {BROWSER_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{binary}: {}", output.status);
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium (installed by .ci/run)"]
async fn a_headless_browser_finds_the_agents_tables_and_lag_per_partition() {
    let cluster = MockCluster::builder().build().await.unwrap();
    let app = App::builder(&testkit::unique_name("web-browser"))
        .broker(&format!("kafka://{}", cluster.bootstrap()))
        .topic_partitions(2)
        .producer_linger(Duration::from_millis(1))
        // Lag is measured at each commit tick.
        .broker_commit_interval(Duration::from_millis(100))
        .web_enabled(true)
        .web_port(0)
        .build()
        .unwrap();
    let words = app.topic::<String, String>("words");
    let shouts = app.topic::<String, String>("shouts");
    let counts: Table<String, u64> = app.table("word-counts").unwrap().with_default(u64::default);
    let counted = Arc::new(AtomicUsize::new(0));
    let (table, seen) = (counts.clone(), counted.clone());
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
    let out = shouts.clone();
    app.agent_builder("shout", &words).run(move |mut events| {
        let out = out.clone();
        async move {
            while let Some(word) = events.next().await {
                out.send(word.to_uppercase(), word.to_uppercase()).await?;
            }
            Ok::<(), Error>(())
        }
    });
    app.start().await.unwrap();
    let address = app.web_address().unwrap();
    for word in ["ann", "bob", "cid", "ann"] {
        words.send(word.to_owned(), word.to_owned()).await.unwrap();
    }
    // Every event counted, and both partitions of words measured at lag 0.
    wait_until("the four words counted", || {
        counted.load(Ordering::SeqCst) == 4
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = overview(address).await;
        let caught_up = ["0", "1"].iter().all(|p| {
            rows(&page, "Assigned partitions and lag").contains(&vec![
                "words".into(),
                p.to_string(),
                "0".into(),
            ])
        });
        if caught_up {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no lag 0: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let url = format!("http://{address}/");
    let started = std::time::Instant::now();
    let dom = tokio::task::spawn_blocking(move || dump_dom(&url))
        .await
        .unwrap();
    eprintln!("chromium loaded / in {:?}", started.elapsed());
    // The browser built a DOM (it inserts <tbody>), from our page.
    assert!(dom.contains("<tbody>"), "{dom}");
    assert!(dom.contains("<p>worker: running</p>"), "{dom}");
    let agents: Vec<String> = rows(&dom, "Agents")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(agents, ["count-words", "shout"], "{dom}");
    let tables = rows(&dom, "Tables");
    assert_eq!(tables.len(), 1, "{dom}");
    assert_eq!(tables[0][0], "word-counts", "{dom}");
    // Lag per assigned partition: each of words' two partitions, read to the end.
    let lag = rows(&dom, "Assigned partitions and lag");
    for partition in ["0", "1"] {
        assert!(
            lag.contains(&vec!["words".into(), partition.into(), "0".into()]),
            "words/{partition} at lag 0: {lag:?}"
        );
    }
    // Both partitions of the table held here, recovered; three keys in all.
    let parts = rows(&dom, "Table partitions (assigned and standby)");
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(
        parts
            .iter()
            .all(|p| p[0] == "word-counts" && p[2] == "active"),
        "{parts:?}"
    );
    let keys: u64 = parts.iter().map(|p| p[3].parse::<u64>().unwrap()).sum();
    assert_eq!(keys, 3, "{parts:?}");
    assert!(dom.contains("<h2>Recent errors</h2><p>none</p>"), "{dom}");
    app.shutdown().await.unwrap();
}
