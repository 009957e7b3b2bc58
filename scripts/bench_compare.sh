#!/usr/bin/env bash
# Side-by-side throughput of two builds, as a new user meets it: each run copies
# the same freshly imported medium world that the build has just batched (no
# settling), starts `affinity serve` on it and loads it at once with wrk
# (16 connections, random viewers, targets items/items/creators/users, k = 20,
# default explanations; no model is promoted, so the blend ranks). Builds
# alternate run by run (A B A B ...) so that the machine's drift hits both; the
# summary gives each build's median queries/s and p99.
#   scripts/bench_compare.sh BIN_A BIN_B WORLD OUT
# WORLD holds the generated medium world (WORLD/medium-src, from `generate`);
# each build imports it and batches it once (WORLD/batched-A, WORLD/batched-B),
# as a user of that build would.
# ROUNDS (default 3), DURATION (30s), USERS (2000 viewers), PORT (18191).
# SAME_WORLD=1: both sides serve A's import (two runs of one binary); SETUP_A /
# SETUP_B: a shell command run once that side's server is ready, with $PORT set
# (e.g. creating an experiment), before the load starts. CONFIG_A / CONFIG_B: a
# configuration file that side serves with (--config); KEY_A / KEY_B: the key that
# side's load sends (Authorization: Bearer), e.g. [auth] on for one side only.
set -euo pipefail
A=${1:?usage: bench_compare.sh BIN_A BIN_B WORLD OUT}
B=${2:?}
WORLD=${3:?}
OUT=${4:?}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-30s}
export USERS=${USERS:-2000}
PORT=${PORT:-18191}
mkdir -p "$OUT"
: > "$OUT/runs.tsv"
SAME_WORLD=${SAME_WORLD:-}
for side in A B; do
  [ -n "$SAME_WORLD" ] && [ "$side" = B ] && continue
  bin=$([ "$side" = A ] && echo "$A" || echo "$B")
  if [ ! -f "$WORLD/batched-$side/snapshots/CURRENT" ]; then
    rm -rf "$WORLD/batched-$side"
    "$bin" import --data "$WORLD/batched-$side" --format native "$WORLD/medium-src" > "$OUT/import-$side.log" 2>&1
    "$bin" batch --data "$WORLD/batched-$side" > "$OUT/batch-$side.log" 2>&1
  fi
done
run() {  # side bin round
  local side=$1 bin=$2 round=$3 dir="$WORLD/run"
  rm -rf "$dir"
  cp -a "$WORLD/batched-$([ -n "$SAME_WORLD" ] && echo A || echo "$side")" "$dir"
  local config key
  config=$([ "$side" = A ] && echo "${CONFIG_A:-}" || echo "${CONFIG_B:-}")
  key=$([ "$side" = A ] && echo "${KEY_A:-}" || echo "${KEY_B:-}")
  "$bin" serve --data "$dir" --port "$PORT" ${config:+--config "$config"} > "$OUT/serve-$side-$round.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORT/readyz" > /dev/null 2>&1 && break; sleep 0.1; done
  local setup
  setup=$([ "$side" = A ] && echo "${SETUP_A:-}" || echo "${SETUP_B:-}")
  [ -n "$setup" ] && PORT=$PORT bash -c "$setup" > "$OUT/setup-$side-$round.log" 2>&1
  AFFINITY_API_KEY="$key" wrk -t1 -c16 -d"$DURATION" --latency -s bench/load/query.lua "http://127.0.0.1:$PORT" > "$OUT/wrk-$side-$round.txt" 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local qps p99 errors
  qps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$side-$round.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$OUT/wrk-$side-$round.txt")
  errors=$(grep -c "Non-2xx\|Socket errors" "$OUT/wrk-$side-$round.txt" || true)
  printf "%s\t%s\t%s\t%s\t%s\n" "$side" "$round" "$qps" "$p99" "$errors" | tee -a "$OUT/runs.tsv"
}
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then run A "$A" "$r"; run B "$B" "$r"; else run B "$B" "$r"; run A "$A" "$r"; fi
done
rm -rf "$WORLD/run"
python3 - "$OUT/runs.tsv" <<'PY' | tee "$OUT/summary.txt"
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]).read().split('\n') if l]
def ms(v):
    return float(v[:-2]) if v.endswith('ms') else float(v[:-2]) / 1000 if v.endswith('us') else float(v[:-1]) * 1000
for side in 'AB':
    q = [float(r[2]) for r in rows if r[0] == side]
    p = [ms(r[3]) for r in rows if r[0] == side]
    e = sum(int(r[4]) for r in rows if r[0] == side)
    print(f"{side}: {len(q)} runs, queries/s median {statistics.median(q):.0f} (min {min(q):.0f}, max {max(q):.0f}), "
          f"p99 median {statistics.median(p):.2f} ms (min {min(p):.2f}, max {max(p):.2f}), runs with errors {e}")
qa = statistics.median([float(r[2]) for r in rows if r[0] == 'A'])
qb = statistics.median([float(r[2]) for r in rows if r[0] == 'B'])
pa = statistics.median([ms(r[3]) for r in rows if r[0] == 'A'])
pb = statistics.median([ms(r[3]) for r in rows if r[0] == 'B'])
print(f"B/A: throughput x{qb / qa:.2f}, p99 x{pb / pa:.2f}")
PY
