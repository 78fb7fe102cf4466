#!/bin/bash
# A port in use is an error on every TCP listener of both daemons. gRPC sets
# SO_REUSEPORT by default, so without common/grpc_server.h's StartServer a second daemon
# configured with a running daemon's port started and took a share of its connections.
# Here each listener of a running registry and a running SS is given to a second daemon of the
# same kind: that daemon must exit non-zero, naming the port, while the first keeps serving.
# Exit 77 (skipped) when the binaries are not built.
set -euo pipefail
source "$(dirname "$0")/../daemons.sh"
require_built "$CLI" "$REGD" "$SSD"
port_of() { echo "${1##*:}"; }

# expect_refused NAME PORT COMMAND...: the command (a daemon start) must exit non-zero on its
# own, and its stderr must name the port. A daemon that starts anyway is killed by the timeout.
expect_refused() {
  local name=$1 port=$2
  shift 2
  set +e
  timeout 60 "$@" 2>"$TMP/$name.err"
  local rc=$?
  set -e
  if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then
    echo "FAIL: $name: a second daemon on port $port started (rc $rc)"; cat "$TMP/$name.err"; exit 1
  fi
  if ! grep -q "cannot listen on .*:$port" "$TMP/$name.err"; then
    echo "FAIL: $name: the error does not name port $port"; cat "$TMP/$name.err"; exit 1
  fi
  echo "ok: $name refused (rc $rc): $(grep -o "cannot listen on [^:]*address [^ ]*" "$TMP/$name.err")"
}

# --- Registry: a running one, and a second one (its own data directory) on its ports.
start_registry
REG_OPS=$(json "$TMP/reg/listen.json" ops)

"$CLI" registry init --instance UZ --data-dir "$TMP/reg2" --address 127.0.0.1:1 \
  --public-listen 127.0.0.1:0 >/dev/null
# Every port on 0 but the one under test (init's default ops port is fixed).
sed 's/^ops_listen.*/ops_listen = "127.0.0.1:0"/' "$TMP/reg2/registry.toml" >"$TMP/reg2/base.toml"
sed "s/^public_listen.*/public_listen = \"$REG\"/" "$TMP/reg2/base.toml" >"$TMP/reg2/registry.toml"
expect_refused registry-public "$(port_of "$REG")" "$REGD" --config "$TMP/reg2/registry.toml"
sed "s/^ops_listen.*/ops_listen = \"$REG_OPS\"/" "$TMP/reg2/base.toml" >"$TMP/reg2/registry.toml"
expect_refused registry-ops "$(port_of "$REG_OPS")" "$REGD" --config "$TMP/reg2/registry.toml"
# A second registry on the first one's data directory is refused (database lock) and leaves
# the running one's listen.json and admin socket alone.
set +e
timeout 60 "$REGD" --config "$TMP/reg/registry.toml" 2>"$TMP/registry-same-dir.err"
rc=$?
set -e
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "FAIL: a second registry on the same data directory started"; exit 1; }
[ -s "$TMP/reg/listen.json" ] || { echo "FAIL: the refused registry removed the running one's listen.json"; exit 1; }
echo "ok: registry on the same data directory refused (rc $rc)"
# A second registry configured with the first one's admin socket is refused.
sed "s#^admin_socket.*#admin_socket = \"$TMP/reg/admin.sock\"#" "$TMP/reg2/base.toml" >"$TMP/reg2/registry.toml"
set +e
timeout 60 "$REGD" --config "$TMP/reg2/registry.toml" 2>"$TMP/registry-admin.err"
rc=$?
set -e
if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! grep -q "cannot listen on the admin socket $TMP/reg/admin.sock" "$TMP/registry-admin.err"; then
  echo "FAIL: a second registry took the admin socket (rc $rc)"; cat "$TMP/registry-admin.err"; exit 1
fi
echo "ok: registry on the first one's admin socket refused (rc $rc)"
# The first registry still answers on its public port and its admin socket.
"$CLI" registry member add UZ/GOV/70000001 --name Tax --data-dir "$TMP/reg" >/dev/null

# --- Security server: a registered one, running; a copy of its directory made before it
# started is the second one (its own database and admin socket, the same certificates).
SS=$TMP/ss1
register_ss "$SS" UZ/GOV/70000001/ss1
SS2=$TMP/ss2
cp -a "$SS" "$SS2"
sed "s#$SS#$SS2#g" "$SS2/ss.toml" >"$SS2/base.toml"

"$SSD" --config "$SS/ss.toml" 2>"$TMP/ss.log" &
PIDS+=($!)
wait_for "test -s $SS/listen.json"
# The copy starts on port 0 everywhere: the setup itself is sound.
cp "$SS2/base.toml" "$SS2/ss.toml"
"$SSD" --config "$SS2/ss.toml" 2>"$TMP/ss2-ok.log" &
SS2PID=$!
PIDS+=($SS2PID)
wait_for "test -s $SS2/listen.json"
kill -TERM $SS2PID
wait $SS2PID

for listener in ss client client_tls ops; do
  address=$(json "$SS/listen.json" "$listener")
  [ -n "$address" ] || { echo "no $listener address in listen.json"; exit 1; }
  sed "s/^${listener}_listen.*/${listener}_listen = \"$address\"/" "$SS2/base.toml" >"$SS2/ss.toml"
  grep -q "^${listener}_listen = \"$address\"" "$SS2/ss.toml" || {
    echo "ss.toml has no ${listener}_listen line"; cat "$SS2/ss.toml"; exit 1; }
  expect_refused "ss-$listener" "$(port_of "$address")" "$SSD" --config "$SS2/ss.toml"
done
# The first SS's admin socket, given to the second, is refused too (not unlinked and taken).
sed "s#^admin_socket.*#admin_socket = \"$SS/admin.sock\"#" "$SS2/base.toml" >"$SS2/ss.toml"
set +e
timeout 60 "$SSD" --config "$SS2/ss.toml" 2>"$TMP/ss-admin.err"
rc=$?
set -e
if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! grep -q "cannot listen on the admin socket $SS/admin.sock" "$TMP/ss-admin.err"; then
  echo "FAIL: a second SS took the admin socket (rc $rc)"; cat "$TMP/ss-admin.err"; exit 1
fi
echo "ok: SS on the first one's admin socket refused (rc $rc)"
# The first SS still serves.
"$CLI" ss status --data-dir "$SS" | grep -q "security server  UZ/GOV/70000001/ss1"
echo "ok"
