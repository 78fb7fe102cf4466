#!/bin/bash
# Daemon manners and the registry address story (docs/operator.md, "Signals" and "When the
# registry is unreachable"), with the real binaries:
#   - --version on every binary, all the same release;
#   - darvoza-registry's flags: -c FILE, --config=FILE, --help, a bad flag refused;
#   - listen.json and the start line give the bound addresses (0.0.0.0 stays 0.0.0.0, port 0
#     becomes the real port); SIGTERM exits 0 and removes listen.json;
#   - an anchor whose registry address is wrong: `ss register` names the address, where it came
#     from and the fix (never "is darvoza-ss running?"), --wait retries, prints the request id at
#     once; `ss status` says why the registry is UNREACHABLE; `registry anchor set-addresses` and
#     SIGHUP repair it without a restart; a wrong anchor file is refused on SIGHUP.
# Exit 77 (skipped) when the binaries are not built.
set -euo pipefail
source "$(dirname "$0")/../daemons.sh"
require_built "$CLI" "$REGD" "$SSD"
fail() { echo "FAIL: $*"; exit 1; }

# ---- --version
want=$(sed -n 's/.*kDarvozaVersion\[\] = "\(.*\)";/\1/p' "$DARVOZA_SOURCE_DIR/common/version.h")
[ -n "$want" ] || fail "no version in common/version.h"
for b in "$CLI" "$REGD" "$SSD" "$BUILD"/adapters/darvoza-example-{backend,client,civil-registry}; do
  [ -x "$b" ] || fail "$b is not built"
  out=$("$b" --version)
  [ "$out" = "$(basename "$b") $want" ] || fail "$b --version said '$out', want '$(basename "$b") $want'"
done

# ---- darvoza-registry's command line
"$REGD" --help >"$TMP/help"
grep -q -- "-c,--config" "$TMP/help" || fail "--help does not describe -c,--config"
if "$REGD" --bogus 2>/dev/null; then fail "a bad flag was accepted"; fi
if "$REGD" 2>/dev/null; then fail "started without --config"; fi

"$CLI" registry init --instance UZ --data-dir "$TMP/reg" --address 127.0.0.1:1 \
  --public-listen 0.0.0.0:0 >/dev/null
sed -i 's/^ops_listen.*/ops_listen = "0.0.0.0:0"/' "$TMP/reg/registry.toml"
"$REGD" -c "$TMP/reg/registry.toml" 2>"$TMP/reg.log" &
RPID=$!
PIDS+=($RPID)
wait_for "test -s $TMP/reg/listen.json"
PUB=$(json "$TMP/reg/listen.json" public)
OPS=$(json "$TMP/reg/listen.json" ops)
case "$PUB" in 0.0.0.0:0 | 127.*) fail "listen.json reports $PUB for 0.0.0.0:0" ;; 0.0.0.0:[1-9]*) ;;
  *) fail "listen.json reports $PUB" ;; esac
case "$OPS" in 0.0.0.0:[1-9]*) ;; *) fail "listen.json reports ops $OPS for 0.0.0.0:0" ;; esac
grep -q "public=$PUB" "$TMP/reg.log" || fail "the start line does not give $PUB"
# SIGHUP does not stop the registry (its default action would) and says what it re-read.
kill -HUP $RPID
wait_for "grep -q 'log.level' $TMP/reg.log"
kill -0 $RPID || fail "SIGHUP stopped the registry"
kill -TERM $RPID
wait $RPID || fail "the registry exited $? on SIGTERM"
[ ! -e "$TMP/reg/listen.json" ] || fail "listen.json left behind by the registry"
grep -q "darvoza-registry stopped" "$TMP/reg.log" || fail "no stop line"

"$REGD" --config="$TMP/reg/registry.toml" 2>"$TMP/reg.log" &
PIDS+=($!)
wait_for "test -s $TMP/reg/listen.json"
REG=127.0.0.1:$(json "$TMP/reg/listen.json" public | sed "s/.*://")
"$CLI" registry member add UZ/GOV/70000001 --data-dir "$TMP/reg" >/dev/null

# ---- a security server whose anchor names an address where no registry listens
SS=$TMP/ss1
"$CLI" ss init --data-dir "$SS" --anchor "$TMP/reg/anchor.bin" --server-id UZ/GOV/70000001/ss1 \
  --ss-listen 0.0.0.0:0 --ss-address 127.0.0.1:5500 --client-listen 127.0.0.1:0 \
  --client-tls-listen 127.0.0.1:0 --ops-listen 127.0.0.1:0 >/dev/null
