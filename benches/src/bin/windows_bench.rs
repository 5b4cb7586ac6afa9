//! Windowed count in process: a hopping 5-minute window advancing by 1 minute, kept 60
//! minutes, over N timestamped events (default 1,000,000) on 1,000 keys, with the clock moving
//! 10 ms per event on average (some events up to 5 s out of order, inside a 10 s grace).
//! Prints events per CPU second of the updating thread and the table's entries every tenth of
//! the run: the state must stay flat while the stream runs through ~2.8 hours of event time.
//!
//! `cargo run --release -p benches --bin windows_bench [-- EVENTS]`
//!
//! A detached table over the memory store: every write goes straight to the store (no
//! changelog), the closest in-process stand-in for the runtime's path.

use std::time::{Duration, Instant};

use streams::{Table, TableSpec, Timestamp};

fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn main() -> streams::Result<()> {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mins = |m: u64| Duration::from_secs(60 * m);
    let counts = Table::<String, u64>::detached(TableSpec::new("bench", "counts").partitions(8))?
        .with_default(u64::default)
        .hopping(mins(5), mins(1))
        .grace(Duration::from_secs(10))
        .expires(mins(60))
        .on_window_close(|_, _, _| {})
        .build()?;
    let keys: Vec<String> = (0..1_000).map(|k| format!("user-{k}")).collect();
    let (mut closed, mut max_entries) = (0u64, 0u64);
    let (wall, cpu) = (Instant::now(), cpu_time());
    let mut checkpoints = Vec::new();
    for i in 0..events {
        let r = splitmix(i);
        let time = 1_700_000_000_000 + i as i64 * 10 - (r % 5_000) as i64 * ((r >> 20) % 2) as i64;
        let key = &keys[(r >> 32) as usize % keys.len()];
        counts
            .at_time(Timestamp::from_millis(time))
            .update(key.as_str(), |n| *n += 1)?;
        if (i + 1) % (events / 10).max(1) == 0 {
            let entries = counts.stored_entries()?;
            max_entries = max_entries.max(entries);
            checkpoints.push((i + 1, entries));
        }
    }
    let (wall, cpu) = (wall.elapsed(), cpu_time().saturating_sub(cpu));
    for p in 0..8 {
        closed += counts.advance(p, Timestamp::from_millis(i64::MAX / 2))? as u64;
    }
    println!("events: {events}, late: {}", counts.late_events());
    println!(
        "events per second: {:.0} k wall ({:.2} s), {:.0} k per CPU second ({:.2} s)",
        events as f64 / wall.as_secs_f64() / 1e3,
        wall.as_secs_f64(),
        events as f64 / cpu.as_secs_f64() / 1e3,
        cpu.as_secs_f64()
    );
    println!("entries (windows, clocks) after N events:");
    for (n, entries) in checkpoints {
        println!("  {n:>9}  {entries}");
    }
    println!("max entries {max_entries}; windows closed at the end: {closed}");
    Ok(())
}
