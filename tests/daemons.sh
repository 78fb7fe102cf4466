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

# wait_for COMMAND: polls COMMAND (a string for eval) until it succeeds; fails after 30 s.
wait_for() {
  for _ in $(seq 300); do
    if eval "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for: $1"; return 1
}

# json FILE KEY: the string value of KEY in a flat JSON file such as listen.json.
json() { sed -n "s/.*\"$2\": \"\([^\"]*\)\".*/\1/p" "$1"; }

# start_registry: `darvoza registry init` in $TMP/reg (instance UZ, public and ops ports 0),
# then darvoza-registry, logging to $TMP/reg.log. Sets REG, the public address.
start_registry() {
  "$CLI" registry init --instance UZ --data-dir "$TMP/reg" --address 127.0.0.1:1 \
    --public-listen 127.0.0.1:0 >/dev/null
  sed -i 's/^ops_listen.*/ops_listen = "127.0.0.1:0"/' "$TMP/reg/registry.toml"
  "$REGD" --config "$TMP/reg/registry.toml" 2>"$TMP/reg.log" &
  PIDS+=($!)
  wait_for "test -s $TMP/reg/listen.json"
  REG=$(json "$TMP/reg/listen.json" public)
}
