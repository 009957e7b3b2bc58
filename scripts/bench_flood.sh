#!/usr/bin/env bash
# A connection flood at systemd's default descriptor limit: a server started as
# the README starts it, under `prlimit --nofile=1024:1024`, on a small generated
# world; a new client's query latency (wrk, one connection) unloaded and then
# while bench/load/flood.py holds IDLE idle and HALF half-sent connections; the
# server's CPU time while the flood alone is held.
# REOPEN=1 (the default): the flood opens again what the server closes; 0: not.
# Usage: scripts/bench_flood.sh BIN [OUT_FILE]   (PORT=18282 IDLE=2000 HALF=200 DURATION=20s REOPEN=1)
set -euo pipefail
BIN=$1
OUT=${2:-/dev/null}
PORT=${PORT:-18282}
IDLE=${IDLE:-2000}
HALF=${HALF:-200}
DURATION=${DURATION:-20s}
REOPEN=${REOPEN:-1}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
PID=""
FLOOD=""
trap 'kill -9 $PID $FLOOD 2>/dev/null || true; rm -rf "$WORK"' EXIT
ulimit -n "$(ulimit -Hn)"  # the flood's own connections

"$BIN" generate --out "$WORK/src" --users 5000 --creators 200 --items 20000 --events 300000 --seed 5 >/dev/null
"$BIN" import --data "$WORK/data" --format native "$WORK/src" >/dev/null
"$BIN" batch --data "$WORK/data" >/dev/null
prlimit --nofile=1024:1024 "$BIN" serve --data "$WORK/data" --port "$PORT" > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 6000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.01; done
grep -m1 'file descriptors' "$WORK/server.log" | tee -a "$OUT"
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }  # utime + stime, in clock ticks
HZ=$(getconf CLK_TCK)

echo "unloaded:" | tee -a "$OUT"
USERS=5000 wrk -t1 -c1 -d"$DURATION" --latency -s "$HERE/bench/load/query.lua" "http://127.0.0.1:$PORT" 2>&1 |
  grep -E 'Requests/sec|^ +(50|90|99)%' | tee -a "$OUT"

python3 "$HERE/bench/load/flood.py" 127.0.0.1 "$PORT" 30 "$IDLE" "$HALF" "$REOPEN" > "$WORK/flood.txt" &
FLOOD=$!
sleep 5  # the flood is open
c0=$(cpu)
sleep 10
c1=$(cpu)
echo "flood alone ($IDLE idle + $HALF half-sent held), 10 s: server CPU $(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN {printf "%.1f", 100 * (b - a) / hz / 10}') % of a core" | tee -a "$OUT"
echo "under the flood:" | tee -a "$OUT"
USERS=5000 wrk -t1 -c1 -d10s --latency -s "$HERE/bench/load/query.lua" "http://127.0.0.1:$PORT" 2>&1 |
  grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors' | tee -a "$OUT"
wait $FLOOD || true
cat "$WORK/flood.txt" | tee -a "$OUT"
curl -fsS "http://127.0.0.1:$PORT/admin/stats" | grep -o '"connections":{[^}]*}' | tee -a "$OUT"
