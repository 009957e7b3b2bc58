#!/usr/bin/env bash
# Restarts of a server, each timed from the `affinity serve` command to the
# first /readyz 200 (polled every 10 ms), as a user meets them:
#   1. STARTS starts after a clean stop (its checkpoint covers every event),
#   2. one after kill -9 with a tail of events past the newest checkpoint
#      (3 s of feedback batches from bench/load/feedback.lua),
#   3. one with no checkpoint at all (the whole log replayed).
# Each line quotes the server's own log lines for the state and the snapshot.
# Usage: scripts/bench_restarts.sh BIN DATA_DIR [OUT_FILE]   (STARTS=5, PORT=18181)
# DATA_DIR is changed (events are added, its checkpoint removed): pass a copy.
set -euo pipefail
BIN=$1
DATA=$2
OUT=${3:-/dev/null}
PORT=${PORT:-18181}
STARTS=${STARTS:-5}
LOG=$(mktemp)
PID=""
trap 'if [ -n "$PID" ]; then kill -9 $PID 2>/dev/null || true; fi; rm -f "$LOG"' EXIT

timed_start() {
  local t0 t1
  t0=$(date +%s.%N)
  "$BIN" serve --data "$DATA" --port "$PORT" > "$LOG" 2>&1 &
  PID=$!
  for _ in $(seq 1 6000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.01; done
  t1=$(date +%s.%N)
  sleep 0.2  # the snapshot's line may follow the state's by a few ms
  echo "$1: ready $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s after the command;" \
    "$(grep -m1 'state loaded' "$LOG" || true); $(grep -m1 '^snapshot\|snapshot v[0-9]* loaded' "$LOG" || true)" | tee -a "$OUT"
}

# A server that has run stops cleanly first, so that its checkpoint is current.
"$BIN" serve --data "$DATA" --port "$PORT" > "$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 6000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.01; done
kill $PID; wait $PID 2>/dev/null || true
for i in $(seq 1 "$STARTS"); do
  timed_start "after a clean stop ($i)"
  kill $PID; wait $PID 2>/dev/null || true
done
timed_start "before a kill -9"
wrk -t1 -c4 -d3s -s bench/load/feedback.lua "http://127.0.0.1:$PORT" > /dev/null 2>&1
echo "events past the checkpoint: $(curl -sf "http://127.0.0.1:$PORT/admin/stats" | grep -o '"events_since":[0-9]*' || true)" | tee -a "$OUT"
kill -9 $PID; wait $PID 2>/dev/null || true
timed_start "after kill -9"
kill $PID; wait $PID 2>/dev/null || true
rm -f "$DATA/state/live.ckpt"
timed_start "without a checkpoint"
kill -9 $PID; wait $PID 2>/dev/null || true
PID=""
