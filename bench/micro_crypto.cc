// Micro-benchmarks of the signing, verification and hashing an exchange does (docs/design.md
// §8): ECDSA P-256 through common/crypto, the OpenSSL context cost on its own, and SHA-2 over
// the body sizes tools/bench.sh sends.
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "common/check.h"
#include "common/crypto/hash.h"
#include "common/crypto/keys.h"
#include "common/crypto/signer.h"

namespace darvoza::crypto {
namespace {

const PrivateKey& BenchKey() {
  static const PrivateKey* key = PrivateKey::Generate(KeyAlgorithm::kEcdsaP256)->release();
  return *key;
}

// An envelope-sized message: what a Darvoza signature covers (the body only through its hash).
const std::string& Envelope() {
  static const std::string* bytes = new std::string(RandomBytes(420));
  return *bytes;
}

void BM_EcdsaSign(benchmark::State& state) {
  FileKeySigner signer(PrivateKey::FromPem(BenchKey().ToPem()).value());
  for (auto _ : state) {
    auto sig = signer.Sign(SignatureContext::kRequest, Envelope());
    DARVOZA_CHECK(sig.ok());
    benchmark::DoNotOptimize(sig);
  }
}
BENCHMARK(BM_EcdsaSign);

void BM_EcdsaVerify(benchmark::State& state) {
  FileKeySigner signer(PrivateKey::FromPem(BenchKey().ToPem()).value());
  const std::string sig = signer.Sign(SignatureContext::kRequest, Envelope()).value();
  auto public_key = BenchKey().GetPublicKey();
  for (auto _ : state) {
    absl::Status status =
        VerifyWithContext(*public_key, SignatureContext::kRequest, Envelope(), sig);
    DARVOZA_CHECK(status.ok());
  }
}
BENCHMARK(BM_EcdsaVerify);

// The way common/crypto signed before it reused contexts: a new EVP_MD_CTX, a DigestSignInit
// (which fetches the digest and signature implementations) and a one-shot sign per call. Kept
// here as the baseline that BM_EcdsaSign is compared with.
void BM_EcdsaSignFreshContext(benchmark::State& state) {
  const std::string data = SignedBytes(SignatureContext::kRequest, Envelope());
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  for (auto _ : state) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    DARVOZA_CHECK(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, BenchKey().evp()) == 1);
    unsigned char sig[80];
    size_t len = sizeof(sig);
    DARVOZA_CHECK(EVP_DigestSign(ctx, sig, &len, in, data.size()) == 1);
    EVP_MD_CTX_free(ctx);
    benchmark::DoNotOptimize(sig);
  }
}
BENCHMARK(BM_EcdsaSignFreshContext);

void BM_EcdsaVerifyFreshContext(benchmark::State& state) {
  const std::string data = SignedBytes(SignatureContext::kRequest, Envelope());
  FileKeySigner signer(PrivateKey::FromPem(BenchKey().ToPem()).value());
  const std::string sig = signer.Sign(SignatureContext::kRequest, Envelope()).value();
  auto public_key = BenchKey().GetPublicKey();
  for (auto _ : state) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    DARVOZA_CHECK(EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr,
                                       public_key->evp()) == 1);
    DARVOZA_CHECK(EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()),
                                   sig.size(), reinterpret_cast<const unsigned char*>(data.data()),
                                   data.size()) == 1);
    EVP_MD_CTX_free(ctx);
  }
}
BENCHMARK(BM_EcdsaVerifyFreshContext);

// The context setup alone: what reusing contexts can save at most.
void BM_EvpDigestSignInitOnly(benchmark::State& state) {
  for (auto _ : state) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    DARVOZA_CHECK(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, BenchKey().evp()) == 1);
    EVP_MD_CTX_free(ctx);
  }
}
BENCHMARK(BM_EvpDigestSignInitOnly);

void BM_Sha256(benchmark::State& state) {
  const std::string body = RandomBytes(static_cast<size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(Sha256(body));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Sha256)->Arg(16)->Arg(1024)->Arg(64 * 1024);

// How common/crypto hashed before it fetched SHA-256 once: EVP_sha256() makes OpenSSL 3 look
// the implementation up on every call. The baseline for BM_Sha256.
void BM_Sha256ImplicitFetch(benchmark::State& state) {
  const std::string body = RandomBytes(static_cast<size_t>(state.range(0)));
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  for (auto _ : state) {
    DARVOZA_CHECK(EVP_Digest(body.data(), body.size(), out, &len, EVP_sha256(), nullptr) == 1);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Sha256ImplicitFetch)->Arg(16)->Arg(1024)->Arg(64 * 1024);

void BM_Sha512(benchmark::State& state) {
  const std::string body = RandomBytes(static_cast<size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(Sha512(body));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Sha512)->Arg(16)->Arg(1024)->Arg(64 * 1024);

}  // namespace
}  // namespace darvoza::crypto
