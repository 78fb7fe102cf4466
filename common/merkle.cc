#include "common/merkle.h"

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/crypto/hash.h"

namespace darvoza {
namespace {

// The largest power of two strictly less than n. REQUIRES: n > 1.
uint64_t SplitPoint(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

}  // namespace

std::string MerkleLeafHash(absl::string_view leaf) {
  std::string buf;
  buf.reserve(1 + leaf.size());
  buf.push_back('\x00');
  buf.append(leaf.data(), leaf.size());
  return crypto::Sha256(buf);
}

std::string MerkleNodeHash(absl::string_view left, absl::string_view right) {
  std::string buf;
  buf.reserve(1 + left.size() + right.size());
  buf.push_back('\x01');
  buf.append(left.data(), left.size());
  buf.append(right.data(), right.size());
  return crypto::Sha256(buf);
}

MerkleTree::MerkleTree(absl::Span<const std::string> leaves) {
  leaf_hashes_.reserve(leaves.size());
  for (const std::string& leaf : leaves) leaf_hashes_.push_back(MerkleLeafHash(leaf));
  if (leaf_hashes_.size() > 1) {
    node_hashes_.reserve(leaf_hashes_.size() - 1);
    HashSubtree(0, leaf_hashes_.size());
  }
}

std::string MerkleTree::Root() const {
  if (leaf_hashes_.empty()) return crypto::Sha256("");
  return SubtreeHash(0, leaf_hashes_.size());
}

std::string MerkleTree::HashSubtree(uint64_t begin, uint64_t end) {
  const uint64_t n = end - begin;
  if (n == 1) return leaf_hashes_[begin];
  const uint64_t k = SplitPoint(n);
  // By value: inserting the right subtree's nodes may move the left one's entry.
  const std::string left = HashSubtree(begin, begin + k);
  const std::string right = HashSubtree(begin + k, end);
  std::string hash = MerkleNodeHash(left, right);
  node_hashes_[{begin, end}] = hash;
  return hash;
}

const std::string& MerkleTree::SubtreeHash(uint64_t begin, uint64_t end) const {
  if (end - begin == 1) return leaf_hashes_[begin];
  auto it = node_hashes_.find({begin, end});
  DARVOZA_CHECK(it != node_hashes_.end()) << "no subtree [" << begin << ", " << end << ")";
  return it->second;
}

std::vector<std::string> MerkleTree::InclusionProof(uint64_t index) const {
  DARVOZA_CHECK(index < leaf_hashes_.size()) << "leaf " << index << " of " << leaf_hashes_.size();
  std::vector<std::string> path;
  AppendPath(index, 0, leaf_hashes_.size(), &path);
  return path;
}

// RFC 6962 §2.1.1 PATH(m, D[begin:end]): the sub-path first, then the sibling subtree's hash.
void MerkleTree::AppendPath(uint64_t index, uint64_t begin, uint64_t end,
                            std::vector<std::string>* path) const {
  const uint64_t n = end - begin;
  if (n <= 1) return;
  const uint64_t k = SplitPoint(n);
  if (index < k) {
    AppendPath(index, begin, begin + k, path);
    path->push_back(SubtreeHash(begin + k, end));
  } else {
    AppendPath(index - k, begin + k, end, path);
    path->push_back(SubtreeHash(begin, begin + k));
  }
}

// RFC 9162 §2.1.3.2: walks from the leaf to the root with (fn, sn) = (index, last index).
absl::Status VerifyMerkleInclusion(absl::string_view leaf, uint64_t index, uint64_t tree_size,
                                   absl::Span<const std::string> proof, absl::string_view root) {
  if (index >= tree_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf index ", index, " is outside a tree of ", tree_size, " leaves"));
  }
  uint64_t fn = index;
  uint64_t sn = tree_size - 1;
  std::string r = MerkleLeafHash(leaf);
  for (const std::string& p : proof) {
    if (sn == 0) return absl::UnauthenticatedError("Merkle proof is longer than the tree allows");
    if ((fn & 1) == 1 || fn == sn) {
      r = MerkleNodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = MerkleNodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::UnauthenticatedError("Merkle proof is shorter than the tree needs");
  if (r != root) return absl::UnauthenticatedError("Merkle proof does not lead to the root");
  return absl::OkStatus();
}

}  // namespace darvoza
