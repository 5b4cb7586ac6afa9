// `#[tracing::instrument]` on crabka-client-streams' runtime makes futures deeper than the default
// type-layout limit (its own examples raise it the same way).
#![recursion_limit = "512"]
//! crabka-client-streams' side of benches/peers/run.sh: the same topologies as PeerStreams
//! (benches/peers/kstreams) and our streams_bench / table_bench, through crabka-client-streams'
//! DSL and its managed `KafkaStreams` runtime (a KIP-1071 streams group), every setting at its
//! default except the ones named here.
//!
//! ```text
//! crabka-peer TOPOLOGY BOOTSTRAP INPUT OUTPUT N [--app-id ID] [--state-dir DIR] [--stall-secs S]
//! ```
//!
//! TOPOLOGY is one of
//!   stateless     JSON purchases, keep amount >= 10, map to {username, currency, amount_cents},
//!                 produce keyed by username (JSON)
//!   count-memory  groupByKey().count() (the key's count as an 8-byte big-endian long, as Kafka
//!                 Streams' Serdes.Long()) with the default in-memory store backend
//!   count-turso   the same with its persistent backend (StoreBackend::Turso: a Turso/SQLite-format
//!                 file per store under --state-dir, default a fresh temporary directory)
//!
//! Runs until it has seen N input events, then closes the runtime (commits, leaves the group) and
//! prints `crabka-TOPOLOGY events=N outputs=K secs=.. ev_per_s=.. first_event_s=.. last_event_s=..`
//! like PeerStreams. Exits 1 with a message when no input event arrives for --stall-secs (default
//! 120) — the runtime logs its errors (tracing, level from RUST_LOG, default warn) and goes on, so
//! a stall is how a failure shows.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crabka_client_streams::processor::serde::SerdeAssociate;
use crabka_client_streams::{DefaultSerde, KafkaStreams, Serde, SerdeError, StoreBackend, StreamsBuilder};
use serde::{Deserialize, Serialize};

/// An input record, as benches/src/purchases.rs's Purchase.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Purchase {
    username: String,
    currency: String,
    amount: u32,
    note: String,
}

/// An output record of the stateless pipeline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Priced {
    username: String,
    currency: String,
    amount_cents: u64,
}

/// JSON through serde_json, as a user of the crate would write it (its own JSON serde needs a
/// schema registry).
struct Json<T>(PhantomData<fn() -> T>);

impl<T> Clone for Json<T> {
    fn clone(&self) -> Self {
        Json(PhantomData)
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Json(PhantomData)
    }
}

impl<T: Serialize + for<'de> Deserialize<'de> + Send + Sync + 'static> Serde<T> for Json<T> {
    fn serialize(&self, _topic: &str, value: &T) -> Bytes {
        Bytes::from(serde_json::to_vec(value).expect("a plain struct serializes"))
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        serde_json::from_slice(bytes).map_err(|e| SerdeError(format!("{topic}: {e}")))
    }
}

impl<T: Send + Sync + 'static> SerdeAssociate for Json<T> {
    type Target = T;
}

impl DefaultSerde for Purchase {
    type Serde = Json<Purchase>;
}

impl DefaultSerde for Priced {
    type Serde = Json<Priced>;
}

/// A `peek` that counts the records handed to the output topic's sink.
fn counter<V: 'static>(outputs: Arc<AtomicU64>) -> impl Fn(&String, &V) + Clone + Send + Sync + 'static {
    move |_k, _v| {
        outputs.fetch_add(1, Ordering::Relaxed);
    }
}

