#!/usr/bin/env bash
# Installs the Debian 12 packages Darvoza builds and tests with, only those missing.
# Runs apt-get through sudo when not root; never prompts. Usage: tools/install-deps.sh [extra...]
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev librocksdb-dev libssl-dev catch2
  libtomlplusplus-dev libcli11-dev
  libboost1.74-dev       # Beast/Asio: the process's HTTP server (REST port, /metrics)
  libcurl4-openssl-dev   # HTTP(S) backends of REST services
  libbenchmark-dev       # bench/micro_*.cc: Google Benchmark micro-benchmarks
  prometheus-cpp-dev     # metrics registry and text format of GET /metrics (core only)
  libspdlog-dev          # common/log: the daemons' event log (text or JSON lines)
  libjemalloc-dev        # common/memory_return: the daemons' malloc (docs/performance.md)
  openssl curl python3 procps
  python3-grpcio python3-protobuf  # tests: an independent gRPC client (mutual-TLS IS test, JSON event log test, guides)
  clang-14  # tools/check-thread-safety.sh: gcc ignores the lock annotations
)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo -n)
else
  echo "error: missing packages (${missing[*]}) and neither root nor sudo available" >&2
  exit 1
fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
