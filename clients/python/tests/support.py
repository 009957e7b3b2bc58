"""Runs a real affinity server for the client's tests.

The binary is ``$AFFINITY_BIN`` (default ``build/affinity``, from the repository
root). :class:`Server` starts ``affinity serve --data DIR --port 0`` on loopback,
reads the port from the line the server prints once ready (``serving on
http://127.0.0.1:PORT``), waits for ``/readyz`` and stops the process afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import List, Optional

# Loopback requests never go through a proxy the environment may name.
for _var in ("no_proxy", "NO_PROXY"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var, ""), "127.0.0.1", "localhost"]))

# The tests exercise the client of this source tree (first on the path).
_SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _SOURCE not in sys.path:
    sys.path.insert(0, _SOURCE)

READY_MARKER = "serving on http://127.0.0.1:"


def affinity_bin() -> str:
    """The server binary: $AFFINITY_BIN, else build/affinity; an error when absent."""
    path = os.environ.get("AFFINITY_BIN", "build/affinity")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(
            f"no affinity binary at {path!r}: build it (make bin) or set AFFINITY_BIN to its path"
        )
    return os.path.abspath(path)


def run_affinity(args: List[str], timeout: float = 300) -> str:
    """Runs ``affinity args...`` to completion; its output, or an error naming both."""
    proc = subprocess.run(
        [affinity_bin()] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"affinity {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}")
    return proc.stdout


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """The server never outlives the test process (Linux: PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Server:
    """``affinity serve --data data_dir --port 0`` in the background."""

    def __init__(self, data_dir: str, extra: Optional[List[str]] = None, start_timeout: float = 120) -> None:
        self.data_dir = data_dir
        self.port = 0
        self._lines: List[str] = []
        self._ready = threading.Event()
        self._proc = subprocess.Popen(
            [affinity_bin(), "serve", "--data", data_dir, "--port", "0"] + list(extra or []),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(start_timeout) or not self.port:
            self.stop()
            raise RuntimeError(f"affinity serve did not become ready in {start_timeout} s:\n{self.log}")
        self._wait_readyz(start_timeout)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def exit_code(self) -> Optional[int]:
        """None while the server runs; its exit code (negative: the signal) once it ended."""
        return self._proc.poll()

    @property
    def log(self) -> str:
        """What the server printed so far."""
        return "".join(self._lines)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:  # drained to the end so the server never blocks on a full pipe
            self._lines.append(line)
            pos = line.find(READY_MARKER)
            if pos >= 0 and not self.port:
                digits = ""
                for ch in line[pos + len(READY_MARKER):]:
                    if not ch.isdigit():
                        break
                    digits += ch
                self.port = int(digits) if digits else 0
                self._ready.set()
        self._ready.set()  # the process ended: whoever waits learns it at once

    def _wait_readyz(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=5) as r:
                    if r.status == 200:
                        return
            except Exception:
                if time.monotonic() >= deadline:
                    self.stop()
                    raise RuntimeError(f"/readyz never answered 200:\n{self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(5)


class World:
    """A tiny synthetic world imported and batched into a fresh data dir.

    ``items``, ``creators`` and ``users`` hold the world's ids by kind (from its
    ``entities.tsv``); ``events`` its ``(viewer, entity, action)`` rows.
    """

    def __init__(self, users: int = 120, creators: int = 12, items: int = 150, events: int = 4000, seed: int = 7):
        self.root = tempfile.mkdtemp(prefix="affinity-pyclient-")
        self.world_dir = os.path.join(self.root, "world")
        self.data_dir = os.path.join(self.root, "data")
        run_affinity(
            ["generate", "--out", self.world_dir, "--users", str(users), "--creators", str(creators),
             "--items", str(items), "--events", str(events), "--seed", str(seed)]
        )
        run_affinity(["import", "--data", self.data_dir, "--format", "native", self.world_dir])
        run_affinity(["batch", "--data", self.data_dir])
        self.items: List[str] = []
        self.creators: List[str] = []
        self.users: List[str] = []
        self.item_creator = {}
        with open(os.path.join(self.world_dir, "entities.tsv"), encoding="utf-8") as f:
            next(f)
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) < 2:
                    continue
                {"item": self.items, "creator": self.creators, "user": self.users}[cols[1]].append(cols[0])
                if cols[1] == "item":
                    self.item_creator[cols[0]] = cols[2]
        self.events: List[tuple] = []
        with open(os.path.join(self.world_dir, "events.tsv"), encoding="utf-8") as f:
            next(f)
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) >= 4:
                    self.events.append((cols[1], cols[2], cols[3]))

    def remove(self) -> None:
        """Deletes the world's files and data dir."""
        shutil.rmtree(self.root, ignore_errors=True)
