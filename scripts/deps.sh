#!/usr/bin/env bash
# Installs the Debian packages affinity needs to build, test and benchmark
# (chromium: the operator page's browser test; libpng: reading its screenshot;
# libisal: hardware CRC-32C for snapshot and checkpoint files; libssl: SHA-256 of
# model files; clang with libclang-rt: the fuzz harnesses' libFuzzer and
# sanitizers; python3 with venv
# and pip: the Python client's tests and its offline install test).
# Idempotent: does nothing when every package is already installed. Installs
# with apt-get as root (through sudo when run as another user).
set -euo pipefail
PKGS=(
  build-essential cmake ccache pkg-config
  libsnappy-dev liblz4-dev libzstd-dev zlib1g-dev libbz2-dev dpkg-dev binutils
  libhnswlib-dev libxgboost-dev libsimdjson-dev libboost-dev libisal-dev libssl-dev
  prometheus-cpp-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libeigen3-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  wrk curl
  python3 python3-venv python3-pip
  chromium libpng-dev fonts-dejavu-core
  clang libclang-rt-14-dev
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
else
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
bash "$(dirname "$0")/rocksdb.sh"
