#!/bin/bash
# docs/auditor.md followed literally against real daemons: the same commands, in the same order,
# with the same file names (anchor.bin, <data dir>/audit, <data dir>/globalconf.bin), from an
# auditor's working directory. Then what the guide promises about a cut tail (an archive that
# ends before the witnessed head fails with --witness-receipt) and about a revoked key (its
# unwitnessed seals fail even with --allow-unwitnessed; its earlier witnessed seals still count).
# Exit 77 (skipped) when the binaries or curl are missing.
set -euo pipefail
source "$(dirname "$0")/../daemons.sh"
require_built "$CLI" "$REGD" "$SSD"
command -v curl >/dev/null || { echo "skip: curl not installed"; exit 77; }

fail() { echo "FAIL: $*"; exit 1; }
# Runs a command that must fail with exit status 1; its output goes to $2.
expect_fail() {
  local out=$1; shift
  set +e
  "$@" >"$out" 2>&1
  local rc=$?
  set -e
  [ $rc -eq 1 ] || { cat "$out"; fail "expected exit 1 from: $*, got $rc"; }
}

# --- The federation: a registry and one security server, set up through the CLI only.
start_registry
"$CLI" registry member add UZ/GOV/70000001 --name Tax --data-dir "$TMP/reg" >/dev/null

SERVER=UZ/GOV/70000001/ss1
SS=$TMP/ss1  # the security server's <data dir>
register_ss "$SS" "$SERVER"

start_ss() {
  rm -f "$SS/listen.json"
  "$SSD" --config "$SS/ss.toml" 2>>"$TMP/ss.log" &
  SSPID=$!
  PIDS+=($SSPID)
  wait_for "test -s $SS/listen.json"
  CLIENT=$(json "$SS/listen.json" client)
}
stop_ss() { kill -TERM "$SSPID"; wait "$SSPID"; }

# Records with message ids: requests from a client nobody registered, each refused and logged
# before the answer.
printf '\0\0\0\0\0' >"$TMP/empty.grpc"
send() {
  for i in "$@"; do
    curl -s -o /dev/null --max-time 10 --http2-prior-knowledge -X POST \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      -H 'x-road-client: UZ/GOV/99999999/nobody' \
      -H 'x-road-service: UZ/GOV/70000001/tax-registry/pkg.Tax.GetDebt' \
      -H "x-road-id: msg-$i" --data-binary @"$TMP/empty.grpc" "http://$CLIENT/pkg.Tax/GetDebt"
  done
}
AUD=$TMP/auditor  # the auditor's working directory
mkdir -p "$AUD"
cp "$TMP/reg/anchor.bin" "$AUD/anchor.bin"  # from the federation operator
# Until every record is sealed and witnessed (strict verification of the live log passes).
witnessed() { "$CLI" audit verify "$SS/audit" --anchor "$AUD/anchor.bin" | grep -q '^OK: records'; }

start_ss
# Two batches, each sealed and witnessed before the next: the log has more than one seal.
send 1 2 3 4 5 6
wait_for witnessed
send 7 8 9 10 11 12
wait_for witnessed
[ -s "$SS/globalconf.bin" ] || fail "the security server has no $SS/globalconf.bin"

cd "$AUD"
# --- docs/auditor.md, section 1: encrypted archives.
"$CLI" audit auditor-key --out auditor.key --public auditor.pub | grep -qx "wrote auditor.key and auditor.pub"
# The operator exports with --encrypt-to auditor.pub (section 5's command).
"$CLI" audit export --db "$SS/audit" --out e.dvza --global-conf "$SS/globalconf.bin" \
  --encrypt-to auditor.pub >/dev/null
expect_fail out.txt "$CLI" audit verify e.dvza --anchor anchor.bin
grep -qx "error: cannot read the archive: the archive is encrypted: give the auditor's private key (--key)" out.txt ||
  { cat out.txt; fail "section 1: the verdict without --key"; }
"$CLI" audit verify e.dvza --anchor anchor.bin --key auditor.key | grep -q '^OK: records 1\.\.'

# --- Section 2: verify the archive (exported as in section 5).
"$CLI" audit export --db "$SS/audit" --out a.dvza --global-conf "$SS/globalconf.bin" >export.out
grep -q '^exported records 1\.\.' export.out || { cat export.out; fail "export"; }
"$CLI" audit verify a.dvza --anchor anchor.bin >verify.out
LAST=$(sed -n 's/^OK: records 1\.\.\([0-9]*\) (.*$/\1/p' verify.out)
[ -n "$LAST" ] || { cat verify.out; fail "section 2: verify"; }
SEALS=$(sed -n 's/.*, \([0-9]*\) seals, \([0-9]*\) witness receipts$/\1 \2/p' verify.out)
read -r NSEALS NRECEIPTS <<<"$SEALS"
[ "$NSEALS" -ge 2 ] && [ "$NSEALS" = "$NRECEIPTS" ] || { cat verify.out; fail "seals and receipts"; }
"$CLI" audit verify a.dvza --anchor anchor.bin --json | grep -q "^{\"ok\":true,\"first_seq\":1,\"last_seq\":$LAST,"

# --- "Was the end cut off?": the witness head from the registry, checked with the anchor.
"$CLI" audit witness-head --server "$SERVER" --anchor anchor.bin --registry "$REG" \
  --out witness-head.receipt --global-conf-out globalconf-now.bin >head.out
