// Batch signatures (common/message_signature.h): what SignBatch makes verifies for each
// message and for nothing else; a hostile peer's proofs are refused.
#include "common/message_signature.h"

#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/crypto/hash.h"
#include "common/merkle.h"

namespace darvoza {
namespace {

using crypto::SignatureContext;

struct Key {
  std::unique_ptr<crypto::FileKeySigner> signer;
  std::unique_ptr<crypto::PublicKey> public_key;
  std::string id;
};

Key NewKey() {
  auto key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  REQUIRE(key.ok());
  Key k;
  k.signer = std::make_unique<crypto::FileKeySigner>(std::move(key).value());
  auto pub = crypto::PublicKey::FromDer(k.signer->PublicKeyDer());
  REQUIRE(pub.ok());
  k.public_key = std::move(pub).value();
  k.id = crypto::Sha256(k.signer->PublicKeyDer());
  return k;
}

std::vector<std::string> Envelopes(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back("envelope " + std::to_string(i));
  return out;
}

std::vector<MessageToSign> Items(const std::vector<std::string>& envelopes,
                                 SignatureContext context = SignatureContext::kRequest) {
  std::vector<MessageToSign> items;
  for (const std::string& e : envelopes) items.push_back({context, e});
  return items;
}

TEST_CASE("SignBatch: one message is an ordinary signature, several share one root",
          "[signature][batch]") {
  Key key = NewKey();
  for (size_t n : {1, 2, 3, 5, 8, 64, 256}) {
    INFO("batch of " << n);
    const std::vector<std::string> envelopes = Envelopes(n);
    auto sigs = SignBatch(*key.signer, Items(envelopes));
    REQUIRE(sigs.ok());
    REQUIRE(sigs->size() == n);
    if (n == 1) {
      CHECK_FALSE((*sigs)[0].has_batch_proof());
      CHECK((*sigs)[0].batch_root().empty());
      CHECK(crypto::VerifyWithContext(*key.public_key, SignatureContext::kRequest, envelopes[0],
                                      (*sigs)[0].value())
                .ok());
    }
    VerifiedBatchRoots roots;
    for (size_t i = 0; i < n; ++i) {
      const v1::Signature& sig = (*sigs)[i];
      if (n > 1) {
        CHECK(sig.batch_proof().leaf_index() == i);
        CHECK(sig.batch_proof().tree_size() == n);
        CHECK(sig.batch_root() == (*sigs)[0].batch_root());
        // Exactly what docs/design.md §4 says is signed.
        CHECK(crypto::VerifyWithContext(*key.public_key, SignatureContext::kBatchRoot,
                                        BatchRootStatement(sig.batch_root(), n), sig.value())
                  .ok());
      }
      CHECK(VerifyMessageSignature(*key.public_key, key.id, SignatureContext::kRequest,
                                   envelopes[i], sig, &roots)
                .ok());
      CHECK(VerifyMessageSignature(*key.public_key, key.id, SignatureContext::kRequest,
                                   envelopes[i], sig)
                .ok());
      // Never under another context, nor by another key.
      CHECK(VerifyMessageSignature(*key.public_key, key.id, SignatureContext::kResponse,
                                   envelopes[i], sig, &roots)
                .code() == absl::StatusCode::kUnauthenticated);
    }
  }
  Key other = NewKey();
  const std::vector<std::string> envelopes = Envelopes(4);
  auto sigs = SignBatch(*key.signer, Items(envelopes));
  REQUIRE(sigs.ok());
  CHECK(VerifyMessageSignature(*other.public_key, other.id, SignatureContext::kRequest,
                               envelopes[1], (*sigs)[1])
            .code() == absl::StatusCode::kUnauthenticated);
}

TEST_CASE("Batch signatures: a hostile peer's proofs and roots are refused",
          "[signature][batch][security]") {
  Key key = NewKey();
  const std::vector<std::string> envelopes = Envelopes(5);
  auto sigs = SignBatch(*key.signer, Items(envelopes));
  REQUIRE(sigs.ok());
  const v1::Signature good = (*sigs)[2];
  VerifiedBatchRoots roots;
  REQUIRE(VerifyMessageSignature(*key.public_key, key.id, SignatureContext::kRequest,
                                 envelopes[2], good, &roots)
              .ok());

  auto refused = [&](const std::string& envelope, const v1::Signature& sig) {
    // With the root already cached (from the good message) and without a cache.
    for (VerifiedBatchRoots* cache : {&roots, static_cast<VerifiedBatchRoots*>(nullptr)}) {
      absl::Status s = VerifyMessageSignature(*key.public_key, key.id,
                                              SignatureContext::kRequest, envelope, sig, cache);
      INFO(s);
      CHECK(s.code() == absl::StatusCode::kUnauthenticated);
    }
  };

  SECTION("a proof that does not lead to the root") {
    v1::Signature sig = good;
    std::string* first = sig.mutable_batch_proof()->mutable_path(0);
    (*first)[0] = static_cast<char>((*first)[0] ^ 1);
    refused(envelopes[2], sig);
  }
  SECTION("another root than the one signed") {
    v1::Signature sig = good;
    sig.set_batch_root(crypto::Sha256("another root"));
    refused(envelopes[2], sig);
  }
  SECTION("a root signed under the wrong context") {
    std::vector<std::string> leaves;
    for (const std::string& e : envelopes) {
      leaves.push_back(crypto::SignedBytes(SignatureContext::kRequest, e));
    }
    MerkleTree tree(leaves);
    for (SignatureContext wrong : {SignatureContext::kRequest, SignatureContext::kResponse,
                                   SignatureContext::kSeal}) {
      auto value = key.signer->Sign(wrong, BatchRootStatement(tree.Root(), tree.size()));
      REQUIRE(value.ok());
      v1::Signature sig = good;
      sig.set_value(*value);
      refused(envelopes[2], sig);
    }
  }
  SECTION("leaves of another context: a response batch presented as requests") {
    auto responses = SignBatch(*key.signer, Items(envelopes, SignatureContext::kResponse));
    REQUIRE(responses.ok());
    refused(envelopes[2], (*responses)[2]);
  }
  SECTION("leaf index or tree size out of range") {
    for (auto [index, size] : std::vector<std::pair<uint64_t, uint64_t>>{
             {5, 5}, {6, 5}, {0, 0}, {2, kMaxSignatureBatch + 1}, {2, ~0ull}, {~0ull, 5}}) {
      INFO("leaf " << index << " of " << size);
      v1::Signature sig = good;
      sig.mutable_batch_proof()->set_leaf_index(index);
      sig.mutable_batch_proof()->set_tree_size(size);
      refused(envelopes[2], sig);
    }
    // The signed size is not the claimed one (the path has the shape of a tree of 8).
    v1::Signature sig = good;
    sig.mutable_batch_proof()->set_tree_size(8);
    refused(envelopes[2], sig);
  }
  SECTION("a proof path too long or too short") {
    v1::Signature longer = good;
    longer.mutable_batch_proof()->add_path(crypto::Sha256("extra"));
    refused(envelopes[2], longer);
    v1::Signature very_long = good;
    for (int i = 0; i < 100; ++i) very_long.mutable_batch_proof()->add_path(std::string(32, 'x'));
    refused(envelopes[2], very_long);
    v1::Signature shorter = good;
    shorter.mutable_batch_proof()->mutable_path()->RemoveLast();
    refused(envelopes[2], shorter);
    v1::Signature odd = good;
    odd.mutable_batch_proof()->mutable_path(0)->append("x");
    refused(envelopes[2], odd);
  }
  SECTION("a valid proof for another message") {
    refused(envelopes[3], good);
    refused("an envelope not in the batch", good);
  }
  SECTION("a cached root with another signature value") {
    v1::Signature sig = (*sigs)[3];
    sig.set_value("not the signature");
    refused(envelopes[3], sig);
  }
  SECTION("a proof without a root, or a root without a proof") {
    v1::Signature no_root = good;
    no_root.clear_batch_root();
    refused(envelopes[2], no_root);
    v1::Signature no_proof = good;
    no_proof.clear_batch_proof();
    refused(envelopes[2], no_proof);
  }
}

TEST_CASE("VerifiedBatchRoots keeps at most its capacity, oldest out first",
          "[signature][batch]") {
  VerifiedBatchRoots roots(3);
  for (const char* k : {"a", "b", "c"}) roots.Insert(k);
  CHECK(roots.Contains("a"));
  roots.Insert("d");
  CHECK_FALSE(roots.Contains("a"));
  CHECK(roots.Contains("b"));
  CHECK(roots.Contains("c"));
  CHECK(roots.Contains("d"));
}

}  // namespace
}  // namespace darvoza
