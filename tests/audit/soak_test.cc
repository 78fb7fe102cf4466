// Soak variants of the durability tests (label soak; CI skips them): many power-cut rounds at
// random points with concurrent appenders. DARVOZA_SOAK_ROUNDS overrides the round count.
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <stdlib.h>

#include <random>

#include <catch2/catch.hpp>

#include "tests/audit/audit_test_util.h"

namespace darvoza::audit {
namespace {

TEST_CASE("Soak: acknowledged appends survive many random power cuts", "[audit][soak]") {
  int rounds = 100;
  if (const char* env = getenv("DARVOZA_SOAK_ROUNDS")) rounds = atoi(env);
  testing::LogFixture f;
  auto fs = std::make_shared<testing::FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  std::random_device seed;
  const unsigned s = seed();
  std::mt19937 rng(s);
  uint64_t next_n = 1;
  for (int round = 0; round < rounds; ++round) {
    const size_t cut_after = 1 + rng() % 400;
    bool verified = false;
    INFO("seed " << s << " round " << round << " cut after " << cut_after);
    CHECK(testing::PowerCutRound(f, *fs, env.get(), true, rng() % 2 == 0, cut_after, next_n,
                                 &verified) == 0);
    CHECK(verified);
    next_n += 1000000;
  }
}

}  // namespace
}  // namespace darvoza::audit