set +e
"$CLI" ss register --data-dir "$SS" >/dev/null 2>"$TMP/err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "register against no registry: rc $rc"
grep -q "127.0.0.1:1 (from the anchor)" "$TMP/err" || fail "no address in: $(cat "$TMP/err")"
grep -q -- "--registry HOST:PORT" "$TMP/err" || fail "no fix in: $(cat "$TMP/err")"
if grep -q "darvoza-ss" "$TMP/err"; then fail "register blames darvoza-ss: $(cat "$TMP/err")"; fi
# A name that does not resolve gets the DNS hint.
set +e
"$CLI" ss register --data-dir "$SS" --registry registry.example.invalid:4400 >/dev/null 2>"$TMP/err"
set -e
grep -q "cannot resolve the registry address registry.example.invalid:4400 (from --registry)" \
  "$TMP/err" || fail "no DNS hint in: $(cat "$TMP/err")"
# --wait keeps trying while the registry does not answer, saying so, then gives up.
set +e
"$CLI" ss register --data-dir "$SS" --registry 127.0.0.1:1 --wait 3 >/dev/null 2>"$TMP/err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "register --wait 3 with no registry: rc $rc"
grep -q "registry not answering at 127.0.0.1:1 (from --registry).*trying again" "$TMP/err" ||
  fail "no retry progress in: $(cat "$TMP/err")"
# --wait prints the request id at once, then waits for the administrator.
"$CLI" ss register --data-dir "$SS" --registry "$REG" --wait 120 >"$TMP/register.out" \
  2>"$TMP/register.err" &
WAITER=$!
wait_for "grep -q 'is PENDING' $TMP/register.err"
ID=$(sed -n 's/^registration request \([0-9a-f]*\) is PENDING.*/\1/p' "$TMP/register.err")
[ -n "$ID" ] || fail "no request id in: $(cat "$TMP/register.err")"
"$CLI" registry request approve "$ID" --data-dir "$TMP/reg" >/dev/null
wait $WAITER || fail "register --wait exited $?"
grep -q "registration request $ID: APPROVED" "$TMP/register.out" || fail "not approved"

"$SSD" --config "$SS/ss.toml" 2>"$TMP/ss.log" &
SSPID=$!
PIDS+=($SSPID)
wait_for "test -s $SS/listen.json"
SSADDR=$(json "$SS/listen.json" ss)
case "$SSADDR" in 0.0.0.0:[1-9]*) ;; *) fail "listen.json reports ss $SSADDR for 0.0.0.0:0" ;; esac
grep -q "ss=$SSADDR" "$TMP/ss.log" || fail "the start line does not give $SSADDR"
grep -q 'registry.addresses.*registry="127.0.0.1:1 (from the anchor)"' "$TMP/ss.log" || fail "registry choice not logged"
status() { "$CLI" ss status --data-dir "$SS"; }
wait_for "status | grep 'registry  UNREACHABLE (' | grep -vq 'no answer yet'"
status >"$TMP/status"
grep -q "dials 127.0.0.1:1 (from the anchor)" "$TMP/status" || fail "status does not say what it dials"

# An address that is not host:port is refused, and the anchor stays as it was.
cp "$TMP/reg/anchor.bin" "$TMP/anchor.before"
for bad in registry.gov.uz "registry.gov.uz:0" "registry.gov.uz:4400/x" ":4400"; do
  if "$CLI" registry anchor set-addresses --address "$bad" --data-dir "$TMP/reg" 2>"$TMP/err"; then
    fail "set-addresses accepted '$bad'"
  fi
  grep -q "is not host:port" "$TMP/err" || fail "'$bad': $(cat "$TMP/err")"
done
cmp -s "$TMP/anchor.before" "$TMP/reg/anchor.bin" || fail "a refused set-addresses changed anchor.bin"

# The registry administrator corrects the anchor; the operator installs it and sends SIGHUP.
"$CLI" registry anchor set-addresses --address "$REG" --anchor-out "$TMP/new-anchor.bin" \
  --data-dir "$TMP/reg" >/dev/null
cmp -s "$TMP/new-anchor.bin" "$TMP/reg/anchor.bin" || fail "anchor.bin not rewritten"
wait_for "\"$CLI\" registry conf show --data-dir $TMP/reg | grep -q 'registry endpoints:.* $REG'"
cp "$TMP/new-anchor.bin" "$SS/anchor.bin"
kill -HUP $SSPID
wait_for "grep -q 'anchor.reloaded' $TMP/ss.log"
grep -q "anchor.reloaded.*registry=\"$REG (from the anchor)\"" "$TMP/ss.log" ||
  fail "the SIGHUP line does not give the new address: $(grep anchor.reloaded "$TMP/ss.log")"
wait_for "status | grep -q 'registry  reachable'"

# Another registry's anchor is refused; the one in use stays.
"$CLI" registry init --instance UZ --data-dir "$TMP/other" --address "$REG" >/dev/null
cp "$TMP/other/anchor.bin" "$SS/anchor.bin"
kill -HUP $SSPID
wait_for "grep -q 'anchor.refused' $TMP/ss.log"
status >"$TMP/status"
grep -q "registry  reachable" "$TMP/status" || fail "a refused anchor changed something"

kill -TERM $SSPID
wait $SSPID || fail "darvoza-ss exited $? on SIGTERM"
[ ! -e "$SS/listen.json" ] || fail "listen.json left behind by darvoza-ss"
echo ok
