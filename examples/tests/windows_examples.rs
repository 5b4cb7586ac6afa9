//! Runs the windowed-table examples (the talk's tumbling and hopping demos) as a user would and
//! checks every window's total against a brute-force count of the purchases they send, on the
//! embedded mock broker and, with KAFKA_BOOTSTRAP set, on real Kafka.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use common::example;

/// The purchases both examples send: (minute, currency, amount).
const PURCHASES: [(i64, &str, i64); 10] = [
    (0, "EUR", 30),
    (1, "USD", 5),
    (3, "EUR", 12),
    (4, "USD", 40),
    (5, "EUR", 2),
    (6, "USD", 25),
    (9, "EUR", 1),
    (10, "EUR", 7),
    (11, "USD", 3),
    (12, "EUR", 4),
];

type Windows = BTreeMap<(String, i64, i64), i64>;

/// Every window (currency, start minute, end minute) of `size` minutes starting every `step`
/// minutes that holds a purchase, with its total.
fn expected(size: i64, step: i64) -> Windows {
    let mut windows = Windows::new();
    for (minute, currency, amount) in PURCHASES {
        for start in (minute - size - step..=minute).filter(|s| s.rem_euclid(step) == 0) {
            if start <= minute && minute < start + size {
                *windows
                    .entry((currency.to_owned(), start, start + size))
                    .or_default() += amount;
            }
        }
    }
    windows
}

/// Lines `<prefix><currency> minutes <start>-<end>: <total>` read back.
fn windows(out: &str, prefix: &str) -> Vec<((String, i64, i64), i64)> {
    out.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|l| {
            let (currency, rest) = l.split_once(" minutes ").unwrap();
            let (range, total) = rest.split_once(": ").unwrap();
            // A negative start reads "-4-1"; an end is never negative here.
            let (start, end) = range.rsplit_once('-').unwrap();
            let (start, end) = (start.parse().unwrap(), end.parse().unwrap());
            ((currency.to_owned(), start, end), total.parse().unwrap())
        })
        .collect()
}

/// Runs `name`, on real Kafka too when KAFKA_BOOTSTRAP is set (with an app and topic of its
/// own: Kafka keeps the topics of earlier runs); returns each run's stdout.
fn runs(name: &str) -> Vec<String> {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let upper = name.to_uppercase();
    let mut commands = vec![Command::new(example(name))];
    if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") {
        let run = format!(
            "{name}-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let mut command = Command::new(example(name));
        command
            .args(["--broker", &format!("kafka://{bootstrap}")])
            .env(format!("{upper}_APP"), &run)
            .env(format!("{upper}_TOPIC"), format!("{run}-purchases"));
        commands.push(command);
    }
    commands
        .into_iter()
        .map(|mut command| {
            let out = command.env_remove("RUST_LOG").output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{name} failed:\n{stdout}\n{stderr}");
            stdout
        })
        .collect()
}

/// Every window's final total is exact; each closed window closed once with that total; and
/// each currency's windows that ended by its last purchase are closed.
fn check(out: &str, size: i64, step: i64) {
    let expected = expected(size, step);
    let finals: Windows = windows(out, "window ").into_iter().collect();
    assert_eq!(finals, expected, "{out}");
    let closed = windows(out, "closed ");
    let once: BTreeSet<_> = closed.iter().map(|(w, _)| w.clone()).collect();
    assert_eq!(once.len(), closed.len(), "a window closed twice:\n{out}");
    for (window, total) in &closed {
        assert_eq!(expected.get(window), Some(total), "{window:?}\n{out}");
    }
    for (currency, start, end) in expected.keys() {
        let last = PURCHASES
            .iter()
            .filter(|(_, c, _)| c == currency)
            .map(|(m, _, _)| *m)
            .max()
            .unwrap();
        if *end <= last {
            assert!(
                once.contains(&(currency.clone(), *start, *end)),
                "{currency} {start}-{end} not closed:\n{out}"
            );
        }
    }
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("current window total"))
            .count(),
        PURCHASES.len(),
        "{out}"
    );
}

#[test]
fn tumbling_totals_each_5_minute_window_and_closes_it_once() {
    for out in runs("tumbling") {
        check(&out, 5, 5);
        assert!(
            out.contains("EUR minute 3: current window total 42"),
            "{out}"
        );
        assert!(out.contains("window EUR minutes 0-5: 42"), "{out}");
        assert!(out.contains("window USD minutes 5-10: 25"), "{out}");
    }
}

#[test]
fn hopping_counts_each_purchase_in_5_windows_a_minute_apart() {
    for out in runs("hopping") {
        check(&out, 5, 1);
        assert_eq!(
            expected(5, 1).values().count(),
            windows(&out, "window ").len()
        );
        assert!(out.contains("window EUR minutes -4-1: 30"), "{out}");
        assert!(out.contains("window EUR minutes 0-5: 42"), "{out}");
    }
}
