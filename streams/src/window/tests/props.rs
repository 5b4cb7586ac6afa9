//! Property tests against the brute-force model: every event lands in exactly the windows
//! whose range holds it; each window closes exactly once, when (and only when) stream time
//! passes its end plus grace, in close order, with its exact value; state stays bounded.

use super::Millis;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use super::model::{expected_windows, Ev};
use super::ms;
use crate::table::{Table, TableSpec};
use crate::window::kind::Cut;
use crate::window::{Window, WindowedTable};

pub type Ids = BTreeSet<u32>;
pub type IdCloses = Arc<Mutex<Vec<(String, Window, Ids)>>>;

/// A detached table of event ids per key and window, recording its closes.
pub fn id_table(
    table: Table<String, Ids>,
    kind: Cut,
    grace: i64,
) -> (WindowedTable<String, Ids>, IdCloses) {
    let table = table.with_default(Ids::new);
    let union = |a: &mut Ids, b: Ids| a.extend(b);
    let windowed = match kind {
        Cut::Tumbling { size } => table.tumbling(ms(size as u64)),
        Cut::Hopping { size, step } => table.hopping(ms(size as u64), ms(step as u64)),
        Cut::Sliding { size } => table.sliding(ms(size as u64), union),
        Cut::Session { gap } => table.session(ms(gap as u64), union),
    }
    .grace(ms(grace as u64));
    let closes: IdCloses = Arc::default();
    let sink = closes.clone();
    let windowed = windowed
        .on_window_close(move |k, w, v| {
            sink.lock().unwrap().push((k.clone(), w, v.clone()));
        })
        .build()
        .unwrap();
    (windowed, closes)
}

pub fn detached_ids(partitions: i32) -> Table<String, Ids> {
    Table::detached(TableSpec::new("test", "ids").partitions(partitions)).unwrap()
}

/// The stream time at which the model says `w` closes.
pub fn close_at(kind: Cut, grace: i64, w: Window) -> i64 {
    match kind {
        Cut::Session { gap } => w.end + gap + grace,
        _ => w.end + grace,
    }
}

pub fn kinds() -> impl Strategy<Value = Cut> {
    prop_oneof![
        (1i64..60).prop_map(|size| Cut::Tumbling { size }),
        (1i64..60, 1i64..60).prop_map(|(size, step)| Cut::Hopping {
            size: size.max(step),
            step: step.min(size)
        }),
        (1i64..15, 1i64..5).prop_map(|(step, n)| Cut::Hopping {
            size: step * n,
            step
        }),
        (1i64..60).prop_map(|size| Cut::Sliding { size }),
        (1i64..40).prop_map(|gap| Cut::Session { gap }),
    ]
}

/// Events whose times lag the largest time before them by at most `grace`: none is late.
pub fn events(grace: i64, max: usize) -> impl Strategy<Value = Vec<Ev>> {
    proptest::collection::vec((0usize..5, 0i64..25, 0..=grace), 1..max).prop_map(|steps| {
        let mut base = 1_000;
        steps
            .into_iter()
            .enumerate()
            .map(|(id, (key, step, jitter))| {
                base += step;
                (format!("key{key}"), base - jitter, id as u32)
            })
            .collect()
    })
}

