// The audit log's chain, seals, witness hand-off, admin records, proofs and secondary readers
// (audit/audit_log.h). Time comes from a SimulatedClock.
#include "audit/audit_log.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/archive.h"
#include "audit/internal/store.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_support.h"

namespace darvoza::audit {
namespace {

using testing::LogFixture;
using testing::MakeRequest;
using testing::VerifyStore;

TEST_CASE("Appends get dense seqs and a hash chain over the serialized records", "[audit]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  std::string prev(32, '\0');
  for (uint64_t i = 1; i <= 5; ++i) {
    auto r = (*log)->AppendAndWait(MakeRequest(i, absl::StrCat("body ", i)));
    REQUIRE(r.ok());
    CHECK(r->seq == i);
    auto stored = (*log)->GetRecord(i);
    REQUIRE(stored.ok());
    CHECK(stored->record.seq() == i);
    CHECK(stored->record.prev_hash() == prev);
    CHECK(r->record_hash == crypto::Sha256(prev + stored->bytes));
    CHECK(stored->record.time_unix_nanos() == absl::ToUnixNanos(testing::kTestStart));
    auto body = (*log)->GetBody(stored->record.body_sha256());
    REQUIRE(body.ok());
    CHECK(*body == absl::StrCat("body ", i));
    prev = r->record_hash;
  }
  // Reopening continues the chain.
  log->reset();
  log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  auto r = (*log)->AppendAndWait(MakeRequest(6));
  REQUIRE(r.ok());
  CHECK(r->seq == 6);
  auto six = (*log)->GetRecord(6);
  REQUIRE(six.ok());
  CHECK(six->record.prev_hash() == prev);
}

TEST_CASE("A record that would not parse back is refused before it is in the chain",
          "[audit]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  REQUIRE((*log)->AppendAndWait(MakeRequest(1)).ok());
  AppendRequest bad = MakeRequest(2);
  bad.record.set_message_id("\xc3\x28");  // not UTF-8: protobuf would not parse it back
  auto refused = (*log)->AppendAndWait(std::move(bad));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
  AppendRequest bad_detail = MakeRequest(3);
  bad_detail.record.set_detail(std::string("caller said \xff", 14));
  CHECK((*log)->AppendAndWait(std::move(bad_detail)).status().code() ==
        absl::StatusCode::kInvalidArgument);
  auto next = (*log)->AppendAndWait(MakeRequest(4));
  REQUIRE(next.ok());
  CHECK(next->seq == 2);
  // Everything in the log reads back, across a restart too (the newest record is read at open).
  REQUIRE((*log)->SealNow().ok());
  REQUIRE((*log)->WitnessNow().ok());
  VerifyReport report = VerifyStore(**log, f.pki.Options());
  INFO(report.ToText());
  CHECK(report.ok);
  log->reset();
  auto reopened = AuditLog::Open(f.Options());
  REQUIRE(reopened.ok());
  CHECK((*reopened)->head_seq() == 2);
}

TEST_CASE("Hash-only records keep the body hash but not the body", "[audit]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  AppendRequest request = MakeRequest(1, "secret body");
  request.hash_only = true;
  auto r = (*log)->AppendAndWait(std::move(request));
  REQUIRE(r.ok());
  auto stored = (*log)->GetRecord(r->seq);
  REQUIRE(stored.ok());
  CHECK(stored->record.body_sha256() == crypto::Sha256("secret body"));
  CHECK(stored->record.body_length() == 11);
  CHECK((*log)->GetBody(crypto::Sha256("secret body")).status().code() ==
        absl::StatusCode::kNotFound);
  // A body that contradicts the given hash is refused.
  AppendRequest bad = MakeRequest(2, "x");
  bad.record.set_body_sha256(std::string(32, 'a'));
  CHECK((*log)->AppendAndWait(std::move(bad)).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

// The exchange hashes each body once and hands the log that hash (body_sha256_checked); the
// log stores it and the body under it, and the stored log still verifies.
TEST_CASE("A body hash the caller checked is taken as given and still verifies", "[audit]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  AppendRequest request = MakeRequest(1, "checked body");
  request.record.set_body_sha256(crypto::Sha256("checked body"));
  request.body_sha256_checked = true;
  auto r = (*log)->AppendAndWait(std::move(request));
  REQUIRE(r.ok());
  auto stored = (*log)->GetRecord(r->seq);
  REQUIRE(stored.ok());
  CHECK(stored->record.body_sha256() == crypto::Sha256("checked body"));
  CHECK(stored->record.body_length() == 12);
  auto body = (*log)->GetBody(crypto::Sha256("checked body"));
  REQUIRE(body.ok());
  CHECK(*body == "checked body");
  // Without a 32-byte hash there is nothing to take: the log hashes the body itself.
  AppendRequest unhashed = MakeRequest(2, "plain body");
  unhashed.record.clear_body_sha256();
  unhashed.body_sha256_checked = true;
  auto r2 = (*log)->AppendAndWait(std::move(unhashed));
  REQUIRE(r2.ok());
  auto stored2 = (*log)->GetRecord(r2->seq);
  REQUIRE(stored2.ok());
  CHECK(stored2->record.body_sha256() == crypto::Sha256("plain body"));
  VerifyOptions verify = f.pki.Options();
  verify.allow_unwitnessed_seals = true;
  CHECK(VerifyStore(**log, verify).ok);
}

TEST_CASE("Seals every N records, and after T of clock time", "[audit]") {
  LogFixture f;
  AuditLogOptions options = f.Options();
  options.seal_every_records = 5;
  options.seal_interval = absl::Seconds(10);
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  for (uint64_t i = 1; i <= 12; ++i) REQUIRE((*log)->AppendAndWait(MakeRequest(i)).ok());
  REQUIRE((*log)->Tick().ok());
  auto stats = (*log)->Stats();
  REQUIRE(stats.ok());
  CHECK(stats->seals == 2);
  CHECK(stats->last_sealed_seq == 10);
  // Two records are waiting; nothing happens until the interval passes on the clock.
  f.clock.Advance(absl::Seconds(9));
  REQUIRE((*log)->Tick().ok());
  CHECK((*log)->Stats()->seals == 2);
  f.clock.Advance(absl::Seconds(2));
  REQUIRE((*log)->Tick().ok());
  stats = (*log)->Stats();
  CHECK(stats->seals == 3);
  CHECK(stats->last_sealed_seq == 12);
  REQUIRE((*log)->WitnessNow().ok());
  stats = (*log)->Stats();
  CHECK(stats->receipts == 3);
  CHECK(stats->last_witnessed_seq == 12);
  CHECK(f.witness->held_seq() == 12);
  VerifyReport report = VerifyStore(**log, f.pki.Options());
  INFO(report.ToText());
  CHECK(report.ok);
  CHECK(report.seals == 3);
  CHECK(report.receipts == 3);
}

TEST_CASE("An unreachable witness never blocks appends, and seals are re-sent later", "[audit]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  f.witness->set_reachable(false);
  for (uint64_t i = 1; i <= 25; ++i) REQUIRE((*log)->AppendAndWait(MakeRequest(i)).ok());
  REQUIRE((*log)->SealNow().ok());
  absl::Status witnessed = (*log)->WitnessNow();
  CHECK(witnessed.code() == absl::StatusCode::kUnavailable);
  CHECK((*log)->Stats()->receipts == 0);
  CHECK((*log)->Stats()->seals == 3);
  // Strict verification wants receipts; a lagging witness is accepted when allowed.
  VerifyOptions options = f.pki.Options();
  CHECK_FALSE(VerifyStore(**log, options).ok);
  options.allow_unwitnessed_seals = true;
  VerifyReport lagging = VerifyStore(**log, options);
  CHECK(lagging.ok);
  CHECK(lagging.unwitnessed_seals == 3);
  // Across a restart too: pending seals are sent in order once the witness is back.
  log->reset();
  log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  f.witness->set_reachable(true);
  REQUIRE((*log)->WitnessNow().ok());
  CHECK((*log)->Stats()->receipts == 3);
  CHECK(f.witness->held_seq() == 25);
  CHECK(VerifyStore(**log, f.pki.Options()).ok);
}

TEST_CASE("Admin actions are records of the same chain", "[audit]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  REQUIRE((*log)->AppendAndWait(MakeRequest(1)).ok());
  v1::AdminAction action;
  action.set_actor("admin@ss1");
  action.set_action("acl.grant");
  action.set_subject("subsystem:UZ/GOV/70000001/client-app");
  action.set_detail("UZ/GOV/80000001/tax-registry/svc1");
  auto r = (*log)->AppendAdminAction(action);
  REQUIRE(r.ok());
  CHECK(r->seq == 2);
  auto stored = (*log)->GetRecord(2);
  REQUIRE(stored.ok());
  CHECK(stored->record.kind() == v1::ADMIN_ACTION);
  CHECK(stored->record.admin().action() == "acl.grant");
  REQUIRE((*log)->SealNow().ok());
  REQUIRE((*log)->WitnessNow().ok());
  CHECK(VerifyStore(**log, f.pki.Options()).ok);
}

TEST_CASE("Asynchronous appends complete on the writer thread once durable", "[audit]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  absl::Mutex mu;
  std::vector<uint64_t> seqs;
  for (uint64_t i = 1; i <= 50; ++i) {
    (*log)->Append(MakeRequest(i), [&](absl::StatusOr<AppendResult> r) {
      REQUIRE(r.ok());
      absl::MutexLock l(&mu);
      seqs.push_back(r->seq);
    });
  }
  {
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(
        +[](std::vector<uint64_t>* v) { return v->size() == 50; }, &seqs));
  }
  std::sort(seqs.begin(), seqs.end());
  for (uint64_t i = 0; i < 50; ++i) CHECK(seqs[i] == i + 1);
  CHECK((*log)->head_seq() == 50);
}

TEST_CASE("Inclusion proofs check against the seal and the witness receipt", "[audit]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  for (uint64_t i = 1; i <= 17; ++i) REQUIRE((*log)->AppendAndWait(MakeRequest(i)).ok());
  CHECK((*log)->Prove(17).status().code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE((*log)->SealNow().ok());
  REQUIRE((*log)->WitnessNow().ok());
  const VerifyOptions options = f.pki.Options();
  for (uint64_t seq : {1, 7, 10, 11, 17}) {
    auto proof = (*log)->Prove(seq);
    REQUIRE(proof.ok());
    auto record = VerifyInclusionProof(*proof, options);
    REQUIRE(record.ok());
    CHECK(record->seq() == seq);
  }
  auto proof = (*log)->Prove(13);
  REQUIRE(proof.ok());
  v1::AuditRecord changed;
  REQUIRE(changed.ParseFromString(proof->record()));
  changed.set_message_id("msg-forged");
  proof->set_record(changed.SerializeAsString());
  CHECK(VerifyInclusionProof(*proof, options).status().code() ==
        absl::StatusCode::kUnauthenticated);
}

TEST_CASE("A secondary reader sees a live log and catches up", "[audit]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  for (uint64_t i = 1; i <= 3; ++i) REQUIRE((*log)->AppendAndWait(MakeRequest(i)).ok());
  darvoza::testing::TempDir secondary;
  auto reader = AuditReader::Open(f.path, secondary.path());
  REQUIRE(reader.ok());
  CHECK((*reader)->GetRecord(3).ok());
  CHECK((*reader)->GetRecord(4).status().code() == absl::StatusCode::kNotFound);
  REQUIRE((*log)->AppendAndWait(MakeRequest(4)).ok());
  REQUIRE((*reader)->Refresh().ok());
  auto four = (*reader)->FindByMessageId("msg-4");
  REQUIRE(four.ok());
  REQUIRE(four->size() == 1);
  CHECK((*four)[0].seq == 4);
  // A second writer is refused while the first holds the log.
  CHECK(AuditLog::Open(f.Options()).status().code() == absl::StatusCode::kUnavailable);
  darvoza::testing::TempDir empty;
  CHECK(AuditReader::Open(empty.File("none"), secondary.File("x")).status().code() ==
        absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace darvoza::audit

namespace darvoza::audit {
namespace {

// Not run by CI (hidden tag): writes a sealed, witnessed log, its anchor, a signed global
// configuration and a witness head receipt to $DARVOZA_AUDIT_FIXTURE_DIR, for trying the CLI
// and for docs/auditor.md's sample output.
TEST_CASE("Write a CLI fixture", "[.cli-fixture]") {
  const char* out = getenv("DARVOZA_AUDIT_FIXTURE_DIR");
  REQUIRE(out != nullptr);
  LogFixture f;
  AuditLogOptions options = f.Options();
  options.path = std::string(out) + "/audit";
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  for (uint64_t i = 1; i <= 42; ++i) {
    REQUIRE((*log)->AppendAndWait(MakeRequest(i, absl::StrCat("body ", i))).ok());
    f.clock.Advance(absl::Minutes(1));
  }
  v1::AdminAction action;
  action.set_actor("admin");
  action.set_action("acl.grant");
  action.set_subject("subsystem:UZ/GOV/70000003/client-app");
  REQUIRE((*log)->AppendAdminAction(action).ok());
  REQUIRE((*log)->SealNow().ok());
  REQUIRE((*log)->WitnessNow().ok());
  darvoza::testing::WriteFileForTest(std::string(out) + "/anchor.pb",
                                     f.pki.anchor.SerializeAsString());
  darvoza::testing::WriteFileForTest(std::string(out) + "/globalconf.signed",
                                     f.pki.SignedGlobalConfBlob());
  darvoza::testing::WriteFileForTest(std::string(out) + "/witness-head.receipt",
                                     f.witness->LatestReceipt().SerializeAsString());
}

}  // namespace
}  // namespace darvoza::audit

namespace darvoza::audit {
namespace {

TEST_CASE("Health shows the last seal, the unwitnessed seals and their age, and disk use",
          "[audit][health]") {
  LogFixture f;
  std::atomic<int> changes{0};
  AuditLogOptions options = f.Options();
  options.on_witness_status_change = [&changes](const absl::Status&) { ++changes; };
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  f.witness->set_reachable(false);
  for (uint64_t i = 1; i <= 3; ++i) REQUIRE((*log)->AppendAndWait(MakeRequest(i)).ok());
  const absl::Time sealed_at = f.clock.Now();
  REQUIRE((*log)->SealNow().ok());
  CHECK_FALSE((*log)->WitnessNow().ok());
  CHECK_FALSE((*log)->WitnessNow().ok());  // the same refusal again: no second change
  f.clock.Advance(absl::Seconds(30));
  auto health = (*log)->Health();
  REQUIRE(health.ok());
  CHECK(health->damage.ok());
  CHECK(health->witness.code() == absl::StatusCode::kUnavailable);
  CHECK(health->head_seq == 3);
  CHECK(health->last_seal_seq == 3);
  CHECK(health->last_sealed_at == sealed_at);
  CHECK(health->unwitnessed_seals == 1);
  CHECK(health->unwitnessed_age == absl::Seconds(30));
  CHECK(health->disk_bytes > 0);
  CHECK(changes.load() == 1);

  f.witness->set_reachable(true);
  REQUIRE((*log)->WitnessNow().ok());
  health = (*log)->Health();
  REQUIRE(health.ok());
  CHECK(health->witness.ok());
  CHECK(health->unwitnessed_seals == 0);
  CHECK(health->unwitnessed_age == absl::ZeroDuration());
  CHECK(changes.load() == 2);
}

TEST_CASE("A log whose newest record does not parse opens only damaged, and refuses appends",
          "[audit][health]") {
  LogFixture f;
  {
    auto log = AuditLog::Open(f.Options());
    REQUIRE(log.ok());
    for (uint64_t i = 1; i <= 4; ++i) REQUIRE((*log)->AppendAndWait(MakeRequest(i)).ok());
    REQUIRE((*log)->SealNow().ok());
    REQUIRE((*log)->WitnessNow().ok());
  }
  {
    REQUIRE(testing::PutRaw(f.path, internal::RecordKey(4), std::string(12, '\xff')).ok());
  }
  auto refused = AuditLog::Open(f.Options());
  CHECK(refused.status().code() == absl::StatusCode::kDataLoss);

  AuditLogOptions options = f.Options();
  options.open_damaged = true;
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  auto health = (*log)->Health();
  REQUIRE(health.ok());
  CHECK(health->damage.code() == absl::StatusCode::kDataLoss);
  CHECK(absl::StrContains(health->damage.message(), "record 4 does not parse"));
  auto appended = (*log)->AppendAndWait(MakeRequest(5));
  CHECK(appended.status().code() == absl::StatusCode::kDataLoss);
  CHECK(FaultCode(appended.status()) == faults::kAuditLogFailure);
  CHECK_FALSE((*log)->SealNow().ok());
  // Nothing is skipped: what is stored is still read, exported and named by the verifier.
  CHECK((*log)->GetRecord(3).ok());
  VerifyReport report = VerifyStore(**log, f.pki.Options());
  INFO(report.ToText());
  CHECK_FALSE(report.ok);
  CHECK(report.bad_seq == 4);
}

}  // namespace
}  // namespace darvoza::audit
