#!/usr/bin/env bash
# Serves DATA on HOST:PORT and prints ready-to-paste queries once it is ready.
# On a demo world with no learned model yet, it first shows the learning loop:
# viewers of the generated world (DATA-src) query and click what they like,
# `affinity batch` trains the learned ranker from those logged, clicked
# responses beside the running server, and the server swaps the model in.
# DEMO_QUERIES (default 400) sets how many queries that audience sends.
# Ctrl-C stops the server and ends the script with status 0.
set -euo pipefail
BIN=${1:?usage: serve_demo.sh BIN DATA HOST PORT}
DATA=${2:?}
HOST=${3:-127.0.0.1}
PORT=${4:-8080}
URL="http://$HOST:$PORT"
# The demo logs every response's ranker inputs (the training rows; 25 % by
# default) and promotes a model that passes the gate at once (no canary).
CONFIG=$(mktemp "${TMPDIR:-/tmp}/affinity-demo.XXXXXX")
cat >"$CONFIG" <<'TOML'
[serving]
log_ranker_inputs_share = 1.0
[ranker]
rollout = "direct"
TOML
"$BIN" serve --data "$DATA" --host "$HOST" --port "$PORT" --config "$CONFIG" &
PID=$!
# The server may already have exited (Ctrl-C reaches the whole process group):
# stopping it is best effort, and never the script's failure.
stop_server() {
  if kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
  fi
  wait "$PID" 2>/dev/null || true
  rm -f "$CONFIG"
}
trap 'stop_server; exit 0' INT TERM
trap 'stop_server' EXIT
for _ in $(seq 1 300); do
  curl -sf "$URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { echo "affinity exited before it was ready" >&2; exit 1; }
  sleep 0.1
done
if ! "$BIN" model list --data "$DATA" --json | grep -q '"current":"m' && [ -f "$DATA-src/entities.tsv" ]; then
  echo "demo: the learning loop: viewers query and click results on their favourite topics"
  "$BIN" simulate --url "$URL" --world "$DATA-src" --queries "${DEMO_QUERIES:-400}" --seed 7
  echo "demo: affinity batch trains the learned ranker from those clicked responses (beside the server)"
  "$BIN" batch --data "$DATA" --config "$CONFIG" | sed -n 's/^ranker: /demo: ranker: /p'
  for _ in $(seq 1 50); do
    curl -sf "$URL/admin/models" | grep -q '"loaded":"m' && break
    sleep 0.2
  done
fi
MODEL=$(curl -sf "$URL/admin/models" | sed -n 's/.*"loaded":"\([^"]*\)".*/\1/p')
if [ -n "$MODEL" ]; then
  RANKS="the learned ranker (LambdaMART $MODEL, explained by TreeSHAP) re-ranks the blend's best 100"
else
  RANKS="the blend ranks (no learned model passed the gate yet: \`affinity model list --data $DATA\` says why)"
fi
cat <<MSG

affinity is ready on $URL: $RANKS. Try:

  # items for a viewer, with the learned model's attributions
  curl -s -X POST $URL/affinity/query -d '{"viewer_id":"u1","target":"items","k":5}'
  # creators to follow
  curl -s -X POST $URL/affinity/query -d '{"viewer_id":"u1","target":"creators","k":5}'
  # people you may know, with every feature's exact contribution
  curl -s -X POST $URL/affinity/query -d '{"viewer_id":"u1","target":"users","k":5,"explain":"full"}'
  # feedback: durable before the 202, visible to the next query
  curl -s -X POST $URL/affinity/feedback \\
    -d '{"events":[{"viewer_id":"u1","entity_id":"i42","action":"hide"}]}'
  # the model registry as this server sees it
  $BIN model list --url $URL

The operator page (models, drift, freshness, experiments): $URL/admin/ui

Press Ctrl-C to stop.
MSG
status=0
wait "$PID" || status=$?
trap - EXIT
rm -f "$CONFIG"
exit "$status"
