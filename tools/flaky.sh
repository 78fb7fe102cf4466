#!/usr/bin/env bash
# Runs chosen tests N times in a row beside CPU-bound processes and reports every failing run, so
# that a flaky test is caught before it lands (a flaky test is a defect: find the race, don't add
# a sleep). Keeps the output of each failing run.
#
# Usage: tools/flaky.sh [options] -R REGEX          CTest entries whose name matches REGEX
#        tools/flaky.sh [options] -- PROGRAM [ARGS]  one test program (e.g. a Catch2 binary)
# Options:
#   --runs N        how many runs (default 20)
#   --hogs N        CPU-bound processes beside the tests (default 1; 0 for none)
#   --build-dir D   CTest tree for -R (default build/asan)
#   --jobs N        ctest -j inside each run (default 2)
#   -LE LABEL       with -R: leave out CTest entries with this label (e.g. soak)
#   --logs D        where failing runs' output goes (default a new directory under /tmp)
# Exits 0 only when every run passed. The last line is "N passed, M failed".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

runs=20
hogs=1
build_dir="$root/build/asan"
jobs=2
logs=""
regex=""
exclude_label=""
program=()
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --hogs) hogs=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    -R) regex=$2; shift 2 ;;
    -LE) exclude_label=$2; shift 2 ;;
    --) shift; program=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "flaky.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$regex" ] && [ ${#program[@]} -eq 0 ]; then
  echo "flaky.sh: name the tests with -R REGEX or -- PROGRAM (see --help)" >&2
  exit 2
fi
if [ -n "$regex" ] && [ ${#program[@]} -gt 0 ]; then
  echo "flaky.sh: -R and -- PROGRAM exclude each other" >&2
  exit 2
fi
case "$runs$hogs$jobs" in *[!0-9]*) echo "flaky.sh: --runs, --hogs and --jobs take whole numbers" >&2; exit 2 ;; esac
[ -n "$logs" ] || logs=$(mktemp -d /tmp/darvoza-flaky.XXXXXX)
mkdir -p "$logs"

# The same TLS restriction test.sh sets (gRPC reads it before its first credentials).
export GRPC_SSL_CIPHER_SUITES="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"

hog_pids=()
stop_hogs() {
  for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${hog_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  hog_pids=()
}
trap stop_hogs EXIT
for _ in $(seq 1 "$hogs"); do
  yes >/dev/null &
  hog_pids+=($!)
done

if [ -n "$regex" ]; then
  if [ ! -f "$build_dir/CTestTestfile.cmake" ]; then
    echo "flaky.sh: no CTest tree in $build_dir (build first: tools/build.sh)" >&2
    exit 2
  fi
  select=(-R "$regex")
  [ -z "$exclude_label" ] || select+=(-LE "$exclude_label")
  listed=$(cd "$build_dir" && ctest -N "${select[@]}" | sed -n 's/^Total Tests: //p')
  if [ "${listed:-0}" -eq 0 ]; then
    echo "flaky.sh: no CTest entry matches '$regex'" >&2
    exit 2
  fi
  what="$listed CTest entries matching '$regex'${exclude_label:+ without label $exclude_label}"
else
  what="${program[*]}"
fi
echo "Running $what, $runs times, beside $hogs CPU-bound process(es); failing output in $logs"

passed=0
failed=0
start=$(date +%s)
for i in $(seq 1 "$runs"); do
  out="$logs/run-$i.log"
  if [ -n "$regex" ]; then
    set +e
    (cd "$build_dir" && ctest "${select[@]}" -j "$jobs" --output-on-failure --timeout 600) >"$out" 2>&1
    rc=$?
    set -e
  else
    set +e
    "${program[@]}" >"$out" 2>&1
    rc=$?
    set -e
  fi
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "run $i/$runs passed"
    rm -f "$out"
  else
    failed=$((failed + 1))
    echo "run $i FAILED (rc $rc): $out"
    grep -E '^[0-9]+% tests passed|The following tests FAILED|^\s+[0-9]+ - |FAILED:|REQUIRE|CHECK' "$out" | head -n 12 | sed 's/^/    /'
  fi
done
stop_hogs
echo "Took $(( $(date +%s) - start )) s"
echo "flaky: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
