#!/usr/bin/env bash
# Builds one libFuzzer target with clang (build/fuzz, -DDARVOZA_FUZZ=ON), runs it for a number of
# seconds starting from its committed corpus, and merges the inputs that reached new coverage
# back into that corpus (tests/fuzz/corpus/<dir>/, replayed by CTest under gcc). A crash leaves
# its input in build/fuzz/artifacts/<target>/ and makes the script fail.
#
# Usage: tools/fuzz.sh [options] TARGET SECONDS     e.g. tools/fuzz.sh envelope_fuzz 600
# Options:
#   --build-dir D   the clang build tree (default build/fuzz)
#   --max-len N     longest input libFuzzer makes (default 8192)
#   --no-merge      leave the committed corpus as it is
# The last lines are libFuzzer's final statistics (stat::number_of_executed_units is the count
# of executions). Run it under `nice` on a shared machine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_dir="$root/build/fuzz"
max_len=8192
merge=1
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --max-len) max_len=$2; shift 2 ;;
    --no-merge) merge=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -ne 2 ]; then usage >&2; exit 2; fi
target=$1
seconds=$2

# The corpus directory is the one tests/fuzz/CMakeLists.txt names for the target, so the
# replay test and the fuzzer can never read different directories.
corpus_name=$(sed -n "s/^darvoza_add_fuzz_target(${target}[[:space:]]\{1,\}\([^[:space:])]*\).*/\1/p" \
  "$root/tests/fuzz/CMakeLists.txt")
if [ -z "$corpus_name" ]; then
  echo "fuzz.sh: no darvoza_add_fuzz_target(${target} ...) in tests/fuzz/CMakeLists.txt" >&2
  exit 2
fi
corpus="$root/tests/fuzz/corpus/$corpus_name"

for tool in clang-14 clang++-14; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool missing (apt-get install -y clang-14 libclang-rt-14-dev)" >&2; exit 2; }
done
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDARVOZA_FUZZ=ON -DDARVOZA_TESTING=ON >&2
fi
ninja -C "$build_dir" "$target" >&2

binary="$build_dir/tests/fuzz/$target"
artifacts="$build_dir/artifacts/$target"
work=$(mktemp -d /tmp/dvz-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts" "$corpus"

# New inputs go to a scratch directory first; the merge keeps only those that add coverage.
"$binary" -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$work" "$corpus"
if [ "$merge" = 1 ]; then
  before=$(find "$corpus" -type f | wc -l)
  "$binary" -merge=1 -max_len="$max_len" "$corpus" "$work" >/dev/null 2>&1
  after=$(find "$corpus" -type f | wc -l)
  echo "fuzz.sh: $target corpus $before -> $after inputs ($corpus)"
fi
