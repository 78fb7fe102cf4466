#!/bin/bash
# The audit log of a real darvoza-ss, as an operator and an auditor see it.
#   ss_audit_test.sh tamper   a stopped SS's audit directory, copied and edited by audit_tamper
#                             in each way an attacker with the files could; strict
#                             `darvoza audit verify` must refuse each, naming the first bad record
#   ss_audit_test.sh health   `darvoza ss status` and the darvoza_ss_audit_* metrics: seals,
#                             witness, disk use; a restored backup makes the registry's witness
#                             refuse the next seal (WitnessHeadMismatch: status, metric, log line);
#                             an unreadable newest record makes the daemon start NOT_SERVING with
#                             an alarm, refusing changes, until repaired as docs/operator.md says
# Exit 77 (skipped) when the binaries are not built.
set -euo pipefail
MODE=${1:?tamper or health}
source "$(dirname "$0")/../daemons.sh"
TAMPER=$BUILD/tests/audit/audit_tamper
require_built "$CLI" "$REGD" "$SSD" "$TAMPER"
command -v curl >/dev/null || { echo "skip: curl not installed"; exit 77; }

fail() { echo "FAIL: $*"; exit 1; }

start_registry
"$CLI" registry member add UZ/GOV/70000001 --name Tax --data-dir "$TMP/reg" >/dev/null

SS=$TMP/ss1
register_ss "$SS" UZ/GOV/70000001/ss1

SSPID=""
LOGN=0
start_ss() {
  rm -f "$SS/listen.json"
  LOGN=$((LOGN + 1))
  "$SSD" --config "$SS/ss.toml" 2>"$TMP/ss.$LOGN.log" &
  SSPID=$!
  PIDS+=($SSPID)
  # Serving, or exited: a daemon that refused to start says why in its log.
  wait_for "test -s $SS/listen.json || ! kill -0 $SSPID" || true
  test -s "$SS/listen.json" || fail "darvoza-ss did not start: $(cat "$TMP/ss.$LOGN.log")"
  OPS=$(json "$SS/listen.json" ops)
}
stop_ss() {
  kill -TERM "$SSPID"
  wait "$SSPID" || true
}
status() { "$CLI" ss status --data-dir "$SS"; }
# Every record sealed and every seal witnessed (the status line says so).
all_witnessed() {
  status >"$TMP/st" 2>&1 || return 1
  grep -Eq '^audit log  head ([0-9]+), last seal \1 at ' "$TMP/st" &&
    grep -q '^  witness  OK; unwitnessed seals 0,' "$TMP/st"
}
head_seq() { status | sed -n 's/^audit log  head \([0-9]*\),.*/\1/p'; }
# `n` administrative changes: each one is an audit record.
changes() {
  for i in $(seq "$2"); do "$CLI" ss group add "$1$i" --data-dir "$SS" >/dev/null; done
}
# gRPC over HTTP/2 without a gRPC client: an empty request message, the reply's message bytes.
grpc_call() {
  curl -s --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary @<(printf '\0\0\0\0\0') --output - "http://$OPS/$1" | tail -c +6
}
metrics() { grpc_call darvoza.v1.SecurityServerOps/Metrics | tr -d '\000' ; }
# grpc.health.v1.HealthCheckResponse: field 1 (status) = 1 SERVING, 2 NOT_SERVING.
health() {
  case "$(grpc_call grpc.health.v1.Health/Check | od -An -tx1 | tr -d ' \n')" in
    0801) echo SERVING ;;
    0802) echo NOT_SERVING ;;
    *) echo UNKNOWN ;;
  esac
}
verify() {
  local target=$1
  shift
  "$CLI" audit verify "$target" --anchor "$TMP/reg/anchor.bin" --global-conf "$SS/globalconf.bin" "$@"
}

start_ss
changes g 25
wait_for all_witnessed
HEAD=$(head_seq)
[ "$HEAD" -ge 25 ] || fail "head $HEAD after 25 changes"

