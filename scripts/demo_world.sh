#!/usr/bin/env bash
# Creates the synthetic demo world in DATA (once), then runs the batch pipeline.
# Sizes can be overridden: DEMO_USERS, DEMO_CREATORS, DEMO_ITEMS, DEMO_EVENTS, DEMO_SEED.
set -euo pipefail
BIN=${1:?usage: demo_world.sh BIN DATA}
DATA=${2:?usage: demo_world.sh BIN DATA}
if [ ! -f "$DATA/db/CURRENT" ]; then
  SRC="$DATA-src"
  echo "demo: generating a synthetic world in $SRC"
  "$BIN" generate --out "$SRC" --users "${DEMO_USERS:-20000}" --creators "${DEMO_CREATORS:-1000}" \
    --items "${DEMO_ITEMS:-40000}" --events "${DEMO_EVENTS:-1000000}" --seed "${DEMO_SEED:-42}"
  echo "demo: importing into $DATA"
  "$BIN" import --data "$DATA" --format native "$SRC"
fi
echo "demo: running the batch pipeline"
"$BIN" batch --data "$DATA"
