//! Tumbling and hopping windows: filing, reads, closing, lateness, expiry, emit-final.

use std::time::Duration;

use serde::Serialize;

use super::*;
use crate::error::Error;
use crate::window::layout::{parse_key, StoreKey};
use crate::window::LatePolicy;
use crate::TableSpec;

#[test]
fn tumbling_counts_per_window_and_reads_current_value_delta_and_ranges() {
    let table = counts(3).tumbling(ms(100)).build().unwrap();
    assert_eq!(add(&table, "a", 10, 1), Some(1));
    assert_eq!(add(&table, "a", 99, 2), Some(3));
    assert_eq!(add(&table, "a", 100, 5), Some(5));
    assert_eq!(add(&table, "b", 150, 7), Some(7));
    let at = table.at(&event("a", 120, 0)).unwrap();
    assert_eq!(at.current("a").unwrap(), Some(5));
    assert_eq!(at.value("a").unwrap(), Some(5));
    assert_eq!(at.delta("a", ms(100)).unwrap(), Some(3));
    assert_eq!(at.delta("a", ms(200)).unwrap(), None);
    assert_eq!(at.current("c").unwrap(), None);
    assert_eq!(
        table.windows_ms("a", 0, 1_000).unwrap(),
        vec![(Window::ms(0, 100), 3), (Window::ms(100, 200), 5)]
    );
    assert_eq!(
        table.windows_ms("a", 100, 1_000).unwrap(),
        vec![(Window::ms(100, 200), 5)]
    );
    // The wall clock is far past these windows.
    assert_eq!(table.now("a").unwrap(), None);
}

#[test]
fn hopping_files_an_event_in_size_over_step_windows() {
    let table = counts(1).hopping(ms(300), ms(100)).build().unwrap();
    assert_eq!(add(&table, "k", 250, 1), Some(1));
    assert_eq!(
        add(&table, "k", 310, 10),
        Some(10),
        "current: the latest window"
    );
    assert_eq!(
        table.windows_ms("k", i64::MIN, i64::MAX).unwrap(),
        vec![
            (Window::ms(0, 300), 1),
            (Window::ms(100, 400), 11),
            (Window::ms(200, 500), 11),
            (Window::ms(300, 600), 10),
        ]
    );
}

#[test]
fn the_partition_of_a_window_is_the_partition_of_its_user_key() {
    let plain = counts(7);
    let table = counts(7).tumbling(ms(10)).build().unwrap();
    for i in 0..50 {
        let key = format!("user-{i}");
        let expected = kafka_client::producer::partitioner::partition_for_key(key.as_bytes(), 7);
        assert_eq!(table.partition_of(key.as_str()).unwrap(), expected);
        assert_eq!(plain.partition_of(key.as_str()).unwrap(), expected);
        add(&table, &key, i, 1);
        assert_eq!(
            table.stream_ms(expected).unwrap().map(|t| t >= i),
            Some(true)
        );
        let stored = table
            .table
            .core()
            .store()
            .unwrap()
            .iter(expected)
            .unwrap()
            .filter(|e| {
                matches!(
                    parse_key(&e.as_ref().unwrap().0),
                    Some(StoreKey::Window { user_key, .. }) if user_key == key.as_bytes()
                )
            })
            .count();
        assert_eq!(stored, 1, "the window of {key} is in partition {expected}");
    }
}

#[test]
fn windows_close_once_when_stream_time_passes_end_plus_grace() {
    let (table, closes) = recording(counts(1).tumbling(ms(100)).grace(ms(20)));
    add(&table, "a", 10, 1);
    add(&table, "b", 50, 2);
    add(&table, "a", 119, 1);
    assert!(
        closes.lock().unwrap().is_empty(),
        "stream time 119 < 100 + 20"
    );
    // Late but inside grace: updates the window.
    assert_eq!(add(&table, "a", 90, 4), Some(5));
    add(&table, "a", 120, 1);
    assert_eq!(
        *closes.lock().unwrap(),
        vec![
            ("a".to_owned(), Window::ms(0, 100), 5),
            ("b".to_owned(), Window::ms(0, 100), 2),
        ]
    );
    // Later than grace: counted and dropped, nothing closes twice.
    assert_eq!(add(&table, "a", 99, 100), None);
    assert_eq!(table.late_events(), 1);
    add(&table, "c", 150, 1);
    assert_eq!(closes.lock().unwrap().len(), 2);
    assert_eq!(
        table.windows_ms("a", 0, 100).unwrap(),
        vec![(Window::ms(0, 100), 5)]
    );
}

