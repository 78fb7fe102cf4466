// Context-tagged signing and verification for common/crypto/signer.h.
#include "common/crypto/signer.h"

#include <sys/stat.h>

#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "tests/test_support.h"

namespace darvoza::crypto {
namespace {

using darvoza::testing::TempDir;

constexpr SignatureContext kAllContexts[] = {
    SignatureContext::kRequest,   SignatureContext::kResponse,   SignatureContext::kSeal,
    SignatureContext::kGlobalConf, SignatureContext::kBatchRoot, SignatureContext::kWitness,
    SignatureContext::kRegistration};

std::unique_ptr<FileKeySigner> NewSigner(KeyAlgorithm algorithm) {
  auto key = PrivateKey::Generate(algorithm);
  REQUIRE(key.ok());
  return std::make_unique<FileKeySigner>(std::move(key).value());
}

std::unique_ptr<PublicKey> PublicOf(const Signer& signer) {
  auto key = PublicKey::FromDer(signer.PublicKeyDer());
  REQUIRE(key.ok());
  return std::move(key).value();
}

TEST_CASE("Context tags are the documented strings", "[signer]") {
  CHECK(ContextTag(SignatureContext::kRequest) == "darvoza.v1.request");
  CHECK(ContextTag(SignatureContext::kResponse) == "darvoza.v1.response");
  CHECK(ContextTag(SignatureContext::kSeal) == "darvoza.v1.seal");
  CHECK(ContextTag(SignatureContext::kGlobalConf) == "darvoza.v1.globalconf");
  CHECK(ContextTag(SignatureContext::kBatchRoot) == "darvoza.v1.batch-root");
  CHECK(ContextTag(SignatureContext::kWitness) == "darvoza.v1.witness");
  CHECK(ContextTag(SignatureContext::kRegistration) == "darvoza.v1.registration");
}

TEST_CASE("SignedBytes is tag, NUL, data", "[signer]") {
  CHECK(SignedBytes(SignatureContext::kSeal, "xy") == std::string("darvoza.v1.seal\0xy", 18));
  CHECK(SignedBytes(SignatureContext::kRequest, "") == std::string("darvoza.v1.request\0", 19));
  const std::string binary("\0\x01\xff", 3);
  CHECK(SignedBytes(SignatureContext::kWitness, binary) ==
        std::string("darvoza.v1.witness\0", 19) + binary);
}

TEST_CASE("A signature verifies with its key, context and bytes only", "[signer]") {
  const KeyAlgorithm algorithm = GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  auto signer = NewSigner(algorithm);
  auto pub = PublicOf(*signer);
  CHECK(signer->algorithm() == algorithm);
  const std::string data = "GET /UZ/GOV/70000001/registry/getPerson";

  auto sig = signer->Sign(SignatureContext::kRequest, data);
  REQUIRE(sig.ok());
  if (algorithm == KeyAlgorithm::kEd25519) {
    CHECK(sig->size() == 64);
  } else {
    CHECK(static_cast<unsigned char>((*sig)[0]) == 0x30);  // DER SEQUENCE.
  }
  REQUIRE(VerifyWithContext(*pub, SignatureContext::kRequest, data, *sig).ok());

  SECTION("a flipped data byte") {
    std::string tampered = data;
    tampered[5] ^= 0x01;
    const absl::Status s = VerifyWithContext(*pub, SignatureContext::kRequest, tampered, *sig);
    CHECK(s.code() == absl::StatusCode::kUnauthenticated);
  }
  SECTION("a flipped signature byte") {
    std::string tampered = *sig;
    tampered[tampered.size() - 1] ^= 0x01;
    CHECK(VerifyWithContext(*pub, SignatureContext::kRequest, data, tampered).code() ==
          absl::StatusCode::kUnauthenticated);
  }
  SECTION("a malformed or empty signature") {
    CHECK(VerifyWithContext(*pub, SignatureContext::kRequest, data, "").code() ==
          absl::StatusCode::kUnauthenticated);
    CHECK(VerifyWithContext(*pub, SignatureContext::kRequest, data, sig->substr(1)).code() ==
          absl::StatusCode::kUnauthenticated);
    CHECK(VerifyWithContext(*pub, SignatureContext::kRequest, data, *sig + "x").code() ==
          absl::StatusCode::kUnauthenticated);
  }
  SECTION("a wrong key of either algorithm") {
    const KeyAlgorithm other_algorithm =
        GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
    auto other = PublicOf(*NewSigner(other_algorithm));
    CHECK(VerifyWithContext(*other, SignatureContext::kRequest, data, *sig).code() ==
          absl::StatusCode::kUnauthenticated);
  }
  SECTION("every other context tag") {
    for (SignatureContext context : kAllContexts) {
      if (context == SignatureContext::kRequest) continue;
      const absl::Status s = VerifyWithContext(*pub, context, data, *sig);
      CHECK(s.code() == absl::StatusCode::kUnauthenticated);
    }
  }
  SECTION("the raw signature over the untagged bytes") {
    auto raw = PublicOf(*signer)->VerifyRaw(data, *sig);
    CHECK(raw.code() == absl::StatusCode::kUnauthenticated);
    CHECK(pub->VerifyRaw(SignedBytes(SignatureContext::kRequest, data), *sig).ok());
  }
}

TEST_CASE("Moving bytes between tag and data breaks the signature", "[signer]") {
  // "darvoza.v1.seal" + '\0' + "x" must differ from any other split of the same characters.
  auto signer = NewSigner(KeyAlgorithm::kEcdsaP256);
  auto pub = PublicOf(*signer);
  auto sig = signer->Sign(SignatureContext::kSeal, "x");
  REQUIRE(sig.ok());
  CHECK(VerifyWithContext(*pub, SignatureContext::kSeal, std::string("\0x", 2), *sig).code() ==
        absl::StatusCode::kUnauthenticated);
  CHECK(VerifyWithContext(*pub, SignatureContext::kSeal, "x", *sig).ok());
}

// Keys keep their OpenSSL contexts for reuse: a context that just refused a signature, or that
// another thread used a moment ago, must give the same answers as a fresh one.
TEST_CASE("Reused signing and verification contexts keep their answers, across threads",
          "[signer]") {
  const KeyAlgorithm algorithm = GENERATE(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519);
  auto signer = NewSigner(algorithm);
  auto pub = PublicOf(*signer);
  auto other = PublicOf(*NewSigner(algorithm));
  constexpr int kThreads = 4;
  constexpr int kRounds = 25;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const std::string data = "message " + std::to_string(t) + "/" + std::to_string(i);
        auto sig = signer->Sign(SignatureContext::kRequest, data);
        if (!sig.ok()) {
          ++failures[t];
          continue;
        }
        std::string bad = *sig;
        bad[bad.size() / 2] ^= 0x01;
        // A refused signature first, on the same key's contexts, then the good one.
        if (VerifyWithContext(*pub, SignatureContext::kRequest, data, bad).ok()) ++failures[t];
        if (VerifyWithContext(*pub, SignatureContext::kRequest, data, "").ok()) ++failures[t];
        if (VerifyWithContext(*other, SignatureContext::kRequest, data, *sig).ok()) ++failures[t];
        if (!VerifyWithContext(*pub, SignatureContext::kRequest, data, *sig).ok()) ++failures[t];
        if (VerifyWithContext(*pub, SignatureContext::kResponse, data, *sig).ok()) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) CHECK(failures[t] == 0);
}

TEST_CASE("FileKeySigner::Open loads a 0600 key and refuses a 0644 one", "[signer]") {
  TempDir dir;
  const std::string path = dir.File("member.key");
  auto key = PrivateKey::Generate(KeyAlgorithm::kEd25519);
  REQUIRE(key.ok());
  const std::string public_der = (*key)->PublicKeyDer();
  REQUIRE((*key)->SaveToFile(path).ok());

  auto signer = FileKeySigner::Open(path);
  REQUIRE(signer.ok());
  CHECK((*signer)->algorithm() == KeyAlgorithm::kEd25519);
  CHECK((*signer)->PublicKeyDer() == public_der);
  auto sig = (*signer)->Sign(SignatureContext::kGlobalConf, "conf");
  REQUIRE(sig.ok());
  auto pub = PublicKey::FromDer(public_der);
  REQUIRE(pub.ok());
  CHECK(VerifyWithContext(**pub, SignatureContext::kGlobalConf, "conf", *sig).ok());

  REQUIRE(chmod(path.c_str(), 0644) == 0);
  auto refused = FileKeySigner::Open(path);
  CHECK(refused.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(FileKeySigner::Open(dir.File("none.key")).status().code() ==
        absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace darvoza::crypto
