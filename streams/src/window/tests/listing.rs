//! Listing a windowed table (Faust's `keys()`/`items()`) and async close callbacks, on
//! detached tables.

use std::sync::{Arc, Mutex};

use super::*;
use crate::error::Error;
use crate::timestamp::Timestamp;

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

#[test]
fn keys_and_items_list_every_window_of_the_owned_partitions() {
    // Grace, so that the event at 30 after the one at 150 still counts.
    let table = counts(3).tumbling(ms(100)).grace(ms(100)).build().unwrap();
    assert!(table.keys().unwrap().is_empty());
    assert!(table.items().unwrap().is_empty());
    add(&table, "a", 10, 1);
    add(&table, "a", 150, 2);
    add(&table, "b", 20, 3);
    add(&table, "a", 30, 4);
    let mut keys = table.keys().unwrap();
    keys.sort();
    assert_eq!(keys, vec!["a".to_owned(), "b".to_owned()], "each key once");
    let mut items = table.items().unwrap();
    items.sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
    assert_eq!(
        items,
        vec![
            ("a".to_owned(), Window::new(t(0), t(100)), 5),
            ("a".to_owned(), Window::new(t(100), t(200)), 2),
            ("b".to_owned(), Window::new(t(0), t(100)), 3),
        ]
    );
    // The same as each key's windows.
    for key in ["a", "b"] {
        let listed: Vec<_> = items
            .iter()
            .filter(|(k, _, _)| k == key)
            .map(|(_, w, v)| (*w, *v))
            .collect();
        assert_eq!(
            listed,
            table.windows(key, Timestamp::MIN, Timestamp::MAX).unwrap()
        );
    }
}

#[test]
fn items_of_a_sliding_table_are_its_folded_windows() {
    let table = counts(1)
        .sliding(ms(10), |acc, later| *acc += later)
        .build()
        .unwrap();
    add(&table, "k", 100, 1);
    add(&table, "k", 105, 2);
    add(&table, "k", 120, 4);
    assert_eq!(
        table.items().unwrap(),
        vec![
            ("k".to_owned(), Window::new(t(91), t(101)), 1),
            ("k".to_owned(), Window::new(t(96), t(106)), 3),
            ("k".to_owned(), Window::new(t(111), t(121)), 4),
        ]
    );
    assert_eq!(table.keys().unwrap(), vec!["k".to_owned()]);
}

type Seen = Arc<Mutex<Vec<(String, Window, i64)>>>;

fn async_recording() -> (WindowedTable<String, i64>, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let table = counts(1)
        .tumbling(ms(10))
        .on_window_close_async(move |key, window, value| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((key, window, value));
                Ok(())
            }
        })
        .build()
        .unwrap();
    (table, seen)
}

#[tokio::test]
async fn an_async_close_callback_is_awaited_by_update_async_in_close_order() {
    let (table, seen) = async_recording();
    for (key, at) in [("a", 1), ("b", 2), ("a", 12)] {
        let at = table.at_time(t(at));
        at.update_async(key, |n| *n += 1).await.unwrap();
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("a".to_owned(), Window::new(t(0), t(10)), 1),
            ("b".to_owned(), Window::new(t(0), t(10)), 1),
        ]
    );
    assert_eq!(table.advance_async(0, t(20)).await.unwrap(), 1);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn the_synchronous_update_of_a_table_with_an_async_callback_is_refused_changing_nothing() {
    let (table, seen) = async_recording();
    table
        .at_time(t(1))
        .update_async("a", |n| *n += 1)
        .await
        .unwrap();
    let err = table.at_time(t(12)).update("a", |n| *n += 1).unwrap_err();
    assert!(
        matches!(err, Error::NeedsAwait { call: "update", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("update_async(..).await"), "{err}");
    let err = table.advance(0, t(50)).unwrap_err();
    assert!(err.to_string().contains("advance_async(..).await"), "{err}");
    assert_eq!(table.stream_time(0).unwrap(), Some(t(1)), "nothing moved");
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn now_in_a_view_reads_the_window_of_the_partitions_stream_time_not_the_wall_clock() {
    let table = counts(1).tumbling(ms(100)).grace(ms(100)).build().unwrap();
    assert_eq!(table.at_time(t(5)).now("a").unwrap(), None, "no event yet");
    add(&table, "a", 150, 2);
    // An older event: its current() is its own window, now() the partition's latest one.
    let view = table.at_time(t(50));
    view.update("a", |n| *n += 1).unwrap();
    assert_eq!(view.current("a").unwrap(), Some(1));
    assert_eq!(view.now("a").unwrap(), Some(2));
    // The table's now() is the wall clock's window: nothing there.
    assert_eq!(table.now("a").unwrap(), None);
}
