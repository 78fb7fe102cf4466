// Archives: export, purge, offline verification with only the archive and the anchor, and
// encryption to an auditor's key (wrong key, flipped byte, reordered or cut chunks refused).
#include "audit/archive.h"

#include <string>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "common/crypto/hash.h"
#include "common/sealed_box.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_support.h"

namespace darvoza::audit {
namespace {

using darvoza::testing::ReadFileForTest;
using darvoza::testing::WriteFileForTest;
using testing::LogFixture;
using testing::MakeRequest;

// 60 records one minute apart, sealed every 10, all witnessed.
std::unique_ptr<AuditLog> MakeLog(LogFixture& f) {
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  for (uint64_t i = 1; i <= 60; ++i) {
    REQUIRE((*log)->AppendAndWait(MakeRequest(i, absl::StrCat("body ", i))).ok());
    f.clock.Advance(absl::Minutes(1));
  }
  REQUIRE((*log)->SealNow().ok());
  REQUIRE((*log)->WitnessNow().ok());
  return *std::move(log);
}

// What an auditor does: read the anchor and the archive, nothing else.
VerifyReport OfflineVerify(const std::string& anchor_path, const std::string& archive_path,
                           const crypto::PrivateKey* key = nullptr) {
  auto anchor = ReadAnchorFile(anchor_path);
  REQUIRE(anchor.ok());
  auto archive = ReadArchiveFile(archive_path, key);
  REQUIRE(archive.ok());
  std::vector<std::string> confs(archive->global_configurations().begin(),
                                 archive->global_configurations().end());
  auto options = VerifyOptionsFromAnchor(*anchor, confs);
  REQUIRE(options.ok());
  return VerifyArchive(*archive, *options);
}

TEST_CASE("Export, purge and verify offline across the cut", "[audit][archive]") {
  LogFixture f;
  auto log = MakeLog(f);
  const std::string anchor_path = f.dir + "/anchor.pb";
  WriteFileForTest(anchor_path, f.pki.anchor.SerializeAsString());

  ExportOptions first_half;
  first_half.last_seq = 25;  // rounded up to the seal boundary, 30
  first_half.global_configurations.push_back(f.pki.SignedGlobalConfBlob());
  auto archive = log->Export(first_half);
  REQUIRE(archive.ok());
  CHECK(archive->first_seq() == 1);
  CHECK(archive->last_seq() == 30);
  CHECK(archive->records_size() == 30);
  CHECK(archive->bodies_size() == 30);
  CHECK(archive->seals_size() == 3);
  CHECK(archive->receipts_size() == 3);
  CHECK(archive->certificates_der_size() == 2);  // seal and witness certificates
  const std::string archive_path = f.dir + "/first.dvza";
  REQUIRE(WriteArchiveFile(archive_path, *archive, nullptr).ok());

  VerifyReport report = OfflineVerify(anchor_path, archive_path);
  INFO(report.ToText());
  CHECK(report.ok);
  CHECK(report.records == 30);
  CHECK(report.seals == 3);
  CHECK(report.receipts == 3);

  // Purge what is archived and older than 45 minutes: records 1..10 are older than
  // kTestStart+15min; retention cut at kTestStart + 15 min keeps seal 2 (11..20) whole.
  auto purged = log->Purge(testing::kTestStart + absl::Minutes(15), *archive);
  REQUIRE(purged.ok());
  CHECK(*purged == 10);
  CHECK(log->GetRecord(5).status().code() == absl::StatusCode::kNotFound);
  auto five = MakeRequest(5, "body 5");
  CHECK(log->GetBody(crypto::Sha256("body 5")).status().code() == absl::StatusCode::kNotFound);
  CHECK(log->FindByMessageId("msg-5")->empty());
  CHECK(log->GetRecord(11).ok());
  // Only archived records go, however old.
  purged = log->Purge(f.clock.Now(), *archive);
  REQUIRE(purged.ok());
  CHECK(*purged == 30);
  auto stats = log->Stats();
  CHECK(stats->first_seq == 31);
  CHECK(stats->purged_through_seq == 30);

  // The remaining log still verifies across the cut, and keeps growing.
  REQUIRE(log->AppendAndWait(MakeRequest(61)).ok());
  REQUIRE(log->SealNow().ok());
  REQUIRE(log->WitnessNow().ok());
  VerifyReport live = testing::VerifyStore(*log, f.pki.Options());
  INFO(live.ToText());
  CHECK(live.ok);
  CHECK(live.first_seq == 31);
  CHECK(live.records == 31);

  // The archive of the rest verifies too, its start authenticated by the purge marker.
  ExportOptions rest;
  rest.global_configurations.push_back(f.pki.SignedGlobalConfBlob());
  auto second = log->Export(rest);
  REQUIRE(second.ok());
  CHECK(second->first_seq() == 31);
  CHECK(second->start_marker().last_purged_seq() == 30);
  const std::string second_path = f.dir + "/second.dvza";
  REQUIRE(WriteArchiveFile(second_path, *second, nullptr).ok());
  VerifyReport second_report = OfflineVerify(anchor_path, second_path);
  INFO(second_report.ToText());
  CHECK(second_report.ok);

  // The purged first archive still verifies on its own.
  CHECK(OfflineVerify(anchor_path, archive_path).ok);

  // A middle archive starts at a seal and is anchored by the seal before it.
  ExportOptions middle;
  middle.first_seq = 45;
  middle.last_seq = 45;
  auto mid = log->Export(middle);
  REQUIRE(mid.ok());
  CHECK(mid->first_seq() == 41);
  CHECK(mid->last_seq() == 50);
  VerifyOptions options = f.pki.Options();
  CHECK(VerifyArchive(*mid, options).ok);
}

TEST_CASE("Purge deletes only what the archive holds, and no body a kept record needs",
          "[audit][archive]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  for (uint64_t i = 1; i <= 40; ++i) {
    // Records 5 and 35 carry the same body: it is stored once, under its hash.
    const std::string body = (i == 5 || i == 35) ? "shared body" : absl::StrCat("body ", i);
    REQUIRE((*log)->AppendAndWait(MakeRequest(i, body)).ok());
    f.clock.Advance(absl::Minutes(1));
  }
  REQUIRE((*log)->SealNow().ok());
  REQUIRE((*log)->WitnessNow().ok());
  const absl::Time everything = f.clock.Now() + absl::Hours(1);

