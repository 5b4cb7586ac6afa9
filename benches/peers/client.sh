#!/usr/bin/env bash
# benches/peers/client.sh — producer and consumer records/s and CPU per record of four clients
# on one broker with the same settings: ours and Kafka's Java client (scripts/perf-compare,
# which runs our client_perf and scripts/perf-java side by side), librdkafka through
# confluent-kafka (client_confluent.py, in the venv here) and rskafka (rskafka/, its own crate).
# For 100-byte and 1 KiB values (N and N/4 records), with compression none and lz4: acks=1,
# linger 5 ms, batch 64 KiB, no keys, a fresh one-partition topic per client; each consumer
# reads back what its own producer wrote.
#
# Usage:
#   benches/peers/client.sh --bootstrap HOST:PORT [--records N] [--sizes 100,1024]
#       [--compressions none,lz4] [--tsv FILE]
#
# Throughput: each tool's own timer (first send to last acknowledgement; consumer from its
# first fetch, Java's without its group join: perf-compare's fetch_rec_per_s). CPU: the client
# process's user + sys (bash `time`), start-up included, except Java's JVM start-up, which
# perf-compare measures and takes off (cpu_s_per_M_net). cpu_us_per_rec = CPU s per M records.
# Prints one line per client and case; with --tsv appends rows for report.py.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BOOTSTRAP="" RECORDS=2000000 SIZES=100,1024 COMPRESSIONS=none,lz4 TSV=""
while (( $# )); do
  case "$1" in
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    --records) RECORDS="$2"; shift 2 ;;
    --sizes) SIZES="$2"; shift 2 ;;
    --compressions) COMPRESSIONS="$2"; shift 2 ;;
    --tsv) TSV="$2"; shift 2 ;;
    *) echo "client.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BOOTSTRAP" ]] || { echo "client.sh: --bootstrap HOST:PORT is required" >&2; exit 2; }

# shellcheck source=../lib.sh
source "$ROOT/benches/lib.sh"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

ensure_venv "$HERE/.venv" "$HERE/requirements.txt"
echo "client.sh: building rskafka-perf (release, benches/peers/rskafka)" >&2
(cd "$HERE/rskafka" && cargo build --release -q)
RSKAFKA="$HERE/rskafka/target/release/rskafka-perf"
CONFLUENT=("$HERE/.venv/bin/python" "$HERE/client_confluent.py")

# emit CASE SYSTEM RECORDS REC_PER_S CPU_US_PER_REC
emit() {
  echo "client $1 $2 records=$3 rec_per_s=$4 cpu_us_per_rec=$5"
  if [[ -n "$TSV" ]]; then
    printf 'client\t%s\t%s\t%s\t%s\n' "$1" "$2" records "$3" "$1" "$2" rec_per_s "$4" \
      "$1" "$2" cpu_us_per_rec "$5" >>"$TSV"
  fi
}

# one_client SYSTEM SIZE COMP N CMD...: produce then consume with CMD (`CMD produce|consume
# BOOTSTRAP TOPIC --records N --record-size SIZE [--compression COMP]`) on a fresh topic.
one_client() {
  local system="$1" size="$2" comp="$3" n="$4"; shift 4
  local topic="peers-client-$$-$system-$size-$comp" side line
  create_topic "$topic" 1
  timed "$system-producer" "$@" produce "$BOOTSTRAP" "$topic" --records "$n" --record-size "$size" --compression "$comp"
  timed "$system-consumer" "$@" consume "$BOOTSTRAP" "$topic" --records "$n" --record-size "$size"
  for side in producer consumer; do
    line="$(grep "$side records=" "$WORK/$system-$side.out" | tail -n1)"
    emit "$side-${size}B-$comp" "$system" "$n" "$(field "$line" rec_per_s)" \
      "$(awk -v c="$(cpu_s "$system-$side")" -v n="$n" 'BEGIN { printf "%.3f", c / (n / 1000000) }')"
  done
}

IFS=, read -ra sizes <<<"$SIZES"
IFS=, read -ra comps <<<"$COMPRESSIONS"
for size in "${sizes[@]}"; do
  n="$RECORDS"; (( size >= 1024 )) && n=$(( RECORDS / 4 ))
  for comp in "${comps[@]}"; do
    echo "client.sh: $n records of $size B, compression $comp" >&2
    "$ROOT/scripts/perf-compare" --bootstrap "$BOOTSTRAP" --records "$n" --record-size "$size" \
      --compression "$comp" >"$WORK/perf-compare.out" 2>"$WORK/perf-compare.err" \
      || { tail -n 20 "$WORK/perf-compare.err" >&2; exit 1; }
    cat "$WORK/perf-compare.out" >&2
    for side in producer consumer; do
      line="$(grep "^rust-$side " "$WORK/perf-compare.out")"
      emit "$side-${size}B-$comp" ours "$n" "$(field "$line" rec_per_s)" "$(field "$line" cpu_s_per_M)"
      line="$(grep "^java-$side " "$WORK/perf-compare.out")"
      rate_key=rec_per_s; [[ $side == consumer ]] && rate_key=fetch_rec_per_s
      emit "$side-${size}B-$comp" java "$n" "$(field "$line" "$rate_key")" "$(field "$line" cpu_s_per_M_net)"
    done
    one_client librdkafka "$size" "$comp" "$n" "${CONFLUENT[@]}"
    one_client rskafka "$size" "$comp" "$n" "$RSKAFKA"
  done
done
