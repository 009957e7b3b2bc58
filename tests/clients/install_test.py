"""The Python client installs with pip and no network, and imports from the install.

Usage: python3 install_test.py CLIENT_DIR   (CLIENT_DIR: the repository's clients/python)

Copies CLIENT_DIR to a temporary folder (the build writes nothing into the source
tree), then:
  1. `pip install --no-index --target DIR COPY` (pip's default isolated build: the
     package's build backend must need nothing from an index), and
  2. `pip install --no-index COPY` inside a fresh venv (when this Python has venv
     and ensurepip),
and in each case imports affinity_client from outside the source tree and checks
that it is the installed copy, with its py.typed marker, its version in the
distribution's metadata, and a working client (an AffinityError for a closed port).
Exits 77 (ctest's skip code) when this Python has no pip at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

CHECK = r"""
import importlib.metadata, os, socket, sys
import affinity_client
from affinity_client import AffinityError, Client
where = os.path.dirname(os.path.abspath(affinity_client.__file__))
expected = os.path.abspath(sys.argv[1])
assert where.startswith(expected), f"imported from {where}, not from the install under {expected}"
assert os.path.exists(os.path.join(where, "py.typed")), "py.typed is missing from the install"
version = importlib.metadata.version("affinity-client")
assert version == affinity_client.__version__, (version, affinity_client.__version__)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
try:
    Client(f"http://127.0.0.1:{port}", timeout=5).health()
    raise SystemExit("no AffinityError from a closed port")
except AffinityError as e:
    assert e.status is None and e.code == "unavailable", repr(e)
print("installed affinity_client", version, "at", where)
"""


def run(cmd, **kw) -> None:
    print("$", " ".join("<check>" if c == CHECK else c for c in cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    print(proc.stdout, flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    source = os.path.abspath(sys.argv[1])
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        print(f"SKIP: {sys.executable} has no pip (Debian: apt-get install python3-pip)")
        return 77
    # No index, no find-links, no user configuration: only what is on this machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "PYTHONPATH": "", "PYTHONDONTWRITEBYTECODE": "1"})
    with tempfile.TemporaryDirectory(prefix="affinity-pyclient-install-") as tmp:
        copy = os.path.join(tmp, "python")
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "*.pyc"))
        elsewhere = os.path.join(tmp, "elsewhere")  # imports never see the copy's folder
        os.mkdir(elsewhere)

        target = os.path.join(tmp, "target")
        run([sys.executable, "-m", "pip", "install", "--no-index", "--target", target, copy], env=env)
        run([sys.executable, "-c", CHECK, target], env={**env, "PYTHONPATH": target}, cwd=elsewhere)

        venv = os.path.join(tmp, "venv")
        made = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True, text=True)
        if made.returncode != 0:
            print(f"no venv here ({made.stderr.strip().splitlines()[-1:]}): the --target install alone was checked")
            return 0
        python = os.path.join(venv, "bin", "python")
        run([python, "-m", "pip", "install", "--no-index", copy], env=env)
        run([python, "-c", CHECK, venv], env=env, cwd=elsewhere)
    print("OK: pip installs the client with no package index, into a folder and into a venv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