if [ "$MODE" = tamper ]; then
  stop_ss
  BASE=$TMP/base
  cp -a "$SS/audit" "$BASE"
  verify "$BASE" >"$TMP/v" || fail "the untouched log does not verify: $(cat "$TMP/v")"
  grep -q "^OK: records 1..$HEAD " "$TMP/v" || fail "unexpected verdict: $(cat "$TMP/v")"

  # tamper NAME EXPECTED_SEQ OP [ARGS]: edits a fresh copy, strict verify must name the record.
  tamper() {
    local name=$1 expect=$2
    shift 2
    local copy=$TMP/t-$name
    rm -rf "$copy"
    cp -a "$BASE" "$copy"
    "$TAMPER" "$copy" "$@" >"$TMP/tamper.out" || fail "$name: audit_tamper $*"
    grep -q "^first bad record $expect$" "$TMP/tamper.out" ||
      fail "$name: audit_tamper says $(cat "$TMP/tamper.out"), expected $expect"
    if verify "$copy" >"$TMP/v" 2>&1; then fail "$name: strict verify accepted it"; fi
    grep -q "record $expect\b" "$TMP/v" || fail "$name: verify does not name record $expect: $(cat "$TMP/v")"
    echo "ok  $name: $(head -n 1 "$TMP/v")"
  }
  MID=$((HEAD / 2))
  tamper flip "$MID" flip "$MID"
  tamper garble-newest "$HEAD" garble newest
  tamper delete "$MID" delete "$MID"
  tamper swap 10 swap 10 11
  tamper cut $((HEAD - 3)) cut $((HEAD - 3))
  tamper append-forged $((HEAD + 1)) append-forged
  # The first record of the last seal: find it by dropping that seal on a scratch copy.
  cp -a "$BASE" "$TMP/scratch"
  LAST_SEAL_FIRST=$("$TAMPER" "$TMP/scratch" drop-last-seal | sed -n 's/^first bad record //p')
  tamper drop-last-seal "$LAST_SEAL_FIRST" drop-last-seal
  tamper rewrite-tail "$LAST_SEAL_FIRST" rewrite-tail

  # Archives handed to an auditor.
  "$CLI" audit export --db "$BASE" --out "$TMP/a.dvz" --global-conf "$SS/globalconf.bin" >/dev/null
  verify "$TMP/a.dvz" >"$TMP/v.archive" || fail "the archive does not verify: $(cat "$TMP/v.archive")"
  cp "$TMP/a.dvz" "$TMP/trailing.dvz"
  "$TAMPER" "$TMP/trailing.dvz" archive-trailing >/dev/null
  if verify "$TMP/trailing.dvz" >"$TMP/v" 2>&1; then fail "trailing bytes accepted"; fi
  grep -q "bytes were appended" "$TMP/v" || fail "trailing bytes: $(cat "$TMP/v")"
  echo "ok  archive-trailing: $(head -n 1 "$TMP/v")"
  # A forged copy of a body listed before the genuine one. An SS's own administrative records
  # carry no body; with none in the log this case is left to tests/audit/archive_test.cc.
  BODY_SEQ=""
  if ! grep -q ", 0 bodies)" "$TMP/v.archive"; then
    for seq in $(seq 1 "$HEAD"); do
      if "$CLI" audit show --db "$BASE" "$seq" | grep -q '^  body .*(stored)'; then
        BODY_SEQ=$seq; break
      fi
    done
  fi
  if [ -n "$BODY_SEQ" ]; then
    cp "$TMP/a.dvz" "$TMP/dup.dvz"
    "$TAMPER" "$TMP/dup.dvz" archive-dup-body "$BODY_SEQ" >/dev/null
    if verify "$TMP/dup.dvz" >"$TMP/v" 2>&1; then fail "a duplicate body accepted"; fi
    grep -q "record $BODY_SEQ\b" "$TMP/v" || fail "duplicate body: $(cat "$TMP/v")"
    echo "ok  archive-dup-body: $(head -n 1 "$TMP/v")"
  else
    echo "--  archive-dup-body: no record with a body in this log"
  fi
  echo "ok"
  exit 0
fi

[ "$MODE" = health ] || fail "unknown mode $MODE"

# 1. A healthy log: seals witnessed, disk use, in the status and the metrics.
status >"$TMP/st"
grep -q "^audit log  head $HEAD, last seal $HEAD at .*, disk [1-9][0-9]* bytes$" "$TMP/st" ||
  fail "status: $(cat "$TMP/st")"
[ "$(health)" = SERVING ] || fail "health $(health)"
metrics >"$TMP/m"
grep -q "^darvoza_ss_audit_last_seal_seq $HEAD$" "$TMP/m" || fail "metrics: $(grep audit "$TMP/m")"
grep -q "^darvoza_ss_audit_unwitnessed_seals 0$" "$TMP/m" || fail "metrics: $(grep audit "$TMP/m")"
grep -q "^darvoza_ss_audit_unwitnessed_age_seconds 0$" "$TMP/m" || fail "metrics: $(grep audit "$TMP/m")"
grep -q "^darvoza_ss_audit_witness_head_mismatch 0$" "$TMP/m" || fail "metrics: $(grep audit "$TMP/m")"
grep -q "^darvoza_ss_audit_damaged 0$" "$TMP/m" || fail "metrics: $(grep audit "$TMP/m")"
grep -Eq "^darvoza_ss_audit_disk_bytes [1-9]" "$TMP/m" || fail "metrics: $(grep audit "$TMP/m")"
echo "ok  healthy: $(grep '^audit log' "$TMP/st")"

