#!/usr/bin/env bash
# benches/streams-vs-faust/run.sh — the same stateless pipeline (consume JSON purchases, keep
# amount >= 10, map to {username, currency, amount_cents}, produce keyed by username) with our
# `streams` crate (benches/src/bin/streams_bench.rs) and with faust-streaming
# (faust_pipeline.py), one after the other in one run, on the same broker and the same input
# topic, each as its own process in its own consumer group from the earliest offsets until
# it has consumed N input events. Each process is timed with bash `time` (wall, user, sys):
# everything is included (process and interpreter start, imports, connecting, topic
# creation, group join, processing, graceful stop: sends acknowledged, offsets committed,
# group left). Prints both summary lines and the ratios. Figures: benches/STREAMS.md.
#
# Usage:
#   benches/streams-vs-faust/run.sh [--records N] [--partitions P] [--rounds R] [--bootstrap HOST:PORT]
#
# Without --bootstrap it starts its own broker (scripts/kafka start bench) and stops it.
# The first run makes .venv here (python3.11) and installs requirements.txt.
# Each round runs Rust then Faust on a fresh input topic; every round is printed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCRIPTS_DIR="$ROOT/scripts"
RECORDS=200000
PARTITIONS=3
ROUNDS=1
BOOTSTRAP=""
PYTHON="${PYTHON:-python3.11}"
while (( $# )); do
  case "$1" in
    --records) RECORDS="$2"; shift 2 ;;
    --partitions) PARTITIONS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# shellcheck source=../lib.sh
source "$ROOT/benches/lib.sh"

# Python side: a venv with the pinned faust-streaming.
VENV="$HERE/.venv"
ensure_venv "$VENV" "$HERE/requirements.txt"

# Rust side: release build.
echo "run.sh: building streams_bench (release)" >&2
(cd "$ROOT" && cargo build --release -q -p benches --bin streams_bench)
RUST_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/streams_bench"
[[ "$RUST_BIN" = /* ]] || RUST_BIN="$ROOT/$RUST_BIN"

STARTED=0
WORK="$(mktemp -d)"
cleanup() {
  (( STARTED )) && "$SCRIPTS_DIR/kafka" stop bench >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
if [[ -z "$BOOTSTRAP" ]]; then
  BOOTSTRAP="$("$SCRIPTS_DIR/kafka" start bench)"
  STARTED=1
fi
warm_offsets_topic

echo "# $RECORDS JSON records (~100 bytes, keyed by username) in $PARTITIONS partitions; filter amount >= 10, map, produce; broker $BOOTSTRAP"
for round in $(seq 1 "$ROUNDS"); do
  prefix="svf-$$-$round"
  input="$prefix-in"
  "$RUST_BIN" prefill "$BOOTSTRAP" "$input" "$RECORDS" --partitions "$PARTITIONS" >"$WORK/prefill.out"
  expected="$(field "$(cat "$WORK/prefill.out")" expected_outputs)"
  # Output topics exist beforehand with the input's partition count: Faust does not create
  # the topics it sends to (the broker would auto-create them with 1 partition).
  create_topic "$prefix-out-rust" "$PARTITIONS"
  create_topic "$prefix-out-faust" "$PARTITIONS"

  timed rust "$RUST_BIN" "$BOOTSTRAP" "$input" "$prefix-out-rust" "$RECORDS" --app-id "$prefix-rust"
  timed faust "$VENV/bin/python" "$HERE/faust_pipeline.py" "$BOOTSTRAP" "$input" "$prefix-out-faust" \
    "$RECORDS" --app-id "$prefix-faust"

  for side in rust faust; do
    got="$(outputs_in "$prefix-out-$side")"
    if [[ "$got" != "$expected" ]]; then
      echo "run.sh: $side wrote $got records to $prefix-out-$side, expected $expected" >&2
      exit 1
    fi
  done
  rust_line="$(grep '^rust-streams ' "$WORK/rust.out") $(cpu_fields rust "$RECORDS")"
  faust_line="$(grep '^faust ' "$WORK/faust.out") $(cpu_fields faust "$RECORDS")"
  echo "$(cat "$WORK/prefill.out")"
  echo "$rust_line"
  echo "$faust_line"
  awk -v rw="$(field "$rust_line" ev_per_wall_s)" -v fw="$(field "$faust_line" ev_per_wall_s)" \
      -v rc="$(field "$rust_line" ev_per_cpu_s)" -v fc="$(field "$faust_line" ev_per_cpu_s)" \
    'BEGIN { printf "ratio events_per_s_rust_over_faust=%.1f events_per_cpu_s_rust_over_faust=%.1f target_per_cpu_s=20 %s\n", rw / fw, rc / fc, (rc / fc >= 20 ? "met" : "MISSED") }'
done
