"""The package's PEP 517 build backend: standard library only.

The client is one pure-Python package with no dependencies, so building it needs
nothing but zipfile and tarfile. A backend that requires nothing means pip's
isolated build environment has nothing to download, and ``pip install
./clients/python`` works on a machine with no network (a setuptools backend would
have pip fetch setuptools from the package index first).

It implements the mandatory hooks (``build_wheel``, ``build_sdist``), PEP 660's
``build_editable`` (``pip install -e``) and the optional ``get_requires_*`` and
``prepare_metadata_for_build_*`` hooks. Name, version, summary and Python
requirement come from ``pyproject.toml``'s ``[project]`` table; the long
description is README.md.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "affinity_client"
TAG = "py3-none-any"
# A fixed timestamp keeps builds byte-for-byte reproducible (zip cannot hold dates before 1980).
_EPOCH = (1980, 1, 1, 0, 0, 0)


# --------------------------------------------------------------------- metadata


def _project() -> Dict[str, Any]:
    """pyproject.toml's [project] table (only the string keys this backend reads)."""
    path = os.path.join(ROOT, "pyproject.toml")
    try:
        import tomllib  # Python 3.11+

        with open(path, "rb") as f:
            return dict(tomllib.load(f).get("project", {}))
    except ImportError:  # older Pythons: the simple `key = "value"` lines of [project]
        table: Dict[str, Any] = {}
        section = None
        with open(path, encoding="utf-8") as f:
            for line in f:
                stripped = line.strip()
                if stripped.startswith("["):
                    section = stripped.strip("[]").strip()
                    continue
                m = re.match(r'^([A-Za-z0-9_-]+)\s*=\s*"([^"]*)"\s*(#.*)?$', stripped)
                if section == "project" and m:
                    table[m.group(1)] = m.group(2)
        return table


def _name_version() -> Tuple[str, str]:
    project = _project()
    name, version = project.get("name"), project.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise RuntimeError("pyproject.toml's [project] needs a string name and version")
    return name, version


def _dist_name(name: str) -> str:
    """The distribution name as file names spell it (PEP 427/625): affinity_client."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata() -> str:
    project = _project()
    name, version = _name_version()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if isinstance(project.get("description"), str):
        lines.append(f"Summary: {project['description']}")
    if isinstance(project.get("requires-python"), str):
        lines.append(f"Requires-Python: {project['requires-python']}")
    for classifier in project.get("classifiers", []) if isinstance(project.get("classifiers"), list) else []:
        lines.append(f"Classifier: {classifier}")
    readme = os.path.join(ROOT, "README.md")
    text = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            text = f.read()
    return "\n".join(lines) + "\n\n" + text


def _dist_info() -> str:
    name, version = _name_version()
    return f"{_dist_name(name)}-{version}.dist-info"


def _wheel_file() -> str:
    return f"Wheel-Version: 1.0\nGenerator: affinity_build\nRoot-Is-Purelib: true\nTag: {TAG}\n"


# ------------------------------------------------------------------------ wheel


def _package_files() -> List[str]:
    """The package's files, relative to ROOT, sorted (sources and the py.typed marker)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, PACKAGE)):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith(".py") or fn == "py.typed":
                out.append(os.path.relpath(os.path.join(dirpath, fn), ROOT).replace(os.sep, "/"))
    return out


class _Wheel:
    """A wheel being written, with its RECORD."""

    def __init__(self, path: str) -> None:
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
        self._record: List[str] = []

    def add(self, arcname: str, data: bytes) -> None:
        info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self._zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
        self._record.append(f"{arcname},sha256={digest},{len(data)}")

    def close(self, dist_info: str) -> None:
        record = f"{dist_info}/RECORD"
        text = "\n".join(self._record + [f"{record},,"]) + "\n"
        info = zipfile.ZipInfo(record, date_time=_EPOCH)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self._zip.writestr(info, text.encode("utf-8"))
        self._zip.close()


def _write_dist_info(wheel: _Wheel, dist_info: str) -> None:
    wheel.add(f"{dist_info}/METADATA", _metadata().encode("utf-8"))
    wheel.add(f"{dist_info}/WHEEL", _wheel_file().encode("utf-8"))
    wheel.add(f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode("utf-8"))


def _wheel_name() -> str:
    name, version = _name_version()
    return f"{_dist_name(name)}-{version}-{TAG}.whl"


def _build(wheel_directory: str, contents: Dict[str, bytes]) -> str:
    """Writes a wheel of `contents` (archive path -> bytes) and its dist-info."""
    filename = _wheel_name()
    dist_info = _dist_info()
    wheel = _Wheel(os.path.join(wheel_directory, filename))
    for rel, data in contents.items():
        wheel.add(rel, data)
    _write_dist_info(wheel, dist_info)
    wheel.close(dist_info)
    return filename


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[Dict[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    """PEP 517: writes the wheel into wheel_directory and returns its file name."""
    contents: Dict[str, bytes] = {}
    for rel in _package_files():
        with open(os.path.join(ROOT, rel), "rb") as f:
            contents[rel] = f.read()
    return _build(wheel_directory, contents)


def build_editable(
    wheel_directory: str,
    config_settings: Optional[Dict[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    """PEP 660: a wheel whose .pth file puts this source folder on sys.path."""
    pth = f"__editable__.{_dist_name(_name_version()[0])}.pth"
    return _build(wheel_directory, {pth: (ROOT + "\n").encode("utf-8")})


def get_requires_for_build_wheel(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    """Nothing: the build needs only the standard library."""
    return []


def get_requires_for_build_editable(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    """Nothing: the build needs only the standard library."""
    return []


def get_requires_for_build_sdist(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    """Nothing: the build needs only the standard library."""
    return []


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Optional[Dict[str, Any]] = None
) -> str:
    """PEP 517: writes the .dist-info folder (METADATA, WHEEL) and returns its name."""
    dist_info = _dist_info()
    target = os.path.join(metadata_directory, dist_info)
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    with open(os.path.join(target, "WHEEL"), "w", encoding="utf-8") as f:
        f.write(_wheel_file())
    with open(os.path.join(target, "top_level.txt"), "w", encoding="utf-8") as f:
        f.write(f"{PACKAGE}\n")
    return dist_info


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: Optional[Dict[str, Any]] = None
) -> str:
    """PEP 660: the same metadata as the wheel's."""
    return prepare_metadata_for_build_wheel(metadata_directory, config_settings)


# ------------------------------------------------------------------------ sdist


def _sdist_files() -> List[str]:
    files = ["pyproject.toml", "README.md", "_backend/affinity_build.py"] + _package_files()
    tests = os.path.join(ROOT, "tests")
    if os.path.isdir(tests):
        files += sorted(
            os.path.relpath(os.path.join(tests, fn), ROOT).replace(os.sep, "/")
            for fn in os.listdir(tests)
            if fn.endswith(".py")
        )
    return [f for f in files if os.path.exists(os.path.join(ROOT, f))]


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    """PEP 517: writes the .tar.gz source distribution and returns its file name."""
    name, version = _name_version()
    base = f"{_dist_name(name)}-{version}"
    filename = f"{base}.tar.gz"

    def add(tar: tarfile.TarFile, arcname: str, data: bytes) -> None:
        info = tarfile.TarInfo(f"{base}/{arcname}")
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 315532800  # 1980-01-01, as the wheel's dates
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel in _sdist_files():
            with open(os.path.join(ROOT, rel), "rb") as f:
                add(tar, rel, f.read())
        add(tar, "PKG-INFO", _metadata().encode("utf-8"))
    return filename
