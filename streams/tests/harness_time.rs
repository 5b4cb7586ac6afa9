//! Time in the harness: an app driven by tokio's interval and the app's clock (an agent that
//! closes a windowed table's idle windows by the clock) runs on virtual time, and gives the
//! same windows, at the same times, on every run.

use std::time::Duration;

use futures::StreamExt;
use streams::testing::Harness;
use streams::{App, Error, Timestamp, Topic, WindowResult};

/// 2030-01-01T00:00:00Z: a whole minute.
const T0: i64 = 1_893_456_000_000;
const MINUTE: i64 = 60_000;

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

/// Clicks per key per minute; every 10 s (tokio's interval) the agent moves the windows to
/// the app's clock, so a minute with no later click still closes, and its total goes to
/// `finals`.
fn clicks_app() -> streams::Result<Clicks> {
    let app = App::builder("clicks").topic_partitions(1).build()?;
    let clicks = app.topic::<String, i64>("clicks");
    let finals = app.topic::<String, WindowResult<i64>>("finals");
    let windows = app
        .table::<String, i64>("per_minute")?
        .with_default(i64::default)
        .tumbling(Duration::from_secs(60))
        .emit_final_to(&finals)
        .build()?;
    let clock = app.clock();
    app.agent_builder("count", &clicks)
        .table(&windows)
        .run(move |mut events| {
            let (windows, clock) = (windows.clone(), clock.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tokio::select! {
                        biased;
                        event = events.next() => match event {
                            Some(e) => {
                                let key = e.key.clone().unwrap_or_default();
                                windows.at(&e)?.update(&key, |n| *n += 1)?;
                            }
                            None => return Ok::<(), Error>(()),
                        },
                        _ = tick.tick() => match windows.advance(0, clock.now()) {
                            Ok(_) | Err(Error::PartitionNotActive { .. }) => {}
                            Err(Error::NoSuchPartition { .. }) => {}
                            Err(e) => return Err(e),
                        },
                    }
                }
            }
        });
    Ok(Clicks {
        app,
        clicks,
        finals,
    })
}

/// Clicks every 25 s from T0 (`a` each time, `b` every other), then three idle minutes.
/// Returns the closed windows as (key, start, end, total) relative to T0, with the clock's
/// reading when the app settled.
async fn run() -> (Vec<(String, i64, i64, i64)>, Timestamp) {
    let h = Harness::builder()
        .start_at(Timestamp::from_millis(T0))
        .build(clicks_app)
        .await
        .unwrap();
    let clicks = h.worker(0).clicks.clone();
    for step in 0..5 {
        h.send(&clicks, "a".to_owned(), 1).await.unwrap();
        if step % 2 == 1 {
            h.send(&clicks, "b".to_owned(), 1).await.unwrap();
        }
        h.advance(Duration::from_secs(25)).await;
    }
    h.advance(Duration::from_secs(180)).await;
    h.settle().await.unwrap();
    let mut closed: Vec<_> = h
        .sent(&h.worker(0).finals)
        .unwrap()
        .into_iter()
        .map(|e| {
            let w = e.value.window;
            (
                e.key.clone().unwrap_or_default(),
                w.start().as_millis() - T0,
                w.end().as_millis() - T0,
                e.value.value,
            )
        })
        .collect();
    closed.sort();
    (closed, h.now())
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn windows_close_by_the_virtual_clock_the_same_way_on_every_run() {
    let (first, first_end) = run().await;
    let expected = vec![
        ("a".to_owned(), 0, MINUTE, 3),
        ("a".to_owned(), MINUTE, 2 * MINUTE, 2),
        ("b".to_owned(), 0, MINUTE, 1),
        ("b".to_owned(), MINUTE, 2 * MINUTE, 1),
    ];
    assert_eq!(first, expected, "closed by the clock, no later click needed");
    let (second, second_end) = run().await;
    assert_eq!(first, second);
    assert_eq!(first_end, second_end, "the runs took the same virtual time");
}
