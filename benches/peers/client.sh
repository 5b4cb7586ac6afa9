#!/usr/bin/env bash
# benches/peers/client.sh — producer and consumer records/s and CPU per record of five clients
# on one broker with the same settings: ours and Kafka's Java client (scripts/perf-compare,
# which runs our client_perf and scripts/perf-java side by side), librdkafka in C through kcat
# (the librdkafka-c column), librdkafka through confluent-kafka's Python loop
# (client_confluent.py, in the venv here; the librdkafka column) and rskafka (rskafka/, its own
# crate).
# For 100-byte and 1 KiB values (N and N/4 records), with compression none and lz4: acks=1,
# linger 5 ms, batch 64 KiB, no keys, a fresh one-partition topic per client; each consumer
# reads back what its own producer wrote.
#
# Usage:
#   benches/peers/client.sh --bootstrap HOST:PORT [--records N] [--sizes 100,1024]
#       [--compressions none,lz4] [--tsv FILE]
#   benches/peers/client.sh --prepare      only the prerequisites (venv, rskafka build, kcat)
#
# Throughput: each tool's own timer (first send to last acknowledgement; consumer from its
# first fetch, Java's without its group join: perf-compare's fetch_rec_per_s), except kcat's,
# which has none: records / wall time of the whole kcat process (start-up, connection and exit
# included: against kcat). CPU: the client process's user + sys (bash `time`), start-up
# included, except Java's JVM start-up, which perf-compare measures and takes off
# (cpu_s_per_M_net). cpu_us_per_rec = CPU s per M records.
#
# kcat (Debian package kcat; installed with apt-get when missing) runs on the librdkafka that
# confluent-kafka's wheel bundles (LD_LIBRARY_PATH), so that both librdkafka columns are the
# same library; PEERS_KCAT_LIBRDKAFKA=system runs it on the system's librdkafka instead. Its
# producer reads pre-generated newline-delimited records from a file (`-l`), its consumer
# writes them to /dev/null and stops after N records (`-c N`, and `-e`: at the partition's end
# if fewer); the count produced is checked against the topic's end offset, the count consumed
# against kcat's end-of-partition report.
# Prints one line per client and case; with --tsv appends rows for report.py.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BOOTSTRAP="" RECORDS=2000000 SIZES=100,1024 COMPRESSIONS=none,lz4 TSV="" PREPARE=0
while (( $# )); do
  case "$1" in
    --prepare) PREPARE=1; shift ;;
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    --records) RECORDS="$2"; shift 2 ;;
    --sizes) SIZES="$2"; shift 2 ;;
    --compressions) COMPRESSIONS="$2"; shift 2 ;;
    --tsv) TSV="$2"; shift 2 ;;
    *) echo "client.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BOOTSTRAP" ]] || (( PREPARE )) || { echo "client.sh: --bootstrap HOST:PORT is required" >&2; exit 2; }

# shellcheck source=../lib.sh
source "$ROOT/benches/lib.sh"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

ensure_venv "$HERE/.venv" "$HERE/requirements.txt"
echo "client.sh: building rskafka-perf (release, benches/peers/rskafka)" >&2
(cd "$HERE/rskafka" && CARGO_TARGET_DIR="$HERE/rskafka/target" cargo build --release -q)
RSKAFKA="$HERE/rskafka/target/release/rskafka-perf"
CONFLUENT=("$HERE/.venv/bin/python" "$HERE/client_confluent.py")

# kcat: librdkafka's own command-line client, the librdkafka-c column.
if ! command -v kcat >/dev/null 2>&1; then
  echo "client.sh: kcat (librdkafka's command-line client, Debian package kcat) is missing: installing it with apt-get" >&2
  apt=(apt-get); (( EUID == 0 )) || apt=(sudo apt-get)
  { "${apt[@]}" install -y -q kcat >"$WORK/apt.log" 2>&1 \
      || { "${apt[@]}" update -q >>"$WORK/apt.log" 2>&1 && "${apt[@]}" install -y -q kcat >>"$WORK/apt.log" 2>&1; }; } \
    || { tail -n 20 "$WORK/apt.log" >&2
         echo "client.sh: could not install kcat; install it (apt-get install kcat, or from https://github.com/edenhill/kcat) and run again" >&2
         exit 1; }
