#!/usr/bin/env bash
# The mock broker's own CPU over repeated windowed-count runs against one instance, then idle.
# Each run adds a compacted changelog of ~0.5 M records; a broker whose background cleaner
# recompacted every log every second slowed down run after run (see BENCHMARKS.md "Mock
# cluster"). Usage: benches/mock-cleaner.sh [MOCK_BROKER_BINARY...] (default: the release
# build's). Needs `cargo build --release -p benches --bin table_bench --bin streams_bench
# -p testkit --bin mock-broker`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release"
RUNS="${RUNS:-4}"
(( $# )) || set -- "$BIN/mock-broker"
cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
for broker in "$@"; do
  port=$((19600 + RANDOM % 300))
  "$broker" --listen "127.0.0.1:$port" --partitions 3 >/dev/null 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  "$BIN/streams_bench" prefill "127.0.0.1:$port" wp-in 200000 --partitions 3 --event-time-step-ms 100 >/dev/null
  for r in $(seq "$RUNS"); do
    c0=$(cpu_s $pid); t0=$(date +%s.%N)
    out="$("$BIN/table_bench" window-hopping "127.0.0.1:$port" wp-in "wp-out-$r" 200000 --app-id "wp-$r" 2>&1)"
    t1=$(date +%s.%N); c1=$(cpu_s $pid)
    printf '%s run %s: wall %.1f s, broker cpu %.2f s, %s\n' "$broker" "$r" "$(echo "$t1 - $t0" | bc)" \
      "$(echo "$c1 - $c0" | bc)" "$(grep -o 'ev_per_cpu_s=[0-9.]*\|changelog=[0-9]*' <<<"$out" | tr '\n' ' ')"
  done
  c0=$(cpu_s $pid); sleep 20; c1=$(cpu_s $pid)
  printf '%s idle 20 s: broker cpu %.2f s\n' "$broker" "$(echo "$c1 - $c0" | bc)"
  kill $pid; wait $pid 2>/dev/null || true
done
