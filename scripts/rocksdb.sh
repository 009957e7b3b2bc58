#!/usr/bin/env bash
# Builds the RocksDB affinity links: Debian bookworm's RocksDB 7.8.3 (its
# source package, with Debian's patches), built without debug assertions.
# Debian's own librocksdb keeps them (it is built without NDEBUG), and one of
# them ends the process when a write fails on a full disk; built here, the
# failure is a status the server answers with 507 (docs/runbooks/disk-full.md).
# Static library with RTTI (as Debian's: the store subclasses RocksDB's event
# listener and file system), the compression libraries Debian's build uses, installed into
# PREFIX (default /opt/affinity/rocksdb-7.8.3-2). Idempotent: does nothing when
# PREFIX already holds this build. About 15-20 minutes on 2 cores, once per
# machine. Needs the -dev packages scripts/deps.sh installs, and network access
# to the Debian archive (DEBIAN_MIRROR, default http://deb.debian.org/debian).
set -euo pipefail
VERSION=7.8.3
REVISION=2
PREFIX=${ROCKSDB_PREFIX:-/opt/affinity/rocksdb-$VERSION-$REVISION}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STAMP="$PREFIX/.built-without-assertions-with-rtti"
if [ -f "$STAMP" ]; then
  echo "deps: RocksDB $VERSION without debug assertions in $PREFIX"
  exit 0
fi
# The files of the source package, pinned by their SHA-256.
declare -A SHA256=(
  ["rocksdb_$VERSION-$REVISION.dsc"]=8c799d700b825cc4eebb5afbd43ebf2fb13d397828fc442c61d786f7792c2976
  ["rocksdb_$VERSION.orig.tar.gz"]=b85408a374770897332bf15e51620a5f35720dd416a4749e3899057f9cfaf84d
  ["rocksdb_$VERSION-$REVISION.debian.tar.xz"]=4ead930612734d2b79e8f5e72e51659004c5a47f8d6bb90dea8eb42fd6d88a02
)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/affinity-rocksdb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
echo "deps: building RocksDB $VERSION without debug assertions into $PREFIX (once per machine; 15-20 min on 2 cores)"
for f in "${!SHA256[@]}"; do
  curl -fsSL --retry 3 -o "$f" "$MIRROR/pool/main/r/rocksdb/$f"
  echo "${SHA256[$f]}  $f" | sha256sum --check --quiet
done
dpkg-source --no-check -x "rocksdb_$VERSION-$REVISION.dsc" src >/dev/null
JOBS=$(nproc)
cmake -S src -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DUSE_RTTI=ON -DWITH_BZ2=ON -DWITH_LZ4=ON -DWITH_ZLIB=ON -DWITH_ZSTD=ON -DWITH_SNAPPY=ON -DWITH_GFLAGS=OFF \
  -DROCKSDB_BUILD_SHARED=OFF -DWITH_TESTS=OFF -DWITH_TOOLS=OFF -DWITH_CORE_TOOLS=OFF \
  -DWITH_BENCHMARK_TOOLS=OFF -DPORTABLE=ON -DFAIL_ON_WARNINGS=OFF >build.log 2>&1 ||
  { tail -30 build.log >&2; exit 1; }
cmake --build build -j "$JOBS" --target rocksdb >>build.log 2>&1 || { tail -30 build.log >&2; exit 1; }
SUDO=""
[ "$(id -u)" -ne 0 ] && [ ! -w "$(dirname "$PREFIX")" ] && SUDO="sudo"
$SUDO cmake --install build >>build.log 2>&1 || { tail -30 build.log >&2; exit 1; }
# A release build defines NDEBUG: the assertions' text is not in the library.
LIB=$(find "$PREFIX" -name librocksdb.a | head -1)
if [ -z "$LIB" ] || strings "$LIB" | grep -q "sync_without_flush_called_"; then
  echo "deps: the RocksDB built in $PREFIX still holds debug assertions" >&2
  exit 1
fi
$SUDO touch "$STAMP"
echo "deps: RocksDB $VERSION without debug assertions installed in $PREFIX"
