#!/bin/bash
# TLS 1.3 cannot be switched off by accident. A daemon started with an
# inherited GRPC_SSL_CIPHER_SUITES that lists TLS 1.2 suites an EC certificate can serve must
# still refuse a TLS 1.2 handshake (common/tls.h: RestrictTlsToVersion13 overwrites it), and
# accept TLS 1.3. Exit 77 (skipped) when the binaries are not built.
set -euo pipefail
source "$(dirname "$0")/../daemons.sh"
require_built "$CLI" "$REGD"
command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }

"$CLI" registry init --instance UZ --data-dir "$TMP/reg" --address 127.0.0.1:1 \
  --public-listen 127.0.0.1:0 >/dev/null
sed -i 's/^ops_listen.*/ops_listen = "127.0.0.1:0"/' "$TMP/reg/registry.toml"
# TLS 1.2 suites for EC certificates, as an operator's shell might export them.
GRPC_SSL_CIPHER_SUITES="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384" \
  "$REGD" --config "$TMP/reg/registry.toml" 2>"$TMP/reg.log" &
PIDS+=($!)
wait_for "test -s $TMP/reg/listen.json"
REG=$(json "$TMP/reg/listen.json" public)

# s_client exits 0 only when the handshake completed.
handshake() {
  timeout 20 openssl s_client -connect "$REG" "$1" -alpn h2 </dev/null >"$TMP/s_client$1.out" 2>&1
}
if handshake -tls1_2; then
  echo "FAIL: a TLS 1.2 handshake succeeded with an inherited GRPC_SSL_CIPHER_SUITES"
  grep -aE "Protocol|Cipher" "$TMP/s_client-tls1_2.out" || true
  exit 1
fi
handshake -tls1_3 || { echo "FAIL: TLS 1.3 handshake failed"; cat "$TMP/s_client-tls1_3.out"; exit 1; }
grep -aq "TLSv1.3" "$TMP/s_client-tls1_3.out"
echo "ok"
