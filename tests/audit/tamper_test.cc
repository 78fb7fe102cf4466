// Tampering with a stored audit log is detected by verification, which names the first bad
// record: a changed body byte, a changed client id in an envelope, a deleted record, two
// records swapped, the tail cut off and re-sealed, a forged seal, a seal signed by another key.
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "audit/internal/store.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "common/merkle.h"
#include "common/seal.h"
#include "proto/envelope.pb.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_support.h"

namespace darvoza::audit {
namespace {

using testing::LogFixture;
using testing::MakeRequest;

// 50 records with distinct bodies, sealed every 10 and all witnessed; then closed.
struct SealedLog {
  SealedLog() {
    auto log = AuditLog::Open(f.Options());
    REQUIRE(log.ok());
    for (uint64_t i = 1; i <= 50; ++i) {
      REQUIRE((*log)->AppendAndWait(MakeRequest(i, absl::StrCat("body of record ", i))).ok());
    }
    REQUIRE((*log)->SealNow().ok());
    REQUIRE((*log)->WitnessNow().ok());
    REQUIRE((*log)->Stats()->receipts == 5);
  }

  // A copy of the log to tamper with, opened raw.
  std::unique_ptr<internal::Store> Copy(const std::string& name) {
    const std::string to = f.dir + "/" + name;
    std::filesystem::copy(f.path, to, std::filesystem::copy_options::recursive);
    copies.push_back(to);
    internal::StoreOptions options;
    options.path = to;
    options.create_if_missing = false;
    auto store = internal::Store::Open(options);
    REQUIRE(store.ok());
    return *std::move(store);
  }

  VerifyReport Verify(const std::string& name, const VerifyOptions& options) {
    darvoza::testing::TempDir secondary;
    auto reader = AuditReader::Open(f.dir + "/" + name, secondary.path());
    REQUIRE(reader.ok());
    return testing::VerifyStore(**reader, options);
  }

  static std::string Get(internal::Store* db, const std::string& key) {
    auto value = db->Get(key);
    REQUIRE(value.ok());
    REQUIRE(value->has_value());
    return **value;
  }
  static void Put(internal::Store* db, const std::string& key, const std::string& value) {
    rocksdb::WriteBatch batch;
    db->Put(&batch, key, value);
    REQUIRE(db->Write(&batch, /*sync=*/false).ok());
  }
  static void Delete(internal::Store* db, const std::string& key) {
    rocksdb::WriteBatch batch;
    db->Delete(&batch, key);
    REQUIRE(db->Write(&batch, /*sync=*/false).ok());
  }

