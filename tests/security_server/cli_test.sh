#!/bin/bash
# The operator's path with real processes (docs/operator.md): darvoza-registry and darvoza-ss
# daemons on port 0, set up only through the `darvoza` CLI — init, register (pending, approved),
# hosting request and its approval, services, access rights, status — then SIGTERM.
# Exit 77 (skipped) when the binaries are not built.
set -euo pipefail
source "$(dirname "$0")/../daemons.sh"
require_built "$CLI" "$REGD" "$SSD"

start_registry
"$CLI" registry member add UZ/GOV/70000001 --name Tax --data-dir "$TMP/reg" >/dev/null

SS=$TMP/ss1
"$CLI" ss init --data-dir "$SS" --anchor "$TMP/reg/anchor.bin" --server-id UZ/GOV/70000001/ss1 \
  --ss-listen 127.0.0.1:0 --ss-address 127.0.0.1:5500 --client-listen 127.0.0.1:0 \
  --client-tls-listen 127.0.0.1:0 --ops-listen 127.0.0.1:0 --registry "$REG" >/dev/null
[ "$(stat -c %a "$SS/keys/auth.key")" = 600 ]

set +e
"$CLI" ss register --data-dir "$SS" >"$TMP/register.out"
rc=$?
set -e
[ $rc -eq 3 ] || { echo "register should be pending (3), got $rc"; exit 1; }
ID=$(sed -n 's/^registration request \([0-9a-f]*\): PENDING$/\1/p' "$TMP/register.out")
[ -n "$ID" ]
# The daemon refuses to start without certificates.
if "$SSD" --config "$SS/ss.toml" 2>/dev/null; then echo "started without certificates"; exit 1; fi
"$CLI" registry request approve "$ID" --data-dir "$TMP/reg" >/dev/null
"$CLI" ss register --data-dir "$SS" | grep -q APPROVED

"$SSD" --config "$SS/ss.toml" 2>"$TMP/ss.log" &
SSPID=$!
PIDS+=($SSPID)
wait_for "test -s $SS/listen.json"

"$CLI" ss client add UZ/GOV/70000001/tax-registry --auth plaintext --data-dir "$SS" \
  | grep -q "hosting=PENDING"
HID=$("$CLI" registry request list --data-dir "$TMP/reg" | awk '/hosting/ {print $1}')
[ -n "$HID" ]
"$CLI" registry request approve "$HID" --data-dir "$TMP/reg" >/dev/null
wait_for "\"$CLI\" ss status --data-dir \"$SS\" | grep -q 'hosted subsystems: UZ/GOV/70000001/tax-registry'"
"$CLI" ss client list --data-dir "$SS" | grep -q "hosting=APPROVED"

SVC=UZ/GOV/70000001/tax-registry/pkg.Tax.GetDebt
"$CLI" ss service add "$SVC" --backend grpc://127.0.0.1:9000 --data-dir "$SS" >/dev/null
# An https backend's CA and client certificate: files read by the CLI, checked by the SS.
for k in tls other; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/$k.key" 2>/dev/null
done
openssl req -x509 -new -key "$TMP/tls.key" -subj /CN=tls -days 2 -out "$TMP/tls.pem" 2>/dev/null
HTTPS_SVC=UZ/GOV/70000001/tax-registry/persons
if "$CLI" ss service add "$HTTPS_SVC" --backend https://127.0.0.1:9443 --backend-cert "$TMP/tls.pem" \
    --backend-key "$TMP/other.key" --data-dir "$SS" 2>"$TMP/err"; then
  echo "a key of another certificate must be refused"; exit 1
fi
grep -q -- "--backend-key: the private key does not belong to the certificate" "$TMP/err"
if "$CLI" ss service add "$HTTPS_SVC" --backend https://127.0.0.1:9443 \
    --backend-ca "$TMP/missing.pem" --data-dir "$SS" 2>"$TMP/err"; then
  echo "a missing CA file must be refused"; exit 1
fi
grep -q "missing.pem" "$TMP/err"
"$CLI" ss service add "$HTTPS_SVC" --backend https://127.0.0.1:9443 --backend-ca "$TMP/tls.pem" \
  --backend-cert "$TMP/tls.pem" --backend-key "$TMP/tls.key" --data-dir "$SS" >/dev/null
"$CLI" ss service list --data-dir "$SS" | grep -q "persons -> https://127.0.0.1:9443  (own CAs)  (client certificate)"
"$CLI" ss acl grant "$SVC" member:UZ/COM/1 --data-dir "$SS" >/dev/null
"$CLI" ss acl list --data-dir "$SS" | grep -q "member:UZ/COM/1"
"$CLI" ss group add partners --data-dir "$SS" >/dev/null
"$CLI" ss group add-member partners UZ/COM/1/bank --data-dir "$SS" >/dev/null
"$CLI" ss group list --data-dir "$SS" | grep -q "partners: UZ/COM/1/bank"
if "$CLI" ss acl grant "$SVC" server:UZ/COM/1/ss --data-dir "$SS" 2>/dev/null; then
  echo "a server: subject must be refused"; exit 1
fi
"$CLI" ss status --data-dir "$SS" >"$TMP/status.out"
grep -q "security server  UZ/GOV/70000001/ss1" "$TMP/status.out"
grep -q "this SS is listed" "$TMP/status.out"
grep -q "registry  reachable" "$TMP/status.out"
[ "$(grep -c 'valid until' "$TMP/status.out")" -eq 3 ]

# SIGTERM: a clean, prompt shutdown.
kill -TERM $SSPID
wait $SSPID
echo "ok"
