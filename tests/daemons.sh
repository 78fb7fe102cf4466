# Shared by the shell tests that run the real daemons; source it after `set -euo pipefail`.
# It names the binaries in DARVOZA_BUILD_DIR, makes $TMP (removed on exit), stops every process
# whose pid is added to PIDS on exit, and gives polling (never fixed sleeps) and listen.json
# reading. Unix socket paths are short because $TMP is directly under /tmp.
BUILD=${DARVOZA_BUILD_DIR:?}
CLI=$BUILD/tools/darvoza
REGD=$BUILD/registry/darvoza-registry
SSD=$BUILD/security_server/darvoza-ss

# require_built BINARY...: skips the test (exit 77) unless each binary is built.
require_built() {
  for b in "$@"; do [ -x "$b" ] || { echo "skip: $b not built"; exit 77; }; done
}

TMP=$(mktemp -d /tmp/dvz.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# wait_for COMMAND: polls COMMAND (a string for eval) until it succeeds; fails after 60 s (ASan
# daemons on a loaded 2-core machine start slowly).
wait_for() {
  for _ in $(seq 600); do
    if eval "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for: $1"; return 1
}

# json FILE KEY: the string value of KEY in a flat JSON file such as listen.json.
json() { sed -n "s/.*\"$2\": \"\([^\"]*\)\".*/\1/p" "$1"; }

# start_registry [FLAG...]: `darvoza registry init` in $TMP/reg (instance UZ, public and ops
# ports 0), then darvoza-registry with FLAGs, logging to $TMP/reg.log. Sets REG, the public
# address.
start_registry() {
  "$CLI" registry init --instance UZ --data-dir "$TMP/reg" --address 127.0.0.1:1 \
    --public-listen 127.0.0.1:0 >/dev/null
  sed -i 's/^ops_listen.*/ops_listen = "127.0.0.1:0"/' "$TMP/reg/registry.toml"
  "$REGD" --config "$TMP/reg/registry.toml" "$@" 2>"$TMP/reg.log" &
  PIDS+=($!)
  wait_for "test -s $TMP/reg/listen.json"
  REG=$(json "$TMP/reg/listen.json" public)
}

# register_ss DIR SERVER_ID [SS_ADDRESS]: `darvoza ss init` of a security server in DIR (its
# ports chosen by the system, the registry at $REG, advertising SS_ADDRESS, default
# 127.0.0.1:5500), then its registration request, approved by the registry's administrator.
# The member must exist already.
register_ss() {
  "$CLI" ss init --data-dir "$1" --anchor "$TMP/reg/anchor.bin" --server-id "$2" \
    --ss-listen 127.0.0.1:0 --ss-address "${3:-127.0.0.1:5500}" --client-listen 127.0.0.1:0 \
    --client-tls-listen 127.0.0.1:0 --ops-listen 127.0.0.1:0 --registry "$REG" >/dev/null
  "$CLI" ss register --data-dir "$1" >"$TMP/register.out" || true
  local id
  id=$(sed -n 's/^registration request \([0-9a-f]*\): PENDING$/\1/p' "$TMP/register.out")
  [ -n "$id" ] || { echo "no pending registration request: $(cat "$TMP/register.out")"; return 1; }
  "$CLI" registry request approve "$id" --data-dir "$TMP/reg" >/dev/null
  "$CLI" ss register --data-dir "$1" | grep -q APPROVED
}