#[test]
fn a_late_event_fails_with_the_policy_and_the_error_says_what_to_do() {
    let table = counts(1)
        .tumbling(ms(100))
        .on_late(LatePolicy::Fail)
        .build()
        .unwrap();
    add(&table, "a", 500, 1);
    let err = table.at_ms(10).update("a", |v| *v += 1).unwrap_err();
    assert!(matches!(
        err,
        Error::LateEvent { time, stream_time, grace, .. }
            if time == Timestamp::from_millis(10)
                && stream_time == Timestamp::from_millis(500)
                && grace == Duration::ZERO
    ));
    assert!(
        err.to_string().contains(
            "table counts: an event at 1970-01-01T00:00:00.010Z is too late: its windows in \
             partition 0 closed (stream time 1970-01-01T00:00:00.500Z"
        ),
        "{err}"
    );
    assert!(err.to_string().contains("raise the grace period"), "{err}");
    assert_eq!(table.late_events(), 1);
}

#[test]
fn expired_windows_are_deleted_after_they_closed() {
    let (table, closes) = recording(counts(1).tumbling(ms(100)).expires(ms(300)));
    add(&table, "a", 0, 1);
    add(&table, "a", 100, 1);
    add(&table, "a", 250, 1);
    assert_eq!(table.windows_ms("a", i64::MIN, i64::MAX).unwrap().len(), 3);
    add(&table, "a", 310, 1);
    // Window 0..100 expired at 0 + 300; 100..200 is kept until 400.
    assert_eq!(
        table.windows_ms("a", i64::MIN, i64::MAX).unwrap(),
        vec![
            (Window::ms(100, 200), 1),
            (Window::ms(200, 300), 1),
            (Window::ms(300, 400), 1),
        ]
    );
    assert_eq!(
        closes.lock().unwrap().len(),
        3,
        "0, 100 and 200 closed, once each"
    );
    // The store holds those three windows and the clock (due times are held in memory).
    assert_eq!(
        table
            .table
            .core()
            .store()
            .unwrap()
            .stats()
            .unwrap()
            .entries(),
        4
    );
    assert_eq!(table.stored_entries().unwrap(), 4);
}

/// A topic of final results, declared as an app would.
fn finals() -> crate::topic::Topic<String, crate::window::WindowResult<i64>> {
    let catalog = std::sync::Arc::new(crate::topic::TopicCatalog::new(
        crate::codec::CodecRegistry::default(),
    ));
    crate::topic::Topic::declare(&catalog, &crate::outbox::Outbox::default(), "finals")
}

#[test]
fn emit_final_writes_each_closed_window_for_the_next_flush_in_close_order_never_stored() {
    let store: std::sync::Arc<dyn stores::Store> = std::sync::Arc::new(stores::MemoryStore::new());
    let plain = Table::<String, i64>::open(
        TableSpec::new("test", "counts").partitions(1),
        &crate::codec::CodecRegistry::default(),
        store.clone(),
    )
    .unwrap()
    .with_default(i64::default);
    plain.core().assign(0).unwrap();
    plain.core().set_active(0).unwrap();
    let table = plain
        .tumbling(ms(10))
        .emit_final_to(&finals())
        .build()
        .unwrap();
    add(&table, "b", 1, 1);
    add(&table, "a", 5, 2);
    add(&table, "a", 12, 3);
    assert_eq!(add(&table, "a", 25, 4), Some(4));
    let flush = table.table.core().take_pending(0).expect("writes pending");
    let sent: Vec<(String, i64, i64)> = flush
        .outbound()
        .map(|(key, value)| {
            let key = String::from_utf8(key.unwrap().to_vec()).unwrap();
            let result: crate::window::WindowResult<i64> = serde_json::from_slice(&value).unwrap();
            (key, result.window.start, result.value)
        })
        .collect();
    assert_eq!(
        sent,
        vec![("a".into(), 0, 2), ("b".into(), 0, 1), ("a".into(), 10, 3)]
    );
    // Not table state: neither in the changelog records nor, once flushed, in the store.
    assert!(flush.records().iter().all(|r| r.key.first() != Some(&0x03)));
    table.table.core().complete_flush(flush, Some(0)).unwrap();
    let stored: Vec<_> = store.iter(0).unwrap().map(|e| e.unwrap().0).collect();
    assert!(!stored.is_empty());
    assert!(
        stored.iter().all(|k| k.first() != Some(&0x03)),
        "{stored:?}"
    );
    assert!(table.table.core().take_pending(0).is_none());
}

