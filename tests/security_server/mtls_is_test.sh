#!/bin/bash
# An information system on mutual TLS with stock clients only (docs/integrator.md, "Mutual TLS
# between your IS and your SS"): the guide's commands, Python grpcio client and curl call run as
# written, with this test's data directory and port substituted for the guide's example values,
# against real darvoza-registry and darvoza-ss daemons. No client overrides the target name: the
# SS's client-port certificate must verify by the host the registry approved (127.0.0.1 here,
# an IP subjectAltName). Then what must fail does: another host name, an unpinned IS
# certificate, and `ss client add --cert` with a file that cannot be pinned.
# Exit 77 (skipped) when the binaries, Python grpcio, protoc, curl or openssl are missing.
set -euo pipefail
source "$(dirname "$0")/../daemons.sh"
require_built "$CLI" "$REGD" "$SSD"
PY=/usr/bin/python3
for t in curl openssl protoc; do command -v $t >/dev/null || { echo "skip: no $t"; exit 77; }; done
$PY -c 'import grpc, google.protobuf' 2>/dev/null || { echo "skip: no python3-grpcio"; exit 77; }
SRC=${DARVOZA_SOURCE_DIR:?}
GUIDE=$SRC/docs/integrator.md
SUB=UZ/GOV/70000002/benefits

