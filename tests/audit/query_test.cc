// Index queries on 100k mixed records return exactly the expected records without scanning:
// index steps (NUMBER_DB_SEEK + NUMBER_DB_NEXT) <= k + 2 and point reads (NUMBER_KEYS_READ) <= k.
#include <rocksdb/statistics.h>

#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "audit/audit_log.h"
#include "common/identifiers.h"
#include "tests/audit/audit_test_util.h"

namespace darvoza::audit {
namespace {

using testing::LogFixture;

constexpr uint64_t kRecords = 100000;

std::string ClientOf(uint64_t i) { return absl::StrCat("UZ/GOV/700000", i % 13, "/app"); }
std::string ServiceOf(uint64_t i) {
  return absl::StrCat("UZ/GOV/80000001/tax-registry/svc", (i * 7) % 17);
}
absl::Time TimeOf(uint64_t i) { return testing::kTestStart + absl::Milliseconds(i); }
// Two records (request and response) share each message id.
std::string MessageIdOf(uint64_t i) { return absl::StrCat("m-", i / 2); }

struct Expected {
  std::vector<uint64_t> seqs;
};

TEST_CASE("Queries on 100k records use the indexes, not scans", "[audit][query]") {
  LogFixture f;
  AuditLogOptions options = f.Options();
  options.sync = false;  // setup speed; durability is tested elsewhere
  options.write_buffer_bytes = 64u << 20;  // fewer flushes while loading
  options.seal_signer = nullptr;
  options.witness = nullptr;
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  absl::Mutex mu;
  uint64_t done = 0;
  uint64_t failed = 0;
  for (uint64_t i = 1; i <= kRecords; ++i) {
    AppendRequest request;
    v1::AuditRecord& r = request.record;
    const bool admin = i % 50 == 0;
    r.set_kind(admin ? v1::ADMIN_ACTION : (i % 2 ? v1::REQUEST_OUT : v1::RESPONSE_IN));
    r.set_time_unix_nanos(absl::ToUnixNanos(TimeOf(i)));
    if (admin) {
      r.mutable_admin()->set_action("acl.grant");
    } else {
      r.set_message_id(MessageIdOf(i));
      *r.mutable_client() = *ParseSubsystemId(ClientOf(i));
      *r.mutable_service() = *ParseServiceId(ServiceOf(i));
    }
    (*log)->Append(std::move(request), [&](absl::StatusOr<AppendResult> result) {
      absl::MutexLock l(&mu);
      ++done;
      if (!result.ok()) ++failed;
    });
  }
  {
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(+[](uint64_t* d) { return *d == kRecords; }, &done));
    REQUIRE(failed == 0);
  }
  // Seq i is record i (appended in order from one thread).
  auto expect = [](auto pred) {
    std::vector<uint64_t> seqs;
    for (uint64_t i = 1; i <= kRecords; ++i) {
      if (i % 50 != 0 && pred(i)) seqs.push_back(i);
    }
    return seqs;
  };
  auto check = [&](const std::string& what, absl::StatusOr<std::vector<StoredRecord>> got,
                   const std::vector<uint64_t>& want) {
    INFO(what);
    REQUIRE(got.ok());
    std::vector<uint64_t> seqs;
    for (const StoredRecord& r : *got) seqs.push_back(r.seq);
    CHECK(seqs == want);
    const uint64_t k = want.size();
    const uint64_t steps = (*log)->Ticker(rocksdb::NUMBER_DB_SEEK) +
                           (*log)->Ticker(rocksdb::NUMBER_DB_NEXT);
    const uint64_t reads = (*log)->Ticker(rocksdb::NUMBER_KEYS_READ);
    INFO("k=" << k << " steps=" << steps << " reads=" << reads);
    CHECK(steps <= k + 2);
    CHECK(reads <= k);
  };

  (*log)->ResetTickers();
  check("message id", (*log)->FindByMessageId("m-31337"),
        expect([](uint64_t i) { return MessageIdOf(i) == "m-31337"; }));

  (*log)->ResetTickers();
  check("unknown message id", (*log)->FindByMessageId("m-none"), {});

  AuditQuery by_client;
  by_client.client = ClientOf(5);
  by_client.from = TimeOf(40000);
  by_client.to = TimeOf(46000);
  (*log)->ResetTickers();
  check("client + time", (*log)->Find(by_client), expect([](uint64_t i) {
          return ClientOf(i) == ClientOf(5) && i >= 40000 && i < 46000;
        }));

  AuditQuery by_service;
  by_service.service = ServiceOf(3);
  (*log)->ResetTickers();
  check("service, all time", (*log)->Find(by_service),
        expect([](uint64_t i) { return ServiceOf(i) == ServiceOf(3); }));

  AuditQuery both;
  both.client = ClientOf(2);
  both.service = ServiceOf(9);
  both.from = TimeOf(1000);
  both.to = TimeOf(90000);
  (*log)->ResetTickers();
  check("client + service + time", (*log)->Find(both), expect([](uint64_t i) {
          return ClientOf(i) == ClientOf(2) && ServiceOf(i) == ServiceOf(9) && i >= 1000 &&
                 i < 90000;
        }));

  AuditQuery window;
  window.from = TimeOf(77777);
  window.to = TimeOf(77900);
  (*log)->ResetTickers();
  std::vector<uint64_t> in_window;
  for (uint64_t i = 77777; i < 77900; ++i) in_window.push_back(i);  // admin records too
  check("time window", (*log)->Find(window), in_window);
}

}  // namespace
}  // namespace darvoza::audit
