#!/bin/bash
# run_guide.sh GUIDE.md: runs a guide AS WRITTEN, the way a reader would follow it.
#
# A guide's runnable commands are its fenced blocks opened with exactly ```sh; they run in
# order, as one bash script under `set -euo pipefail`, in a fresh working directory, with the
# built `darvoza`, `darvoza-registry`, `darvoza-ss` and example programs on PATH. Blocks opened
# with ```sh settings are the values the guide tells the reader to choose (directories, ports):
# they are not run; this runner sets each variable they assign, for its own directories and
# ports, and fails when a guide's settings name a variable it does not set (the guide and its
# test cannot drift apart). Other blocks (```console transcripts, ```toml, ```text) are shown,
# not run. A section that opens with the comment `<!-- run_guide: skip section ... -->` is
# skipped up to the next heading, and the one ```sh block after `<!-- run_guide: skip block
# ... -->` is skipped; each comment names the test that runs its commands instead.
#
# What a guide assumes exists before its first command (the operator's guide: a registry that
# knows the member, and an administrator who approves requests) is set up here, per guide.
# Everything the guide starts is stopped at the end (its process group).
# Exit 77 (skipped) when the binaries are not built.
set -euo pipefail
source "$(dirname "$0")/../daemons.sh"
require_built "$CLI" "$REGD" "$SSD"
GUIDE=$1
fail() { echo "FAIL: $*"; exit 1; }
export PATH="$BUILD/tools:$BUILD/registry:$BUILD/security_server:$BUILD/adapters:$PATH"

# ---- the guide's commands, and the variables its settings name
SCRIPT=$TMP/guide.sh
awk -v guide="$(basename "$GUIDE")" '
  /^<!-- run_guide: skip section/ { skip = 1; next }
  /^<!-- run_guide: skip block/ { skip_block = 1; next }
  skip && mode == "" && /^##+ / { skip = 0 }
  /^```sh settings$/ { mode = "settings"; next }
  /^```sh$/ && (skip || skip_block) { mode = "skipped"; skip_block = 0; next }
  /^```sh$/ { mode = "run"; printf "echo \"## %s:%d\" >&2\n", guide, NR + 1; next }
  /^```/ { if (mode != "") { mode = ""; next } }
  mode == "run" { print }
  mode == "settings" && match($0, /^[A-Z_][A-Z0-9_]*=/) {
    print substr($0, 1, RLENGTH - 1) > "/dev/stderr"
  }' "$GUIDE" >"$SCRIPT" 2>"$TMP/settings"
grep -q '^echo "## ' "$SCRIPT" || fail "$GUIDE has no runnable (\`\`\`sh) block"

# ---- what each guide assumes, and its settings
mkdir -p "$TMP/work"
approver_loop() {  # the registry's administrator, approving whatever is pending
  while true; do
    for id in $("$CLI" registry request list --data-dir "$1" 2>/dev/null | awk '/PENDING/ {print $1}'); do
      "$CLI" registry request approve "$id" --data-dir "$1" >/dev/null 2>&1 || true
    done
    sleep 1
  done
}
case "$(basename "$GUIDE")" in
  registry.md)
    port=$("$DARVOZA_SOURCE_DIR/tools/free-ports" 1)
    export REGISTRY_DIR=$TMP/work/registry
    export REGISTRY_ADDRESS=127.0.0.1:$port
    export REGISTRY_LISTEN=127.0.0.1:$port
    export REGISTRY_OPS=127.0.0.1:0
    ;;
  operator.md)
    port=$("$DARVOZA_SOURCE_DIR/tools/free-ports" 1)
    "$CLI" registry init --instance UZ --data-dir "$TMP/reg" --address "127.0.0.1:$port" \
      --public-listen "127.0.0.1:$port" --ops-listen 127.0.0.1:0 >/dev/null 2>&1
    "$REGD" --config "$TMP/reg/registry.toml" 2>"$TMP/reg.log" &
    PIDS+=($!)
    wait_for "test -s $TMP/reg/listen.json"
    "$CLI" registry member add UZ/GOV/70000001 --name "Tax Committee" --data-dir "$TMP/reg" >/dev/null
    "$CLI" registry member add UZ/COM/123 --name "A bank" --data-dir "$TMP/reg" >/dev/null
    approver_loop "$TMP/reg" &
    PIDS+=($!)
    cp "$TMP/reg/anchor.bin" "$TMP/work/anchor.bin"
    export ANCHOR=anchor.bin
    export SS_DIR=$TMP/work/ss
    export SERVER_ID=UZ/GOV/70000001/ss1
    export SS_LISTEN=127.0.0.1:0
    export SS_ADDRESS=127.0.0.1:5500
    export CLIENT_TLS_LISTEN=127.0.0.1:0
    export CLIENT_LISTEN=127.0.0.1:0
    export OPS_LISTEN=127.0.0.1:0
    ;;
  integrator.md)
    require_built "$BUILD"/adapters/darvoza-example-{backend,client,civil-registry}
    export DARVOZA_SRC=$DARVOZA_SOURCE_DIR
    export DEMO_FLAGS="--build-dir $BUILD"
    ;;
  *) fail "no set-up for $GUIDE" ;;
esac
while read -r var; do
  [ -n "${!var+set}" ] || fail "$GUIDE's settings name $var, which this runner does not set"
done <"$TMP/settings"

# ---- run it in its own process group, so that whatever it left running can be stopped
set +e
(cd "$TMP/work" && exec setsid bash -euo pipefail "$SCRIPT") >"$TMP/out" 2>&1 &
GUIDE_PID=$!
wait $GUIDE_PID
rc=$?
set -e
kill -TERM -- "-$GUIDE_PID" 2>/dev/null || true
if [ $rc -ne 0 ]; then
  tail -n 40 "$TMP/out"
  where=$(grep '^## ' "$TMP/out" | tail -n 1 | sed 's/^## //')
  fail "$GUIDE failed (rc $rc) in the block starting at $where"
fi
echo "ok: $(grep -c '^## ' "$TMP/out") blocks of $(basename "$GUIDE") ran"