fi
KCAT_LIB="$WORK/kcat-lib"
if [[ "${PEERS_KCAT_LIBRDKAFKA:-wheel}" != system ]]; then
  # The wheel's librdkafka under the soname kcat links to (librdkafka keeps its ABI within .so.1).
  wheel_lib=("$HERE"/.venv/lib/python*/site-packages/confluent_kafka.libs/librdkafka-*.so.1)
  [[ ${#wheel_lib[@]} == 1 && -f "${wheel_lib[0]}" ]] \
    || { echo "client.sh: no librdkafka in confluent-kafka's wheel (${wheel_lib[*]}); PEERS_KCAT_LIBRDKAFKA=system uses the system's" >&2; exit 1; }
  mkdir -p "$KCAT_LIB"
  ln -sf "${wheel_lib[0]}" "$KCAT_LIB/librdkafka.so.1"
fi
KCAT=(env "LD_LIBRARY_PATH=$KCAT_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" kcat)
KCAT_LIBRDKAFKA="$("${KCAT[@]}" -V 2>&1 | sed -n 's/.*librdkafka \([^ ]*\) .*/\1/p')"
CONFLUENT_LIBRDKAFKA="$("${CONFLUENT[0]}" -c 'import confluent_kafka; print(confluent_kafka.libversion()[0])')"
echo "client.sh: kcat on librdkafka $KCAT_LIBRDKAFKA, confluent-kafka on librdkafka $CONFLUENT_LIBRDKAFKA" >&2
(( PREPARE )) && exit 0
if [[ -n "$TSV" ]]; then
  printf 'meta\tclient\t%s\t%s\t%s\n' librdkafka-c kcat_librdkafka "$KCAT_LIBRDKAFKA" \
    librdkafka confluent_kafka_librdkafka "$CONFLUENT_LIBRDKAFKA" >>"$TSV"
fi

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

# kcat_client SIZE COMP N: kcat's producer sends N records of SIZE bytes (the same letters as
# the others' values) from a file, acks=1, linger 5 ms, batch 64 KiB, no idempotence (as
# client_confluent.py); its consumer reads them back from the earliest offset of partition 0
# (no group) to /dev/null and stops after N. Both timed whole, like every side.
kcat_client() {
  local size="$1" comp="$2" n="$3" system=librdkafka-c
  local topic="peers-client-$$-$system-$size-$comp" input="$WORK/kcat-records" got eof side wall
  awk -v n="$size" 'BEGIN { for (i = 0; i < n; i++) printf "%c", 97 + i % 26 }' >"$WORK/kcat-value"
  yes "$(cat "$WORK/kcat-value")" | head -n "$n" >"$input" || true
  got=$(( $(stat -c %s "$input") / (size + 1) ))
  [[ $got == "$n" ]] || { echo "client.sh: wrote $got of $n records to $input" >&2; exit 1; }
  create_topic "$topic" 1
  local TIMEFORMAT='%3R %3U %3S'
  { time "${KCAT[@]}" -P -b "$BOOTSTRAP" -t "$topic" -p 0 -X acks=1 -X linger.ms=5 -X batch.size=65536 \
      -X compression.type="$comp" -X enable.idempotence=false -X queue.buffering.max.messages=1000000 \
      -l "$input" >"$WORK/$system-producer.out" 2>"$WORK/$system-producer.err"; } 2>"$WORK/$system-producer.time" \
    || { echo "client.sh: kcat producer failed:" >&2; tail -n 20 "$WORK/$system-producer.err" >&2; exit 1; }
  rm -f "$input"
  got="$(outputs_in "$topic")"
  [[ "$got" == "$n" ]] || { echo "client.sh: kcat produced $got of $n records:" >&2; tail -n 20 "$WORK/$system-producer.err" >&2; exit 1; }
  { time "${KCAT[@]}" -C -b "$BOOTSTRAP" -t "$topic" -p 0 -o beginning -c "$n" -e \
      >/dev/null 2>"$WORK/$system-consumer.err"; } 2>"$WORK/$system-consumer.time" \
    || { echo "client.sh: kcat consumer failed:" >&2; tail -n 20 "$WORK/$system-consumer.err" >&2; exit 1; }
  # -c N stops at the Nth record; kcat reports the partition's end only if it got there first.
  eof="$(sed -n 's/.*Reached end of topic .* at offset \([0-9]*\).*/\1/p' "$WORK/$system-consumer.err")"
  [[ -z "$eof" || "$eof" == "$n" ]] || { echo "client.sh: kcat consumed $eof of $n records" >&2; exit 1; }
  for side in producer consumer; do
    read -r wall _ < <(tail -n1 "$WORK/$system-$side.time")
    emit "$side-${size}B-$comp" "$system" "$n" "$(awk -v n="$n" -v w="$wall" 'BEGIN { printf "%.1f", n / w }')" \
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
    kcat_client "$size" "$comp" "$n"
    one_client librdkafka "$size" "$comp" "$n" "${CONFLUENT[@]}"
    one_client rskafka "$size" "$comp" "$n" "$RSKAFKA"
  done
done
