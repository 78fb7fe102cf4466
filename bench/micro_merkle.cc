// Micro-benchmarks of common/merkle for the batch sizes batch signing would use (1..64): the
// root a signer computes once per batch, each message's inclusion proof, and its check.
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/check.h"
#include "common/crypto/hash.h"
#include "common/merkle.h"

namespace darvoza {
namespace {

std::vector<std::string> Leaves(int64_t n) {
  std::vector<std::string> leaves;
  for (int64_t i = 0; i < n; ++i) leaves.push_back(crypto::RandomBytes(32));
  return leaves;
}

void BM_MerkleRootAndProofs(benchmark::State& state) {
  const std::vector<std::string> leaves = Leaves(state.range(0));
  for (auto _ : state) {
    MerkleTree tree(leaves);
    benchmark::DoNotOptimize(tree.Root());
    for (uint64_t i = 0; i < tree.size(); ++i) benchmark::DoNotOptimize(tree.InclusionProof(i));
  }
  state.counters["per_leaf_ns"] = benchmark::Counter(
      static_cast<double>(state.iterations() * state.range(0)),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_MerkleRootAndProofs)->RangeMultiplier(2)->Range(1, 64);

void BM_MerkleVerifyInclusion(benchmark::State& state) {
  const std::vector<std::string> leaves = Leaves(state.range(0));
  MerkleTree tree(leaves);
  const std::string root = tree.Root();
  const uint64_t index = tree.size() / 2;
  const std::vector<std::string> proof = tree.InclusionProof(index);
  for (auto _ : state) {
    DARVOZA_CHECK(VerifyMerkleInclusion(leaves[index], index, tree.size(), proof, root).ok());
  }
}
BENCHMARK(BM_MerkleVerifyInclusion)->RangeMultiplier(2)->Range(1, 64);

}  // namespace
}  // namespace darvoza
