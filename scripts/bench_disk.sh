#!/usr/bin/env bash
# The disk a load needs: a server started as the README starts it on a small
# generated world takes DURATION of queries (wrk, 4 connections), then DURATION of
# feedback batches; after each, the data dir's store is measured as it sits on
# disk once the server has stopped and started again (its write-ahead log
# replayed into compressed table files): bytes per query (the audit record) and
# per event (the log entry, the viewer's follow-up state).
# Usage: scripts/bench_disk.sh BIN [OUT_FILE]   (PORT=18383 DURATION=20s)
set -euo pipefail
BIN=$1
OUT=${2:-/dev/null}
PORT=${PORT:-18383}
DURATION=${DURATION:-20s}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
PID=""
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$BIN" generate --out "$WORK/src" --users 5000 --creators 200 --items 20000 --events 300000 --seed 5 >/dev/null
"$BIN" import --data "$WORK/data" --format native "$WORK/src" >/dev/null
"$BIN" batch --data "$WORK/data" >/dev/null

start() {
  "$BIN" serve --data "$WORK/data" --port "$PORT" > "$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 6000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.01; done
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }
# The store as it sits once settled: stopped, started (the log replayed and
# flushed), stopped.
settled_bytes() { start; stop; du -sb "$WORK/data/db" | cut -f1; }
events() { curl -fsS "http://127.0.0.1:$PORT/admin/stats" | grep -o '"events":[0-9]*' | head -1 | cut -d: -f2; }

b0=$(settled_bytes)
start
queries=$(USERS=5000 wrk -t1 -c4 -d"$DURATION" -s "$HERE/bench/load/query.lua" "http://127.0.0.1:$PORT" 2>&1 |
  awk '/requests in/ {print $1}')
stop
b1=$(settled_bytes)
start
e0=$(events)
USERS=5000 ITEMS=20000 BATCH=100 wrk -t1 -c2 -d"$DURATION" -s "$HERE/bench/load/feedback.lua" "http://127.0.0.1:$PORT" >/dev/null 2>&1
e1=$(events)
stop
b2=$(settled_bytes)
awk -v q="$queries" -v b0="$b0" -v b1="$b1" -v b2="$b2" -v e="$((e1 - e0))" 'BEGIN {
  printf "queries: %d, store grew %.1f MB: %.0f bytes per query (audit record)\n", q, (b1 - b0) / 1e6, (b1 - b0) / q;
  printf "events: %d, store grew %.1f MB: %.0f bytes per event\n", e, (b2 - b1) / 1e6, (b2 - b1) / e }' | tee -a "$OUT"
echo "beside it: $(du -sh "$WORK/data/snapshots" | cut -f1) of snapshots ($(ls "$WORK/data/snapshots" | grep -c '^v') kept), $(du -sh "$WORK/data/state" 2>/dev/null | cut -f1) of live-state checkpoint, for a world of 5,000 users, 20,200 entities, 300,000 events" | tee -a "$OUT"
