#!/usr/bin/env bash
# Benchmarks: Google Benchmark micro benchmarks, then the medium world
# (100k users, 5k creators, 200k items, 5M events) served and loaded with wrk.
# Results go to $OUT (default build/bench-results). Figures belong in docs/benchmarks.md.
set -euo pipefail
BUILD=${1:-build}
OUT=${OUT:-$BUILD/bench-results}
MEDIUM=${MEDIUM:-data/bench-medium}
PORT=${PORT:-18181}
DURATION=${DURATION:-20s}
BIN=$BUILD/affinity
mkdir -p "$OUT"
{ echo "date: $(date -u +%FT%TZ)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"; echo "cores: $(nproc)";
  echo "memory: $(free -g | awk '/Mem/ {print $2}') GiB"; echo "commit: $(git rev-parse --short HEAD 2>/dev/null)"; } | tee "$OUT/machine.txt"

echo "== micro benchmarks"
"$BUILD/bench/affinity_micro_bench" --benchmark_repetitions=${REPS:-3} --benchmark_report_aggregates_only=true \
  2>&1 | tee "$OUT/micro.txt"

echo "== medium world"
if [ ! -f "$MEDIUM/db/CURRENT" ]; then
  /usr/bin/time -f "generate: %e s, peak RSS %M KB" "$BIN" generate --out "$MEDIUM-src" --users 100000 --creators 5000 \
    --items 200000 --events 5000000 --seed 1 2>&1 | tee "$OUT/generate.txt"
  /usr/bin/time -f "import: %e s, peak RSS %M KB" "$BIN" import --data "$MEDIUM" --format native "$MEDIUM-src" 2>&1 | tee "$OUT/import.txt"
fi
/usr/bin/time -f "batch: %e s, peak RSS %M KB, cpu %U user %S sys" "$BIN" batch --data "$MEDIUM" 2>&1 | tee "$OUT/batch.txt"

# ---- Backfill of one batch group against the whole batch (CPU user+sys, peak RSS) ----
# `affinity backfill` recomputes only its group from the log and carries every other
# part of the served snapshot over; its CPU is compared with the batch's just above
# (target: at most 25 %). Over the whole log the values it publishes are the batch's.
echo "== backfill vs batch" | tee "$OUT/backfill.txt"
BATCH_CPU=$(awk '/^batch: .* cpu / {print $(NF-3) + $(NF-1)}' "$OUT/batch.txt")
for GROUP in popularity graph; do
  /usr/bin/time -f "%U %S %M" -o "$OUT/backfill-$GROUP.time" "$BIN" backfill --data "$MEDIUM" --group "$GROUP" > /dev/null
  read -r U S RSS < "$OUT/backfill-$GROUP.time"
  awk -v g="$GROUP" -v u="$U" -v s="$S" -v rss="$RSS" -v b="$BATCH_CPU" 'BEGIN {
    printf "backfill %s: cpu %.2f s (user %.2f, sys %.2f), peak RSS %d KB; batch cpu %.2f s; ratio %.1f %%\n",
      g, u + s, u, s, rss, b, 100 * (u + s) / b }' | tee -a "$OUT/backfill.txt"
done
# ---- end of the backfill step ----
# A learned ranker for the medium world, trained by this build (its inputs must match):
# eval on a validation slice of the world's data (it has no logged responses to train
# from), registered and promoted over whatever an older build left.
rm -rf "$OUT/medium-model"
/usr/bin/time -f "ranker (eval --ranker learned): %e s, peak RSS %M KB" "$BIN" eval --format native \
  --train "$MEDIUM-src" --k 20 --ranker learned --save-model "$OUT/medium-model" 2>&1 | tee "$OUT/ranker.txt"
VERSION=$("$BIN" model import --data "$MEDIUM" "$OUT/medium-model" | awk '{print $2}')
"$BIN" model promote --data "$MEDIUM" "$VERSION" --force
"$BIN" model list --data "$MEDIUM" | tee -a "$OUT/ranker.txt"

