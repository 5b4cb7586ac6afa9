//! State store throughput: a plain `BTreeMap` (the ceiling), `MemoryStore` and `RedbStore`.
//!
//! Run: `cargo run --release -p benches --bin stores_bench [-- KEYS]` (default 1,000,000 keys).
//! Files go to a fresh directory under /tmp, removed at the end.
//!
//! Measured, with 8-byte keys in random order and 100-byte values:
//! - changelog apply: every key written once through `apply` in batches of 1,000 and 10,000
//!   records, each batch carrying its changelog offset; redb groups batches into non-durable
//!   commits (default `RedbOptions`: up to 100,000 records, `STORES_BENCH_GROUP`) and commits
//!   durably (`flush`) every 500,000 records (`STORES_BENCH_FLUSH_EVERY`), inside the timing;
//! - gets: every key read once, in another random order;
//! - single puts: 100,000 `apply` calls of one overwrite each, then a flush;
//! - durable commit: `flush` after a 1,000-record batch, and an `apply` of one record with
//!   durable batches, median of 50.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stores::{MemoryStore, RedbOptions, RedbStore, Store, WriteBatch};

const VALUE_LEN: usize = 100;
const SINGLE_PUTS: usize = 100_000;
const DURABLE_SAMPLES: usize = 50;

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Key `i`: a bijective scramble of `i`, so keys are distinct and arrive in random order.
fn key(i: u64) -> [u8; 8] {
    splitmix(i).to_be_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0u8; VALUE_LEN];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

/// CPU time of this thread (Linux): the machine is shared, so wall time alone overstates costs
/// whenever other processes take the cores.
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Wall-clock and CPU time of one measured phase.
#[derive(Clone, Copy, Debug)]
struct Span {
    wall: Duration,
    cpu: Duration,
}

struct Clock {
    wall: Instant,
    cpu: Duration,
}

impl Clock {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    fn stop(&self) -> Span {
        Span {
            wall: self.wall.elapsed(),
            cpu: cpu_time().saturating_sub(self.cpu),
        }
    }
}

fn per_sec(n: usize, d: Duration) -> String {
    let per_sec = n as f64 / d.as_secs_f64();
    if per_sec >= 1e6 {
        format!("{:.2} M", per_sec / 1e6)
    } else {
        format!("{:.0} k", per_sec / 1e3)
    }
}

/// "wall rate (CPU-time rate)" per second.
fn rate(n: usize, span: Span) -> String {
    format!("{} ({})", per_sec(n, span.wall), per_sec(n, span.cpu))
}

struct Row {
    what: String,
    btree: String,
    memory: String,
    redb: String,
}

fn print_rows(rows: &[Row]) {
    println!("Rates per second as wall clock (CPU time of the benchmark thread).\n");
    println!("| measure | BTreeMap (ceiling) | MemoryStore | RedbStore |");
    println!("|---|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} | {} |", r.what, r.btree, r.memory, r.redb);
    }
}

/// Records between durable commits while loading (`STORES_BENCH_FLUSH_EVERY`, default 500,000).
fn flush_every() -> usize {
    std::env::var("STORES_BENCH_FLUSH_EVERY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500_000)
}

/// Options of the loaded redb stores, for comparisons: `STORES_BENCH_GROUP=N` sets the commit
/// group (records per non-durable commit; 1 commits every batch), and
/// `STORES_BENCH_DURABLE_BATCHES=1` makes every batch a durable commit.
fn redb_options() -> RedbOptions {
    let mut options = RedbOptions::new();
    if let Some(group) = std::env::var("STORES_BENCH_GROUP")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        options = options.group_records(group);
    }
    let durable = std::env::var("STORES_BENCH_DURABLE_BATCHES").is_ok_and(|v| v == "1");
    options.durable_batches(durable)
}

/// Writes keys `0..n` through `apply` in batches of `batch`, flushing every `flush_every()`.
fn load(store: &dyn Store, n: u64, batch: usize) -> Span {
    let flush_every = flush_every();
    let started = Clock::start();
    let mut since_flush = 0;
    let mut b = WriteBatch::with_capacity(batch);
    for i in 0..n {
        b.put((i % 4) as i32, key(i), value(i));
        if b.len() == batch || i + 1 == n {
            // Partition p's last changelog record in this batch: offsets are record numbers.
            for p in 0..4 {
                b.set_offset(p, i as i64);
            }
            since_flush += b.len();
            store
                .apply(std::mem::replace(&mut b, WriteBatch::with_capacity(batch)))
                .unwrap();
            if since_flush >= flush_every {
                store.flush().unwrap();
                since_flush = 0;
            }
        }
    }
    store.flush().unwrap();
    started.stop()
}

fn gets(store: &dyn Store, n: u64) -> Span {
    let started = Clock::start();
    for j in 0..n {
        let i = splitmix(j ^ 0x5555) % n;
        let v = store.get((i % 4) as i32, &key(i)).unwrap();
        assert!(v.is_some());
        black_box(v);
    }
    started.stop()
}