  SECTION("an archive that starts after the log's first record is refused") {
    ExportOptions later;
    later.first_seq = 21;
    auto archive = (*log)->Export(later);
    REQUIRE(archive.ok());
    REQUIRE(VerifyArchive(*archive, f.pki.Options()).ok);  // a good archive, of the wrong range
    auto purged = (*log)->Purge(everything, *archive);
    CHECK(purged.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK((*log)->GetRecord(1).ok());
    CHECK((*log)->GetRecord(30).ok());
  }
  SECTION("an archive without bodies is refused") {
    ExportOptions no_bodies;
    no_bodies.include_bodies = false;
    auto archive = (*log)->Export(no_bodies);
    REQUIRE(archive.ok());
    auto purged = (*log)->Purge(everything, *archive);
    CHECK(purged.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK((*log)->GetBody(crypto::Sha256("body 1")).ok());
    CHECK((*log)->GetRecord(1).ok());
  }
  SECTION("a body shared with a kept record stays") {
    ExportOptions first_30;
    first_30.last_seq = 30;
    auto archive = (*log)->Export(first_30);
    REQUIRE(archive.ok());
    REQUIRE(archive->last_seq() == 30);
    auto purged = (*log)->Purge(everything, *archive);
    REQUIRE(purged.ok());
    CHECK(*purged == 30);
    CHECK((*log)->GetRecord(5).status().code() == absl::StatusCode::kNotFound);
    CHECK((*log)->GetBody(crypto::Sha256("body 6")).status().code() ==
          absl::StatusCode::kNotFound);
    CHECK((*log)->GetBody(crypto::Sha256("shared body")).ok());  // record 35 still names it
    auto rest = (*log)->Export(ExportOptions{});
    REQUIRE(rest.ok());
    VerifyReport report = VerifyArchive(*rest, f.pki.Options());
    INFO(report.ToText());
    CHECK(report.ok);
    CHECK(report.bodies == 10);
  }
}

TEST_CASE("A changed plain archive names the record", "[audit][archive]") {
  LogFixture f;
  auto log = MakeLog(f);
  auto archive = log->Export(ExportOptions{});
  REQUIRE(archive.ok());
  v1::AuditRecord rec;
  REQUIRE(rec.ParseFromString(archive->records(19)));
  rec.set_detail("inserted later");
  archive->set_records(19, rec.SerializeAsString());
  VerifyReport report = VerifyArchive(*archive, f.pki.Options());
  CHECK_FALSE(report.ok);
  CHECK(report.bad_seq == 20);
  // A receipt from an untrusted witness is refused.
  auto archive2 = log->Export(ExportOptions{});
  REQUIRE(archive2.ok());
  VerifyOptions no_pin = f.pki.Options();
  no_pin.trust.witness_cert_sha256 = {crypto::Sha256("some other witness")};
  VerifyReport pinned = VerifyArchive(*archive2, no_pin);
  CHECK_FALSE(pinned.ok);
  CHECK(absl::StrContains(pinned.reason, "witness"));
}

TEST_CASE("Bytes appended to an archive file are refused", "[audit][archive]") {
  LogFixture f;
  auto log = MakeLog(f);
  auto archive = log->Export(ExportOptions{});
  REQUIRE(archive.ok());
  auto bytes = SerializeArchive(*archive, nullptr);
  REQUIRE(bytes.ok());
  REQUIRE(ParseArchive(*bytes, nullptr).ok());
  SECTION("a repeated scalar field that would override last_seq") {
    v1::AuditArchive extra;
    extra.set_last_seq(archive->last_seq() - 5);
    auto parsed = ParseArchive(*bytes + extra.SerializeAsString(), nullptr);
    CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
  }
  SECTION("a forged record beyond the archive's last record") {
    v1::AuditArchive extra;
    v1::AuditRecord forged;
    forged.set_seq(archive->last_seq() + 1);
    extra.add_records(forged.SerializeAsString());
    auto parsed = ParseArchive(*bytes + extra.SerializeAsString(), nullptr);
    REQUIRE(parsed.ok());  // a well-formed repeated field parses: verification must refuse it
    VerifyReport report = VerifyArchive(*parsed, f.pki.Options());
    INFO(report.ToText());
    CHECK_FALSE(report.ok);
    CHECK(report.bad_seq == archive->last_seq() + 1);
  }
}

TEST_CASE("A forged body listed before the genuine one is refused", "[audit][archive]") {
  LogFixture f;
  auto log = MakeLog(f);
  auto archive = log->Export(ExportOptions{});
  REQUIRE(archive.ok());
  REQUIRE(archive->bodies_size() > 3);
  const v1::ArchivedBody genuine = archive->bodies(3);
  v1::ArchivedBody forged = genuine;
  forged.set_body("forged body");
  // The forged copy first, the genuine one after it.
  *archive->mutable_bodies(3) = forged;
  *archive->add_bodies() = genuine;
  VerifyReport report = VerifyArchive(*archive, f.pki.Options());
  INFO(report.ToText());
  CHECK_FALSE(report.ok);
  CHECK(absl::StrContains(report.reason, "body"));
}

TEST_CASE("Encrypted archives open only with the auditor's key and refuse changes",
          "[audit][archive]") {
  LogFixture f;
  auto log = MakeLog(f);
  const std::string anchor_path = f.dir + "/anchor.pb";
  WriteFileForTest(anchor_path, f.pki.anchor.SerializeAsString());
  auto auditor = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  auto stranger = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  REQUIRE(auditor.ok());
  REQUIRE(stranger.ok());
  ExportOptions options;
  options.global_configurations.push_back(f.pki.SignedGlobalConfBlob());
  auto archive = log->Export(options);
  REQUIRE(archive.ok());
  const std::string path = f.dir + "/sealed.dvza";
  REQUIRE(WriteArchiveFile(path, *archive, (*auditor)->GetPublicKey().get()).ok());
  const std::string bytes = ReadFileForTest(path);
  CHECK(IsSealedBox(bytes));
  CHECK(bytes.find("msg-17") == std::string::npos);  // no plaintext leaks

  VerifyReport report = OfflineVerify(anchor_path, path, auditor->get());
  INFO(report.ToText());
  CHECK(report.ok);
  CHECK(report.records == 60);

  CHECK(ReadArchiveFile(path, nullptr).status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ReadArchiveFile(path, stranger->get()).status().code() ==
        absl::StatusCode::kUnauthenticated);

  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x04;
  WriteFileForTest(path, flipped);
  CHECK(ReadArchiveFile(path, auditor->get()).status().code() ==
        absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace darvoza::audit
