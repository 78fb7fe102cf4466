// Merkle trees over SHA-256 with RFC 6962 hashing: leaf hash = SHA-256(0x00 || leaf),
// node hash = SHA-256(0x01 || left || right), the empty tree's hash = SHA-256("").
//
// Seals commit to a batch of audit record hashes with one root; batch signing commits to many
// envelopes with one signature. Each leaf then has an inclusion proof that anyone can check
// with the root alone.
//
//   MerkleTree tree(record_hashes);
//   std::string root = tree.Root();
//   std::vector<std::string> proof = tree.InclusionProof(5);
//   DARVOZA_RETURN_IF_ERROR(VerifyMerkleInclusion(record_hashes[5], 5, tree.size(), proof, root));
#ifndef DARVOZA_COMMON_MERKLE_H_
#define DARVOZA_COMMON_MERKLE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace darvoza {

// SHA-256(0x00 || leaf).
std::string MerkleLeafHash(absl::string_view leaf);
// SHA-256(0x01 || left || right).
std::string MerkleNodeHash(absl::string_view left, absl::string_view right);

// A tree over leaves given once. Immutable after construction; thread-safe to read.
class MerkleTree {
 public:
  // `leaves` are leaf data (not yet leaf-hashed), e.g. record hashes. Hashes every node once
  // (2n - 1 hashes) and keeps them, so Root() and each InclusionProof() only look hashes up:
  // all n proofs of a batch cost O(n log n), not O(n^2) hashing.
  explicit MerkleTree(absl::Span<const std::string> leaves);

  uint64_t size() const { return leaf_hashes_.size(); }
  // The RFC 6962 Merkle Tree Hash of all leaves.
  std::string Root() const;
  // RFC 6962 audit path for leaf `index`, leaf to root. REQUIRES: index < size().
  std::vector<std::string> InclusionProof(uint64_t index) const;

 private:
  // Computes and records the hash of leaves [begin, end) and of every subtree below it.
  std::string HashSubtree(uint64_t begin, uint64_t end);
  // The recorded hash of a subtree of this tree's shape. REQUIRES: the constructor visited it.
  const std::string& SubtreeHash(uint64_t begin, uint64_t end) const;
  void AppendPath(uint64_t index, uint64_t begin, uint64_t end,
                  std::vector<std::string>* path) const;
  std::vector<std::string> leaf_hashes_;
  // Hash of every inner node, by its leaf range [begin, end).
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, std::string> node_hashes_;
};

// OK when `proof` shows that `leaf` (data, not yet hashed) is leaf `index` of a tree of
// `tree_size` leaves with root `root`; UNAUTHENTICATED otherwise, INVALID_ARGUMENT when
// index >= tree_size. As in RFC 6962, the proof binds the size only as far as it shapes the
// path: the size must come from a signed tree head, which is why every Darvoza signature over a
// root also covers the tree size (seals carry first and last seq; batch signatures sign both).
absl::Status VerifyMerkleInclusion(absl::string_view leaf, uint64_t index, uint64_t tree_size,
                                   absl::Span<const std::string> proof, absl::string_view root);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_MERKLE_H_
