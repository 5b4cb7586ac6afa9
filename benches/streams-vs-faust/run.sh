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

# Python side: a venv with the pinned faust-streaming.
VENV="$HERE/.venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "run.sh: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
if ! cmp -s "$HERE/requirements.txt" "$VENV/.installed-requirements.txt"; then
  echo "run.sh: installing requirements.txt" >&2
  "$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$VENV/.installed-requirements.txt"
fi

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
# A fresh broker creates __consumer_offsets on the first group lookup (seconds of work);
# do that now so that neither timed run pays for it.
"$SCRIPTS_DIR/kafka" tool consumer-groups --bootstrap-server "$BOOTSTRAP" --describe \
  --group streams-vs-faust-warmup >/dev/null 2>&1 || true

# timed NAME CMD...: stdout to $WORK/NAME.out, "wall user sys" to $WORK/NAME.time
timed() {
  local name="$1"; shift
  local TIMEFORMAT='%3R %3U %3S'
  { time "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; } 2>"$WORK/$name.time" || {
    echo "run.sh: $name failed:" >&2; tail -n 20 "$WORK/$name.err" >&2; exit 1; }
}
cpu() { # NAME -> "wall_s=.. cpu_s=.. ev_per_wall_s=.. ev_per_cpu_s=.."
  read -r wall user sys < <(tail -n1 "$WORK/$1.time")
  awk -v u="$user" -v s="$sys" -v w="$wall" -v n="$RECORDS" \
    'BEGIN { printf "wall_s=%.3f user_s=%.3f sys_s=%.3f cpu_s=%.3f ev_per_wall_s=%.1f ev_per_cpu_s=%.1f", w, u, s, u + s, n / w, n / (u + s) }'
}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
outputs_in() { # TOPIC -> records in it (sum of end offsets)
  "$SCRIPTS_DIR/kafka" tool get-offsets --bootstrap-server "$BOOTSTRAP" --topic "$1" 2>/dev/null \
    | awk -F: '{ s += $NF } END { print s + 0 }'
}
create_topic() {
  "$SCRIPTS_DIR/kafka" tool topics --bootstrap-server "$BOOTSTRAP" --create --topic "$1" \
    --partitions "$PARTITIONS" --replication-factor 1 >/dev/null
}

echo "# $RECORDS JSON records (~100 bytes, keyed by username) in $PARTITIONS partitions; filter amount >= 10, map, produce; broker $BOOTSTRAP"
for round in $(seq 1 "$ROUNDS"); do
  prefix="svf-$$-$round"
  input="$prefix-in"
  "$RUST_BIN" prefill "$BOOTSTRAP" "$input" "$RECORDS" --partitions "$PARTITIONS" >"$WORK/prefill.out"
  expected="$(field "$(cat "$WORK/prefill.out")" expected_outputs)"
  # Output topics exist beforehand with the input's partition count: Faust does not create
  # the topics it sends to (the broker would auto-create them with 1 partition).
  create_topic "$prefix-out-rust"
  create_topic "$prefix-out-faust"

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
  rust_line="$(grep '^rust-streams ' "$WORK/rust.out") $(cpu rust)"
  faust_line="$(grep '^faust ' "$WORK/faust.out") $(cpu faust)"
  echo "$(cat "$WORK/prefill.out")"
  echo "$rust_line"
  echo "$faust_line"
  awk -v rw="$(field "$rust_line" ev_per_wall_s)" -v fw="$(field "$faust_line" ev_per_wall_s)" \
      -v rc="$(field "$rust_line" ev_per_cpu_s)" -v fc="$(field "$faust_line" ev_per_cpu_s)" \
    'BEGIN { printf "ratio events_per_s_rust_over_faust=%.1f events_per_cpu_s_rust_over_faust=%.1f target_per_cpu_s=20 %s\n", rw / fw, rc / fc, (rc / fc >= 20 ? "met" : "MISSED") }'
done