start_registry
"$CLI" registry member add UZ/GOV/70000002 --name Employment --data-dir "$TMP/reg" >/dev/null
SS=$TMP/ss2
register_ss "$SS" UZ/GOV/70000002/ss2   # ss-address 127.0.0.1:5500: the approved host
"$SSD" --config "$SS/ss.toml" 2>"$TMP/ss.log" &
PIDS+=($!)
wait_for "test -s $SS/listen.json"
TLS=$(json "$SS/listen.json" client_tls)
PORT=${TLS##*:}
[ -n "$PORT" ] || { echo "no client_tls in listen.json"; cat "$SS/listen.json"; exit 1; }

# The guide's section, its fenced blocks in order: python ones become mtls_client.py, sh ones
# one script. Example values become this test's (the guide tells the reader to do the same).
IS=$TMP/is
mkdir -p "$IS"
ln -s "$SRC/proto" "$IS/proto"
awk '/^### Mutual TLS between your IS and your SS/ {on=1; next}
     on && /^## / {exit}
     on && /^```/ {if (fence) {fence=""} else {fence=substr($0, 4)}; next}
     on && fence == "python" {print > py; next}
     on && fence == "sh" {print > sh}' py="$IS/mtls_client.py" sh="$IS/guide.sh" "$GUIDE"
[ -s "$IS/mtls_client.py" ] && [ -s "$IS/guide.sh" ] || { echo "guide section not found"; exit 1; }
sed -i -e "s|/var/lib/darvoza-ss|$SS|g" -e "s|127.0.0.1:5543|127.0.0.1:$PORT|g" \
  "$IS/mtls_client.py" "$IS/guide.sh"
grep -q "mkdir -p gen && protoc" "$GUIDE"
(cd "$IS" && mkdir -p gen && protoc -I proto --python_out=gen proto/*.proto)

# The guide's client add sends a hosting request: approve it once it is there, while the
# guide's script waits for the configuration that lists the subsystem before calling.
split=$(grep -n '^/usr/bin/python3 mtls_client.py' "$IS/guide.sh" | cut -d: -f1)
[ -n "$split" ] || { echo "the guide does not run mtls_client.py"; exit 1; }
head -n $((split - 1)) "$IS/guide.sh" >"$IS/setup.sh"
tail -n +"$split" "$IS/guide.sh" >"$IS/calls.sh"
(cd "$IS" && PATH="$BUILD/tools:$PATH" bash -euo pipefail setup.sh) >"$TMP/setup.out" 2>&1 \
  || { cat "$TMP/setup.out"; exit 1; }
cat "$TMP/setup.out"
# What the export printed: both fingerprints, and the approved host in the certificate.
grep -q "^  hosts    127.0.0.1$" "$TMP/setup.out"
[ "$(grep -c '^  sha256   [0-9a-f]\{64\}$' "$TMP/setup.out")" -eq 2 ]
[ -s "$IS/darvoza-tls/client-tls.pem" ] && [ -s "$IS/darvoza-tls/ca.pem" ]
# The exported CA is the anchor's root, and the chain's leaf is what the port serves.
openssl verify -CAfile "$IS/darvoza-tls/ca.pem" "$IS/darvoza-tls/client-tls.pem" >/dev/null
grep -q "auth=tls pin=$(openssl x509 -in "$IS/benefits-is.pem" -outform DER | sha256sum | cut -c1-64)" \
  "$TMP/setup.out"
HID=$("$CLI" registry request list --data-dir "$TMP/reg" | awk '/hosting/ {print $1}')
[ -n "$HID" ]
"$CLI" registry request approve "$HID" --data-dir "$TMP/reg" >/dev/null
wait_for "\"$CLI\" ss status --data-dir \"$SS\" | grep -q 'hosted subsystems: $SUB'"

# The guide's Python client and curl call, as written.
(cd "$IS" && PATH="$BUILD/tools:$PATH" bash -euo pipefail calls.sh) >"$TMP/calls.out" 2>&1 \
  || { cat "$TMP/calls.out"; exit 1; }
cat "$TMP/calls.out"
grep -qx "$SUB" "$TMP/calls.out"                       # Python: the federation's subsystems
grep -qi "^grpc-status: 0" "$TMP/calls.out"            # curl: a successful gRPC call
[ "$(stat -c %s "$IS/reply.grpc")" -gt 5 ]             # ... with a non-empty answer
openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$IS/darvoza-tls/ca.pem" -verify_ip 127.0.0.1 \
  -verify_return_error -cert "$IS/benefits-is.pem" -key "$IS/benefits-is.key" </dev/null \
  >"$TMP/s_client.out" 2>&1 || true  # it exits 1 when the gRPC server hangs up on it
grep -q "^Verification: OK" "$TMP/s_client.out" || { cat "$TMP/s_client.out"; exit 1; }

# Another host name than the approved one does not verify: not with Python, not with curl.
sed "s|127.0.0.1:$PORT|localhost:$PORT|" "$IS/mtls_client.py" >"$IS/wrong_host.py"
if (cd "$IS" && $PY wrong_host.py) >"$TMP/wrong_host.out" 2>&1; then
  echo "a client connecting to localhost accepted a certificate for 127.0.0.1"; exit 1
fi
grep -q "refused: UNAVAILABLE" "$TMP/wrong_host.out" || { cat "$TMP/wrong_host.out"; exit 1; }
set +e
curl -sS --http2 --cacert "$IS/darvoza-tls/ca.pem" --cert "$IS/benefits-is.pem" \
  --key "$IS/benefits-is.key" -o /dev/null "https://localhost:$PORT/" 2>"$TMP/curl_wrong.out"
rc=$?
set -e
[ $rc -eq 60 ] || { echo "curl to localhost: exit $rc, want 60 (certificate)"; cat "$TMP/curl_wrong.out"; exit 1; }

# An IS certificate that is not pinned gets through TLS and is refused per call with a fault.
(cd "$IS" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=other-is -keyout other.key -out other.pem 2>/dev/null)
sed -e 's|benefits-is.key|other.key|' -e 's|benefits-is.pem|other.pem|' "$IS/mtls_client.py" \
  >"$IS/other.py"
if (cd "$IS" && $PY other.py) >"$TMP/other.out" 2>&1; then
  echo "an unpinned IS certificate was accepted"; exit 1
fi
grep -q "refused: UNAUTHENTICATED .*Server.ClientProxy.SslAuthenticationFailed" "$TMP/other.out" \
  || { cat "$TMP/other.out"; exit 1; }

# A DNS name: an SS registered as localhost gets a certificate for that name, which stock
# clients verify by name (and not by 127.0.0.1, which it does not name).
SS3=$TMP/ss3
register_ss "$SS3" UZ/GOV/70000002/ss3 localhost:5501
"$CLI" ss tls export --data-dir "$SS3" --cert "$IS/ss3.pem" --ca "$IS/ca3.pem" >"$TMP/export3.out"
grep -q "^  hosts    localhost$" "$TMP/export3.out" || { cat "$TMP/export3.out"; exit 1; }
cmp "$IS/ca3.pem" "$IS/darvoza-tls/ca.pem"   # one instance, one root
"$SSD" --config "$SS3/ss.toml" 2>"$TMP/ss3.log" &
PIDS+=($!)
wait_for "test -s $SS3/listen.json"
PORT3=$(json "$SS3/listen.json" client_tls)
PORT3=${PORT3##*:}
sed "s|127.0.0.1:$PORT|localhost:$PORT3|" "$IS/mtls_client.py" >"$IS/by_name.py"
# TLS passes by name; the call then meets ss3's own rule (benefits is not hosted there).
if (cd "$IS" && $PY by_name.py) >"$TMP/by_name.out" 2>&1; then
  echo "benefits is not hosted on ss3"; exit 1
fi
grep -q "refused: PERMISSION_DENIED .*Client.NotAuthorized" "$TMP/by_name.out" \
  || { cat "$TMP/by_name.out"; exit 1; }
sed "s|127.0.0.1:$PORT|127.0.0.1:$PORT3|" "$IS/mtls_client.py" >"$IS/by_ip3.py"
if (cd "$IS" && $PY by_ip3.py) >"$TMP/by_ip3.out" 2>&1; then
  echo "ss3's certificate was accepted for 127.0.0.1"; exit 1
fi
grep -q "refused: UNAVAILABLE" "$TMP/by_ip3.out" || { cat "$TMP/by_ip3.out"; exit 1; }
openssl s_client -connect "127.0.0.1:$PORT3" -CAfile "$IS/ca3.pem" -verify_hostname localhost \
  -verify_return_error -cert "$IS/benefits-is.pem" -key "$IS/benefits-is.key" </dev/null \
  >"$TMP/s_client3.out" 2>&1 || true
grep -q "^Verification: OK" "$TMP/s_client3.out" || { cat "$TMP/s_client3.out"; exit 1; }

# `ss client add --cert` pins only a certificate an IS can use, and says what is wrong.
expect_refused() {  # expect_refused PHRASE ARGS...: the CLI fails and stderr holds PHRASE
  local phrase=$1; shift
  if "$CLI" ss client add "$SUB" --data-dir "$SS" "$@" >"$TMP/add.out" 2>&1; then
    echo "client add $* succeeded"; exit 1
  fi
  grep -q -- "$phrase" "$TMP/add.out" || { echo "want '$phrase':"; cat "$TMP/add.out"; exit 1; }
}
echo "not a certificate" >"$IS/garbage.pem"
expect_refused "garbage.pem: not a readable X.509 certificate" --auth tls --cert "$IS/garbage.pem"
expect_refused "missing.pem: not a readable X.509 certificate" --auth tls --cert "$IS/missing.pem"
expect_refused "add --auth tls" --auth plaintext --cert "$IS/benefits-is.pem"
# Expired: backdated with openssl's own CA command (-startdate/-enddate take any dates).
mkdir -p "$IS/ca/new"
touch "$IS/ca/index.txt"
printf '[ca]\ndefault_ca=d\n[d]\ndir=%s\ndatabase=$dir/index.txt\nnew_certs_dir=$dir/new\nserial=$dir/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' \
  "$IS/ca" >"$IS/ca/ca.cnf"
echo 01 >"$IS/ca/serial"
(cd "$IS" && openssl req -new -key other.key -subj /CN=old-is -out old.csr 2>/dev/null &&
  openssl ca -batch -config ca/ca.cnf -selfsign -keyfile other.key -in old.csr \
    -startdate 20200101000000Z -enddate 20200201000000Z -out old.pem >/dev/null 2>&1)
expect_refused "old.pem: the certificate expired at 2020-02-01 00:00:00 UTC" \
  --auth tls --cert "$IS/old.pem"
echo "ok"