fn single_puts(store: &dyn Store, n: u64) -> Span {
    let started = Clock::start();
    for j in 0..SINGLE_PUTS as u64 {
        let i = splitmix(j ^ 0xaaaa) % n;
        let mut b = WriteBatch::with_capacity(1);
        b.put((i % 4) as i32, key(i), value(j));
        store.apply(b).unwrap();
    }
    store.flush().unwrap();
    started.stop()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Median cost of a durable commit: a flush after 1,000 non-durable records, and a one-record
/// apply with durable batches.
fn durable_costs(dir: &Path) -> (Duration, Duration) {
    let store = RedbStore::open(dir, "durable").unwrap();
    let mut flushes = Vec::new();
    for s in 0..DURABLE_SAMPLES as u64 {
        let mut b = WriteBatch::with_capacity(1000);
        for i in s * 1000..(s + 1) * 1000 {
            b.put(0, key(i), value(i));
        }
        b.set_offset(0, s as i64);
        store.apply(b).unwrap();
        let started = Instant::now();
        store.flush().unwrap();
        flushes.push(started.elapsed());
    }
    drop(store);
    let options = RedbOptions::new().durable_batches(true);
    let store = RedbStore::open_with(dir, "durable-each", options).unwrap();
    let mut applies = Vec::new();
    for s in 0..DURABLE_SAMPLES as u64 {
        let mut b = WriteBatch::new();
        b.put(0, key(s), value(s)).set_offset(0, s as i64);
        let started = Instant::now();
        store.apply(b).unwrap();
        applies.push(started.elapsed());
    }
    (median(flushes), median(applies))
}

fn btree_ceiling(n: u64) -> (Span, Span) {
    let mut map = BTreeMap::new();
    let started = Clock::start();
    for i in 0..n {
        map.insert(key(i).to_vec(), value(i));
    }
    let puts = started.stop();
    let started = Clock::start();
    for j in 0..n {
        let i = splitmix(j ^ 0x5555) % n;
        black_box(map.get(key(i).as_slice()).unwrap());
    }
    (puts, started.stop())
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("KEYS must be a number"))
        .unwrap_or(1_000_000);
    let dir = TempDir(std::env::temp_dir().join(format!("stores-bench-{}", std::process::id())));
    println!(
        "stores_bench: {n} keys, 8-byte keys, {VALUE_LEN}-byte values, {} cores, files in {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.0.display()
    );

    let (btree_puts, btree_gets) = btree_ceiling(n);
    let n_us = n as usize;
    let mut rows = Vec::new();

    let mut apply_rows = Vec::new();
    for batch in [1_000usize, 10_000] {
        let memory = MemoryStore::new();
        let mem_load = load(&memory, n, batch);
        let redb = RedbStore::open_with(&dir.0, &format!("load-{batch}"), redb_options()).unwrap();
        let redb_load = load(&redb, n, batch);
        eprintln!("batch {batch}: memory {mem_load:?}\n    redb {redb_load:?}");
        apply_rows.push(Row {
            what: format!("changelog apply, batches of {batch} (records/s)"),
            btree: rate(n_us, btree_puts),
            memory: rate(n_us, mem_load),
            redb: rate(n_us, redb_load),
        });
        if batch == 1_000 {
            // Reads and single puts on the stores just loaded.
            let (mem_gets, redb_gets) = (gets(&memory, n), gets(&redb, n));
            rows.push(Row {
                what: format!("gets, {n} keys present (gets/s)"),
                btree: rate(n_us, btree_gets),
                memory: rate(n_us, mem_gets),
                redb: rate(n_us, redb_gets),
            });
            let (mem_puts, redb_puts) = (single_puts(&memory, n), single_puts(&redb, n));
            rows.push(Row {
                what: format!("single-put applies into {n} keys (puts/s)"),
                btree: rate(n_us, btree_puts),
                memory: rate(SINGLE_PUTS, mem_puts),
                redb: rate(SINGLE_PUTS, redb_puts),
            });
            let stats = redb.stats().unwrap();
            eprintln!(
                "redb file after load: {:.1} MB for {} entries",
                stats.file_bytes.unwrap_or(0) as f64 / 1e6,
                stats.entries()
            );
        }
    }
    rows.extend(apply_rows);
    let (flush, durable_apply) = durable_costs(&dir.0);
    rows.push(Row {
        what: "durable commit: flush after a 1,000-record batch (median)".into(),
        btree: "-".into(),
        memory: "0".into(),
        redb: fmt_ms(flush),
    });
    rows.push(Row {
        what: "durable commit: apply of 1 record with durable batches (median)".into(),
        btree: "-".into(),
        memory: "-".into(),
        redb: fmt_ms(durable_apply),
    });
    print_rows(&rows);
}
