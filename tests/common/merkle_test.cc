#include "common/merkle.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "common/crypto/hash.h"

namespace darvoza {
namespace {

std::string Hex(const std::string& bytes) { return crypto::HexEncode(bytes); }

// The sequence of sides (true: sibling on the left) a verifier walks for leaf `index` of a tree
// of `size` leaves, written independently of the code under test from RFC 6962's PATH().
std::vector<bool> PathShape(uint64_t index, uint64_t size) {
  std::vector<bool> sides;
  while (size > 1) {
    uint64_t k = 1;
    while (k * 2 < size) k *= 2;
    if (index < k) {
      sides.insert(sides.begin(), false);
      size = k;
    } else {
      sides.insert(sides.begin(), true);
      index -= k;
      size -= k;
    }
  }
  return sides;
}

// The RFC 6962 test leaves used by Certificate Transparency implementations.
std::vector<std::string> CtTestLeaves() {
  return {std::string(""),
          std::string("\x00", 1),
          std::string("\x10", 1),
          std::string("\x20\x21", 2),
          std::string("\x30\x31", 2),
          std::string("\x40\x41\x42\x43", 4),
          std::string("\x50\x51\x52\x53\x54\x55\x56\x57", 8),
          std::string("\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16)};
}

TEST_CASE("Merkle: empty tree hash is SHA-256 of the empty string", "[merkle]") {
  MerkleTree tree({});
  CHECK(Hex(tree.Root()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("Merkle: leaf and node hashes use the 0x00 and 0x01 prefixes", "[merkle]") {
  CHECK(MerkleLeafHash("abc") == crypto::Sha256(std::string("\x00" "abc", 4)));
  CHECK(MerkleNodeHash("L", "R") == crypto::Sha256("\x01LR"));
  CHECK(MerkleLeafHash("abc") != crypto::Sha256("abc"));
}

TEST_CASE("Merkle: RFC 6962 known roots for 1..8 leaves", "[merkle]") {
  const std::vector<std::string> expected = {
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
  };
  const std::vector<std::string> leaves = CtTestLeaves();
  for (size_t n = 1; n <= leaves.size(); ++n) {
    MerkleTree tree(absl::MakeConstSpan(leaves.data(), n));
    INFO("tree size " << n);
    CHECK(Hex(tree.Root()) == expected[n - 1]);
  }
}

TEST_CASE("Merkle: every proof verifies for every tree size 1..70", "[merkle]") {
  std::vector<std::string> leaves;
  for (int i = 0; i < 70; ++i) leaves.push_back("record-" + std::to_string(i));
  for (uint64_t n = 1; n <= 70; ++n) {
    MerkleTree tree(absl::MakeConstSpan(leaves.data(), n));
    const std::string root = tree.Root();
    for (uint64_t i = 0; i < n; ++i) {
      std::vector<std::string> proof = tree.InclusionProof(i);
      INFO("size " << n << " leaf " << i);
      REQUIRE(VerifyMerkleInclusion(leaves[i], i, n, proof, root).ok());
    }
  }
}

TEST_CASE("Merkle: proofs of other sizes differ in shape as RFC 6962 defines", "[merkle]") {
  CHECK(PathShape(0, 1).empty());
  CHECK(PathShape(0, 2) == std::vector<bool>{false});
  CHECK(PathShape(1, 2) == std::vector<bool>{true});
  CHECK(PathShape(2, 3) == std::vector<bool>{true});
  CHECK(PathShape(0, 3) == (std::vector<bool>{false, false}));
  CHECK(PathShape(5, 8) == (std::vector<bool>{true, false, true}));
}

TEST_CASE("Merkle: a tampered proof, index or size fails", "[merkle]") {
  std::vector<std::string> leaves;
  for (int i = 0; i < 70; ++i) leaves.push_back("record-" + std::to_string(i));
  for (uint64_t n : {2u, 3u, 7u, 8u, 13u, 64u, 70u}) {
    MerkleTree tree(absl::MakeConstSpan(leaves.data(), n));
    const std::string root = tree.Root();
    for (uint64_t i = 0; i < n; ++i) {
      const std::vector<std::string> proof = tree.InclusionProof(i);
      INFO("size " << n << " leaf " << i);
      for (size_t s = 0; s < proof.size(); ++s) {
        std::vector<std::string> bad = proof;
        bad[s][0] = static_cast<char>(bad[s][0] ^ 0x01);
        CHECK_FALSE(VerifyMerkleInclusion(leaves[i], i, n, bad, root).ok());
      }
      CHECK_FALSE(VerifyMerkleInclusion(leaves[i], (i + 1) % n, n, proof, root).ok());
      // A wrong size fails whenever it changes the path's shape. Where two sizes give the
      // same shape, RFC 6962 leaves the size to the signed tree head, which in Darvoza always
      // carries it (seals name first and last seq; batch signatures cover root and size).
      for (uint64_t m = i + 1; m <= 72; ++m) {
        if (m == n) continue;
        INFO("checked against size " << m);
        if (PathShape(i, m) != PathShape(i, n)) {
          CHECK_FALSE(VerifyMerkleInclusion(leaves[i], i, m, proof, root).ok());
        }
      }
      CHECK_FALSE(VerifyMerkleInclusion(leaves[i] + "x", i, n, proof, root).ok());
      CHECK(VerifyMerkleInclusion(leaves[i], n, n, proof, root).code() ==
            absl::StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace darvoza
