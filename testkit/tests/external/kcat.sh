#!/usr/bin/env bash
# External-client check: kcat (librdkafka) against the mock-broker binary.
# Starts its own mock-broker, prints "N passed, M failed", exits non-zero on any failure.
# Needs kcat (Debian package "kcat"). MOCK_BROKER may name a prebuilt binary.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
command -v kcat >/dev/null || { echo "kcat not installed (apt-get install -y kcat)"; echo "0 passed, 1 failed"; exit 1; }

if [ -z "${MOCK_BROKER:-}" ]; then
  (cd "$repo" && cargo build -q -p testkit --bin mock-broker) || { echo "0 passed, 1 failed"; exit 1; }
  MOCK_BROKER="${CARGO_TARGET_DIR:-$repo/target}/debug/mock-broker"
fi

work="$(mktemp -d)"
"$MOCK_BROKER" --listen 127.0.0.1:0 --brokers 2 --partitions 3 >"$work/out" 2>"$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do [ -s "$work/out" ] && break; sleep 0.1; done
bootstrap="$(head -1 "$work/out")"
[ -n "$bootstrap" ] || { echo "mock-broker did not start:"; cat "$work/log"; echo "0 passed, 1 failed"; exit 1; }
echo "mock-broker at $bootstrap"

passed=0; failed=0
check() { # name, command...
  local name="$1"; shift
  if "$@" >"$work/check.out" 2>&1; then passed=$((passed + 1)); echo "ok   $name"
  else failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$work/check.out" | tail -20; fi
}

metadata_lists_brokers() {
  timeout 20 kcat -b "$bootstrap" -L >"$work/meta" 2>&1 && grep -q "2 brokers" "$work/meta"
}
produce_1000_keyed() {
  seq 1 1000 | sed 's/.*/key&:value&/' >"$work/sent"
  timeout 30 kcat -b "$bootstrap" -P -K: -t kcat-topic -X topic.request.required.acks=-1 <"$work/sent"
}
topic_has_3_partitions() {
  timeout 20 kcat -b "$bootstrap" -L -t kcat-topic >"$work/meta" 2>&1 && [ "$(grep -c 'partition [0-9]' "$work/meta")" = 3 ]
}
consume_all_back() {
  timeout 30 kcat -b "$bootstrap" -C -e -q -t kcat-topic -f '%k:%s\n' >"$work/got" || return 1
  [ "$(wc -l <"$work/got")" = 1000 ] || { echo "got $(wc -l <"$work/got") messages"; return 1; }
  diff <(sort "$work/sent") <(sort "$work/got")
}
same_key_same_partition() {
  timeout 30 kcat -b "$bootstrap" -C -e -q -t kcat-topic -f '%k %p\n' | sort -u >"$work/kp" || return 1
  [ "$(cut -d' ' -f1 "$work/kp" | sort -u | wc -l)" = "$(wc -l <"$work/kp")" ]
}
consume_from_offset() {
  local n
  n="$(timeout 30 kcat -b "$bootstrap" -C -e -q -t kcat-topic -p 0 -o 10 | wc -l)"
  local total
  total="$(timeout 30 kcat -b "$bootstrap" -C -e -q -t kcat-topic -p 0 | wc -l)"
  [ "$n" = $((total - 10)) ]
}
group_consumer_reads_all() {
  # librdkafka's balanced consumer: join, sync, fetch, commit.
  timeout 60 kcat -b "$bootstrap" -G kcat-group -X auto.offset.reset=earliest -q -e -f '%k:%s\n' kcat-topic >"$work/group" 2>"$work/group.err" || true
  [ "$(sort -u "$work/group" | wc -l)" = 1000 ] || { echo "group read $(sort -u "$work/group" | wc -l)"; cat "$work/group.err"; return 1; }
}
group_resumes_after_commit() {
  # The first run committed on exit: a second run of the same group reads only new messages.
  printf 'late:message\n' | timeout 30 kcat -b "$bootstrap" -P -K: -t kcat-topic || return 1
  timeout 60 kcat -b "$bootstrap" -G kcat-group -X auto.offset.reset=earliest -q -e -f '%k:%s\n' kcat-topic >"$work/group2" 2>"$work/group.err" || true
  [ "$(cat "$work/group2")" = "late:message" ] || { echo "second run read: $(wc -l <"$work/group2") lines"; cat "$work/group.err"; return 1; }
}

check "metadata lists the brokers (kcat -L)" metadata_lists_brokers
check "produce 1000 keyed messages (kcat -P -K:)" produce_1000_keyed
check "auto-created topic has 3 partitions" topic_has_3_partitions
check "consume the 1000 messages back (kcat -C -e)" consume_all_back
check "each key lands in one partition" same_key_same_partition
check "consume from an offset (kcat -o 10)" consume_from_offset
check "balanced consumer group reads everything (kcat -G)" group_consumer_reads_all
check "the group resumes after its committed offsets" group_resumes_after_commit

if grep -q "panicked" "$work/log"; then failed=$((failed + 1)); echo "FAIL mock-broker log has a panic"; fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