"$BIN" serve --data "$MEDIUM" --port "$PORT" > "$OUT/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "startup: $(grep -m1 'state loaded' "$OUT/serve.log")" | tee "$OUT/server.txt"
# Each load run starts once the store has no compaction running or owed (at most 60 s),
# so that one run's audit records are not flushed and compacted during the next.
settle() {
  local s=""
  for _ in $(seq 1 120); do
    s=$(curl -sf "http://127.0.0.1:$PORT/admin/stats" || true)
    if echo "$s" | grep -q '"pending_compaction_bytes":0,' && echo "$s" | grep -q '"running_compactions":0'; then break; fi
    sleep 0.5
  done
  echo "store before the run: $(echo "$s" | grep -o '"store":{[^}]*}')" | tee -a "$OUT/server.txt"
}
echo "== one client (latency): learned ranker, path attributions for the top features" | tee -a "$OUT/server.txt"
settle; wrk -t1 -c1 -d"$DURATION" --latency -s bench/load/query.lua "http://127.0.0.1:$PORT" 2>&1 | tee -a "$OUT/server.txt"
echo "== one client: learned ranker, explain full (TreeSHAP)" | tee -a "$OUT/server.txt"
settle; EXTRA=',"explain":"full"' wrk -t1 -c1 -d"$DURATION" --latency -s bench/load/query.lua "http://127.0.0.1:$PORT" 2>&1 | tee -a "$OUT/server.txt"
echo "== one client: blend only (ranker off)" | tee -a "$OUT/server.txt"
settle; EXTRA=',"ranker":"off"' wrk -t1 -c1 -d"$DURATION" --latency -s bench/load/query.lua "http://127.0.0.1:$PORT" 2>&1 | tee -a "$OUT/server.txt"
echo "== 16 connections (throughput): learned ranker" | tee -a "$OUT/server.txt"
settle; wrk -t1 -c16 -d"$DURATION" --latency -s bench/load/query.lua "http://127.0.0.1:$PORT" 2>&1 | tee -a "$OUT/server.txt"
echo "== 16 connections: blend only (ranker off)" | tee -a "$OUT/server.txt"
settle; EXTRA=',"ranker":"off"' wrk -t1 -c16 -d"$DURATION" --latency -s bench/load/query.lua "http://127.0.0.1:$PORT" 2>&1 | tee -a "$OUT/server.txt"
echo "server RSS after queries: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')" | tee -a "$OUT/server.txt"
kill $PID; wait $PID 2>/dev/null || true

# Ingest goes to a copy, so that the medium world stays at 5M events run after run.
rm -rf "$MEDIUM-ingest"
cp -a "$MEDIUM" "$MEDIUM-ingest"
"$BIN" serve --data "$MEDIUM-ingest" --port "$PORT" >> "$OUT/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$MEDIUM-ingest"' EXIT
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "== event-to-visible: 1,000 events/s in batches of 10 for 30 s (202 = durable and applied)" | tee -a "$OUT/server.txt"
python3 bench/load/feedback_paced.py "127.0.0.1:$PORT" 1000 10 30 100000 200000 2>&1 | tee -a "$OUT/server.txt"
echo "== feedback ingest, batches of 1000 (fsync per batch)" | tee -a "$OUT/server.txt"
wrk -t1 -c4 -d10s --latency -s bench/load/feedback.lua "http://127.0.0.1:$PORT" 2>&1 | tee -a "$OUT/server.txt"
echo "server RSS after ingest: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')" | tee -a "$OUT/server.txt"

# Restarts of that server, timed from the command to /readyz 200 as a user
# meets them (scripts/bench_restarts.sh): after clean stops, after kill -9
# with a tail of events past the newest checkpoint, and with no checkpoint.
echo "== restarts" | tee -a "$OUT/server.txt"
kill $PID; wait $PID 2>/dev/null || true
{ grep 'checkpoint written' "$OUT/serve.log" || true; } | tail -1 | tee -a "$OUT/server.txt"
PORT=$PORT bash scripts/bench_restarts.sh "$BIN" "$MEDIUM-ingest" "$OUT/server.txt"

# Side by side with a reference build (COMPARE_REF, default 51f35e4; empty skips):
# the load above as a new user meets it — each build imports and batches the
# medium world itself and is loaded right after it starts, runs alternating
# (scripts/bench_compare.sh). The reference is built once in $BUILD-ref.
COMPARE_REF=${COMPARE_REF-51f35e4}
if [ -n "$COMPARE_REF" ] && git rev-parse --verify -q "$COMPARE_REF^{commit}" > /dev/null; then
  REF_SRC="$BUILD-ref/src"
  if [ ! -x "$BUILD-ref/build/affinity" ] || [ "$(cat "$BUILD-ref/commit" 2>/dev/null)" != "$COMPARE_REF" ]; then
    rm -rf "$BUILD-ref"
    mkdir -p "$BUILD-ref"
    git archive --format=tar "$COMPARE_REF" | tar -x -C "$BUILD-ref" --one-top-level=src
    cmake -S "$REF_SRC" -B "$BUILD-ref/build" -DCMAKE_BUILD_TYPE=Release -DAFFINITY_BUILD_TESTS=OFF \
      -DAFFINITY_BUILD_BENCHMARKS=OFF > /dev/null
    cmake --build "$BUILD-ref/build" -j "$(nproc)" --target affinity > /dev/null
    echo "$COMPARE_REF" > "$BUILD-ref/commit"
  fi
  WORLD="$MEDIUM-compare"
  rm -rf "$WORLD"
  mkdir -p "$WORLD"
  ln -s "$(realpath "$MEDIUM-src")" "$WORLD/medium-src"
  echo "== side by side: A = $COMPARE_REF, B = this build ($(git rev-parse --short HEAD))" | tee "$OUT/compare.txt"
  ROUNDS=${ROUNDS:-4} DURATION=${COMPARE_DURATION:-30s} bash scripts/bench_compare.sh "$BUILD-ref/build/affinity" \
    "$BIN" "$WORLD" "$OUT/compare" | tee -a "$OUT/compare.txt"
fi
