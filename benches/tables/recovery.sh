#!/usr/bin/env bash
# benches/tables/recovery.sh — how fast a table comes back: the recovery rate of a table of K
# keys from its changelog (memory store, redb store), and the time from a restart after SIGKILL
# to the first processed event with a redb store holding those K keys (benches/src/bin/
# table_bench.rs; figures in benches/tables/README.md and BENCHMARKS.md).
#
# Usage:
#   benches/tables/recovery.sh [--keys K] [--rounds R] [--bootstrap HOST:PORT] [--restart-only]
#                              [--guarantees G1,G2] [--kstreams]
#
# Without --bootstrap it starts its own broker (scripts/kafka start tables) and stops it.
# Per round: `table_bench recovery` with memory://, then with redb:// (a fresh directory:
# replays everything), then `table_bench first-event` on that redb store three times, each
# killed with SIGKILL once it has processed its event; the second and third are restarts after
# SIGKILL (static membership, `--instance-id`, so the group hands the partitions back at once).
#
# Then, per guarantee of --guarantees (default at_least_once,exactly_once): restarts after
# SIGKILL of a table of K keys built by the app itself (a count by key over K distinct keys,
# `table_bench fill-keys`, so that under exactly-once the changelog was written in
# transactions): `first-event --until K+1` builds it and is killed after its commit; two
# restarts killed after their commit; one killed right after its event, before any commit
# (under exactly-once: in an open transaction); one more restart, whose producer must first
# abort that transaction. Each line: ms from process start to the event processed.
# With --kstreams, Kafka Streams the same way (benches/peers/kstreams `PeerStreams
# first-event`: RocksDB, a kept state.dir, static membership, processing.guarantee
# at_least_once / exactly_once_v2, commit.interval.ms 2800, our default): restored= is what it
# replayed from the changelog before the event. --restart-only skips the first part.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
KEYS=1000000
ROUNDS=1
BOOTSTRAP=""
RESTART_ONLY=0
GUARANTEES=at_least_once,exactly_once
KSTREAMS=0
while (( $# )); do
  case "$1" in
    --keys) KEYS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    --restart-only) RESTART_ONLY=1; shift ;;
    --guarantees) GUARANTEES="$2"; shift 2 ;;
    --kstreams) KSTREAMS=1; shift ;;
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

if (( KSTREAMS )); then
  KS_CP="$("$ROOT/benches/peers/kstreams/build.sh")"
fi

# until_ready NAME CMD...: runs CMD in the background (output in $WORK/NAME.out) until it
# prints `ready` (10 minutes at most), SIGKILLs it, prints its first-event line (and built=).
until_ready() {
  local name="$1"; shift
  local out="$WORK/$name.out" pid
  "$@" >"$out" 2>&1 &
  pid=$!
  for _ in $(seq 1 12000); do
    grep -q '^ready' "$out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -q '^ready' "$out" || { tail -n 20 "$out" >&2; echo "recovery.sh: $name failed" >&2; exit 1; }
  local line built
  line="$(grep '^first-event ' "$out")"
  built="$(grep '^built ' "$out" | sed 's/^built /built_/; s/ secs=/ built_secs=/' || true)"
  echo "$line${built:+ $built}"
}

# restarts SYSTEM GUARANTEE CMD...: the build and the restarts described above; CMD runs as
# `CMD ... [--until N] [--no-commit]` (the last only for ours: Kafka Streams commits on its own).
restarts() {
  local system="$1" guarantee="$2"; shift 2
  local tag="$system-$guarantee"
  echo "$system $guarantee build (K+1 events)       $(until_ready "$tag-build" "$@" --until $(( KEYS + 1 )))"
  for run in 1 2; do
    echo "$system $guarantee restart after SIGKILL    $(until_ready "$tag-r$run" "$@")"
  done
  if [[ $system == ours ]]; then
    echo "$system $guarantee killed before its commit $(until_ready "$tag-open" "$@" --no-commit)"
    echo "$system $guarantee restart after that       $(until_ready "$tag-r3" "$@")"
  fi
}

echo "# table of $KEYS keys in 3 partitions; broker $BOOTSTRAP"
for round in $(seq 1 "$ROUNDS"); do
  (( RESTART_ONLY )) && break
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

for round in $(seq 1 "$ROUNDS"); do
  for guarantee in ${GUARANTEES//,/ }; do
    id="restart-$$-$round-$guarantee"
    "$BIN" fill-keys "$BOOTSTRAP" "$id-in" --keys "$KEYS" >/dev/null
    mkdir -p "$WORK/restart-$round-$guarantee"
    restarts ours "$guarantee" "$BIN" first-event --store "redb://$WORK/restart-$round-$guarantee" \
      "$BOOTSTRAP" --app-id "$id" --guarantee "$guarantee" --instance-id worker-1
    if (( KSTREAMS )); then
      ks_guarantee="$guarantee"
      [[ $guarantee == exactly_once ]] && ks_guarantee=exactly_once_v2
      ks_id="ks-$id"
      "$BIN" fill-keys "$BOOTSTRAP" "$ks_id-in" --keys "$KEYS" >/dev/null
      mkdir -p "$WORK/ks-state-$round-$guarantee"
      restarts kstreams "$guarantee" java -cp "$KS_CP" PeerStreams first-event "$BOOTSTRAP" "$ks_id-in" \
        unused-out 1 --app-id "$ks_id" --guarantee "$ks_guarantee" --commit-interval-ms 2800 \
        --state-dir "$WORK/ks-state-$round-$guarantee" --instance-id ks-worker-1
    fi
  done
done
