// The store's layout (docs/design.md §7): column families, certificates stored once and
// referenced, and logs written in the previous layout.
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "audit/internal/store.h"
#include "common/crypto/hash.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_support.h"

namespace darvoza::audit {
namespace {

using testing::LogFixture;
using testing::MakeRequest;

std::vector<std::string> Families(const std::string& path) {
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  std::sort(names.begin(), names.end());
  return names;
}

// The number of keys of the log's default family (the chain) that are not records.
size_t NonRecordKeysInDefaultFamily(const std::string& path) {
  internal::StoreOptions options;
  options.path = path;
  options.create_if_missing = false;
  auto store = internal::Store::Open(options);
  REQUIRE(store.ok());
  std::unique_ptr<rocksdb::Iterator> it((*store)->db()->NewIterator(rocksdb::ReadOptions()));
  size_t others = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) others += it->key()[0] != 'c';
  return others;
}

void AppendSealed(AuditLog& log, uint64_t first_n, uint64_t count) {
  for (uint64_t n = first_n; n < first_n + count; ++n) {
    REQUIRE(log.AppendAndWait(MakeRequest(n, absl::StrCat("body of record ", n))).ok());
  }
  REQUIRE(log.SealNow().ok());
  REQUIRE(log.WitnessNow().ok());
}

// What `darvoza audit verify DIR` does: export through a secondary reader, verify strictly.
VerifyReport VerifyThroughReader(const LogFixture& f) {
  darvoza::testing::TempDir secondary;
  auto reader = AuditReader::Open(f.path, secondary.path());
  REQUIRE(reader.ok());
  return testing::VerifyStore(**reader, f.pki.Options());
}

// Opens the log of `f` (creating it), appends records first_n.., seals, witnesses, closes.
void WriteSealedLog(LogFixture& f, uint64_t first_n, uint64_t count) {
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  AppendSealed(**log, first_n, count);
}

TEST_CASE("A new log keeps the chain apart from its indexes, bodies, seals and certificates",
          "[audit][layout]") {
  LogFixture f;
  WriteSealedLog(f, 1, 30);
  CHECK(Families(f.path) ==
        std::vector<std::string>{"bodies", "certificates", "client_services", "clients",
                                 "default", "message_ids", "seals", "services", "times"});
  CHECK(NonRecordKeysInDefaultFamily(f.path) == 0);
  // Every index still answers, from a secondary reader as from the writer.
  darvoza::testing::TempDir secondary;
  auto reader = AuditReader::Open(f.path, secondary.path());
  REQUIRE(reader.ok());
  auto by_id = (*reader)->FindByMessageId("msg-17");
  REQUIRE(by_id.ok());
  REQUIRE(by_id->size() == 1);
  CHECK((*by_id)[0].seq == 17);
  AuditQuery query;
  query.client = "UZ/GOV/70000003/client-app";
  query.service = "UZ/GOV/80000001/tax-registry/svc2";
  auto found = (*reader)->Find(query);
  REQUIRE(found.ok());
  CHECK(found->size() == 1);  // n = 17: 17 % 7 == 3 and 17 % 5 == 2
  CHECK((*reader)->GetBody(crypto::Sha256("body of record 3")).ok());
  CHECK((*reader)->Stats()->receipts == 3);
  VerifyReport report = testing::VerifyStore(**reader, f.pki.Options());
  INFO(report.ToText());
  CHECK(report.ok);
  CHECK(report.records == 30);
}

TEST_CASE("Certificates are stored once, records reference them and the hash covers that",
          "[audit][layout]") {
  LogFixture f;
  auto log = AuditLog::Open(f.Options());
  REQUIRE(log.ok());
  AppendSealed(**log, 1, 20);
  auto record = (*log)->GetRecord(4);
  REQUIRE(record.ok());
  CHECK(record->record.signer_cert_chain_size() == 0);
  REQUIRE(record->record.signer_cert_sha256_size() == 2);
  CHECK(record->record.signer_cert_sha256(0) ==
        crypto::Sha256("leaf certificate of signer 1"));
  auto leaf = (*log)->GetCertificate(record->record.signer_cert_sha256(0));
  REQUIRE(leaf.ok());
  CHECK(*leaf == "leaf certificate of signer 1");
  CHECK((*log)->GetCertificate(crypto::Sha256("never stored")).status().code() ==
        absl::StatusCode::kNotFound);
  // Four distinct certificates in 20 records, each in the archive once.
  auto archive = (*log)->Export(ExportOptions{});
  REQUIRE(archive.ok());
  CHECK(archive->signer_certificates_der_size() == 4);
  VerifyReport report = VerifyArchive(*archive, f.pki.Options());
  INFO(report.ToText());
  CHECK(report.ok);
  // The reference is hashed: changing it breaks the chain at that record.
  v1::AuditArchive changed = *archive;
  v1::AuditRecord r;
  REQUIRE(r.ParseFromString(changed.records(6)));
  r.set_signer_cert_sha256(0, crypto::Sha256("another certificate"));
  changed.set_records(6, r.SerializeAsString());
  report = VerifyArchive(changed, f.pki.Options());
  CHECK_FALSE(report.ok);
  CHECK(report.bad_seq == 7);
}

TEST_CASE("A missing or changed certificate is named like a bad record", "[audit][layout]") {
  LogFixture f;
  WriteSealedLog(f, 1, 20);  // records 1, 4, 7, ... reference the leaf of signer 1 (n % 3)
  const std::string leaf_key =
      internal::CertificateKey(crypto::Sha256("leaf certificate of signer 1"));
  const bool deleted = GENERATE(true, false);
  INFO((deleted ? "deleted" : "changed"));
  if (deleted) {
    REQUIRE(testing::DeleteRaw(f.path, leaf_key).ok());
  } else {
    REQUIRE(testing::PutRaw(f.path, leaf_key, "a forged certificate").ok());
  }
  VerifyReport report = VerifyThroughReader(f);
  INFO(report.ToText());
  CHECK_FALSE(report.ok);
  CHECK(report.bad_seq == 1);
  CHECK(absl::StrContains(report.reason, "record 1: the signer certificate"));
  CHECK(absl::StrContains(report.reason, "missing or changed"));
}

TEST_CASE("A log of the previous layout opens, verifies, answers and grows in that layout",
          "[audit][layout]") {
  LogFixture f;
  testing::WritePreviousLayoutLog(f.path, 25);
  REQUIRE(Families(f.path) == std::vector<std::string>{"default"});
  WriteSealedLog(f, 0, 0);  // seals records 1..25 (seals are alike in both layouts)
  REQUIRE(Families(f.path) == std::vector<std::string>{"default"});
  {
    VerifyReport report = VerifyThroughReader(f);
    INFO(report.ToText());
    CHECK(report.ok);
    CHECK(report.records == 25);
    CHECK(report.seals == 1);
    darvoza::testing::TempDir secondary;
    auto reader = AuditReader::Open(f.path, secondary.path());
    REQUIRE(reader.ok());
    auto by_id = (*reader)->FindByMessageId("msg-12");
    REQUIRE(by_id.ok());
    REQUIRE(by_id->size() == 1);
    CHECK((*by_id)[0].record.signer_cert_chain_size() == 2);  // inline, as written then
    CHECK((*reader)->GetBody(crypto::Sha256("body of record 12")).ok());
  }
  {
    // The security server writes on in the same layout; new records reference certificates.
    auto log = AuditLog::Open(f.Options());
    REQUIRE(log.ok());
    CHECK((*log)->head_seq() == 25);
    AppendSealed(**log, 26, 15);
    auto fresh = (*log)->GetRecord(30);
    REQUIRE(fresh.ok());
    CHECK(fresh->record.signer_cert_chain_size() == 0);
    CHECK(fresh->record.signer_cert_sha256_size() == 2);
    auto found = (*log)->FindByMessageId("msg-30");
    REQUIRE(found.ok());
    CHECK(found->size() == 1);
    VerifyReport report = testing::VerifyStore(**log, f.pki.Options());
    INFO(report.ToText());
    CHECK(report.ok);
    CHECK(report.records == 40);
  }
  CHECK(Families(f.path) == std::vector<std::string>{"default"});
  // And `verify` still names the first bad record, old or new.
  const uint64_t bad = GENERATE(12u, 33u);
  auto stored = [&]() {
    internal::StoreOptions options;
    options.path = f.path;
    options.create_if_missing = false;
    auto store = internal::Store::Open(options);
    REQUIRE(store.ok());
    auto bytes = (*store)->Get(internal::RecordKey(bad));
    REQUIRE(bytes.ok());
    REQUIRE(bytes->has_value());
    return **bytes;
  }();
  v1::AuditRecord r;
  REQUIRE(r.ParseFromString(stored));
  r.set_detail("changed afterwards");
  REQUIRE(testing::PutRaw(f.path, internal::RecordKey(bad), r.SerializeAsString()).ok());
  VerifyReport report = VerifyThroughReader(f);
  INFO(report.ToText());
  CHECK_FALSE(report.ok);
  CHECK(report.bad_seq == bad);
}

}  // namespace
}  // namespace darvoza::audit
