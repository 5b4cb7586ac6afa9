//! What a windowed table must hold, computed by brute force from the events (no code shared
//! with the table).

use std::collections::{BTreeMap, BTreeSet};

use crate::window::kind::Cut;
use crate::window::Window;

/// An event: key, time, id.
pub type Ev = (String, i64, u32);

/// Every window with at least one event, and the ids of the events in it.
pub fn expected_windows(kind: Cut, events: &[Ev]) -> BTreeMap<(String, Window), BTreeSet<u32>> {
    let mut out: BTreeMap<(String, Window), BTreeSet<u32>> = BTreeMap::new();
    let mut by_key: BTreeMap<&str, Vec<(i64, u32)>> = BTreeMap::new();
    for (k, t, id) in events {
        by_key.entry(k).or_default().push((*t, *id));
    }
    for (key, mut evs) in by_key {
        evs.sort();
        match kind {
            Cut::Tumbling { size } | Cut::Hopping { size, .. } => {
                let step = match kind {
                    Cut::Hopping { step, .. } => step,
                    _ => size,
                };
                for &(t, id) in &evs {
                    // Every multiple of step from well below t - size to t.
                    let mut start = (t - size).div_euclid(step) * step - step;
                    while start <= t {
                        let w = Window::ms(start, start + size);
                        if w.start <= t && t < w.end {
                            out.entry((key.to_owned(), w)).or_default().insert(id);
                        }
                        start += step;
                    }
                }
            }
            Cut::Sliding { size } => {
                for &(t, _) in &evs {
                    let w = Window::ms(t + 1 - size, t + 1);
                    let ids = evs
                        .iter()
                        .filter(|(u, _)| t + 1 - size <= *u && *u <= t)
                        .map(|(_, id)| *id);
                    out.entry((key.to_owned(), w)).or_default().extend(ids);
                }
            }
            Cut::Session { gap } => {
                let mut session: Vec<(i64, u32)> = Vec::new();
                let mut flush = |session: &mut Vec<(i64, u32)>| {
                    if let (Some(first), Some(last)) = (session.first(), session.last()) {
                        let w = Window::ms(first.0, last.0 + 1);
                        out.insert(
                            (key.to_owned(), w),
                            session.iter().map(|(_, id)| *id).collect(),
                        );
                    }
                    session.clear();
                };
                for &(t, id) in &evs {
                    if session.last().is_some_and(|(last, _)| t - last > gap) {
                        flush(&mut session);
                    }
                    session.push((t, id));
                }
                flush(&mut session);
            }
        }
    }
    out
}
