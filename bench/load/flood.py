#!/usr/bin/env python3
"""Holds a connection flood against a server: IDLE connections that never send a
byte and HALF half-sent ones that trickle a header byte every second (slowloris).
With REOPEN (the default) a connection the server closes is opened again a
second later, so the pressure holds for the whole run; with REOPEN=0 what the
server closes stays closed. Prints what it held and how many the server closed.
Usage: flood.py HOST PORT SECONDS [IDLE=2000] [HALF=200] [REOPEN=1]
"""
import selectors
import socket
import sys
import time

host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
idle = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
half = int(sys.argv[5]) if len(sys.argv) > 5 else 200
reopen = (sys.argv[6] if len(sys.argv) > 6 else "1") != "0"
HEADER = b"POST /affinity/query HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Slow: "

sel = selectors.DefaultSelector()
slots = {}  # slot -> socket or reopen time
closed = 0


def open_slot(slot):
    s = socket.socket()
    s.setblocking(True)
    try:
        s.connect((host, port))
    except OSError:
        s.close()
        slots[slot] = time.time() + 1
        return
    s.setblocking(False)
    if slot >= idle:
        s.send(HEADER)
    slots[slot] = s
    sel.register(s, selectors.EVENT_READ, slot)


for i in range(idle + half):
    open_slot(i)
held_at_start = sum(1 for v in slots.values() if not isinstance(v, float))
end = time.time() + seconds
next_trickle = time.time() + 1
while time.time() < end:
    for key, _ in sel.select(timeout=0.2):
        s, slot = key.fileobj, key.data
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:  # the server closed it
            sel.unregister(s)
            s.close()
            closed += 1
            if reopen:
                slots[slot] = time.time() + 1
            else:
                del slots[slot]
    now = time.time()
    for slot, v in list(slots.items()):
        if isinstance(v, float) and v <= now:
            open_slot(slot)
    if now >= next_trickle:
        next_trickle = now + 1
        for slot in range(idle, idle + half):
            v = slots.get(slot)
            if v is not None and not isinstance(v, float):
                try:
                    v.send(b"a")
                except OSError:
                    pass
held = sum(1 for v in slots.values() if not isinstance(v, float))
print(f"flood: {idle} idle + {half} half-sent; {held_at_start} open at start, {held} at the end, "
      f"{closed} closed by the server" + (" and opened again" if reopen else ""))
