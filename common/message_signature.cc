#include "common/message_signature.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/merkle.h"

namespace darvoza {
namespace {

constexpr size_t kHashBytes = 32;  // SHA-256: roots and proof path entries

absl::Status Refused(absl::string_view why) { return absl::UnauthenticatedError(why); }

}  // namespace

std::string BatchRootStatement(absl::string_view root, uint64_t tree_size) {
  std::string out(root);
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((tree_size >> shift) & 0xff));
  }
  return out;
}

absl::StatusOr<std::vector<v1::Signature>> SignBatch(crypto::Signer& signer,
                                                     absl::Span<const MessageToSign> items) {
  DARVOZA_CHECK(!items.empty() && items.size() <= kMaxSignatureBatch)
      << "a batch of " << items.size() << " messages";
  std::vector<v1::Signature> out(items.size());
  if (items.size() == 1) {
    auto value = signer.Sign(items[0].context, items[0].data);
    if (!value.ok()) return value.status();
    out[0].set_value(*std::move(value));
    return out;
  }
  std::vector<std::string> leaves;
  leaves.reserve(items.size());
  for (const MessageToSign& item : items) {
    leaves.push_back(crypto::SignedBytes(item.context, item.data));
  }
  const MerkleTree tree(leaves);
  const std::string root = tree.Root();
  auto value = signer.Sign(crypto::SignatureContext::kBatchRoot,
                           BatchRootStatement(root, tree.size()));
  if (!value.ok()) return value.status();
  for (uint64_t i = 0; i < tree.size(); ++i) {
    v1::Signature& sig = out[i];
    sig.set_value(*value);
    sig.set_batch_root(root);
    v1::MerkleInclusionProof* proof = sig.mutable_batch_proof();
    proof->set_leaf_index(i);
    proof->set_tree_size(tree.size());
    for (std::string& hash : tree.InclusionProof(i)) proof->add_path(std::move(hash));
  }
  return out;
}

bool VerifiedBatchRoots::Contains(absl::string_view key) const {
  absl::MutexLock lock(&mu_);
  return keys_.contains(key);
}

void VerifiedBatchRoots::Insert(std::string key) {
  absl::MutexLock lock(&mu_);
  if (capacity_ == 0 || keys_.contains(key)) return;
  while (keys_.size() >= capacity_) {
    keys_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(key);
  keys_.insert(std::move(key));
}

absl::Status VerifyMessageSignature(const crypto::PublicKey& key, absl::string_view key_id,
                                    crypto::SignatureContext context, absl::string_view data,
                                    const v1::Signature& signature, VerifiedBatchRoots* roots) {
  if (!signature.has_batch_proof() && signature.batch_root().empty()) {
    if (!crypto::VerifyWithContext(key, context, data, signature.value()).ok()) {
      return Refused(absl::StrCat("the ", crypto::ContextTag(context),
                                  " signature does not verify"));
    }
    return absl::OkStatus();
  }
  // A batch signature: every number and length comes from the peer.
  const v1::MerkleInclusionProof& proof = signature.batch_proof();
  if (signature.batch_root().size() != kHashBytes) {
    return Refused("the batch signature's root is not a SHA-256 hash");
  }
  if (proof.tree_size() == 0 || proof.tree_size() > kMaxSignatureBatch) {
    return Refused(absl::StrCat("the batch signature's tree of ", proof.tree_size(),
                                " leaves is outside 1..", kMaxSignatureBatch));
  }
  if (proof.leaf_index() >= proof.tree_size()) {
    return Refused(absl::StrCat("the batch signature's leaf ", proof.leaf_index(),
                                " is outside its tree of ", proof.tree_size(), " leaves"));
  }
  for (const std::string& hash : proof.path()) {
    if (hash.size() != kHashBytes) {
      return Refused("the batch signature's proof holds a value that is not a SHA-256 hash");
    }
  }
  const std::vector<std::string> path(proof.path().begin(), proof.path().end());
  absl::Status included =
      VerifyMerkleInclusion(crypto::SignedBytes(context, data), proof.leaf_index(),
                            proof.tree_size(), path, signature.batch_root());
  if (!included.ok()) {
    return Refused(absl::StrCat("the ", crypto::ContextTag(context),
                                " envelope is not in the signed batch: ", included.message()));
  }
  const std::string statement = BatchRootStatement(signature.batch_root(), proof.tree_size());
  // The signature value is part of the key: a message that pairs a verified root with another
  // value would be logged with a signature no auditor could check.
  std::string cache_key;
  if (roots != nullptr) {
    cache_key = absl::StrCat(key_id.size(), ":", key_id, statement, signature.value());
    if (roots->Contains(cache_key)) return absl::OkStatus();
  }
  if (!crypto::VerifyWithContext(key, crypto::SignatureContext::kBatchRoot, statement,
                                 signature.value())
           .ok()) {
    return Refused("the darvoza.v1.batch-root signature over the batch's root does not verify");
  }
  if (roots != nullptr) roots->Insert(std::move(cache_key));
  return absl::OkStatus();
}

}  // namespace darvoza
