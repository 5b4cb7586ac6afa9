//! Record batch codec throughput on one core: encode and decode of 1,000-record batches with
//! 100-byte values (no key, no headers, as Kafka's ProducerPerformance sends), for every codec.
//!
//! `cargo run --release -p benches --bin codec_bench [-- SECONDS_PER_CASE]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_client::protocol::record::{BatchBuilder, Compression, RecordBatches};

const RECORDS: usize = 1_000;
const VALUE_LEN: usize = 100;

/// Values of random capital letters (ProducerPerformance's payload), from a fixed seed.
fn values() -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..RECORDS)
        .map(|_| {
            (0..VALUE_LEN)
                .map(|_| {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    b'A' + ((x >> 33) % 26) as u8
                })
                .collect()
        })
        .collect()
}

fn encode(values: &[Vec<u8>], codec: Compression) -> Bytes {
    let mut builder =
        BatchBuilder::with_capacity(codec, RECORDS * (VALUE_LEN + 8)).producer(1, 0, 0);
    for (ts, v) in (1_700_000_000_000..).zip(values) {
        builder.append(ts, None, Some(v), &[]).expect("append");
    }
    builder.build().expect("build")
}

fn decode(batch: &Bytes) -> usize {
    let mut bytes = 0;
    for b in RecordBatches::new(batch.clone()) {
        for r in b.expect("batch").records().expect("records") {
            let r = r.expect("record");
            bytes += r.value.map_or(0, |v| v.len());
        }
    }
    bytes
}

/// Runs `f` (one batch per call) for at least `budget`; returns batches per second.
fn measure(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..20 {
        f(); // warm up caches and the allocator
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..10 {
            f();
        }
        n += 10;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);
    let values = values();
    println!(
        "{RECORDS}-record batches, {VALUE_LEN}-byte values, no keys or headers; one thread; \
         MB/s counts value bytes (10^6)"
    );
    println!(
        "| codec | batch bytes | encode records/s | encode MB/s | decode records/s | decode MB/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for codec in Compression::ALL {
        let batch = encode(&values, codec);
        assert_eq!(decode(&batch), RECORDS * VALUE_LEN, "{codec} round trip");
        let enc = measure(budget, || {
            black_box(encode(black_box(&values), codec));
        }) * RECORDS as f64;
        let dec = measure(budget, || {
            black_box(decode(black_box(&batch)));
        }) * RECORDS as f64;
        let mb = |records: f64| records * VALUE_LEN as f64 / 1e6;
        println!(
            "| {codec} | {} | {:.2} M | {:.0} | {:.2} M | {:.0} |",
            batch.len(),
            enc / 1e6,
            mb(enc),
            dec / 1e6,
            mb(dec)
        );
    }
}
