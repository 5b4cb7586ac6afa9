#!/usr/bin/env bash
# benches/peers/run.sh — every comparison with our peers in one invocation, on one real Kafka
# broker with the same settings for every side: one table of figures and ratios on stdout and a
# machine-readable results file (benches/peers/results/DATE-MODE.tsv; report.py reads it back
# for the table, the plots and BENCHMARKS.md). Details and figures: benches/peers/README.md.
#
# Usage:
#   benches/peers/run.sh [--quick|--full] [--bootstrap HOST:PORT] [--only SECTIONS] [--out FILE]
#
#   --quick      (default) small inputs, short phases: under 10 minutes on the project machine
#   --full       the sizes the figures in BENCHMARKS.md use: under 45 minutes
#   --bootstrap  use this broker; without it one is started (scripts/kafka start peers) and
#                stopped, its data deleted, at the end
#   --only       comma-separated subset of: streams,state,join,latency,client (default: all), and
#                tuning and eos (not in the default): tuning runs the latency section again
#                with other settings of our agent (producer linger 0; commits only every 10 min
#                / 10^9 events) and of Kafka Streams' (linger 0), to show which setting costs
#                which latency; eos is the count by key under exactly-once and at-least-once
#
# Sections (each side is its own process, timed whole with bash `time`: start-up included):
#   streams  the stateless pipeline of benches/streams-vs-faust (JSON purchases, filter amount
#            >= 10, map, produce): ours (streams_bench) vs Kafka Streams (kstreams/, same
#            topology, the broker's version, defaults); events per CPU second, target ours
#            >= 2x Kafka Streams. --full adds ours vs faust-streaming on 200 k events
#            (benches/streams-vs-faust/run.sh on this broker). Both this and the count by key of
#            `state` also run crabka-client-streams (crabka/, a Rust Kafka Streams port over the
#            KIP-1071 streams group protocol, which Kafka 4.4 enables by default): side `crabka`,
#            built with `cargo +${PEERS_CRABKA_TOOLCHAIN:-nightly}` (it needs Rust 1.97; give up
#            on the build after PEERS_CRABKA_BUILD_TIMEOUT seconds, default never); when it
#            does not build or fails to run, its error is recorded (metric `error`) and shown in the
#            table instead of its figures, and the run goes on
#   state    a count by key in a table (benches/src/bin/table_bench.rs: redb, memory) vs Kafka
#            Streams groupByKey().count().toStream().to(OUTPUT) (RocksDB, in-memory store; its
#            record cache collapses both its changelog and its output to one record per key and
#            commit). Ours twice: side `ours` sends every new count to OUTPUT (none collapsed),
#            side `ours-table` only updates the table (--no-send): its changelog, collapsed by
#            our write cache, is the output, checked to end at every key's input count.
#            --full adds ours vs faust-streaming with a Table (faust_table.py, 50 k events);
#            and a hopping (5 min / 1 min) and a tumbling (5 min) windowed count on explicit
#            event times, 1 min of grace. Our `ours` side of each can be replaced by the command in
#            PEERS_OURS_COUNT_DURABLE, PEERS_OURS_COUNT_MEMORY, PEERS_OURS_WINDOW_HOPPING (run as
#            `CMD BOOTSTRAP INPUT OUTPUT N --app-id ID`, printing a line with `events=N`);
#            an empty one is reported as not written yet
#   latency  end to end (probe -> input -> stateless agent -> output -> probe) at fixed rates,
#            p50/p99/p99.9, and one event after 10 s idle: ours vs Kafka Streams vs faust
#            (benches/src/bin/latency_probe.rs)
#   join     a stream-table join: 10 k JSON user profiles (every tenth user has none) into a
#            table topic first, then N purchases (streams_bench prefill, keyed by username),
#            both 3 partitions; Kafka Streams `PeerStreams join` (builder.table + stream.join,
#            inner, RocksDB) vs ours `table_bench join` (TableBuilder::from_topic +
#            AgentBuilder::inner_join, redb), each writing {username, currency, amount, level,
#            country}; every output checked by `table_bench verify-join`; events per CPU
#            second, target ours >= 2x. --full: 1 M events, 2 rounds (the second in the other
#            order); --quick: 200 k, 1 round
#   eos      the count by key of `state` (ours: redb store) under exactly-once and at-least-once,
#            ours (table_bench --guarantee) and Kafka Streams' (processing.guarantee
#            exactly_once_v2 / at_least_once), at commit intervals of 100 ms and 2,800 ms
#            (ours: broker_commit_interval, with broker_commit_every out of the way so that the
#            interval alone decides, as commit.interval.ms does for Kafka Streams), then every
#            side at its own defaults; each output checked (read_committed: every key's final
#            count; ours: every count 1..n exactly once); targets ours EOS >= 3x Kafka Streams
#            EOS per CPU second, our EOS within 10 % of our ALO at 2.8 s and 30 % at 100 ms;
#            --full: 1 M events, 3 rounds (about 6 minutes); --quick: 200 k events, 1 round
#   client   producer and consumer records/s and CPU per record, 100 B and 1 KiB, none and lz4:
#            ours and the Java client (scripts/perf-compare), librdkafka in C (kcat, the Debian
#            package: installed with apt-get when missing; column librdkafka-c), librdkafka via
#            confluent-kafka's Python loop (client_confluent.py; column librdkafka) and rskafka
#            (rskafka/)
#
# At the end: the table (report.py) and the charts (plots.py, in the venv of requirements.txt
# here) in results/DATE-MODE-plots/ (git-ignored; the charts committed in plots/ are made from a
# committed results file: .venv/bin/python report.py plots results/FILE.tsv plots).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MODE=quick
BOOTSTRAP=""
ONLY="streams,state,join,latency,client"
OUT=""
while (( $# )); do
  case "$1" in
    --quick) MODE=quick; shift ;;
    --full) MODE=full; shift ;;
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
wants() { [[ ",$ONLY," == *",$1,"* ]]; }
for section in ${ONLY//,/ }; do
  case "$section" in
    streams|state|join|latency|client|tuning|eos) ;;
    *) echo "run.sh: unknown section '$section' in --only (streams, state, join, latency, client, tuning, eos)" >&2; exit 2 ;;
  esac
