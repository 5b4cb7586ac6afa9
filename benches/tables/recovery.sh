#!/usr/bin/env bash
# benches/tables/recovery.sh — how fast a table comes back: the recovery rate of a table of K
# keys from its changelog (memory store, redb store), and the time from a restart after SIGKILL
# to the first processed event with a redb store holding those K keys (benches/src/bin/
# table_bench.rs; figures in benches/tables/README.md and BENCHMARKS.md).
#
# Usage:
#   benches/tables/recovery.sh [--keys K] [--rounds R] [--bootstrap HOST:PORT]
#
# Without --bootstrap it starts its own broker (scripts/kafka start tables) and stops it.
# Per round: `table_bench recovery` with memory://, then with redb:// (a fresh directory:
# replays everything), then `table_bench first-event` on that redb store three times, each
# killed with SIGKILL once it has processed its event; the second and third are restarts after
# SIGKILL (static membership, `--instance-id`, so the group hands the partitions back at once).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
KEYS=1000000
ROUNDS=1
BOOTSTRAP=""
while (( $# )); do
  case "$1" in
    --keys) KEYS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    *) echo "recovery.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

(cd "$ROOT" && cargo build --release -q -p benches --bin table_bench)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/table_bench"
[[ "$BIN" = /* ]] || BIN="$ROOT/$BIN"

STARTED=0
WORK="$(mktemp -d)"
cleanup() {
  if (( STARTED )); then
    "$ROOT/scripts/kafka" stop tables >/dev/null 2>&1 || true
    rm -rf "$ROOT/.kafka/tables"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
if [[ -z "$BOOTSTRAP" ]]; then
  BOOTSTRAP="$("$ROOT/scripts/kafka" start tables)"
  STARTED=1
fi

echo "# table of $KEYS keys in 3 partitions; broker $BOOTSTRAP"
for round in $(seq 1 "$ROUNDS"); do
  id="tables-$$-$round"
  "$BIN" recovery "$BOOTSTRAP" --keys "$KEYS" --app-id "$id-memory" 2>/dev/null
  mkdir -p "$WORK/redb-$round"
  "$BIN" recovery --store "redb://$WORK/redb-$round" "$BOOTSTRAP" --keys "$KEYS" --app-id "$id-redb" 2>/dev/null
  for run in 1 2 3; do
    out="$WORK/first-$round-$run.out"
    "$BIN" first-event --store "redb://$WORK/redb-$round" "$BOOTSTRAP" --app-id "$id-redb" \
      --instance-id worker-1 >"$out" 2>&1 &
    pid=$!
    for _ in $(seq 1 1200); do grep -q '^ready' "$out" && break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    line="$(grep '^first-event ' "$out" || { tail -n 5 "$out" >&2; echo "first-event failed" >&2; exit 1; })"
    if (( run == 1 )); then
      echo "$line after a clean stop"
    else
      echo "$line after SIGKILL"
    fi
  done
done
