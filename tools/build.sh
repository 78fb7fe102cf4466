#!/usr/bin/env bash
# Configures and builds Darvoza with CMake + Ninja. Sourced by test.sh and demo.sh.
# Usage: tools/build.sh [--no-sanitize] [--build-dir DIR] [--release]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

sanitize=ON
build_type=Debug
testing=ON
build_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-sanitize) sanitize=OFF; shift ;;
    --release) sanitize=OFF; build_type=Release; testing=OFF; shift ;;  # demo and benchmarks
    --build-dir) build_dir=$2; shift 2 ;;
    *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$build_dir" ]; then
  if [ "$sanitize" = ON ]; then build_dir="$root/build/asan"; else build_dir="$root/build/$build_type"; fi
fi

"$root/tools/install-deps.sh" >&2
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
  -DDARVOZA_SANITIZE="$sanitize" -DDARVOZA_TESTING="$testing" >&2
cmake --build "$build_dir" -j "$(nproc)" >&2
echo "$build_dir"