# 2. A restored backup: the registry's witness holds a later head than the log continues.
stop_ss
cp -a "$SS/audit" "$TMP/backup"
start_ss
changes h 3
wait_for all_witnessed
stop_ss
rm -rf "$SS/audit"
cp -a "$TMP/backup" "$SS/audit"
start_ss
changes r 1
wait_for "status | grep -q 'REFUSED Server.Registry.WitnessHeadMismatch'"
status >"$TMP/st"
grep -Eq '^  witness  REFUSED .*; unwitnessed seals [1-9][0-9]*, unwitnessed for ' "$TMP/st" ||
  fail "status: $(cat "$TMP/st")"
grep -q "^WARNING: the registry's witness refuses this server's seals" "$TMP/st" ||
  fail "status: $(cat "$TMP/st")"
metrics >"$TMP/m"
grep -q "^darvoza_ss_audit_witness_head_mismatch 1$" "$TMP/m" || fail "metrics: $(grep audit "$TMP/m")"
grep -Eq "^darvoza_ss_audit_unwitnessed_seals [1-9]" "$TMP/m" || fail "metrics: $(grep audit "$TMP/m")"
grep -q "^darvoza_ss_audit_witness_ok 0$" "$TMP/m" || fail "metrics: $(grep audit "$TMP/m")"
grep -q "ALARM: the registry's witness refused our seal" "$TMP/ss.$LOGN.log" ||
  fail "no alarm in the log: $(cat "$TMP/ss.$LOGN.log")"
[ "$(grep -c 'ALARM: the registry' "$TMP/ss.$LOGN.log")" -eq 1 ] ||
  fail "the alarm is logged once per change, not per retry: $(cat "$TMP/ss.$LOGN.log")"
echo "ok  restored backup: $(grep '^  witness' "$TMP/st")"

# 3. An unreadable newest record: the daemon starts, says so everywhere, and refuses changes.
stop_ss
"$TAMPER" "$SS/audit" garble newest >"$TMP/tamper.out"
BAD=$(sed -n 's/^first bad record //p' "$TMP/tamper.out")
start_ss
[ "$(health)" = NOT_SERVING ] || fail "health $(health) with a damaged audit log"
status >"$TMP/st"
grep -q "^  DAMAGED  .*record $BAD does not parse" "$TMP/st" || fail "status: $(cat "$TMP/st")"
grep -q "^WARNING: the audit log is damaged" "$TMP/st" || fail "status: $(cat "$TMP/st")"
metrics >"$TMP/m"
grep -q "^darvoza_ss_audit_damaged 1$" "$TMP/m" || fail "metrics: $(grep audit "$TMP/m")"
grep -q "ALARM: the audit log is damaged (record $BAD does not parse" "$TMP/ss.$LOGN.log" ||
  fail "no alarm in the log: $(cat "$TMP/ss.$LOGN.log")"
# The replay window cannot be read back from such a log: the daemon stays up and says so (its
# guard then refuses every request to this SS's services).
grep -q "replay.restore_failed.*record $BAD does not parse" "$TMP/ss.$LOGN.log" ||
  fail "no replay.restore_failed in the log: $(cat "$TMP/ss.$LOGN.log")"
if "$CLI" ss group add after-damage --data-dir "$SS" >"$TMP/out" 2>&1; then
  fail "a change was accepted while the audit log cannot record it"
fi
grep -q "nothing was changed" "$TMP/out" || fail "refusal: $(cat "$TMP/out")"
"$CLI" ss group list --data-dir "$SS" | grep -q after-damage && fail "an unrecorded change was made"
# Nothing was skipped: the bad record is still there for the auditor to see (its seal is one
# the witness refused, hence --allow-unwitnessed, or that seal would be named first).
if verify "$SS/audit" --allow-unwitnessed >"$TMP/v" 2>&1; then fail "verify accepted the damaged log"; fi
grep -q "record $BAD" "$TMP/v" || fail "verify: $(cat "$TMP/v")"
echo "ok  damaged: $(grep DAMAGED "$TMP/st")"

# 4. The repair docs/operator.md describes: keep the damaged log as evidence, export what it
# holds for the auditors, restore the newest backup.
stop_ss
cp -a "$SS/audit" "$TMP/evidence"
"$CLI" audit export --db "$TMP/evidence" --out "$TMP/evidence.dvz" >/dev/null
rm -rf "$SS/audit"
cp -a "$TMP/backup" "$SS/audit"
start_ss
[ "$(health)" = SERVING ] || fail "health $(health) after the repair"
"$CLI" ss group add after-repair --data-dir "$SS" >/dev/null
status | grep -q "DAMAGED" && fail "still damaged after the repair"
echo "ok"