#[test]
fn a_detached_table_cannot_emit_final_results_and_says_what_to_use() {
    let err = counts(1)
        .tumbling(ms(10))
        .emit_final_to(&finals())
        .build()
        .expect_err("no flush sends them");
    assert!(err.to_string().contains("on_window_close"), "{err}");
}

#[test]
fn advance_closes_without_events_and_only_forward() {
    let (table, closes) = recording(counts(2).tumbling(ms(10)));
    add(&table, "a", 3, 1);
    let p = table.partition_of("a").unwrap();
    assert_eq!(table.advance_ms(p, 9).unwrap(), 0);
    assert_eq!(table.advance_ms(p, 10).unwrap(), 1);
    assert_eq!(table.advance_ms(p, 5).unwrap(), 0);
    assert_eq!(table.stream_ms(p).unwrap(), Some(10));
    assert_eq!(closes.lock().unwrap().len(), 1);
    assert_eq!(table.stream_ms(1 - p).unwrap(), None);
}

#[derive(Serialize)]
struct Order {
    placed: Placed,
}
#[derive(Serialize)]
struct Placed {
    at: i64,
}

#[test]
fn time_from_a_field_and_an_event_without_it_is_a_decode_error_naming_it() {
    let table = counts(1)
        .tumbling(ms(100))
        .relative_to_field("placed.at")
        .build()
        .unwrap();
    let order = Event::new(
        "orders",
        0,
        3,
        5,
        None::<String>,
        Order {
            placed: Placed { at: 250 },
        },
    );
    let at = table.at(&order).unwrap();
    assert_eq!(at.time(), Timestamp::from_millis(250));
    at.update("k", |v| *v += 1).unwrap();
    assert_eq!(at.value("k").unwrap(), Some(1));
    assert_eq!(
        at.current("k").unwrap(),
        None,
        "current() reads the record timestamp (5)"
    );
    let wrong = counts(1)
        .tumbling(ms(100))
        .relative_to_field("placed.when")
        .build()
        .unwrap();
    let err = wrong.at(&order).unwrap_err();
    assert!(
        matches!(&err, Error::Decode { field: Some(f), .. } if f == "placed.when"),
        "{err}"
    );
    let err = counts(1)
        .tumbling(ms(1))
        .build()
        .unwrap()
        .at(&event("a", -1, 0))
        .unwrap_err();
    assert!(err.to_string().contains("no timestamp"), "{err}");
}

#[test]
fn relative_to_now_files_under_the_wall_clock() {
    let table = counts(1)
        .tumbling(Duration::from_secs(3600))
        .relative_to_now()
        .build()
        .unwrap();
    let at = table.at(&event("a", 0, 0)).unwrap();
    assert!(at.time() > Timestamp::from_millis(1_600_000_000_000));
    at.update("a", |v| *v += 1).unwrap();
    // The hour window of now (unless the hour turned in between).
    let now = table.now("a").unwrap();
    assert!(now == Some(1) || now.is_none());
}

