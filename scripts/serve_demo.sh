#!/usr/bin/env bash
# Serves DATA on HOST:PORT and prints ready-to-paste queries once it is ready.
# Ctrl-C stops the server and ends the script with status 0.
set -euo pipefail
BIN=${1:?usage: serve_demo.sh BIN DATA HOST PORT}
DATA=${2:?}
HOST=${3:-127.0.0.1}
PORT=${4:-8080}
"$BIN" serve --data "$DATA" --host "$HOST" --port "$PORT" &
PID=$!
# The server may already have exited (Ctrl-C reaches the whole process group):
# stopping it is best effort, and never the script's failure.
stop_server() {
  if kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
  fi
  wait "$PID" 2>/dev/null || true
}
trap 'stop_server; exit 0' INT TERM
trap 'stop_server' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://$HOST:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { echo "affinity exited before it was ready" >&2; exit 1; }
  sleep 0.1
done
cat <<MSG

affinity is ready on http://$HOST:$PORT. Try:

  # items for a viewer
  curl -s -X POST http://$HOST:$PORT/affinity/query -d '{"viewer_id":"u1","target":"items","k":5}'
  # creators to follow
  curl -s -X POST http://$HOST:$PORT/affinity/query -d '{"viewer_id":"u1","target":"creators","k":5}'
  # people you may know, with every feature's exact contribution
  curl -s -X POST http://$HOST:$PORT/affinity/query -d '{"viewer_id":"u1","target":"users","k":5,"explain":"full"}'
  # feedback: durable before the 202, visible to the next query
  curl -s -X POST http://$HOST:$PORT/affinity/feedback \\
    -d '{"events":[{"viewer_id":"u1","entity_id":"i42","action":"hide"}]}'

Press Ctrl-C to stop.
MSG
status=0
wait "$PID" || status=$?
trap - EXIT
exit "$status"
