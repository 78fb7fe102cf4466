#!/usr/bin/env bash
# Installs what is missing, builds once (ASan+UBSan by default) and runs every test through
# CTest except those labelled `soak`. Exits non-zero on any failure.
# Usage: tools/test.sh [--no-sanitize] [--build-dir DIR] [-- extra ctest args]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_args=()
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-sanitize) build_args+=(--no-sanitize); shift ;;
    --build-dir) build_args+=(--build-dir "$2"); shift 2 ;;
    --) shift; ctest_args=("$@"); break ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

start=$(date +%s)
build_dir=$("$root/tools/build.sh" "${build_args[@]}" | tail -n 1)
built=$(date +%s)
echo "Built in $((built - start)) s: $build_dir"

# gRPC reads this before its first TLS credentials: RSA-only TLS 1.2 suites with EC-only
# certificates leave TLS 1.3 as the only handshake (docs/design.md §4).
export GRPC_SSL_CIPHER_SUITES="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"
cd "$build_dir"
ctest -LE soak --output-on-failure --timeout 600 -j "${CTEST_PARALLEL_LEVEL:-2}" "${ctest_args[@]}"
echo "Tests took $(( $(date +%s) - built )) s"