grep -q "^witness head of $SERVER: record $LAST, witnessed .*; written to witness-head.receipt$" head.out ||
  { cat head.out; fail "witness-head"; }
grep -q "^global configuration serial [0-9]* (0 revoked certificates); written to globalconf-now.bin$" head.out ||
  { cat head.out; fail "witness-head --global-conf-out"; }
"$CLI" audit verify a.dvza --anchor anchor.bin --witness-receipt witness-head.receipt \
  --global-conf globalconf-now.bin | grep -q "^OK: records 1\.\.$LAST "

# A cut tail: an archive of whole, signed, witnessed seals that ends before the witnessed head
# passes on its own, and fails with the receipt.
"$CLI" audit export --db "$SS/audit" --out cut.dvza --global-conf "$SS/globalconf.bin" \
  --to-seq 1 >/dev/null
CUT=$("$CLI" audit verify cut.dvza --anchor anchor.bin | sed -n 's/^OK: records 1\.\.\([0-9]*\) (.*$/\1/p')
[ -n "$CUT" ] && [ "$CUT" -lt "$LAST" ] || fail "the cut archive should verify alone and end before $LAST"
expect_fail out.txt "$CLI" audit verify cut.dvza --anchor anchor.bin --witness-receipt witness-head.receipt
grep -qx "FAILED at record $((CUT + 1)): record $((CUT + 1)): missing (the witness holds head seq $LAST but the log ends at $CUT)" out.txt ||
  { cat out.txt; fail "the cut tail was not caught"; }

# --- Section 3: look at records, on the live log.
"$CLI" audit show --db "$SS/audit" 3 | grep -q "^record 3$"
"$CLI" audit show --db "$SS/audit" --message-id msg-3 --json | grep -q '"msg-3"'
"$CLI" audit find --db "$SS/audit" --client UZ/GOV/99999999/nobody \
  --from "$(date -u +%Y-%m-%d)T00:00:00Z" --to "$(date -u -d tomorrow +%Y-%m-%d)" >find.out
grep -q "^12 record(s)$" find.out || { cat find.out; fail "section 3: find"; }

# --- Section 4: prove a single message.
"$CLI" audit prove --db "$SS/audit" --message-id msg-7 --out msg-7.proof \
  --global-conf "$SS/globalconf.bin" >prove.out
grep -q "^record [0-9]*: proven in seal ending at seq [0-9]*, witnessed$" prove.out ||
  { cat prove.out; fail "section 4: prove"; }
"$CLI" audit check-proof msg-7.proof --anchor anchor.bin |
  grep -q "^OK: record [0-9]* (REFUSAL, message id msg-7, .*) is in a signed, witnessed seal$"

# --- Section 5: export, retention and purge (the security server stopped).
"$CLI" audit export --db "$SS/audit" --out 2026-q2.dvza --global-conf "$SS/globalconf.bin" \
  >/dev/null
stop_ss
"$CLI" audit purge --db "$SS/audit" --archive 2026-q2.dvza --anchor anchor.bin --older-than 90d \
  >purge.out
# Nothing here is 90 days old: purge keeps everything, and says so.
grep -q "^nothing to purge" purge.out || { cat purge.out; fail "section 5: purge"; }
"$CLI" audit verify "$SS/audit" --anchor anchor.bin | grep -q "^OK: records 1\.\.$LAST "

# --- "Revoked keys": after the revocation the witness refuses the server's seals, and verify
# counts none of them, with or without --allow-unwitnessed; seals witnessed before still count.
start_ss
"$CLI" registry server revoke "$SERVER" --data-dir "$TMP/reg" >/dev/null
send 13 14 15
awaiting() {
  "$CLI" audit verify "$SS/audit" --anchor anchor.bin --allow-unwitnessed |
    grep -q "seals awaiting the witness"
}
wait_for awaiting
stop_ss
"$CLI" audit export --db "$SS/audit" --out after.dvza --global-conf "$SS/globalconf.bin" >/dev/null
"$CLI" audit witness-head --server "$SERVER" --anchor anchor.bin --registry "$REG" \
  --out witness-head.receipt --global-conf-out globalconf-now.bin >head.out
grep -q "^witness head of $SERVER: record $LAST," head.out || { cat head.out; fail "head moved"; }
grep -q "(3 revoked certificates)" head.out || { cat head.out; fail "revocations"; }
expect_fail out.txt "$CLI" audit verify after.dvza --anchor anchor.bin \
  --global-conf globalconf-now.bin --allow-unwitnessed
grep -q "^FAILED at record $((LAST + 1)): record $((LAST + 1)): seal [0-9]* (records $((LAST + 1))\.\.[0-9]*): seal certificate serial [0-9a-f]* was revoked at .* and no witness receipt shows the seal was made before that$" out.txt ||
  { cat out.txt; fail "a seal by a revoked key was accepted"; }
expect_fail out.txt "$CLI" audit verify after.dvza --anchor anchor.bin --global-conf globalconf-now.bin
grep -q "^FAILED at record $((LAST + 1)):" out.txt || { cat out.txt; fail "strict verify after revocation"; }
# What was witnessed before the revocation still verifies, against the same configuration.
"$CLI" audit verify a.dvza --anchor anchor.bin --witness-receipt witness-head.receipt \
  --global-conf globalconf-now.bin | grep -q "^OK: records 1\.\.$LAST "
echo "ok"
