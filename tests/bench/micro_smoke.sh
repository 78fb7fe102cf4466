#!/usr/bin/env bash
# Runs one short case of each micro-benchmark family and checks that every one of them ran to
# the end (the benchmarks check their own results and abort on a wrong one).
set -euo pipefail
bin=$1
cases=(BM_EcdsaSign BM_EcdsaVerify BM_EcdsaSignFreshContext BM_Sha256/1024 BM_Sha512/1024
       BM_MerkleRootAndProofs/8 BM_MerkleVerifyInclusion/8 BM_AuditAppendBatch/4
       BM_AuditAppendExchangePairs/4 BM_AuditAppendUnwaited/16 BM_ProviderParse/1024
       BM_ProviderVerify BM_ProviderCheckBody/1024 BM_ConsumerPackSignedMessage/1024
       BM_BatchSign/8 BM_VerifyBatchedCachedRoot/8 BM_VerifyBatchedUncached/8)
filter="^($(IFS='|'; echo "${cases[*]}"))(/real_time)?\$"
out=$(TMPDIR=${TMPDIR:-/tmp} "$bin" --benchmark_filter="$filter" --benchmark_min_time=0.01 \
  --benchmark_format=json)
for c in "${cases[@]}"; do
  if ! grep -Eq "\"run_name\": \"$c(/real_time)?\"" <<<"$out"; then
    echo "micro_smoke: $c did not run" >&2
    echo "$out" >&2
    exit 1
  fi
done
echo "micro_smoke: ${#cases[@]} benchmark cases ran"
