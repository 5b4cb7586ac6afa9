//! Windows of idle partitions close by the harness's virtual clock (`close_idle_after`): a
//! window's final result is emitted once the clock passes its end with no later event, not
//! before, and the same at every run.

use std::time::Duration;

use futures::StreamExt;
use streams::testing::Harness;
use streams::{App, Error, Timestamp, Topic, WindowResult};

/// 2030-01-01T00:00:00Z: a whole minute.
const T0: i64 = 1_893_456_000_000;

struct Clicks {
    app: App,
    clicks: Topic<String, i64>,
    finals: Topic<String, WindowResult<i64>>,
}

impl AsRef<App> for Clicks {
    fn as_ref(&self) -> &App {
        &self.app
    }
}

/// Clicks per key per minute over two partitions; a partition idle for 20 s follows the
/// clock, and each minute's final count goes to `click-finals`.
fn clicks_app() -> streams::Result<Clicks> {
    let app = App::builder("idle-clicks").topic_partitions(2).build()?;
    let clicks = app.topic::<String, i64>("clicks");
    let finals = app.topic::<String, WindowResult<i64>>("click-finals");
    let windows = app
        .table::<String, i64>("clicks_per_minute")?
        .with_default(i64::default)
        .tumbling(Duration::from_secs(60))
        .close_idle_after(Duration::from_secs(20))
        .emit_final_to(&finals)
        .build()?;
    let table = windows.clone();
    app.agent_builder("count", &clicks)
        .table(&windows)
        .run(move |mut events| {
            let windows = table.clone();
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    windows.at(&e)?.update(&key, |n| *n += *e)?;
                }
                Ok::<(), Error>(())
            }
        });
    Ok(Clicks {
        app,
        clicks,
        finals,
    })
}

/// The final results sent so far: (key, window start relative to T0, total).
fn finals(h: &Harness<Clicks>) -> Vec<(String, i64, i64)> {
    let mut out: Vec<_> = h
        .sent(&h.worker(0).finals)
        .unwrap()
        .into_iter()
        .map(|e| {
            let r = e.value.clone();
            (
                e.key.clone().unwrap_or_default(),
                r.window.start().as_millis() - T0,
                r.value,
            )
        })
        .collect();
    out.sort();
    out
}

/// Moves the virtual clock to `second`s after T0 (starting the workers took some), then
/// settles.
async fn advance_to(h: &Harness<Clicks>, second: i64) {
    let left = T0 + second * 1000 - h.now().as_millis();
    h.advance(Duration::from_millis(
        left.try_into().expect("not past it yet"),
    ))
    .await;
    h.settle().await.unwrap();
}

/// Clicks in the first minute (keys over both partitions), then silence: the results seen at 59 s and
/// at 61 s of virtual time.
async fn run() -> (Vec<(String, i64, i64)>, Vec<(String, i64, i64)>) {
    let h = Harness::builder()
        .workers(2)
        .start_at(Timestamp::from_millis(T0))
        .build(clicks_app)
        .await
        .unwrap();
    let clicks = h.worker(0).clicks.clone();
    for (key, n) in [("a", 2), ("b", 5), ("c", 1), ("d", 4)] {
        h.send(&clicks, key.to_owned(), n).await.unwrap();
    }
    h.advance(Duration::from_secs(10)).await;
    h.send(&clicks, "a".to_owned(), 3).await.unwrap();
    h.settle().await.unwrap();
    advance_to(&h, 59).await; // idle, but no minute over yet
    let before = finals(&h);
    advance_to(&h, 61).await;
    let after = finals(&h);
    h.shutdown().await.unwrap();
    (before, after)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_idle_partitions_windows_close_by_the_virtual_clock_and_not_before() {
    let (before, after) = run().await;
    assert_eq!(before, vec![], "no minute had ended at 59 s");
    assert_eq!(
        after,
        [("a", 5), ("b", 5), ("c", 1), ("d", 4)]
            .map(|(k, n)| (k.to_owned(), 0, n))
            .to_vec(),
        "every partition closed its first minute with no later event"
    );
    assert_eq!(run().await, (before, after), "the same at every run");
}