done
# The client section's prerequisites first (kcat is installed with apt-get if missing), so that
# a missing one stops the run before the long sections rather than after them.
if wants client; then "$HERE/client.sh" --prepare; fi

# Sizes per mode.
if [[ $MODE == quick ]]; then
  STATELESS_N=300000 STATE_N=200000 WINDOW_N=50000 FAUST_N=0
  LAT_RATES=1000,10000 LAT_SECS=5 CLIENT_N=300000 EOS_ROUNDS=1 JOIN_N=200000 JOIN_ROUNDS=1
else
  STATELESS_N=2000000 STATE_N=1000000 WINDOW_N=300000 FAUST_N=200000
  LAT_RATES=1000,10000,100000 LAT_SECS=15 CLIENT_N=2000000 EOS_ROUNDS=3 JOIN_N=1000000 JOIN_ROUNDS=2
fi
PARTITIONS=3
JOIN_USERS=10000
LAT_IDLE_SECS=10
WINDOW_STEP_MS=100

# shellcheck source=../lib.sh
source "$ROOT/benches/lib.sh"
WORK="$(mktemp -d)"
STARTED=0
cleanup() {
  if (( STARTED )); then "$ROOT/scripts/kafka" stop peers >/dev/null 2>&1 || true; rm -rf "$ROOT/.kafka/peers"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$HERE/results"
[[ -n "$OUT" ]] || OUT="$HERE/results/$(date -u +%Y-%m-%dT%H%M)-$MODE.tsv"
printf 'section\tcase\tsystem\tmetric\tvalue\n' >"$OUT"
# record SECTION CASE SYSTEM METRIC VALUE
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT"; }
say() { echo "run.sh: $*" >&2; }

# ---------------------------------------------------------------- build and set up

say "building the bench binaries (release)"
(cd "$ROOT" && cargo build --release -q -p benches --bin streams_bench --bin latency_probe --bin client_perf --bin table_bench)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
[[ "$BIN" = /* ]] || BIN="$ROOT/$BIN"
KS_CP="$("$HERE/kstreams/build.sh")"
# crabka-client-streams' side (crabka/, its own Cargo project and target directory): a failed
# build is recorded for its sides, not fatal.
CRABKA="" CRABKA_ERR=""
if wants streams || wants state; then
  say "building crabka-peer (release, benches/peers/crabka, cargo +${PEERS_CRABKA_TOOLCHAIN:-nightly})"
  # PEERS_CRABKA_BUILD_TIMEOUT (seconds, default none): give up on a build that takes longer
  # (about 500 crates, C among them: on a loaded machine it can take an hour or more)
  status=0
  (cd "$HERE/crabka" && CARGO_TARGET_DIR="$HERE/crabka/target" \
      timeout -k 10 "${PEERS_CRABKA_BUILD_TIMEOUT:-0}" cargo "+${PEERS_CRABKA_TOOLCHAIN:-nightly}" build --release --locked) \
    >"$HERE/crabka/build.log" 2>&1 || status=$?
  if (( status == 0 )); then
    CRABKA="$HERE/crabka/target/release/crabka-peer"
  elif (( status == 124 )); then
    CRABKA_ERR="build did not finish within ${PEERS_CRABKA_BUILD_TIMEOUT} s ($(grep -c '^ *Compiling' "$HERE/crabka/build.log" || true) crates compiled)"
  else
    CRABKA_ERR="build failed: $(grep -m1 -E '^error' "$HERE/crabka/build.log" || tail -n1 "$HERE/crabka/build.log")"
  fi
  [[ -z "$CRABKA_ERR" ]] || say "crabka-peer: $CRABKA_ERR (benches/peers/crabka/build.log); its sides are skipped"
fi
# crabka_cmd TOPOLOGY [ARGS..]: the side's command, or "!REASON" when it could not be built.
crabka_cmd() { if [[ -n "$CRABKA" ]]; then echo "$CRABKA $*"; else echo "!$CRABKA_ERR"; fi; }
KSTREAMS=(java -cp "$KS_CP" PeerStreams)
FAUST_VENV="$ROOT/benches/streams-vs-faust/.venv"
if wants latency || (( FAUST_N )); then
  ensure_venv "$FAUST_VENV" "$ROOT/benches/streams-vs-faust/requirements.txt"
fi
ensure_venv "$HERE/.venv" "$HERE/requirements.txt"
FAUST=("$FAUST_VENV/bin/python" "$ROOT/benches/streams-vs-faust/faust_pipeline.py")

if [[ -z "$BOOTSTRAP" ]]; then
  BOOTSTRAP="$(KAFKA_LOG_LEVEL=warn "$ROOT/scripts/kafka" start peers)"
  STARTED=1
fi
warm_offsets_topic
record meta run - mode "$MODE"
record meta run - commit "$(git -C "$ROOT" rev-parse --short HEAD)"
record meta run - date "$(date -u +%FT%TZ)"
record meta run - load_avg_start "$(cut -d' ' -f1 /proc/loadavg)"

# ---------------------------------------------------------------- streams and state

# Sides whose failure is recorded (metric `error`, its last line of stderr) instead of ending the
# run: peers we cannot fix.
SOFT_SIDES="crabka"

# streams_case SECTION CASE N PREFILL_FLAGS SIDE=CMD...: prefill N purchases into a fresh
# input topic, then run each side (as `CMD BOOTSTRAP INPUT OUTPUT N --app-id ID`) on it, one
# after the other, each into its own output topic; record events per CPU second. A CMD of
# "!REASON" records REASON as the side's error without running anything.
streams_case() {
  local section="$1" case="$2" n="$3" prefill_flags="$4"; shift 4
  local prefix="peers-$$-$case" spec side cmd line events expected
  create_topic "$prefix-in" "$PARTITIONS"
  # shellcheck disable=SC2086
  "$BIN/streams_bench" prefill "$BOOTSTRAP" "$prefix-in" "$n" --partitions "$PARTITIONS" $prefill_flags \
    >"$WORK/$case-prefill.out"
  expected="$(field "$(cat "$WORK/$case-prefill.out")" expected_outputs)"
  for spec in "$@"; do
    side="${spec%%=*}" cmd="${spec#*=}"
    if [[ -z "$cmd" ]]; then
      say "$case/$side: no command yet, skipped"
      record "$section" "$case" "$side" missing 1
      continue
    fi
    if [[ $cmd == '!'* ]]; then
      say "$case/$side: not run: ${cmd#!}"
      record "$section" "$case" "$side" error "${cmd#!}"
      continue
    fi
    say "$case/$side: $n events"
    create_topic "$prefix-out-$side" "$PARTITIONS"
    if [[ " $SOFT_SIDES " == *" $side "* ]]; then
      # A peer whose failures we cannot fix: its error is recorded, the run goes on.
      local TIMEFORMAT='%3R %3U %3S' reason
      # shellcheck disable=SC2086
      if ! { time $cmd "$BOOTSTRAP" "$prefix-in" "$prefix-out-$side" "$n" --app-id "$prefix-$side" \
            >"$WORK/$case-$side.out" 2>"$WORK/$case-$side.err"; } 2>"$WORK/$case-$side.time"; then
        reason="$(grep -v '^[[:space:]]*$' "$WORK/$case-$side.err" | tail -n1 | tr '\t|' ' /' | cut -c1-400)"
        say "$case/$side failed: $reason"
        tail -n 20 "$WORK/$case-$side.err" >&2
        record "$section" "$case" "$side" error "$reason"
        continue
      fi
    else
      # shellcheck disable=SC2086
      timed "$case-$side" $cmd "$BOOTSTRAP" "$prefix-in" "$prefix-out-$side" "$n" --app-id "$prefix-$side"
    fi
    line="$(grep 'events=' "$WORK/$case-$side.out" | tail -n1)"
    events="$(field "$line" events)"
    if [[ "$events" != "$n" ]]; then
      say "$case/$side saw $events of $n events"
      [[ " $SOFT_SIDES " == *" $side "* ]] || exit 1
      record "$section" "$case" "$side" error "saw $events of $n events"; continue
    fi
    if [[ $case == stateless ]]; then
      local got
      got="$(outputs_in "$prefix-out-$side")"
      if [[ "$got" != "$expected" ]]; then
        say "$case/$side wrote $got records, expected $expected"
        [[ " $SOFT_SIDES " == *" $side "* ]] || exit 1
        record "$section" "$case" "$side" error "wrote $got records, expected $expected"; continue
      fi
    fi
    if [[ $section == state && $side == crabka && $case == count-* ]]; then
      # Its counts (8-byte longs, as Kafka Streams'): every key's must rise to its input count.
      if ! "$BIN/table_bench" verify-counts "$BOOTSTRAP" "$prefix-in" "$prefix-out-$side" --value-format long \
          >"$WORK/$case-$side.verify" 2>&1; then
        say "$case/$side: wrong counts:"; cat "$WORK/$case-$side.verify" >&2
        record "$section" "$case" "$side" error "wrong counts: $(tail -n1 "$WORK/$case-$side.verify" | cut -c1-300)"; continue
      fi
      echo "$case/$side $(grep '^verify ' "$WORK/$case-$side.verify")" >&2
      record "$section" "$case" "$side" verified_keys "$(field "$(grep '^verify ' "$WORK/$case-$side.verify")" keys)"
    fi
    if [[ $side == ours-table ]]; then
      # The table alone (--no-send): its changelog, collapsed by the write cache as Kafka
      # Streams' output is by its cache, must end at every key's input count.
      local changelog="$prefix-$side-counts-changelog"
      if ! "$BIN/table_bench" verify-counts "$BOOTSTRAP" "$prefix-in" "$changelog" --value-format json \
          >"$WORK/$case-$side.verify" 2>&1; then
        say "$case/$side: wrong counts in $changelog:"; cat "$WORK/$case-$side.verify" >&2; exit 1
      fi
      echo "$case/$side $(grep '^verify ' "$WORK/$case-$side.verify")" >&2
      record "$section" "$case" "$side" verified_keys "$(field "$(grep '^verify ' "$WORK/$case-$side.verify")" keys)"
    fi
    if [[ $section == eos ]]; then
      # Every key's final count, read_committed; ours sends every count: each exactly once.
      local verify_flags=(--value-format json --every-update)
      [[ $side == kstreams* ]] && verify_flags=(--value-format long)
      "$BIN/table_bench" verify-counts "$BOOTSTRAP" "$prefix-in" "$prefix-out-$side" "${verify_flags[@]}" \
        >"$WORK/$case-$side.verify" 2>&1 || { say "$case/$side: wrong counts:"; cat "$WORK/$case-$side.verify" >&2; exit 1; }
      local verified
      verified="$(grep '^verify ' "$WORK/$case-$side.verify")"
      echo "$case/$side $verified" >&2
      record "$section" "$case" "$side" verified_keys "$(field "$verified" keys)"
      record "$section" "$case" "$side" txn_markers "$(field "$verified" markers)"
    fi
    line="$line $(cpu_fields "$case-$side" "$n")"
    echo "$line" >&2
    record "$section" "$case" "$side" events "$n"
    record "$section" "$case" "$side" outputs "$(field "$line" outputs)"
    record "$section" "$case" "$side" cpu_s "$(field "$line" cpu_s)"
    record "$section" "$case" "$side" wall_s "$(field "$line" wall_s)"
    record "$section" "$case" "$side" ev_per_cpu_s "$(field "$line" ev_per_cpu_s)"
    record "$section" "$case" "$side" ev_per_wall_s "$(field "$line" ev_per_wall_s)"
    # Our table sides print the records they added to their changelog.
    [[ -z "$(field "$line" changelog)" ]] || record "$section" "$case" "$side" changelog "$(field "$line" changelog)"
  done
}

if wants streams; then
  streams_case streams stateless "$STATELESS_N" "" "ours=$BIN/streams_bench" "kstreams=${KSTREAMS[*]} stateless" \
    "crabka=$(crabka_cmd stateless)"
  if (( FAUST_N )); then
    say "stateless vs faust: benches/streams-vs-faust/run.sh --records $FAUST_N"
    "$ROOT/benches/streams-vs-faust/run.sh" --records "$FAUST_N" --bootstrap "$BOOTSTRAP" >"$WORK/svf.out"
    cat "$WORK/svf.out" >&2
    for side in rust-streams:ours faust:faust; do
      line="$(grep "^${side%%:*} " "$WORK/svf.out")"
      for key in events outputs cpu_s wall_s ev_per_cpu_s ev_per_wall_s; do
        record streams "stateless-vs-faust" "${side#*:}" "$key" "$(field "$line" "$key")"
      done
    done
  fi
fi
if wants state; then
  mkdir -p "$WORK/redb"
  mkdir -p "$WORK/redb-table"
  streams_case state count-durable "$STATE_N" "" \
    "ours=${PEERS_OURS_COUNT_DURABLE-$BIN/table_bench count --store redb://$WORK/redb}" \
    "ours-table=$BIN/table_bench count --no-send --store redb://$WORK/redb-table" \
    "kstreams=${KSTREAMS[*]} count-rocksdb" "crabka=$(crabka_cmd count-turso --state-dir "$WORK/crabka-turso")"
  streams_case state count-memory "$STATE_N" "" \
    "ours=${PEERS_OURS_COUNT_MEMORY-$BIN/table_bench count}" \
    "ours-table=$BIN/table_bench count --no-send" "kstreams=${KSTREAMS[*]} count-memory" \
    "crabka=$(crabka_cmd count-memory)"
  if (( FAUST_N )); then
    streams_case state count-vs-faust 50000 "" "ours=$BIN/table_bench count" \
      "faust=$FAUST_VENV/bin/python $ROOT/benches/streams-vs-faust/faust_table.py"
  fi
  streams_case state window-hopping "$WINDOW_N" "--event-time-step-ms $WINDOW_STEP_MS" \
    "ours=${PEERS_OURS_WINDOW_HOPPING-$BIN/table_bench window-hopping}" \
    "kstreams=${KSTREAMS[*]} window-hopping"
  streams_case state window-tumbling "$WINDOW_N" "--event-time-step-ms $WINDOW_STEP_MS" \
    "ours=$BIN/table_bench window-tumbling" "kstreams=${KSTREAMS[*]} window-tumbling"
fi

if wants eos; then
  # ours-alo / ours-eos: table_bench count with a redb store (each side its own directory);
  # kstreams-alo / kstreams-eos: PeerStreams count-rocksdb. One prefilled input per case and
  # round; EOS_ROUNDS rounds (the shared machine's noise is larger than the differences
  # looked for), the order of ALO and EOS swapped every other round.
  for round in $(seq 1 "$EOS_ROUNDS"); do
    for ms in 100 2800 defaults; do
      if [[ $ms == defaults ]]; then
        # Every side at its defaults: ours 2.8 s or 10,000 events; Kafka Streams 30 s (ALO),
        # 100 ms (EOS).
        ours="" ks="" case="count-defaults-r$round"
      else
        # broker_commit_every 10^9: the interval alone triggers our commits, as
        # commit.interval.ms alone does Kafka Streams'
        ours="--commit-interval-ms $ms --commit-every 1000000000" ks="--commit-interval-ms $ms"
        case="count-commit-${ms}ms-r$round"
      fi
      mkdir -p "$WORK/$case-alo" "$WORK/$case-eos"
      sides=(
        "ours-alo=$BIN/table_bench count --store redb://$WORK/$case-alo --guarantee at_least_once $ours"
        "ours-eos=$BIN/table_bench count --store redb://$WORK/$case-eos --guarantee exactly_once $ours"
        "kstreams-alo=${KSTREAMS[*]} count-rocksdb --guarantee at_least_once $ks"
        "kstreams-eos=${KSTREAMS[*]} count-rocksdb --guarantee exactly_once_v2 $ks"
      )
      if (( round % 2 == 0 )); then sides=("${sides[1]}" "${sides[0]}" "${sides[3]}" "${sides[2]}"); fi
      streams_case eos "$case" "$STATE_N" "" "${sides[@]}"
    done
  done
fi

# ---------------------------------------------------------------- stream-table join

# join_side CASE SIDE CMD...: run one side of the join (as `CMD BOOTSTRAP INPUT OUTPUT N --app-id
# ID`) on the inputs of join_section into its own output topic, check its output, record it.
join_side() {
  local case="$1" side="$2"; shift 2
  local out="$JOIN_PREFIX-out-$case-$side" line events verified
  say "$case/$side: $JOIN_N events"
  create_topic "$out" "$PARTITIONS"
  timed "$case-$side" "$@" "$BOOTSTRAP" "$JOIN_PREFIX-purchases" "$out" "$JOIN_N" --app-id "$JOIN_PREFIX-$case-$side"
  line="$(grep 'events=' "$WORK/$case-$side.out" | tail -n1)"
  events="$(field "$line" events)"
  [[ "$events" == "$JOIN_N" ]] || { say "$case/$side saw $events of $JOIN_N events"; exit 1; }
  "$BIN/table_bench" verify-join "$BOOTSTRAP" "$JOIN_PREFIX-profiles" "$JOIN_PREFIX-purchases" "$out" \
    >"$WORK/$case-$side.verify" 2>&1 || { say "$case/$side: wrong output:"; cat "$WORK/$case-$side.verify" >&2; exit 1; }
  verified="$(grep '^verify-join ' "$WORK/$case-$side.verify")"
  [[ "$(field "$verified" output)" == "$(field "$line" outputs)" ]] \
    || { say "$case/$side: reported $(field "$line" outputs) outputs, the topic holds: $verified"; exit 1; }
  line="$line $(cpu_fields "$case-$side" "$JOIN_N")"
  echo "$case/$side $line" >&2
  record join "$case" "$side" events "$JOIN_N"
  record join "$case" "$side" outputs "$(field "$verified" output)"
  for key in cpu_s wall_s ev_per_cpu_s ev_per_wall_s; do record join "$case" "$side" "$key" "$(field "$line" "$key")"; done
}

if wants join; then
  JOIN_PREFIX="peers-$$-join"
  create_topic "$JOIN_PREFIX-profiles" "$PARTITIONS"
  create_topic "$JOIN_PREFIX-purchases" "$PARTITIONS"
  "$BIN/table_bench" fill-profiles "$BOOTSTRAP" "$JOIN_PREFIX-profiles" --users "$JOIN_USERS" >"$WORK/join-profiles.out"
  JOIN_PROFILES="$(field "$(cat "$WORK/join-profiles.out")" profiles)"
  "$BIN/streams_bench" prefill "$BOOTSTRAP" "$JOIN_PREFIX-purchases" "$JOIN_N" --partitions "$PARTITIONS" >"$WORK/join-prefill.out"
  say "join: $JOIN_PROFILES profiles, then $JOIN_N purchases; $JOIN_ROUNDS round(s)"
  for round in $(seq 1 "$JOIN_ROUNDS"); do
    mkdir -p "$WORK/join-r$round-redb"
    ours=("$BIN/table_bench" join --store "redb://$WORK/join-r$round-redb" --profiles "$JOIN_PREFIX-profiles" --wait-profiles "$JOIN_PROFILES")
    ks=("${KSTREAMS[@]}" join --profiles "$JOIN_PREFIX-profiles")
    if (( round % 2 )); then
      join_side "stream-table-r$round" ours "${ours[@]}"
      join_side "stream-table-r$round" kstreams "${ks[@]}"
    else
      join_side "stream-table-r$round" kstreams "${ks[@]}"
      join_side "stream-table-r$round" ours "${ours[@]}"
    fi
  done
  record meta run - load_avg_after_join "$(cut -d' ' -f1 /proc/loadavg)"
fi

# ---------------------------------------------------------------- end-to-end latency

# latency_side SYSTEM AGENT_CMD...: start the agent on fresh topics, drive it with the probe,
# stop the agent (it exits by itself once it has seen every event; killed if the probe gave up).
# AGENT_EXTRA (an array) is appended to the agent's arguments.
AGENT_EXTRA=()
latency_side() {
  local system="$1"; shift
  local prefix="peers-$$-lat-$system" n pid
  create_topic "$prefix-in" "$PARTITIONS"
  create_topic "$prefix-out" "$PARTITIONS"
  n="$("$BIN/latency_probe" plan --rates "$LAT_RATES" --secs "$LAT_SECS")"
  say "latency/$system: rates $LAT_RATES, $LAT_SECS s each, then $LAT_IDLE_SECS s idle ($n events)"
  "$@" "$BOOTSTRAP" "$prefix-in" "$prefix-out" "$n" --app-id "$prefix" ${AGENT_EXTRA[@]+"${AGENT_EXTRA[@]}"} \
    >"$WORK/lat-$system.agent.out" 2>"$WORK/lat-$system.agent.err" &
  pid=$!
  "$BIN/latency_probe" run "$BOOTSTRAP" "$prefix-in" "$prefix-out" --rates "$LAT_RATES" \
    --secs "$LAT_SECS" --idle-secs "$LAT_IDLE_SECS" >"$WORK/lat-$system.out" 2>"$WORK/lat-$system.err" \
    || { say "latency/$system: the probe failed:"; tail -n 20 "$WORK/lat-$system.err" >&2; }
  local deadline=$(( SECONDS + 30 ))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    say "latency/$system: agent still running after the probe; stopping it"
    kill "$pid" 2>/dev/null || true
    sleep 2
    kill -9 "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  local line phase key
  while read -r line; do
    echo "$system $line" >&2
    phase="$(field "$line" phase)"
    for key in sent received send_rate p50_ms p99_ms p999_ms max_ms skipped; do
      # (an `if`, not `&&`: a missing last key must not become the function's failing status)
      if [[ -n "$(field "$line" "$key")" ]]; then
        record latency "$phase" "$system" "$key" "$(field "$line" "$key")"
      fi
    done
  done < <(grep '^latency ' "$WORK/lat-$system.out")
}

if wants latency; then
  latency_side ours "$BIN/streams_bench"
  latency_side kstreams "${KSTREAMS[@]}" stateless
  latency_side faust "${FAUST[@]}"
fi

if wants tuning; then
  AGENT_EXTRA=(--linger-ms 0)
  latency_side ours-linger0 "$BIN/streams_bench"
  latency_side kstreams-linger0 "${KSTREAMS[@]}" stateless
  AGENT_EXTRA=(--commit-interval-ms 600000 --commit-every 1000000000)
  latency_side ours-rare-commits "$BIN/streams_bench"
  AGENT_EXTRA=(--linger-ms 0 --commit-interval-ms 600000 --commit-every 1000000000)
  latency_side ours-linger0-rare-commits "$BIN/streams_bench"
  AGENT_EXTRA=()
fi

# ---------------------------------------------------------------- client

if wants client; then
  say "client section: see client.sh"
  "$HERE/client.sh" --bootstrap "$BOOTSTRAP" --records "$CLIENT_N" --tsv "$OUT" >&2
fi

record meta run - load_avg_end "$(cut -d' ' -f1 /proc/loadavg)"
python3 "$HERE/report.py" table "$OUT"
"$HERE/.venv/bin/python" "$HERE/report.py" plots "$OUT" "${OUT%.tsv}-plots" >&2
say "results in $OUT, charts in ${OUT%.tsv}-plots/"
