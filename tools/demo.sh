#!/usr/bin/env bash
# The newcomer's path: installs what is missing, builds, and shows Darvoza working.
# Today it runs `darvoza selfcheck` (a throw-away CA, a certificate, a signature, a Merkle
# proof); it grows into a whole federation on loopback as the issues land.
# Usage: tools/demo.sh [--build-dir DIR] [--once]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --once) shift ;;  # the demo already stops by itself
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$build_dir" ]; then
  build_dir=$("$root/tools/build.sh" --release | tail -n 1)
elif [ ! -x "$build_dir/tools/darvoza" ]; then
  echo "demo.sh: $build_dir/tools/darvoza not found; build first or drop --build-dir" >&2
  exit 1
fi

"$build_dir/tools/darvoza" selfcheck
