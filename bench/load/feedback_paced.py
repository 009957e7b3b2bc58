#!/usr/bin/env python3
"""Event-to-visible latency under a steady feedback rate.

Sends RATE events/s in batches of BATCH over one keep-alive connection for
SECONDS, each event naming a random viewer and entity of the world; a 202 comes
back only once the batch is durable and applied to the live state (what the
next query reads), so each request's latency is its events' arrival-to-visible
time. Prints p50/p99/max of those and the server's own histogram
(affinity_event_visible_seconds) for the same run.

usage: feedback_paced.py HOST:PORT [RATE=1000] [BATCH=10] [SECONDS=30] [USERS=100000] [ITEMS=50000]
"""
import http.client
import json
import random
import sys
import time

host, port = sys.argv[1].split(":")
rate, batch, seconds = int(sys.argv[2] if len(sys.argv) > 2 else 1000), int(sys.argv[3] if len(sys.argv) > 3 else 10), \
    float(sys.argv[4] if len(sys.argv) > 4 else 30)
users, items = int(sys.argv[5] if len(sys.argv) > 5 else 100000), int(sys.argv[6] if len(sys.argv) > 6 else 50000)
rng = random.Random(7)
conn = http.client.HTTPConnection(host, int(port), timeout=10)
interval = batch / rate
lat, late = [], 0
start = time.monotonic()
n = 0
while True:
    due = start + n * interval
    now = time.monotonic()
    if due - start >= seconds:
        break
    if due > now:
        time.sleep(due - now)
    elif now - due > interval:
        late += 1
    events = [{"viewer_id": f"u{rng.randrange(users)}", "entity_id": f"i{rng.randrange(items)}",
               "action": rng.choice(["click", "play", "like", "impression"]),
               "ts": int(time.time() * 1000)} for _ in range(batch)]
    body = json.dumps({"events": events})
    t0 = time.monotonic()
    conn.request("POST", "/affinity/feedback", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    lat.append(time.monotonic() - t0)
    if r.status != 202:
        sys.exit(f"feedback answered {r.status}")
    n += 1
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
elapsed = time.monotonic() - start
print(f"event-to-visible at {rate} events/s ({batch} per batch, {n} batches, {n * batch / elapsed:.0f} events/s sent, "
      f"{late} sent late): p50 {q(0.5):.2f} ms, p99 {q(0.99):.2f} ms, max {lat[-1] * 1000:.2f} ms")
conn.request("GET", "/metrics")
m = conn.getresponse().read().decode()
for line in m.splitlines():
    if line.startswith("affinity_event_visible_seconds_bucket") or line.startswith("affinity_event_visible_seconds_count"):
        print("server:", line)
