# benches/lib.sh — shell helpers shared by the benchmark scripts; sourced, not run.
# The callers set WORK (a scratch directory) and BOOTSTRAP (host:port) and ROOT (the repo).

# timed NAME CMD...: runs CMD with stdout in $WORK/NAME.out, stderr in $WORK/NAME.err and
# "wall user sys" of the whole process (bash `time`: its children included) in $WORK/NAME.time.
# On failure it shows the end of stderr and exits.
timed() {
  local name="$1"; shift
  local TIMEFORMAT='%3R %3U %3S'
  { time "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; } 2>"$WORK/$name.time" || {
    echo "${0##*/}: $name failed:" >&2; tail -n 20 "$WORK/$name.err" >&2; exit 1; }
}

# cpu_s NAME: user + sys seconds of a `timed` run.
cpu_s() { read -r _ u s < <(tail -n1 "$WORK/$1.time"); awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }'; }

# cpu_fields NAME EVENTS: "wall_s=.. user_s=.. sys_s=.. cpu_s=.. ev_per_wall_s=.. ev_per_cpu_s=.."
cpu_fields() {
  local wall user sys
  read -r wall user sys < <(tail -n1 "$WORK/$1.time")
  awk -v u="$user" -v s="$sys" -v w="$wall" -v n="$2" \
    'BEGIN { printf "wall_s=%.3f user_s=%.3f sys_s=%.3f cpu_s=%.3f ev_per_wall_s=%.1f ev_per_cpu_s=%.1f", w, u, s, u + s, n / w, n / (u + s) }'
}

# field LINE KEY: the value of KEY=VALUE in a space-separated summary line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# outputs_in TOPIC: records in TOPIC (sum of its partitions' end offsets).
outputs_in() {
  "$ROOT/scripts/kafka" tool get-offsets --bootstrap-server "$BOOTSTRAP" --topic "$1" 2>/dev/null \
    | awk -F: '{ s += $NF } END { print s + 0 }'
}

# create_topic TOPIC PARTITIONS
create_topic() {
  "$ROOT/scripts/kafka" tool topics --bootstrap-server "$BOOTSTRAP" --create --topic "$1" \
    --partitions "$2" --replication-factor 1 >/dev/null
}

# warm_offsets_topic: a fresh broker creates __consumer_offsets on the first group lookup
# (seconds of work); doing it up front keeps it out of every timed run.
warm_offsets_topic() {
  "$ROOT/scripts/kafka" tool consumer-groups --bootstrap-server "$BOOTSTRAP" --describe \
    --group bench-warmup >/dev/null 2>&1 || true
}

# ensure_venv DIR REQUIREMENTS: a venv in DIR ($PYTHON, default python3.11) with the pinned
# requirements installed; reinstalls when the requirements file changes.
ensure_venv() {
  local venv="$1" req="$2"
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "${0##*/}: creating $venv" >&2
    "${PYTHON:-python3.11}" -m venv "$venv"
  fi
  if ! cmp -s "$req" "$venv/.installed-requirements.txt"; then
    echo "${0##*/}: installing $req into $venv" >&2
    "$venv/bin/pip" install -q -r "$req"
    cp "$req" "$venv/.installed-requirements.txt"
  fi
}
