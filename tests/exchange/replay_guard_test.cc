// ReplayGuard alone: the in-memory window, its bound, and its restoration from a real audit log
// on disk (the provider's REQUEST_IN records).
#include <catch2/catch.hpp>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "common/clock.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "proto/envelope.pb.h"
#include "security_server/exchange/replay_guard.h"
#include "tests/test_support.h"

namespace darvoza::ss::exchange {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);
constexpr absl::Duration kWindow = absl::Minutes(5);

v1::SecurityServerId Server(absl::string_view text) { return *ParseSecurityServerId(text); }

std::string Nonce(int i) {
  std::string nonce(16, '\0');
  const std::string tag = absl::StrCat(i);
  nonce.replace(0, tag.size(), tag);
  return nonce;
}

// A provider's REQUEST_IN record, stamped `at`, of a request created at `created`.
audit::AppendRequest RequestIn(const v1::SecurityServerId& consumer, const std::string& nonce,
                               absl::Time created, absl::Time at,
                               v1::AuditRecordKind kind = v1::REQUEST_IN) {
  v1::Envelope envelope;
  *envelope.mutable_consumer_server() = consumer;
  envelope.set_nonce(nonce);
  envelope.set_created_at_unix_nanos(absl::ToUnixNanos(created));
  audit::AppendRequest request;
  request.record.set_kind(kind);
  request.record.set_time_unix_nanos(absl::ToUnixNanos(at));
  request.record.set_envelope(envelope.SerializeAsString());
  request.wait_durable = false;
  return request;
}

TEST_CASE("ReplayGuard: a pair is accepted once, within the window only", "[exchange][replay]") {
  SimulatedClock clock(kStart);
  ReplayGuard guard(&clock, kWindow);
  const auto ss1 = Server("UZ/GOV/70000002/ss2");
  const auto ss2 = Server("UZ/GOV/70000003/ss3");
  REQUIRE(guard.CheckAndRecord(ss1, Nonce(1), kStart).ok());
  auto again = guard.CheckAndRecord(ss1, Nonce(1), kStart);
  CHECK(again.code() == absl::StatusCode::kUnauthenticated);
  CHECK(FaultCode(again) == faults::kReplayedMessage);
  // Another consumer SS may use the same nonce: the pair is what counts.
  CHECK(guard.CheckAndRecord(ss2, Nonce(1), kStart).ok());
  // Too old, too new, a nonce of the wrong size.
  CHECK(FaultCode(guard.CheckAndRecord(ss1, Nonce(2), kStart - kWindow - absl::Seconds(1))) ==
        faults::kReplayedMessage);
  CHECK(FaultCode(guard.CheckAndRecord(ss1, Nonce(3), kStart + kWindow + absl::Seconds(1))) ==
        faults::kReplayedMessage);
  CHECK(guard.CheckAndRecord(ss1, "short", kStart).code() == absl::StatusCode::kInvalidArgument);
  CHECK(guard.size() == 2);

  // Once the request's time has left the window, its pair is forgotten, and it would be refused
  // by its time anyway.
  clock.Advance(kWindow + absl::Seconds(1));
  CHECK(guard.Prune() == 2);
  CHECK(guard.size() == 0);
  CHECK(FaultCode(guard.CheckAndRecord(ss1, Nonce(1), kStart)) == faults::kReplayedMessage);
}

TEST_CASE("ReplayGuard: a full window refuses new requests until pairs expire",
          "[exchange][replay]") {
  SimulatedClock clock(kStart);
  ReplayGuard guard(&clock, kWindow, /*max_entries=*/100);
  const auto ss = Server("UZ/GOV/70000002/ss2");
  for (int i = 0; i < 100; ++i) REQUIRE(guard.CheckAndRecord(ss, Nonce(i), kStart).ok());
  auto full = guard.CheckAndRecord(ss, Nonce(100), clock.Now());
  CHECK(full.code() == absl::StatusCode::kResourceExhausted);
  CHECK(FaultCode(full) == faults::kServiceFailed);
  CHECK(guard.size() == 100);
  // A seen pair is still named a replay, not a full window.
  CHECK(FaultCode(guard.CheckAndRecord(ss, Nonce(5), kStart)) == faults::kReplayedMessage);
  // When the old pairs expire, a full window makes room by itself.
  clock.Advance(kWindow + absl::Seconds(1));
  CHECK(guard.CheckAndRecord(ss, Nonce(100), clock.Now()).ok());
  CHECK(guard.size() == 1);
}