#[test]
fn windowed_keys_in_a_partition_the_worker_does_not_own_say_so() {
    use crate::codec::CodecRegistry;
    let store = stores::StoreUrl::Memory.open("counts").unwrap();
    let table = Table::<String, i64>::open(
        TableSpec::new("t", "counts").partitions(2),
        &CodecRegistry::default(),
        store,
    )
    .unwrap()
    .with_default(i64::default)
    .tumbling(ms(10))
    .build()
    .unwrap();
    let err = table.at_ms(1).update("a", |v| *v += 1).unwrap_err();
    assert!(matches!(err, Error::TableNotOwned { .. }), "{err}");
    let err = table.advance_ms(1, 100).unwrap_err();
    assert!(
        err.to_string()
            .contains("partition 1 is not held on this worker"),
        "{err}"
    );
    table.table.core().assign(1).unwrap();
    let err = table.stream_ms(1).unwrap_err();
    assert!(
        err.to_string().contains("partition 1 is still recovering"),
        "{err}"
    );
    let err = table.advance_ms(7, 100).unwrap_err();
    assert!(err.to_string().contains("partition 7 is not held"), "{err}");
}

#[test]
fn an_update_that_fails_in_one_window_writes_nothing() {
    use std::collections::BTreeMap;
    // JSON cannot encode a map with non-string keys: the second window's value fails.
    type Bad = BTreeMap<Vec<u8>, i64>;
    let table = Table::<String, Bad>::detached(TableSpec::new("t", "bad").partitions(1))
        .unwrap()
        .with_default(Bad::new)
        .hopping(ms(20), ms(10))
        .build()
        .unwrap();
    let mut calls = 0;
    let err = table
        .at_ms(15)
        .update("k", |v| {
            calls += 1;
            if calls == 2 {
                v.insert(vec![1], 1);
            }
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::TableEncode { part: "value", .. }),
        "{err}"
    );
    assert_eq!(calls, 2);
    assert_eq!(table.windows_ms("k", i64::MIN, i64::MAX).unwrap(), vec![]);
    assert_eq!(table.stream_ms(0).unwrap(), None);
    assert_eq!(table.stored_entries().unwrap(), 0);
}

#[test]
fn windows_nobody_takes_close_expire_and_count_as_those_a_callback_takes() {
    // Without a close callback (or final results), due fixed windows are run from their due
    // times alone, unread: the closes counted, the windows kept and deleted, and the store
    // must be those of the same table whose closes a callback takes.
    for hopping in [false, true] {
        let build = || {
            let windows = match hopping {
                true => counts(2).hopping(ms(100), ms(30)),
                false => counts(2).tumbling(ms(100)),
            };
            windows.grace(ms(20)).expires(ms(400))
        };
        let (taken, closes) = recording(build());
        let untaken = build().build().unwrap();
        let keys = ["a", "b", "c", "d", "e"];
        let mut closed_by_advance = 0;
        for i in 0..400i64 {
            // Out of order by up to 14 ms, within the grace.
            let time = 1_000 + 7 * i - (i * 13) % 15;
            let key = keys[(i * 7 % 5) as usize];
            assert_eq!(add(&taken, key, time, 1), add(&untaken, key, time, 1));
            if i % 50 == 49 {
                for p in 0..2 {
                    let to = time + 5;
                    let n = taken.advance_ms(p, to).unwrap();
                    assert_eq!(untaken.advance_ms(p, to).unwrap(), n, "{hopping} at {to}");
                    closed_by_advance += n;
                }
                for key in keys {
                    assert_eq!(
                        taken.windows_ms(key, i64::MIN, i64::MAX).unwrap(),
                        untaken.windows_ms(key, i64::MIN, i64::MAX).unwrap(),
                        "{hopping}: windows of {key} after event {i}"
                    );
                }
                assert_eq!(
                    taken.stored_entries().unwrap(),
                    untaken.stored_entries().unwrap()
                );
            }
        }
        let mut closed_at_end = 0;
        for p in 0..2 {
            let n = taken.advance_ms(p, 1_000_000).unwrap();
            assert_eq!(untaken.advance_ms(p, 1_000_000).unwrap(), n, "{hopping}");
            closed_at_end += n;
        }
        // Every window expired: only the two clocks are left.
        assert_eq!(untaken.stored_entries().unwrap(), 2, "{hopping}");
        assert_eq!(taken.stored_entries().unwrap(), 2, "{hopping}");
        let all = closes.lock().unwrap().len();
        // The last advance closed the windows still open, counted alike on both sides.
        assert!(closed_at_end > 0, "{hopping}");
        assert!(all >= closed_at_end + closed_by_advance, "{hopping}");
    }
}
