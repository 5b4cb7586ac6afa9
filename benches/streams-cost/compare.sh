#!/usr/bin/env bash
# The framework's CPU cost per event, two builds side by side: the stateless pipeline of
# benches/src/bin/streams_bench.rs (JSON decode, filter, map, produce) built from two
# commits, run alternately on the same input on one real broker.
#
#   benches/streams-cost/compare.sh --base REV [--records N] [--partitions P] [--rounds R] [--bootstrap HOST:PORT]
#
# Builds streams_bench at REV (in a temporary git worktree, its own target dir under
# .bench-base/) and at the working tree, then per round: prefills N records, runs BASE then
# NEW (each its own consumer group, each process timed whole with bash `time`), checks both
# wrote the expected outputs, and prints ev_per_cpu_s for each and NEW/BASE.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BASE_REV="" BASE_BIN="" RECORDS=2000000 PARTITIONS=3 ROUNDS=3 BOOTSTRAP="" STARTED=0
while (( $# )); do
  case "$1" in
    --base) BASE_REV="$2"; shift 2 ;;
    --base-bin) BASE_BIN="$2"; shift 2 ;; # a streams_bench already built at REV

    --records) RECORDS="$2"; shift 2 ;;
    --partitions) PARTITIONS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BASE_REV" ]] || { echo "compare.sh: --base REV is required" >&2; exit 2; }

BASE_DIR="$ROOT/.bench-base"
if [[ -z "$BASE_BIN" ]]; then
  echo "compare.sh: building streams_bench at $BASE_REV (release)" >&2
  mkdir -p "$BASE_DIR"
  git -C "$ROOT" worktree remove --force "$BASE_DIR/src" 2>/dev/null || true
  git -C "$ROOT" worktree add -q --detach "$BASE_DIR/src" "$BASE_REV"
  (cd "$BASE_DIR/src" && CARGO_TARGET_DIR="$BASE_DIR/target" cargo build --release -q -p benches --bin streams_bench)
  BASE_BIN="$BASE_DIR/target/release/streams_bench"
fi
echo "compare.sh: building streams_bench at the working tree (release)" >&2
(cd "$ROOT" && cargo build --release -q -p benches --bin streams_bench)
NEW_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/streams_bench"

# shellcheck source=../lib.sh
source "$ROOT/benches/lib.sh"
WORK="$(mktemp -d)"
cleanup() {
  (( STARTED )) && "$ROOT/scripts/kafka" stop cost >/dev/null 2>&1 || true
  git -C "$ROOT" worktree remove --force "$BASE_DIR/src" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
if [[ -z "$BOOTSTRAP" ]]; then
  BOOTSTRAP="$("$ROOT/scripts/kafka" start cost)"
  STARTED=1
fi
warm_offsets_topic

echo "# base $BASE_REV ($(git -C "$ROOT" rev-parse --short "$BASE_REV")) vs working tree ($(git -C "$ROOT" rev-parse --short HEAD)); $RECORDS records, $PARTITIONS partitions, broker $BOOTSTRAP"
for round in $(seq 1 "$ROUNDS"); do
  prefix="cost-$$-$round"
  create_topic "$prefix-in" "$PARTITIONS" # with its leader elected before the prefill's first batch
  "$NEW_BIN" prefill "$BOOTSTRAP" "$prefix-in" "$RECORDS" --partitions "$PARTITIONS" >"$WORK/prefill.out"
  expected="$(tr ' ' '\n' <"$WORK/prefill.out" | sed -n 's/^expected_outputs=//p')"
  for side in base new; do
    create_topic "$prefix-out-$side" "$PARTITIONS"
    bin="$BASE_BIN"; [[ $side == new ]] && bin="$NEW_BIN"
    timed "$side" "$bin" "$BOOTSTRAP" "$prefix-in" "$prefix-out-$side" "$RECORDS" --app-id "$prefix-$side"
    got="$(outputs_in "$prefix-out-$side")"
    [[ "$got" == "$expected" ]] || { echo "compare.sh: $side wrote $got, expected $expected" >&2; exit 1; }
  done
  b="$(cpu_s base)" n="$(cpu_s new)"
  awk -v b="$b" -v n="$n" -v r="$RECORDS" -v round="$round" 'BEGIN {
    printf "round=%d base_cpu_s=%.3f base_ev_per_cpu_s=%.0f new_cpu_s=%.3f new_ev_per_cpu_s=%.0f new_over_base=%.2f\n",
      round, b, r / b, n, r / n, b / n }'
done
