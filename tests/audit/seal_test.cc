// The shared checks of seals and witness receipts (common/seal.h).
#include "common/seal.h"

#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_support.h"

namespace darvoza {
namespace {

using audit::testing::kTestStart;
using audit::testing::TestPki;

v1::Seal MakeSeal(const TestPki& pki, absl::Time at) {
  v1::Seal seal;
  *seal.mutable_server() = pki.server;
  seal.set_first_seq(11);
  seal.set_last_seq(20);
  seal.set_merkle_root(crypto::Sha256("root"));
  seal.set_chain_head(crypto::Sha256("head 20"));
  seal.set_previous_witnessed_seq(10);
  seal.set_previous_witnessed_head(crypto::Sha256("head 10"));
  seal.set_sealed_at_unix_nanos(absl::ToUnixNanos(at));
  return seal;
}

TEST_CASE("Seals: sign, verify, and every refusal", "[seal]") {
  TestPki pki;
  SealTrust trust;
  trust.roots = {pki.root};
  const v1::Seal seal = MakeSeal(pki, kTestStart);
  auto signed_seal = SignSeal(seal, *pki.seal_signer, pki.seal_cert->der());
  REQUIRE(signed_seal.ok());
  auto checked = VerifySignedSeal(*signed_seal, trust);
  REQUIRE(checked.ok());
  CHECK(checked->last_seq() == 20);

  SECTION("a signature made for another context does not verify") {
    v1::SignedSeal other = *signed_seal;
    auto sig = pki.seal_signer->Sign(crypto::SignatureContext::kRequest, other.seal());
    REQUIRE(sig.ok());
    other.set_signature(*sig);
    CHECK(VerifySignedSeal(other, trust).status().code() == absl::StatusCode::kUnauthenticated);
  }
  SECTION("a certificate of another server is refused") {
    v1::Seal for_other = seal;
    for_other.mutable_server()->set_server_code("ss2");
    auto s = SignSeal(for_other, *pki.seal_signer, pki.seal_cert->der());
    REQUIRE(s.ok());
    auto r = VerifySignedSeal(*s, trust);
    CHECK(r.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK(absl::StrContains(r.status().message(), "server:UZ/GOV/70000001/ss2"));
  }
  SECTION("a seal made after its certificate expired is refused") {
    auto s = SignSeal(MakeSeal(pki, kTestStart + absl::Hours(24 * 3651)), *pki.seal_signer,
                      pki.seal_cert->der());
    REQUIRE(s.ok());
    CHECK(VerifySignedSeal(*s, trust).status().code() == absl::StatusCode::kUnauthenticated);
  }
  SECTION("an untrusted root is refused") {
    SealTrust empty;
    CHECK(VerifySignedSeal(*signed_seal, empty).status().code() ==
          absl::StatusCode::kUnauthenticated);
  }
  SECTION("malformed seals are invalid arguments") {
    v1::Seal bad = seal;
    bad.set_first_seq(21);
    CHECK(ValidateSeal(bad).code() == absl::StatusCode::kInvalidArgument);
    bad = seal;
    bad.set_previous_witnessed_seq(0);
    CHECK(ValidateSeal(bad).code() == absl::StatusCode::kInvalidArgument);  // head given
    bad = seal;
    bad.set_chain_head("short");
    CHECK(ValidateSeal(bad).code() == absl::StatusCode::kInvalidArgument);
    v1::SignedSeal garbage;
    garbage.set_seal("\xff\xff\xff");
    CHECK(VerifySignedSeal(garbage, trust).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("Witness receipts and the witness head rule", "[seal]") {
  TestPki pki;
  SealTrust trust;
  trust.roots = {pki.root};
  const v1::Seal seal = MakeSeal(pki, kTestStart);
  auto signed_seal = SignSeal(seal, *pki.seal_signer, pki.seal_cert->der());
  REQUIRE(signed_seal.ok());

  const std::string digest = SealDigest(*signed_seal);
  auto head = CheckWitnessHead(seal, digest, WitnessedHead{9, crypto::Sha256("head 10"), "x"});
  CHECK(head.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(darvoza::testing::ObservedFault(head.status()) == faults::kWitnessHeadMismatch);
  auto extends = CheckWitnessHead(seal, digest, WitnessedHead{10, crypto::Sha256("head 10"), "x"});
  REQUIRE(extends.ok());
  CHECK(*extends == WitnessStep::kExtends);
  // The seal the witness holds, sent again (its receipt was lost): repeated, not a fork.
  auto repeats = CheckWitnessHead(
      seal, digest, WitnessedHead{seal.last_seq(), seal.chain_head(), digest});
  REQUIRE(repeats.ok());
  CHECK(*repeats == WitnessStep::kRepeats);
  // A different seal ending at the held seq is a fork, not a repeat.
  auto fork = CheckWitnessHead(seal, digest,
                               WitnessedHead{seal.last_seq(), seal.chain_head(), "other seal"});
  CHECK(darvoza::testing::ObservedFault(fork.status()) == faults::kWitnessHeadMismatch);

  const v1::WitnessReceipt receipt =
      MakeWitnessReceipt(*signed_seal, seal, kTestStart + absl::Seconds(1));
  auto signed_receipt = SignWitnessReceipt(receipt, *pki.witness_signer, pki.witness_cert->der());
  REQUIRE(signed_receipt.ok());
  auto checked = VerifySignedWitnessReceipt(*signed_receipt, trust);
  REQUIRE(checked.ok());
  CHECK(CheckReceiptMatchesSeal(*checked, *signed_seal, seal).ok());

  // Pinned to another witness: refused.
  SealTrust pinned = trust;
  pinned.witness_cert_sha256.insert(crypto::Sha256("another witness"));
  CHECK(VerifySignedWitnessReceipt(*signed_receipt, pinned).status().code() ==
        absl::StatusCode::kUnauthenticated);
  pinned.witness_cert_sha256.insert(pki.witness_cert->sha256());
  CHECK(VerifySignedWitnessReceipt(*signed_receipt, pinned).ok());

  // Without pins, a security server cannot countersign its own seals.
  auto self_receipt = SignWitnessReceipt(receipt, *pki.seal_signer, pki.seal_cert->der());
  REQUIRE(self_receipt.ok());
  CHECK(VerifySignedWitnessReceipt(*self_receipt, trust).status().code() ==
        absl::StatusCode::kUnauthenticated);

  // A receipt for another seal does not match.
  v1::Seal other = seal;
  other.set_chain_head(crypto::Sha256("other head"));
  auto other_signed = SignSeal(other, *pki.seal_signer, pki.seal_cert->der());
  REQUIRE(other_signed.ok());
  CHECK(CheckReceiptMatchesSeal(*checked, *other_signed, other).code() ==
        absl::StatusCode::kUnauthenticated);
}

TEST_CASE("A seal by a revoked certificate counts only if witnessed before the revocation",
          "[seal]") {
  TestPki pki;
  const v1::Seal seal = MakeSeal(pki, kTestStart);
  auto signed_seal = SignSeal(seal, *pki.seal_signer, pki.seal_cert->der());
  REQUIRE(signed_seal.ok());
  const absl::Time revoked_at = kTestStart + absl::Minutes(10);
  auto receipt_at = [&](absl::Time t) { return MakeWitnessReceipt(*signed_seal, seal, t); };

  SealTrust trust;
  trust.roots = {pki.root};
  // Nothing revoked: with or without a receipt.
  CHECK(CheckSealNotRevoked(*signed_seal, nullptr, trust).ok());

  auto revoked = std::make_shared<crypto::RevocationList>();
  revoked->Add(pki.seal_cert->issuer(), pki.seal_cert->serial_hex(), revoked_at);
  trust.revoked = revoked;
  // The signature and chain still check: revocation is the receipt's question.
  CHECK(VerifySignedSeal(*signed_seal, trust).ok());
  const v1::WitnessReceipt before = receipt_at(revoked_at - absl::Nanoseconds(1));
  const v1::WitnessReceipt at = receipt_at(revoked_at);
  const v1::WitnessReceipt after = receipt_at(revoked_at + absl::Seconds(1));
  CHECK(CheckSealNotRevoked(*signed_seal, &before, trust).ok());
  CHECK(CheckSealNotRevoked(*signed_seal, &at, trust).code() ==
        absl::StatusCode::kUnauthenticated);
  absl::Status late = CheckSealNotRevoked(*signed_seal, &after, trust);
  CHECK(late.code() == absl::StatusCode::kUnauthenticated);
  CHECK(absl::StrContains(late.message(), pki.seal_cert->serial_hex()));
  // Unwitnessed: its own sealed_at (before the revocation) proves nothing.
  absl::Status unwitnessed = CheckSealNotRevoked(*signed_seal, nullptr, trust);
  CHECK(unwitnessed.code() == absl::StatusCode::kUnauthenticated);
  CHECK(absl::StrContains(unwitnessed.message(), "no witness receipt"));

  // A revocation without its time counts from the beginning; listed twice, the earliest wins.
  auto timeless = std::make_shared<crypto::RevocationList>();
  timeless->Add(pki.seal_cert->issuer(), pki.seal_cert->serial_hex());
  trust.revoked = timeless;
  CHECK_FALSE(CheckSealNotRevoked(*signed_seal, &before, trust).ok());
  revoked->Add(pki.seal_cert->issuer(), pki.seal_cert->serial_hex(), revoked_at + absl::Hours(1));
  CHECK(revoked->RevokedAt(*pki.seal_cert) == revoked_at);
}

}  // namespace
}  // namespace darvoza
