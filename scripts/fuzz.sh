#!/usr/bin/env bash
# Builds the parsers' fuzz harnesses (fuzz/, clang's libFuzzer with ASan and
# UBSan) in their own build directory and runs each.
#   scripts/fuzz.sh [BUILD_DIR] short   a few seconds each (`make test`)
#   scripts/fuzz.sh [BUILD_DIR] long    ten million executions each (`make fuzz`)
# FUZZ_RUNS (executions per harness, long), FUZZ_SECONDS (per harness, short),
# FUZZ_MAX_SECONDS (long: a cap on each harness's time, so a run fits a window;
# the summary then shows the executions reached),
# FUZZ_JOBS (parallel jobs, long) and FUZZ_ONLY (a harness name pattern) change
# the defaults. Seeds are read from fuzz/corpus/<harness>/ and left as they are;
# what the fuzzer finds goes to BUILD_DIR/corpus/<harness>/. A crash, leak or
# sanitizer report leaves its input in BUILD_DIR/artifacts/ and fails the run.
# Prints one line per harness: executions, executions per second, crashes
# (sanitizer reports and broken invariants), leaks, seconds.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-build-fuzz}
MODE=${2:-short}
RUNS=${FUZZ_RUNS:-10000000}
SECONDS_EACH=${FUZZ_SECONDS:-5}
JOBS=${FUZZ_JOBS:-$(nproc)}
ONLY=${FUZZ_ONLY:-}
MAX_SECONDS=${FUZZ_MAX_SECONDS:-0}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is not installed (make deps installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
if [ ! -f "$DIR/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAFFINITY_FUZZ=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" >/dev/null || exit 1
fi
if [ "${FUZZ_BUILD:-1}" != 0 ]; then  # FUZZ_BUILD=0: run the harnesses as built
  cmake --build "$DIR" -j "$(nproc)" --target fuzzers >"$DIR/fuzz-build.log" 2>&1 || {
    tail -n 40 "$DIR/fuzz-build.log" >&2
    exit 1
  }
fi

DIR=$(realpath "$DIR")
ROOT=$(pwd)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$DIR/artifacts" "$DIR/logs"
failed=0
printf '%-22s %12s %10s %8s %6s %8s %s\n' harness executions exec/s crashes leaks seconds mode
for bin in "$DIR"/fuzz/fuzz_*; do
  name=$(basename "$bin")
  name=${name#fuzz_}
  [ -n "$ONLY" ] && [[ ! "$name" =~ $ONLY ]] && continue
  seeds=$ROOT/fuzz/corpus/$name
  work=$DIR/corpus/$name
  mkdir -p "$work" "$seeds"
  args=(-max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        "-artifact_prefix=$DIR/artifacts/$name-")
  [ -f "$ROOT/fuzz/dict/$name.dict" ] && args+=("-dict=$ROOT/fuzz/dict/$name.dict")
  log=$DIR/logs/$name.log
  start=$(date +%s.%N)
  if [ "$MODE" = long ]; then
    # -jobs splits the executions between processes that share the corpus.
    per_job=$(( (RUNS + JOBS - 1) / JOBS ))
    rm -f "$DIR"/logs/"$name".job*.log
    [ "$MAX_SECONDS" -gt 0 ] && args+=(-max_total_time="$MAX_SECONDS")
    (cd "$DIR/logs" && "$bin" "${args[@]}" -runs="$per_job" -jobs="$JOBS" -workers="$JOBS" \
       "$work" "$seeds" >"$log" 2>&1)
    status=$?
    # Each job wrote fuzz-<n>.log in the logs folder: keep them by harness.
    for j in $(seq 0 $((JOBS - 1))); do
      [ -f "$DIR/logs/fuzz-$j.log" ] && mv "$DIR/logs/fuzz-$j.log" "$DIR/logs/$name.job$j.log"
    done
    logs=("$DIR"/logs/"$name".job*.log)
  else
    "$bin" "${args[@]}" -max_total_time="$SECONDS_EACH" "$work" "$seeds" >"$log" 2>&1
    status=$?
    logs=("$log")
  fi
  end=$(date +%s.%N)
  execs=$(cat "${logs[@]}" 2>/dev/null | awk '/stat::number_of_executed_units/ {n += $2} END {print n + 0}')
  rate=$(awk -v n="$execs" -v s="$start" -v e="$end" 'BEGIN {printf "%d", n / (e - s)}')
  crashes=$(cat "${logs[@]}" 2>/dev/null | grep -cE '^==[0-9]+==ERROR|runtime error|^SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)|deadly signal|invariant broken')
  leaks=$(cat "${logs[@]}" 2>/dev/null | grep -c 'ERROR: LeakSanitizer')
  secs=$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.0f", e - s}')
  printf '%-22s %12s %10s %8s %6s %8s %s\n' "$name" "$execs" "$rate" "$crashes" "$leaks" "$secs" "$MODE"
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    echo "fuzz: $name failed (exit $status); its log: $log; inputs: $DIR/artifacts/$name-*" >&2
    grep -m 5 -E 'ERROR|runtime error|invariant broken|SUMMARY' "${logs[@]}" >&2
  fi
done
exit $failed
