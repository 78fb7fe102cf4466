#!/bin/bash
# SIGTERM under load loses no acknowledged exchange (docs/operator.md, "Signals"): the demo's
# federation (tools/demo.sh) answers a client that keeps 8 calls in flight through ss2; ss2 gets
# SIGTERM mid-load. Every call the client saw answered (with its x-road-id) must be in ss2's
# audit log, the log must verify, ss2 must exit by itself and remove its listen.json.
# Exit 77 (skipped) when the binaries are not built.
set -euo pipefail
source "$(dirname "$0")/../daemons.sh"
EXAMPLES=$BUILD/adapters
require_built "$CLI" "$REGD" "$SSD" "$EXAMPLES/darvoza-example-backend" \
  "$EXAMPLES/darvoza-example-client" "$EXAMPLES/darvoza-example-civil-registry"
fail() { echo "FAIL: $*"; exit 1; }

"$DARVOZA_SOURCE_DIR/tools/demo.sh" --build-dir "$BUILD" --env-file "$TMP/demo.env" \
  >"$TMP/demo.out" 2>&1 &
PIDS+=($!)
# The demo's whole set-up, ASan daemons on a loaded machine: up to 240 s.
for _ in $(seq 2400); do
  [ -s "$TMP/demo.env" ] && break
  kill -0 "${PIDS[0]}" 2>/dev/null || fail "demo.sh stopped: $(tail -n 20 "$TMP/demo.out")"
  sleep 0.1
done
[ -s "$TMP/demo.env" ] || fail "the demo federation did not come up"
source "$TMP/demo.env"
read -r -a demo_pids <<<"$DEMO_PIDS"
SS2_PID=${demo_pids[2]}  # registry, ss1, ss2, backend, civil registry (tools/demo.sh)
tr '\0' ' ' <"/proc/$SS2_PID/cmdline" >"$TMP/ss2.cmdline"
grep -q "darvoza-ss .*ss2/ss.toml" "$TMP/ss2.cmdline" || fail "pid $SS2_PID is not ss2"

"$EXAMPLES/darvoza-example-client" --ss "$DEMO_CLIENT_PORT" --client "$DEMO_CLIENT" \
  --service "$DEMO_SERVICE" --count 20000 --concurrency 8 >"$TMP/client.out" 2>&1 &
CLIENT=$!
PIDS+=($CLIENT)
wait_for "[ \$(grep -c '^answer:' $TMP/client.out) -ge 40 ]"
kill -TERM "$SS2_PID"
# ss2 is the demo's child, not ours: watch it go.
for _ in $(seq 600); do kill -0 "$SS2_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SS2_PID" 2>/dev/null; then fail "ss2 still runs 60 s after SIGTERM"; fi
wait $CLIENT || true  # calls after the stop are refused: that is expected
grep -q "darvoza-ss stopped" "$DEMO_WORK/ss2.log" || fail "ss2 did not stop cleanly: $(tail -n 5 "$DEMO_WORK/ss2.log")"
[ ! -e "$DEMO_WORK/ss2/listen.json" ] || fail "ss2 left listen.json behind"

grep -o 'x-road-id=[^ ]*' "$TMP/client.out" | sed 's/x-road-id=//' | sort -u >"$TMP/acked"
acked=$(wc -l <"$TMP/acked")
[ "$acked" -ge 40 ] || fail "only $acked answers"
"$CLI" audit find --client "$DEMO_CLIENT" --limit 0 --db "$DEMO_WORK/ss2/audit" >"$TMP/found"
missing=0
while read -r id; do
  grep -qF "$id" "$TMP/found" || { echo "acknowledged but not in the audit log: $id"; missing=$((missing + 1)); }
done <"$TMP/acked"
[ "$missing" -eq 0 ] || fail "$missing of $acked acknowledged exchanges are missing from the audit log"
"$CLI" audit verify "$DEMO_WORK/ss2/audit" --anchor "$DEMO_WORK/registry/anchor.bin" \
  --allow-unwitnessed >"$TMP/verify" 2>&1 || fail "audit verify: $(cat "$TMP/verify")"
echo "ok: $acked acknowledged exchanges, all in the audit log; $(grep -c '^refused' "$TMP/client.out" || true) refused after the stop"
