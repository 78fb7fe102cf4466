// Micro-benchmarks of batch signatures (docs/design.md §4, §8): signing a batch of N envelopes
// (one ECDSA signature, a Merkle tree and N proofs; N = 1 is the ordinary signature), and a
// receiver's check of one batched message with the batch's root already verified (the common
// case: every message of a batch but the first) and without.
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/check.h"
#include "common/crypto/hash.h"
#include "common/crypto/keys.h"
#include "common/crypto/signer.h"
#include "common/message_signature.h"

namespace darvoza {
namespace {

using crypto::SignatureContext;

crypto::FileKeySigner& BenchSigner() {
  static crypto::FileKeySigner* signer = new crypto::FileKeySigner(
      crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value());
  return *signer;
}

const crypto::PublicKey& BenchPublicKey() {
  static const crypto::PublicKey* key =
      crypto::PublicKey::FromDer(BenchSigner().PublicKeyDer()).value().release();
  return *key;
}

// N envelope-sized messages (what a Darvoza signature covers).
std::vector<std::string> Envelopes(int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(crypto::RandomBytes(420));
  return out;
}

std::vector<MessageToSign> Items(const std::vector<std::string>& envelopes) {
  std::vector<MessageToSign> items;
  for (const std::string& e : envelopes) items.push_back({SignatureContext::kRequest, e});
  return items;
}

// items_per_second is messages signed per second: compare /N with /1 (one signature each).
void BM_BatchSign(benchmark::State& state) {
  const std::vector<std::string> envelopes = Envelopes(state.range(0));
  const std::vector<MessageToSign> items = Items(envelopes);
  for (auto _ : state) {
    auto sigs = SignBatch(BenchSigner(), items);
    DARVOZA_CHECK(sigs.ok() && sigs->size() == envelopes.size());
    benchmark::DoNotOptimize(sigs);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_BatchSign)->RangeMultiplier(2)->Range(1, 64);

// One message of a batch of N whose root was verified before: the proof walk only.
void BM_VerifyBatchedCachedRoot(benchmark::State& state) {
  const std::vector<std::string> envelopes = Envelopes(state.range(0));
  const std::vector<v1::Signature> sigs = SignBatch(BenchSigner(), Items(envelopes)).value();
  VerifiedBatchRoots roots;
  DARVOZA_CHECK(VerifyMessageSignature(BenchPublicKey(), "bench", SignatureContext::kRequest,
                                       envelopes[0], sigs[0], &roots)
                    .ok());
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++ % envelopes.size();
    absl::Status status = VerifyMessageSignature(BenchPublicKey(), "bench",
                                                 SignatureContext::kRequest, envelopes[k],
                                                 sigs[k], &roots);
    DARVOZA_CHECK(status.ok());
  }
}
BENCHMARK(BM_VerifyBatchedCachedRoot)->RangeMultiplier(2)->Range(1, 64);

// The same without the cache: proof walk plus the root's signature check every time (/1 is an
// ordinary signature check).
void BM_VerifyBatchedUncached(benchmark::State& state) {
  const std::vector<std::string> envelopes = Envelopes(state.range(0));
  const std::vector<v1::Signature> sigs = SignBatch(BenchSigner(), Items(envelopes)).value();
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++ % envelopes.size();
    absl::Status status = VerifyMessageSignature(BenchPublicKey(), "bench",
                                                 SignatureContext::kRequest, envelopes[k],
                                                 sigs[k]);
    DARVOZA_CHECK(status.ok());
  }
}
BENCHMARK(BM_VerifyBatchedUncached)->Arg(1)->Arg(8)->Arg(64);

}  // namespace
}  // namespace darvoza