TEST_CASE("ReplayGuard: restored from the audit log's REQUEST_IN records",
          "[exchange][replay][audit]") {
  testing::TempDir dir;
  SimulatedClock clock(kStart);
  const auto consumer = Server("UZ/GOV/70000002/ss2");
  const auto other = Server("UZ/GOV/70000003/ss3");
  audit::AuditLogOptions options;
  options.path = dir.File("audit");
  options.server = Server("UZ/GOV/70000001/ss1");
  options.clock = &clock;
  options.sync = false;
  const absl::Time now = kStart + 3 * kWindow;
  {
    auto log = audit::AuditLog::Open(options);
    REQUIRE(log.ok());
    // Long before the window: not read.
    REQUIRE((*log)->AppendAndWait(RequestIn(consumer, Nonce(1), kStart, kStart)).ok());
    // Accepted within the last two windows, created before the window: not needed.
    REQUIRE((*log)
                ->AppendAndWait(RequestIn(consumer, Nonce(2), now - kWindow - absl::Seconds(2),
                                          now - kWindow - absl::Seconds(1)))
                .ok());
    // Accepted one window ago, created just inside it (a client clock ahead of ours).
    REQUIRE((*log)
                ->AppendAndWait(RequestIn(consumer, Nonce(3), now - absl::Seconds(10),
                                          now - kWindow - absl::Seconds(30)))
                .ok());
    // Many records of one nanosecond, more than a page of the restore: all must be read.
    const absl::Time busy = now - absl::Seconds(60);
    std::atomic<int> failed{0};
    for (int i = 1000; i < 10000; ++i) {
      (*log)->Append(RequestIn(i % 2 == 0 ? consumer : other, Nonce(i), busy, busy),
                     [&failed](absl::StatusOr<audit::AppendResult> r) { failed += !r.ok(); });
    }
    // The consumer side's records and refusals hold envelopes too: not pairs this provider saw.
    REQUIRE((*log)
                ->AppendAndWait(RequestIn(consumer, Nonce(4), now, now, v1::REQUEST_OUT))
                .ok());
    REQUIRE((*log)->AppendAndWait(RequestIn(consumer, Nonce(5), now, now, v1::REFUSAL)).ok());
    REQUIRE((*log)->AppendAndWait(RequestIn(consumer, Nonce(6), now, now)).ok());
    CHECK(failed == 0);
  }
  clock.Advance(now - kStart);
  auto log = audit::AuditLog::Open(options);
  REQUIRE(log.ok());
  ReplayGuard guard(&clock, kWindow);
  auto restored = guard.Restore(**log);
  REQUIRE(restored.ok());
  CHECK(*restored == 9000 + 2);
  CHECK(guard.size() == 9002);
  auto replayed = [&](const v1::SecurityServerId& ss, int i, absl::Time created) {
    return FaultCode(guard.CheckAndRecord(ss, Nonce(i), created)) == faults::kReplayedMessage;
  };
  CHECK(replayed(consumer, 3, now - absl::Seconds(10)));
  CHECK(replayed(consumer, 6, now));
  CHECK(replayed(consumer, 1000, now - absl::Seconds(60)));
  CHECK(replayed(other, 9999, now - absl::Seconds(60)));
  CHECK(replayed(consumer, 9998, now - absl::Seconds(60)));
  // The pair of a record from another side, or with the other consumer, was not taken.
  CHECK_FALSE(replayed(consumer, 4, now));
  CHECK_FALSE(replayed(consumer, 5, now));
  CHECK_FALSE(replayed(other, 1000, now - absl::Seconds(60)));
}

}  // namespace
}  // namespace darvoza::ss::exchange
