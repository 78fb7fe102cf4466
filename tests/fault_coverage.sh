#!/usr/bin/env bash
# The fault-coverage check (tests/test_support.h says how tests record what they observe).
#
# Usage: fault_coverage.sh reset DIR
#          Empties the record directory (CTest's fixture setup, before any test case runs).
#        fault_coverage.sh check DIR FAULTS_H TEST_BINARY...
#          Exits 77 (CTest SKIP) unless every test case of the Catch2 TEST_BINARYs ran since the
#          reset, then 1 if a fault code string of FAULTS_H other than Server.InternalError was
#          never observed, else 0.
set -euo pipefail

# A code that no test can provoke without breaking the SS's own invariants.
readonly kExempt="Server.InternalError"

mode=${1:-}
dir=${2:-}
case "$mode" in
  reset)
    rm -rf "$dir"
    mkdir -p "$dir"
    exit 0
    ;;
  check) ;;
  *) sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
faults_h=$3
shift 3

# Every code the header defines is in faults::kAll, the list outside faults are checked against.
defined=$(sed -n 's/^inline constexpr absl::string_view \(k[A-Za-z]*\) =.*/\1/p' "$faults_h" |
          grep -vx 'kFaultPayloadUrl' | sort -u)
listed=$(sed -n '/kAll\[\] = {/,/};/p' "$faults_h" | grep -o 'k[A-Z][A-Za-z]*' | sort -u)
unlisted=$(comm -23 <(echo "$defined") <(echo "$listed"))
if [ -n "$unlisted" ]; then echo "FAIL: not in faults::kAll: $unlisted"; exit 1; fi

records() { cat "$dir"/*.txt 2>/dev/null | sed -n "s/^$1	//p" | sort -u; }

for binary in "$@"; do
  [ -x "$binary" ] || { echo "FAIL: test program $binary is not built"; exit 1; }
done
# Catch2 2.13 exits with the number of test cases listed, so the exit code says nothing here.
expected=$(for binary in "$@"; do "$binary" --list-test-names-only || true; done |
           sed '/^$/d' | sort -u)
if [ -z "$expected" ]; then echo "FAIL: the test programs list no test cases"; exit 1; fi
missing=$(comm -23 <(echo "$expected") <(records ran))
if [ -n "$missing" ]; then
  echo "SKIP: $(echo "$missing" | wc -l) of $(echo "$expected" | wc -l) test cases did not run" \
       "in this ctest invocation, e.g.: $(echo "$missing" | head -n 1)"
  exit 77
fi

# Every quoted code in the header: a code added there is checked without touching this script.
codes=$(grep -o '"[A-Z][A-Za-z]*\(\.[A-Za-z]\{1,\}\)\{1,\}"' "$faults_h" | tr -d '"' | sort -u |
        grep -vxF "$kExempt")
observed=$(records fault)
never=$(comm -23 <(echo "$codes") <(echo "$observed"))
echo "observed $(comm -12 <(echo "$codes") <(echo "$observed") | wc -l) of $(echo "$codes" | wc -l)" \
     "fault codes ($kExempt exempt) in $(echo "$expected" | wc -l) test cases"
if [ -n "$never" ]; then
  echo "never observed by any test:"
  echo "$never" | sed 's/^/  /'
  exit 1
fi
