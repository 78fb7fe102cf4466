// The seal witness: signed, timed receipts, and refusal of any seal whose previous witnessed
// head is not the one the registry holds.
#include <chrono>

#include <catch2/catch.hpp>

#include "common/crypto/hash.h"
#include "common/crypto/signer.h"
#include "common/identifiers.h"
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
  // A retry of the same seal (its receipt was lost) gets a receipt again.
  CHECK(Send(h, second).status.ok());
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

}  // namespace darvoza::testing
