#!/usr/bin/env bash
# benches/peers/kstreams/build.sh — compile PeerStreams.java with javac against the Kafka Streams
# jars of the broker's version (scripts/kafka classpath-of pom.xml) into target/classes, and print
# the classpath to run it with: java -cp "$(benches/peers/kstreams/build.sh)" PeerStreams ...
# Recompiles only when the source or the classpath changed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CP="$("$ROOT/scripts/kafka" classpath-of "$HERE/pom.xml")"
OUT="$HERE/target/classes"
STAMP="$OUT/.stamp"
want="$({ cat "$HERE"/src/*.java; echo "$CP"; } | sha256sum | cut -c1-16)"
if [[ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]]; then
  echo "kstreams/build.sh: compiling PeerStreams" >&2
  rm -rf "$OUT"
  mkdir -p "$OUT"
  javac -d "$OUT" -cp "$CP" -Xlint:all -Werror "$HERE"/src/*.java >&2
  echo "$want" >"$STAMP"
fi
# Tool logging (WARN to stderr) first, then our classes, then the jars.
echo "$ROOT/scripts/kafka-jars/tools-log4j:$OUT:$CP"
