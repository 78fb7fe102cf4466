// The seal witness: signed, timed receipts, and refusal of any seal whose previous witnessed
// head is not the one the registry holds.
#include <chrono>

#include <catch2/catch.hpp>

#include "common/crypto/hash.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/globalconf.h"
#include "common/identifiers.h"
#include "common/seal.h"
#include "tests/registry/registry_test_util.h"

namespace darvoza::testing {
namespace {

struct Witnessed {
  grpc::Status status;
  std::string fault;
  v1::SignedWitnessReceipt receipt;
};

Witnessed Send(RegistryHarness& h, const v1::SignedSeal& seal) {
  Witnessed w;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  w.status = h.WitnessStub()->Witness(&context, seal, &w.receipt);
  w.fault = FaultOf(context);
  return w;
}

// A registered SS (auto-approved) and its seal certificate.
std::string Register(RegistryHarness& h, FakeSecurityServer& ss) {
  grpc::ClientContext context;
  v1::RequestRecord record;
  REQUIRE(h.RegistrationStub()->Submit(&context, ss.RegistrationRequest(), &record).ok());
  if (record.state() == v1::PENDING) record = h.Approve(record.id());
  return CertOf(record, v1::CERT_KIND_SEAL)->der();
}

}  // namespace

TEST_CASE("Witness: receipts verify with the witness certificate and carry the registry's time",
          "[registry][witness]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  const std::string cert = Register(h, ss);

  v1::SignedSeal seal = ss.MakeSeal(1, 10, Hash32('a'), 0, "", cert);
  Witnessed w = Send(h, seal);
  INFO(w.status.error_message());
  REQUIRE(w.status.ok());

  // The witness certificate is the one the configuration announces, and chains to the anchor.
  v1::GlobalConf conf = Decode(h.GetConf());
  CHECK(w.receipt.signer_cert_der() == conf.witness_cert_der());
  auto witness_cert = crypto::Certificate::FromDer(conf.witness_cert_der()).value();
  auto root = crypto::Certificate::FromDer(h.anchor().root_ca_cert_der()).value();
  CHECK(crypto::VerifyChain(*witness_cert, {}, {root}, h.clock().Now(), crypto::RevocationList()).ok());
  CHECK(crypto::VerifyWithContext(witness_cert->public_key(), crypto::SignatureContext::kWitness,
                                  w.receipt.receipt(), w.receipt.signature())
            .ok());
  // ...and not under another context.
  CHECK_FALSE(crypto::VerifyWithContext(witness_cert->public_key(), crypto::SignatureContext::kSeal,
                                        w.receipt.receipt(), w.receipt.signature())
                  .ok());
  v1::WitnessReceipt receipt;
  REQUIRE(receipt.ParseFromString(w.receipt.receipt()));
  CHECK(SameSecurityServer(receipt.server(), ss.id));
  CHECK(receipt.seq() == 10);
  CHECK(receipt.chain_head() == Hash32('a'));
  CHECK(receipt.seal_sha256() == crypto::Sha256(seal.seal()));
  CHECK(receipt.witnessed_at_unix_nanos() == absl::ToUnixNanos(h.clock().Now()));

  // The next seal names the witnessed head.
  h.clock().Advance(absl::Seconds(5));
  const v1::SignedSeal second = ss.MakeSeal(11, 20, Hash32('b'), 10, Hash32('a'), cert);
  Witnessed w2 = Send(h, second);
  REQUIRE(w2.status.ok());
  REQUIRE(receipt.ParseFromString(w2.receipt.receipt()));
  CHECK(receipt.seq() == 20);
  CHECK(receipt.witnessed_at_unix_nanos() == absl::ToUnixNanos(h.clock().Now()));
  // A retry of the same seal (its receipt was lost) gets the same receipt again, with the
  // original time.
  const absl::Time first_time = h.clock().Now();
  h.clock().Advance(absl::Seconds(5));
  Witnessed again = Send(h, second);
  REQUIRE(again.status.ok());
  REQUIRE(receipt.ParseFromString(again.receipt.receipt()));
  CHECK(receipt.seq() == 20);
  CHECK(receipt.witnessed_at_unix_nanos() == absl::ToUnixNanos(first_time));

  // An auditor fetches the newest receipt for the server; it verifies with the anchor alone.
  v1::SignedWitnessReceipt head;
  {
    grpc::ClientContext context;
    REQUIRE(h.WitnessStub()->GetHead(&context, ss.id, &head).ok());
  }
  auto anchor_root = crypto::Certificate::FromDer(h.anchor().root_ca_cert_der());
  REQUIRE(anchor_root.ok());
  SealTrust trust;
  trust.roots = {*anchor_root};
  auto checked = VerifySignedWitnessReceipt(head, trust);
  REQUIRE(checked.ok());
  CHECK(SameSecurityServer(checked->server(), ss.id));
  CHECK(checked->seq() == 20);
  CHECK(checked->chain_head() == Hash32('b'));
  CHECK(checked->seal_sha256() == crypto::Sha256(second.seal()));
  CHECK(checked->witnessed_at_unix_nanos() == absl::ToUnixNanos(first_time));
  // Nothing witnessed for another server: NOT_FOUND.
  v1::SecurityServerId other = ss.id;
  other.set_server_code("ss-never-sealed");
  grpc::ClientContext context;
  CHECK(h.WitnessStub()->GetHead(&context, other, &head).error_code() ==
        grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("Witness: backwards, forked and truncated-and-regrown heads are refused",
          "[registry][witness]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  const std::string cert = Register(h, ss);
  REQUIRE(Send(h, ss.MakeSeal(1, 10, Hash32('a'), 0, "", cert)).status.ok());
  REQUIRE(Send(h, ss.MakeSeal(11, 20, Hash32('b'), 10, Hash32('a'), cert)).status.ok());

  auto expect_mismatch = [&](const v1::SignedSeal& seal) {
    Witnessed w = Send(h, seal);
    INFO(w.status.error_message());
    CHECK(w.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK(w.fault == "Server.Registry.WitnessHeadMismatch");
    CHECK(w.status.error_message().find("registry holds (seq 20") != std::string::npos);
  };
  SECTION("backwards: a seal that starts over from nothing") {
    expect_mismatch(ss.MakeSeal(1, 5, Hash32('c'), 0, "", cert));
  }
  SECTION("backwards: a seal naming an older witnessed head") {
    expect_mismatch(ss.MakeSeal(11, 15, Hash32('c'), 10, Hash32('a'), cert));
  }
  SECTION("forked: the right seq with another head") {
    expect_mismatch(ss.MakeSeal(21, 30, Hash32('d'), 20, Hash32('x'), cert));
  }
  SECTION("truncated to 15 and regrown to 25") {
    expect_mismatch(ss.MakeSeal(16, 25, Hash32('e'), 15, Hash32('f'), cert));
  }
  // The held head is unchanged by refusals: the honest next seal still works.
  Witnessed ok = Send(h, ss.MakeSeal(21, 30, Hash32('g'), 20, Hash32('b'), cert));
  INFO(ok.status.error_message());
  CHECK(ok.status.ok());
}

TEST_CASE("Witness: seals not signed by the server's seal key are refused", "[registry][witness]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  const std::string cert = Register(h, ss);
  FakeSecurityServer impostor;  // same id, other keys
  Witnessed w = Send(h, impostor.MakeSeal(1, 10, Hash32('a'), 0, "", cert));
  CHECK(w.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(w.fault == "Server.ServerProxy.InvalidSignature");
  // An unregistered server.
  FakeSecurityServer unknown("UZ/GOV/70000001/ss9");
  Witnessed u = Send(h, unknown.MakeSeal(1, 10, Hash32('a'), 0, "", cert));
  CHECK(u.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  // Nothing was held: the first honest seal still starts from (0, "").
  CHECK(Send(h, ss.MakeSeal(1, 10, Hash32('a'), 0, "", cert)).status.ok());
}

TEST_CASE("Witness: seals of a revoked server are refused, and revocations carry their time",
          "[registry][witness]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  const std::string cert = Register(h, ss);
  REQUIRE(Send(h, ss.MakeSeal(1, 10, Hash32('a'), 0, "", cert)).status.ok());

  h.clock().Advance(absl::Seconds(30));
  const absl::Time revoked_at = h.clock().Now();
  v1::AdminServerRequest revoke;
  *revoke.mutable_id() = ss.id;
  v1::AdminEmpty empty;
  auto context = h.AdminContext();
  REQUIRE(h.AdminStub()->RevokeServer(context.get(), revoke, &empty).ok());
  h.clock().Advance(absl::Seconds(1));

  // Every revocation in the published configuration says when it was made.
  const v1::GlobalConf conf = Decode(h.GetConf());
  REQUIRE(conf.revoked_size() == 3);
  for (const v1::RevokedCertificate& r : conf.revoked()) {
    CHECK(r.revoked_at_unix_nanos() == absl::ToUnixNanos(revoked_at));
  }
  auto seal_cert = crypto::Certificate::FromDer(cert);
  REQUIRE(seal_cert.ok());
  CHECK(RevocationListOf(conf.revoked()).RevokedAt(**seal_cert) == revoked_at);

  // The next seal, and a repeat of the witnessed one, get no receipt.
  for (const v1::SignedSeal& seal : {ss.MakeSeal(11, 20, Hash32('b'), 10, Hash32('a'), cert),
                                     ss.MakeSeal(1, 10, Hash32('a'), 0, "", cert)}) {
    Witnessed w = Send(h, seal);
    INFO(w.status.error_message());
    CHECK(w.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(w.fault == "Client.NotAuthorized");
    CHECK(w.status.error_message().find("revoked") != std::string::npos);
  }
  // The held head stays what was witnessed before the revocation.
  v1::SignedWitnessReceipt head;
  {
    grpc::ClientContext head_context;
    REQUIRE(h.WitnessStub()->GetHead(&head_context, ss.id, &head).ok());
  }
  v1::WitnessReceipt held;
  REQUIRE(held.ParseFromString(head.receipt()));
  CHECK(held.seq() == 10);
  CHECK(held.witnessed_at_unix_nanos() < absl::ToUnixNanos(revoked_at));

  // Registered again with new keys: a seal by the old, revoked seal certificate is still refused.
  grpc::ClientContext submit_context;
  v1::RequestRecord again;
  REQUIRE(h.RegistrationStub()->Submit(&submit_context, ss.RegistrationRequest(), &again).ok());
  if (again.state() == v1::PENDING) again = h.Approve(again.id());
  REQUIRE(again.state() == v1::APPROVED);
  Witnessed old = Send(h, ss.MakeSeal(11, 20, Hash32('b'), 10, Hash32('a'), cert));
  INFO(old.status.error_message());
  CHECK_FALSE(old.status.ok());
}

}  // namespace darvoza::testing