  LogFixture f;
  std::vector<std::string> copies;
};

void ExpectBad(const VerifyReport& report, uint64_t seq, absl::string_view phrase) {
  INFO(report.ToText());
  CHECK_FALSE(report.ok);
  CHECK(report.bad_seq == seq);
  CHECK(absl::StrContains(report.reason, phrase));
  CHECK(absl::StrContains(report.ToText(), absl::StrCat("record ", seq)));
}

TEST_CASE("An untouched log verifies", "[audit][tamper]") {
  SealedLog s;
  s.Copy("clean").reset();
  VerifyReport report = s.Verify("clean", s.f.pki.Options());
  INFO(report.ToText());
  CHECK(report.ok);
  CHECK(report.records == 50);
  CHECK(report.bodies == 50);
  CHECK(report.seals == 5);
  CHECK(report.receipts == 5);
  CHECK(absl::StartsWith(report.ToText(), "OK: records 1..50"));
}

TEST_CASE("A changed byte in a body is named", "[audit][tamper]") {
  SealedLog s;
  {
    auto db = s.Copy("t");
    v1::AuditRecord rec;
    REQUIRE(rec.ParseFromString(SealedLog::Get(db.get(), internal::RecordKey(17))));
    std::string body = SealedLog::Get(db.get(), internal::BodyKey(rec.body_sha256()));
    body[3] ^= 0x01;
    SealedLog::Put(db.get(), internal::BodyKey(rec.body_sha256()), body);
  }
  ExpectBad(s.Verify("t", s.f.pki.Options()), 17, "body");
}

TEST_CASE("A changed client id in an envelope is named", "[audit][tamper]") {
  SealedLog s;
  {
    auto db = s.Copy("t");
    v1::AuditRecord rec;
    REQUIRE(rec.ParseFromString(SealedLog::Get(db.get(), internal::RecordKey(23))));
    v1::Envelope envelope;
    REQUIRE(envelope.ParseFromString(rec.envelope()));
    envelope.mutable_client()->mutable_member()->set_member_code("79999999");
    rec.set_envelope(envelope.SerializeAsString());
    SealedLog::Put(db.get(), internal::RecordKey(23), rec.SerializeAsString());
  }
  ExpectBad(s.Verify("t", s.f.pki.Options()), 23, "changed");
}

TEST_CASE("A changed last record of a seal is named through the seal", "[audit][tamper]") {
  SealedLog s;
  {
    auto db = s.Copy("t");
    v1::AuditRecord rec;
    REQUIRE(rec.ParseFromString(SealedLog::Get(db.get(), internal::RecordKey(50))));
    rec.set_fault_code("Server.ServerProxy.AccessDenied");
    SealedLog::Put(db.get(), internal::RecordKey(50), rec.SerializeAsString());
  }
  ExpectBad(s.Verify("t", s.f.pki.Options()), 50, "chain head");
}

TEST_CASE("A deleted record is named", "[audit][tamper]") {
  SealedLog s;
  SealedLog::Delete(s.Copy("t").get(), internal::RecordKey(31));
  ExpectBad(s.Verify("t", s.f.pki.Options()), 31, "missing");
}

TEST_CASE("Two swapped records are named", "[audit][tamper]") {
  SealedLog s;
  {
    auto db = s.Copy("t");
    const std::string a = SealedLog::Get(db.get(), internal::RecordKey(12));
    const std::string b = SealedLog::Get(db.get(), internal::RecordKey(13));
    SealedLog::Put(db.get(), internal::RecordKey(12), b);
    SealedLog::Put(db.get(), internal::RecordKey(13), a);
  }
  ExpectBad(s.Verify("t", s.f.pki.Options()), 12, "in its place");
}

TEST_CASE("A tail cut off after the last seal and re-sealed is caught by the witness",
          "[audit][tamper]") {
  SealedLog s;
  {
    auto db = s.Copy("t");
    // Drop records 36..50 and the seals 4 (31..40) and 5 (41..50) with their receipts ...
    for (uint64_t seq = 36; seq <= 50; ++seq) SealedLog::Delete(db.get(), internal::RecordKey(seq));
    for (uint64_t index : {4, 5}) {
      SealedLog::Delete(db.get(), internal::SealKey(index));
      SealedLog::Delete(db.get(), internal::ReceiptKey(index));
    }
    SealedLog::Delete(db.get(), internal::SealByLastSeqKey(40));
    SealedLog::Delete(db.get(), internal::SealByLastSeqKey(50));
    // ... and re-seal 31..35 with the server's own seal key, continuing seal 3.
    v1::SignedSeal seal3;
    REQUIRE(seal3.ParseFromString(SealedLog::Get(db.get(), internal::SealKey(3))));
    v1::Seal prev;
    REQUIRE(prev.ParseFromString(seal3.seal()));
    std::vector<std::string> hashes;
    std::string h = prev.chain_head();
    for (uint64_t seq = 31; seq <= 35; ++seq) {
      h = internal::RecordHash(h, SealedLog::Get(db.get(), internal::RecordKey(seq)));
      hashes.push_back(h);
    }
    v1::Seal seal;
    *seal.mutable_server() = s.f.pki.server;
    seal.set_first_seq(31);
    seal.set_last_seq(35);
    seal.set_merkle_root(MerkleTree(hashes).Root());
    seal.set_chain_head(h);
    seal.set_previous_witnessed_seq(30);
    seal.set_previous_witnessed_head(prev.chain_head());
    seal.set_sealed_at_unix_nanos(absl::ToUnixNanos(s.f.clock.Now()));
    auto forged = SignSeal(seal, *s.f.pki.seal_signer, s.f.pki.seal_cert->der());
    REQUIRE(forged.ok());
    // The witness refuses it: it holds head 50.
    auto refused = s.f.witness->WitnessSeal(*forged);
    CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(darvoza::testing::ObservedFault(refused.status()) == faults::kWitnessHeadMismatch);
    SealedLog::Put(db.get(), internal::SealKey(4), forged->SerializeAsString());
    std::string index(8, '\0');
    index[7] = 4;
    SealedLog::Put(db.get(), internal::SealByLastSeqKey(35), index);
  }
  // Strictly, the new seal was never witnessed.
  ExpectBad(s.Verify("t", s.f.pki.Options()), 31, "no witness receipt");
  // Even accepting a lagging witness, the head the witness holds is not in the log.
  VerifyOptions lenient = s.f.pki.Options();
  lenient.allow_unwitnessed_seals = true;
  CHECK(s.Verify("t", lenient).ok);  // without the witness's head the cut is invisible...
  lenient.witness_heads.push_back(s.f.witness->LatestReceipt());
  ExpectBad(s.Verify("t", lenient), 36, "witness holds head seq 50");  // ...with it, it is not
}

TEST_CASE("A forged record appended after the last seal fails strict verification",
          "[audit][tamper]") {
  SealedLog s;
  {
    auto db = s.Copy("t");
    // Anyone with the files can extend the hash chain: the forged record links perfectly.
    v1::AuditRecord last;
    const std::string last_bytes = SealedLog::Get(db.get(), internal::RecordKey(50));
    REQUIRE(last.ParseFromString(last_bytes));
    v1::AuditRecord forged = MakeRequest(51).record;
    forged.set_seq(51);
    forged.set_prev_hash(internal::RecordHash(last.prev_hash(), last_bytes));
    forged.set_time_unix_nanos(last.time_unix_nanos() + 1);
    SealedLog::Put(db.get(), internal::RecordKey(51), forged.SerializeAsString());
  }
  ExpectBad(s.Verify("t", s.f.pki.Options()), 51, "not sealed");
  // A live log's tail is accepted only when asked for, and counted.
  VerifyOptions lenient = s.f.pki.Options();
  lenient.allow_unwitnessed_seals = true;
  VerifyReport report = s.Verify("t", lenient);
  CHECK(report.ok);
  CHECK(report.unsealed_records == 1);
  CHECK(absl::StrContains(report.ToText(), "1 not yet sealed"));
}

TEST_CASE("A tail rewritten after its seal and receipt were deleted fails strict verification",
          "[audit][tamper]") {
  SealedLog s;
  {
    auto db = s.Copy("t");
    SealedLog::Delete(db.get(), internal::SealKey(5));
    SealedLog::Delete(db.get(), internal::ReceiptKey(5));
    SealedLog::Delete(db.get(), internal::SealByLastSeqKey(50));
    // Rewrite record 45 and re-link 46..50 so that the chain itself is whole again.
    std::string prev;
    for (uint64_t seq = 45; seq <= 50; ++seq) {
      v1::AuditRecord rec;
      REQUIRE(rec.ParseFromString(SealedLog::Get(db.get(), internal::RecordKey(seq))));
      if (seq == 45) {
        rec.set_detail("rewritten");
      } else {
        rec.set_prev_hash(prev);
      }
      const std::string bytes = rec.SerializeAsString();
      SealedLog::Put(db.get(), internal::RecordKey(seq), bytes);
      prev = internal::RecordHash(rec.prev_hash(), bytes);
    }
  }
  ExpectBad(s.Verify("t", s.f.pki.Options()), 41, "not sealed");
}

TEST_CASE("A flipped prev_hash names the record that holds it", "[audit][tamper]") {
  SealedLog s;
  {
    auto db = s.Copy("t");
    v1::AuditRecord rec;
    REQUIRE(rec.ParseFromString(SealedLog::Get(db.get(), internal::RecordKey(27))));
    std::string prev = rec.prev_hash();
    prev[5] ^= 0x10;
    rec.set_prev_hash(prev);
    SealedLog::Put(db.get(), internal::RecordKey(27), rec.SerializeAsString());
  }
  ExpectBad(s.Verify("t", s.f.pki.Options()), 27, "prev_hash");
}

TEST_CASE("A forged seal is named", "[audit][tamper]") {
  SealedLog s;
  {
    auto db = s.Copy("t");
    v1::SignedSeal signed_seal;
    REQUIRE(signed_seal.ParseFromString(SealedLog::Get(db.get(), internal::SealKey(2))));
    v1::Seal seal;
    REQUIRE(seal.ParseFromString(signed_seal.seal()));
    std::string root = seal.merkle_root();
    root[0] ^= 0x80;
    seal.set_merkle_root(root);
    signed_seal.set_seal(seal.SerializeAsString());
    SealedLog::Put(db.get(), internal::SealKey(2), signed_seal.SerializeAsString());
  }
  ExpectBad(s.Verify("t", s.f.pki.Options()), 11, "signature does not verify");
}

TEST_CASE("A seal signed by another key is named", "[audit][tamper]") {
  SealedLog s;
  auto other_key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  REQUIRE(other_key.ok());
  crypto::FileKeySigner other(*std::move(other_key));
  SECTION("keeping the real seal certificate") {
    {
      auto db = s.Copy("t");
      v1::SignedSeal signed_seal;
      REQUIRE(signed_seal.ParseFromString(SealedLog::Get(db.get(), internal::SealKey(3))));
      auto sig = other.Sign(crypto::SignatureContext::kSeal, signed_seal.seal());
      REQUIRE(sig.ok());
      signed_seal.set_signature(*sig);
      SealedLog::Put(db.get(), internal::SealKey(3), signed_seal.SerializeAsString());
    }
    ExpectBad(s.Verify("t", s.f.pki.Options()), 21, "signature does not verify");
  }
  SECTION("with a certificate from another root") {
    auto rogue_root_key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
    REQUIRE(rogue_root_key.ok());
    crypto::IssueOptions opts{.serial = 9,
                              .not_before = testing::kTestStart - absl::Hours(24),
                              .not_after = testing::kTestStart + absl::Hours(24 * 365),
                              .profile = crypto::CertificateProfile::kRootCa};
    auto rogue_root = crypto::IssueCertificate(**rogue_root_key, nullptr,
                                               *(*rogue_root_key)->GetPublicKey(), "Rogue", opts);
    REQUIRE(rogue_root.ok());
    opts.profile = crypto::CertificateProfile::kSigning;
    opts.serial = 10;
    auto other_pub = crypto::PublicKey::FromDer(other.PublicKeyDer());
    REQUIRE(other_pub.ok());
    auto rogue_cert = crypto::IssueCertificate(**rogue_root_key, rogue_root->get(), **other_pub,
                                               absl::StrCat("server:", testing::kServerText),
                                               opts);
    REQUIRE(rogue_cert.ok());
    {
      auto db = s.Copy("t");
      v1::SignedSeal signed_seal;
      REQUIRE(signed_seal.ParseFromString(SealedLog::Get(db.get(), internal::SealKey(3))));
      v1::Seal seal;
      REQUIRE(seal.ParseFromString(signed_seal.seal()));
      auto resigned = SignSeal(seal, other, (*rogue_cert)->der());
      REQUIRE(resigned.ok());
      SealedLog::Put(db.get(), internal::SealKey(3), resigned->SerializeAsString());
    }
    ExpectBad(s.Verify("t", s.f.pki.Options()), 21, "seal certificate");
  }
}

}  // namespace
}  // namespace darvoza::audit
