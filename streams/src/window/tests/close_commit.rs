//! A window's close is flushed (and so committed) only after its close callback finished: a
//! crash in between replays the closing event and runs the callback again, never loses it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};

use super::*;
use crate::error::Error;
use crate::timestamp::Timestamp;

const SETTLE: Duration = Duration::from_secs(30);

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A table as an app holds it (writes pending until flushed), its one partition active.
pub(super) fn held() -> Table<String, i64> {
    let store: Arc<dyn stores::Store> = Arc::new(stores::MemoryStore::new());
    let table = Table::<String, i64>::open(
        TableSpec::new("test", "counts").partitions(1),
        &crate::codec::CodecRegistry::default(),
        store,
    )
    .unwrap()
    .with_default(i64::default);
    table.core().assign(0).unwrap();
    table.core().set_active(0).unwrap();
    table
}

#[tokio::test]
async fn a_flush_waits_for_a_running_close_callback_then_takes_its_close() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let release = gate.clone();
    let table = held()
        .tumbling(ms(10))
        .on_window_close_async(move |key: String, _, _| {
            let (started_tx, gate) = (started_tx.clone(), gate.clone());
            async move {
                started_tx.send(key).unwrap();
                gate.acquire().await.unwrap().forget();
                Ok(())
            }
        })
        .build()
        .unwrap();
    table
        .at_time(t(1))
        .update_async("a", |n| *n += 1)
        .await
        .unwrap();
    let closing = tokio::spawn({
        let table = table.clone();
        async move { table.at_time(t(12)).update_async("a", |n| *n += 1).await }
    });
    let key = tokio::time::timeout(SETTLE, started.recv()).await.unwrap();
    assert_eq!(key.as_deref(), Some("a"), "the callback runs");

    let core = table.table.core().clone();
    let flush = tokio::spawn(async move { core.take_settled(0, SETTLE).await });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!flush.is_finished(), "no flush while the callback runs");

    release.add_permits(1);
    tokio::time::timeout(SETTLE, closing)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let flush = tokio::time::timeout(SETTLE, flush)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .expect("the writes, with the close, are flushed after the callback");
    assert!(!flush.records().is_empty());
}

#[tokio::test]
async fn a_failed_close_callback_fails_its_partitions_flush() {
    let table = held()
        .tumbling(ms(10))
        .on_window_close_async(|key: String, _, _| async move {
            Err(Error::validation(
                "key",
                format!("cannot alert about {key}"),
            ))
        })
        .build()
        .unwrap();
    table
        .at_time(t(1))
        .update_async("a", |n| *n += 1)
        .await
        .unwrap();
    let err = table
        .at_time(t(12))
        .update_async("a", |n| *n += 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot alert about a"), "{err}");
    assert_flush_refused(&table).await;
}

#[tokio::test]
async fn a_panicking_close_callback_fails_its_partitions_flush() {
    let table = held()
        .tumbling(ms(10))
        .on_window_close(|_: &String, _, _: &i64| panic!("the callback panics"))
        .build()
        .unwrap();
    table.at_time(t(1)).update("a", |n| *n += 1).unwrap();
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        table.at_time(t(12)).update("a", |n| *n += 1)
    }));
    assert!(panicked.is_err());
    assert_flush_refused(&table).await;
}

#[tokio::test]
async fn closes_whose_callbacks_finished_flush_at_once() {
    let (table, closes) = recording(held().tumbling(ms(10)));
    table.at_time(t(1)).update("a", |n| *n += 1).unwrap();
    table.at_time(t(12)).update("a", |n| *n += 1).unwrap();
    assert_eq!(closes.lock().unwrap().len(), 1);
    let flush = table.table.core().take_settled(0, SETTLE).await.unwrap();
    assert!(flush.is_some_and(|f| !f.records().is_empty()));
}

/// The partition's flush fails: the close whose callback did not finish is not committed.
pub(super) async fn assert_flush_refused(table: &WindowedTable<String, i64>) {
    let err = table
        .table
        .core()
        .take_settled(0, SETTLE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::CloseCallbackFailed { partition: 0, .. }),
        "{err}"
    );
}
