#!/usr/bin/env bash
# Has clang check our lock annotations (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED, ...) on
# every source file of ours in a configured build tree: `clang++ -fsyntax-only -Wthread-safety
# -Werror` with each file's own include paths and definitions from compile_commands.json. gcc
# ignores the annotations, so without this a guarded field read without its lock compiles.
# Syntax only: no second build. Generated code (protobuf) is left out.
#
# Usage: tools/check-thread-safety.sh [BUILD_DIR]   (default build/asan; it must have been built,
#        so that the generated protobuf headers exist). Exits 1 on any warning, 77 (CTest's
#        "skipped") only when no clang++ is installed: tools/install-deps.sh installs clang-14.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${1:-$root/build/asan}
case "$build_dir" in -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

clang=""
for c in clang++-14 clang++; do
  if command -v "$c" >/dev/null 2>&1; then clang=$c; break; fi
done
if [ -z "$clang" ]; then
  echo "check-thread-safety: skipped: clang++ is missing (tools/install-deps.sh installs clang-14)" >&2
  exit 77
fi
db="$build_dir/compile_commands.json"
if [ ! -f "$db" ]; then
  echo "check-thread-safety: no $db (configure and build first: tools/build.sh)" >&2
  exit 2
fi

# One shell command line per file of ours, with the flags clang needs (includes, definitions,
# the standard); gcc's own options, sanitizers and warning flags are dropped.
commands=$(python3 - "$db" "$root" "$build_dir" "$clang" <<'PY'
import json, os, shlex, sys
db, root, build, clang = sys.argv[1], os.path.realpath(sys.argv[2]), os.path.realpath(sys.argv[3]), sys.argv[4]
seen = set()
for entry in json.load(open(db)):
    f = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
    if not f.startswith(root + "/") or f.startswith(build + "/") or "/build/" in f[len(root):]:
        continue
    if f in seen:
        continue
    seen.add(f)
    args = entry.get("arguments") or shlex.split(entry["command"])
    keep, i = [], 1
    while i < len(args):
        a = args[i]
        if a in ("-o", "-c", "-MF", "-MT"):
            i += 2
            continue
        if a in ("-isystem", "-I", "-D", "-include"):
            keep += [a, args[i + 1]]
            i += 2
            continue
        if a.startswith(("-I", "-D", "-std=", "-isystem")) or a == "-pthread":
            keep.append(a)
        i += 1
    print(shlex.join([clang, "-fsyntax-only", "-Wno-everything", "-Wthread-safety",
                      "-Werror=thread-safety"] + keep + [f]))
PY
)
count=$(printf '%s\n' "$commands" | grep -c . || true)
echo "check-thread-safety: $count files with $clang"
# One clang per line, in parallel; -d '\n' keeps xargs from reading the quotes in the flags.
if ! printf '%s\n' "$commands" | xargs -d '\n' -P "$(nproc)" -n 1 sh -c 'eval "$1"' sh; then
  echo "check-thread-safety: FAILED (see the diagnostics above)" >&2
  exit 1
fi
echo "check-thread-safety: no warnings"
