#!/bin/bash
# The `darvoza` CLI never crashes. Paths the filesystem refuses to look at
# (a 300-character name, a symbolic link loop) end in a clear error and exit status 1, never
# in an uncaught exception (rc 134); a bad flag exits non-zero even beside --version; a
# refused `ss init` changes nothing, an existing directory's mode included.
# Exit 77 (skipped) when the CLI is not built.
set -uo pipefail
BUILD=${DARVOZA_BUILD_DIR:?}
CLI=$BUILD/tools/darvoza
[ -x "$CLI" ] || { echo "skip: $CLI not built"; exit 77; }

TMP=$(mktemp -d /tmp/clir.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_rc WANT NAME ARGS...: runs the CLI, checks its exit status (WANT "nonzero" = any
# status from 1 to 125, i.e. not a crash) and that it never reports an uncaught exception.
expect_rc() {
  local want=$1 name=$2
  shift 2
  "$CLI" "$@" >"$TMP/out" 2>&1
  local rc=$?
  if grep -aq "terminate called\|AddressSanitizer\|runtime error" "$TMP/out"; then
    fail "$name: crashed (rc $rc)"; sed 's/^/    /' "$TMP/out" | head -20; return
  fi
  if [ "$want" = nonzero ]; then
    if [ $rc -eq 0 ] || [ $rc -gt 125 ]; then fail "$name: rc $rc, want a non-zero failure"; cat "$TMP/out"; return; fi
  elif [ $rc -ne "$want" ]; then
    fail "$name: rc $rc, want $want"; sed 's/^/    /' "$TMP/out" | head -20; return
  fi
  echo "ok: $name (rc $rc): $(head -1 "$TMP/out")"
}

# --- Flags.
expect_rc 0 "--version" --version
grep -q "darvoza" "$TMP/out" || fail "--version printed no version"
expect_rc nonzero "--version --bogus" --version --bogus
expect_rc nonzero "--bogus --version" --bogus --version
expect_rc nonzero "--bogus" --bogus
expect_rc nonzero "audit verify --bogus" audit verify --bogus x

# --- Paths the filesystem refuses to look at.
LONG=$TMP/$(printf 'a%.0s' $(seq 300))
ln -s "$TMP/loop2" "$TMP/loop1"
ln -s "$TMP/loop1" "$TMP/loop2"
echo "not an anchor" >"$TMP/anchor.bin"
for path in "$LONG" "$TMP/loop1"; do
  what=$([ "$path" = "$LONG" ] && echo "300-character path" || echo "symlink loop")
  expect_rc 1 "audit verify ($what)" audit verify "$path" --anchor "$TMP/anchor.bin"
  expect_rc 1 "audit show ($what)" audit show --db "$path" 1
  expect_rc 1 "audit find ($what)" audit find --db "$path"
  expect_rc 1 "audit export ($what)" audit export --db "$path" --out "$TMP/export.out"
  expect_rc 1 "audit prove ($what)" audit prove --db "$path" --message-id m1 --out "$TMP/proof.out"
  expect_rc 1 "audit check-proof ($what)" audit check-proof "$path" --anchor "$TMP/anchor.bin"
  expect_rc 1 "ss status ($what)" ss status --data-dir "$path"
  expect_rc 1 "registry member list ($what)" registry member list --data-dir "$path"
done

# --- A refused `ss init` changes nothing.
"$CLI" registry init --instance UZ --data-dir "$TMP/reg" --address 127.0.0.1:1 >/dev/null 2>&1 ||
  fail "registry init"
init_ss() {
  "$CLI" ss init --data-dir "$1" --anchor "$TMP/reg/anchor.bin" \
    --server-id UZ/GOV/70000001/ss1 --ss-listen 127.0.0.1:0 --registry 127.0.0.1:1 "${@:2}"
}
init_ss "$TMP/ss" >/dev/null 2>&1 || fail "first ss init"
chmod 0750 "$TMP/ss"
before=$(cd "$TMP/ss" && find . -printf '%p %m %s %T@\n' | sort)
expect_rc 1 "ss init on an initialised directory" ss init --data-dir "$TMP/ss" \
  --anchor "$TMP/reg/anchor.bin" --server-id UZ/GOV/70000001/ss1 --ss-listen 127.0.0.1:0
[ "$(stat -c %a "$TMP/ss")" = 750 ] || fail "a refused ss init changed the mode to $(stat -c %a "$TMP/ss")"
after=$(cd "$TMP/ss" && find . -printf '%p %m %s %T@\n' | sort)
[ "$before" = "$after" ] || fail "a refused ss init changed the directory's contents"
# An existing, empty directory refused for a bad setting keeps its mode too.
mkdir -m 0755 "$TMP/empty"
expect_rc 1 "ss init with an admin socket path too long" ss init --data-dir "$TMP/empty" \
  --anchor "$TMP/reg/anchor.bin" --server-id UZ/GOV/70000001/ss1 --admin-socket "$LONG/admin.sock"
[ "$(stat -c %a "$TMP/empty")" = 755 ] || fail "a refused ss init changed the mode of an empty directory"
[ -z "$(ls -A "$TMP/empty")" ] || fail "a refused ss init wrote into an empty directory"

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "ok"