/// Closes as a map, failing on a window closed twice.
pub fn close_map(closes: &[(String, Window, Ids)]) -> BTreeMap<(String, Window), Ids> {
    let mut map = BTreeMap::new();
    for (k, w, v) in closes {
        let before = map.insert((k.clone(), *w), v.clone());
        assert!(before.is_none(), "{k} {w:?} closed twice");
    }
    map
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn windows_hold_exactly_their_events_and_close_once_when_due(
        kind in kinds(),
        grace in 0i64..30,
        partitions in 1i32..4,
        evs in (0i64..30).prop_flat_map(|g| events(g, 40)),
    ) {
        // The events' lag is drawn below 30; keep it within this table's grace.
        let evs: Vec<Ev> = {
            let mut max = i64::MIN;
            evs.into_iter().map(|(k, t, id)| {
                let t = t.max(max.saturating_sub(grace));
                max = max.max(t);
                (k, t, id)
            }).collect()
        };
        let (table, closes) = id_table(detached_ids(partitions), kind, grace);
        let mut stream_time: BTreeMap<i32, i64> = BTreeMap::new();
        for (i, (key, t, id)) in evs.iter().enumerate() {
            let updated = table.at_ms(*t).update(key.as_str(), |ids| { ids.insert(*id); }).unwrap();
            prop_assert!(updated.is_some_and(|ids| ids.contains(id)), "event {id} at {t} was late");
            let p = table.partition_of(key.as_str()).unwrap();
            let st = stream_time.entry(p).or_insert(i64::MIN);
            *st = (*st).max(*t);
            prop_assert_eq!(table.stream_ms(p).unwrap(), Some(*st));
            // Closed now: exactly the windows due in their partition, with their final ids.
            let due: BTreeMap<_, _> = expected_windows(kind, &evs[..=i])
                .into_iter()
                .filter(|((k, w), _)| {
                    let p = table.partition_of(k.as_str()).unwrap();
                    close_at(kind, grace, *w) <= stream_time[&p]
                })
                .collect();
            prop_assert_eq!(&close_map(&closes.lock().unwrap()), &due, "after event {}", i);
        }
        for p in 0..partitions {
            table.advance_ms(p, i64::MAX / 2).unwrap();
        }
        let closes = closes.lock().unwrap().clone();
        let expected = expected_windows(kind, &evs);
        prop_assert_eq!(&close_map(&closes), &expected);
        // Per partition, windows close in order of their close time.
        for p in 0..partitions {
            let order: Vec<i64> = closes
                .iter()
                .filter(|(k, _, _)| table.partition_of(k.as_str()).unwrap() == p)
                .map(|(_, w, _)| close_at(kind, grace, *w))
                .collect();
            prop_assert!(order.windows(2).all(|w| w[0] <= w[1]), "partition {p}: {order:?}");
        }
        // Hopping with a step dividing the size: each event is in size/step windows.
        if let Cut::Hopping { size, step } = kind {
            if size % step == 0 {
                for (_, _, id) in &evs {
                    let n = closes.iter().filter(|(_, _, ids)| ids.contains(id)).count();
                    prop_assert_eq!(n as i64, size / step, "event {}", id);
                }
            }
        }
        if let Cut::Tumbling { .. } = kind {
            for (_, _, id) in &evs {
                prop_assert_eq!(closes.iter().filter(|(_, _, ids)| ids.contains(id)).count(), 1);
            }
        }
    }

    #[test]
    fn state_stays_bounded_with_a_moving_clock(
        (size, step) in (1i64..20, 1i64..6).prop_map(|(n, step)| (n * step, step)),
        extra in 0i64..50,
        keys in 1usize..8,
        steps in proptest::collection::vec((0usize..8, 0i64..10), 200..400),
    ) {
        let expires = size + extra;
        let table = super::counts(2)
            .hopping(ms(size as u64), ms(step as u64))
            .expires(ms(expires as u64))
            .build()
            .unwrap();
        let store = table.table.core().store().unwrap().clone();
        // Windows kept per key: starts in (stream time - expires, stream time]; each with one
        // due entry; a clock per partition.
        let bound = 2 * keys as u64 * (expires / step + 2) as u64 + 2;
        let mut created = BTreeSet::new();
        let mut time = 0;
        for (key, advance) in steps {
            time += advance;
            let key = format!("k{}", key % keys);
            table.at_ms(time).update(key.as_str(), |v| *v += 1).unwrap();
            for w in table.windows_ms(key.as_str(), time - size, time + 1).unwrap() {
                created.insert((key.clone(), w.0));
            }
            let entries = store.stats().unwrap().entries();
            prop_assert!(entries <= bound, "{entries} entries > {bound} at time {time}");
        }
        prop_assert_eq!(table.late_events(), 0);
    }

    #[test]
    fn any_time_is_filed_or_rejected_without_a_panic(
        kind in kinds(),
        times in proptest::collection::vec(prop_oneof![
            any::<i64>(),
            Just(i64::MIN),
            Just(i64::MAX),
            Just(i64::MIN + 3),
            Just(i64::MAX - 3),
        ], 1..20),
    ) {
        let (table, _) = id_table(detached_ids(1), kind, 5);
        for (id, t) in times.into_iter().enumerate() {
            let _ = table.at_ms(t).update("k", |ids| { ids.insert(id as u32); });
            let _ = table.at_ms(t).current("k");
            let _ = table.at_ms(t).delta("k", ms(10));
            let _ = table.windows_ms("k", t, t.saturating_add(100));
        }
        let _ = table.advance_ms(0, i64::MAX);
    }
}
