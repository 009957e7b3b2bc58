#!/usr/bin/env bash
# Serves DATA on HOST:PORT and prints ready-to-paste queries once it is ready.
set -euo pipefail
BIN=${1:?usage: serve_demo.sh BIN DATA HOST PORT}
DATA=${2:?}
HOST=${3:-127.0.0.1}
PORT=${4:-8080}
"$BIN" serve --data "$DATA" --host "$HOST" --port "$PORT" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' INT TERM EXIT
for _ in $(seq 1 300); do
  curl -sf "http://$HOST:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 $PID 2>/dev/null || { echo "affinity exited before it was ready" >&2; exit 1; }
  sleep 0.1
done
cat <<MSG

affinity is ready on http://$HOST:$PORT. Try:

  curl -s -X POST http://$HOST:$PORT/affinity/query -H 'Content-Type: application/json' \\
    -d '{"viewer_id":"u1","target":"items","k":5}'

  curl -s -X POST http://$HOST:$PORT/affinity/query -d '{"viewer_id":"u1","target":"creators","k":5}'
  curl -s -X POST http://$HOST:$PORT/affinity/query -d '{"viewer_id":"u1","target":"users","k":5}'

Press Ctrl-C to stop.
MSG
wait $PID
