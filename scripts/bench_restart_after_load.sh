#!/usr/bin/env bash
# A restart after heavy writing against one after a quiet stop, each timed from
# the `affinity serve` command to the first /readyz 200 (polled every 10 ms):
#   1. a server started as the README starts it on a generated world, stopped
#      cleanly and started again STARTS times (the quiet figure);
#   2. LOAD of mixed load (queries from wrk with 4 connections, feedback
#      batches of 100 events with 2), then a clean stop and a start;
#   3. the same load again, then kill -9 and a start.
# Each restart line quotes the write-ahead log on disk before it starts.
# Usage: scripts/bench_restart_after_load.sh BIN [OUT_FILE]   (PORT=18484 LOAD=300s STARTS=3)
set -euo pipefail
BIN=$1
OUT=${2:-/dev/null}
PORT=${PORT:-18484}
LOAD=${LOAD:-300s}
STARTS=${STARTS:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
PID=""
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
DATA=$WORK/data

"$BIN" generate --out "$WORK/src" --users 20000 --creators 500 --items 50000 --events 1000000 --seed 3 >/dev/null
"$BIN" import --data "$DATA" --format native "$WORK/src" >/dev/null
"$BIN" batch --data "$DATA" >/dev/null

wal_mb() { find "$DATA/db" -name '*.log' -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s / 1048576}'; }
timed_start() {
  local wal t0 t1
  wal=$(wal_mb)
  t0=$(date +%s.%N)
  "$BIN" serve --data "$DATA" --port "$PORT" > "$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 6000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.01; done
  t1=$(date +%s.%N)
  echo "$1: ready $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s after the command (write-ahead log on disk before it: $wal MB)" | tee -a "$OUT"
}
load() {
  USERS=20000 wrk -t1 -c4 -d"$LOAD" -s "$HERE/bench/load/query.lua" "http://127.0.0.1:$PORT" > "$WORK/q.txt" 2>&1 &
  local q=$!
  USERS=20000 ITEMS=50000 BATCH=100 wrk -t1 -c2 -d"$LOAD" -s "$HERE/bench/load/feedback.lua" "http://127.0.0.1:$PORT" > "$WORK/f.txt" 2>&1
  wait $q
  echo "load: $(grep -m1 'requests in' "$WORK/q.txt" | xargs) (queries); $(grep -m1 'events/s' "$WORK/f.txt")" | tee -a "$OUT"
}

timed_start "first start"
for i in $(seq 1 "$STARTS"); do
  kill $PID; wait $PID 2>/dev/null || true
  timed_start "after a quiet stop ($i)"
done
load
kill $PID; wait $PID 2>/dev/null || true
timed_start "after $LOAD of mixed load and a clean stop"
load
kill -9 $PID; wait $PID 2>/dev/null || true
timed_start "after $LOAD of mixed load and kill -9"