struct Args {
    topology: String,
    bootstrap: String,
    input: String,
    output: String,
    n: u64,
    app_id: String,
    state_dir: Option<std::path::PathBuf>,
    stall: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: crabka-peer stateless|count-memory|count-turso BOOTSTRAP INPUT OUTPUT N [--app-id ID] [--state-dir DIR] [--stall-secs S]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut positional = Vec::new();
    let (mut app_id, mut state_dir, mut stall) = ("crabka-bench".to_owned(), None, 120u64);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--app-id" => app_id = it.next().unwrap_or_else(|| usage()),
            "--state-dir" => state_dir = Some(it.next().unwrap_or_else(|| usage()).into()),
            "--stall-secs" => stall = it.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| usage()),
            other if other.starts_with("--") => {
                eprintln!("crabka-peer: unknown option {other}");
                usage()
            }
            _ => positional.push(arg),
        }
    }
    let [topology, bootstrap, input, output, n]: [String; 5] =
        positional.try_into().unwrap_or_else(|_| usage());
    Args {
        topology,
        bootstrap,
        input,
        output,
        n: n.parse().unwrap_or_else(|_| usage()),
        app_id,
        state_dir,
        stall: Duration::from_secs(stall),
    }
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let args = parse_args();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let events = Arc::new(AtomicU64::new(0));
    let outputs = Arc::new(AtomicU64::new(0));
    let first_ns = Arc::new(AtomicU64::new(0));
    let last_ns = Arc::new(AtomicU64::new(0));

    let builder = StreamsBuilder::new();
    let purchases = {
        let (events, first_ns, last_ns, n) = (events.clone(), first_ns.clone(), last_ns.clone(), args.n);
        builder
            .stream::<String, Purchase>([args.input.clone()])
            .peek(move |_k: &String, _v: &Purchase| {
                let count = events.fetch_add(1, Ordering::Relaxed) + 1;
                let now = started.elapsed().as_nanos() as u64;
                if count == 1 {
                    first_ns.store(now, Ordering::Relaxed);
                }
                if count == n {
                    last_ns.store(now, Ordering::Relaxed);
                }
            })
    };
    let backend = match args.topology.as_str() {
        "stateless" => {
            purchases
                .filter(|_k: &String, p: &Purchase| p.amount >= 10)
                .map_values(|p: &Purchase| Priced {
                    username: p.username.clone(),
                    currency: p.currency.clone(),
                    amount_cents: u64::from(p.amount) * 100,
                })
                .peek(counter(outputs.clone()))
                .to(args.output.clone());
            StoreBackend::InMemory
        }
        "count-memory" | "count-turso" => {
            purchases
                .group_by_key()
                .count("counts")
                .to_stream()
                .peek(counter(outputs.clone()))
                .to(args.output.clone());
            if args.topology == "count-turso" {
                let dir = args.state_dir.clone().unwrap_or_else(|| {
                    std::env::temp_dir().join(format!("crabka-peer-{}", std::process::id()))
                });
                StoreBackend::Turso { state_dir: dir }
            } else {
                StoreBackend::InMemory
            }
        }
        other => {
            eprintln!("crabka-peer: unknown topology {other}");
            usage()
        }
    };
    // Every KStream/KTable handle must be gone before `build` (it unwraps the builder's `Rc`).
    drop(purchases);
    let temp_state = match &backend {
        StoreBackend::Turso { state_dir } if args.state_dir.is_none() => Some(state_dir.clone()),
        _ => None,
    };

    let topology = match builder.build(&args.app_id) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("crabka-peer: building the topology failed: {e}");
            std::process::exit(1);
        }
    };
    let streams = match KafkaStreams::builder()
        .bootstrap(args.bootstrap.clone())
        .application_id(args.app_id.clone())
        .topology(topology)
        .store_backend(backend)
        .build()
        .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crabka-peer: starting KafkaStreams failed: {e} ({e:?})");
            std::process::exit(1);
        }
    };

    // Wait for N input events; give up when none arrives for --stall-secs.
    let (mut seen, mut progress_at) = (0, Instant::now());
    loop {
        let now_seen = events.load(Ordering::Relaxed);
        if now_seen >= args.n {
            break;
        }
        if now_seen != seen {
            (seen, progress_at) = (now_seen, Instant::now());
        } else if progress_at.elapsed() > args.stall {
            eprintln!(
                "crabka-peer: stalled: {seen} of {} input events after {:.1} s, none for {} s",
                args.n,
                started.elapsed().as_secs_f64(),
                args.stall.as_secs()
            );
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Err(e) = streams.close().await {
        eprintln!("crabka-peer: close failed: {e}");
        std::process::exit(1);
    }
    if let Some(dir) = temp_state {
        let _ = std::fs::remove_dir_all(dir);
    }
    let secs = started.elapsed().as_secs_f64();
    let events = events.load(Ordering::Relaxed);
    println!(
        "crabka-{} events={events} outputs={} secs={secs:.3} ev_per_s={:.1} first_event_s={:.3} last_event_s={:.3}",
        args.topology,
        outputs.load(Ordering::Relaxed),
        events as f64 / secs,
        first_ns.load(Ordering::Relaxed) as f64 / 1e9,
        last_ns.load(Ordering::Relaxed) as f64 / 1e9,
    );
}
