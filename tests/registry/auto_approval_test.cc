// Auto-approval over real gRPC against a RegistryServer on port 0 (and the real `darvoza`
// CLI): auto-approval renews only what a security server already holds, never approves a
// registration of a registered server id, and pending requests are capped.
#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/crypto/hash.h"
#include "common/crypto/signer.h"
#include "common/identifiers.h"
#include "tests/registry/registry_test_util.h"

namespace darvoza::testing {
namespace {

constexpr char kOtherMember[] = "UZ/GOV/70000002";
constexpr char kOtherServer[] = "UZ/GOV/70000002/ss2";

grpc::Status Submit(RegistryHarness& h, const v1::SubmitRequest& request, v1::RequestRecord* out,
                    std::string* fault = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status status = h.RegistrationStub()->Submit(&context, request, out);
  if (fault != nullptr) *fault = FaultOf(context);
  return status;
}

struct Csr {
  v1::CertKind kind;
  const crypto::PrivateKey* key;
  std::string member;  // signing only
};

// A renewal of `ss` asking for exactly `csrs`, signed with `current_auth_key`.
v1::SubmitRequest Renewal(const FakeSecurityServer& ss, const std::vector<Csr>& csrs,
                          const crypto::PrivateKey& current_auth_key) {
  v1::ServerRegistration reg;
  *reg.mutable_server() = ss.id;
  reg.set_address("127.0.0.1:5500");
  for (const Csr& c : csrs) {
    auto* out = reg.add_csrs();
    out->set_kind(c.kind);
    std::string cn = "server:" + FormatSecurityServerId(ss.id);
    if (c.kind == v1::CERT_KIND_SIGNING) {
      *out->mutable_member() = ParseMemberId(c.member).value();
      cn = "member:" + c.member;
    }
    out->set_csr(crypto::CertificateRequest::Create(*c.key, cn).value()->der());
  }
  v1::SubmitRequest request;
  request.set_server_registration(reg.SerializeAsString());
  request.set_renewal_signature(
      current_auth_key
          .SignRaw(crypto::SignedBytes(crypto::SignatureContext::kRegistration,
                                       request.server_registration()))
          .value());
  return request;
}

std::unique_ptr<crypto::PrivateKey> NewKey() {
  return crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
}

// Registers `ss` (with or without a signing CSR for its owner) and has the administrator
// approve it.
void RegisterApproved(RegistryHarness& h, const FakeSecurityServer& ss, bool with_signing) {
  v1::RequestRecord submitted;
  grpc::Status status = Submit(h, ss.RegistrationRequest(with_signing), &submitted);
  INFO(status.error_message());
  REQUIRE(status.ok());
  if (submitted.state() == v1::PENDING) h.Approve(submitted.id());
}

uint64_t Serial(RegistryHarness& h) { return Decode(h.GetConf()).serial(); }

}  // namespace

TEST_CASE("security: a renewal asking for another member's signing certificate waits for an administrator",
          "[registry][security][auto-approval]") {
  RegistryHarness h;  // auto_approve_renewals = true, the default
  h.AddMember(kMember);
  h.AddMember(kOtherMember);
  FakeSecurityServer ss2(kOtherServer);
  RegisterApproved(h, ss2, /*with_signing=*/true);
  const uint64_t serial = Serial(h);

  // ss2 (member ...02) asks, with its own valid auth key, for a signing certificate of ...01.
  auto new_auth = NewKey();
  auto stolen = NewKey();
  v1::RequestRecord record;
  REQUIRE(Submit(h,
                 Renewal(ss2, {{v1::CERT_KIND_AUTH, new_auth.get(), ""},
                               {v1::CERT_KIND_SIGNING, stolen.get(), kMember}},
                         *ss2.auth_key),
                 &record)
              .ok());
  CHECK(record.state() == v1::PENDING);
  CHECK(record.certificates_size() == 0);
  CHECK(record.held_for_review().find(std::string("signing for member ") + kMember) !=
        std::string::npos);
  CHECK(Serial(h) == serial);  // nothing was issued, nothing published

  // The administrator sees what it asks for: kinds, the member, the key fingerprints.
  CommandResult listed = RunDarvozaCli({"registry", "request", "list", "--data-dir", h.registry_dir()});
  INFO(listed.output);
  CHECK(listed.exit_code == 0);
  CHECK(listed.output.find(record.id() + "  PENDING  renewal UZ/GOV/70000002/ss2") != std::string::npos);
  CHECK(listed.output.find(std::string("asks: signing for ") + kMember + "  key sha256:" +
                           crypto::HexEncode(crypto::Sha256(stolen->PublicKeyDer()))) !=
        std::string::npos);
  CHECK(listed.output.find("asks: auth  key sha256:" +
                           crypto::HexEncode(crypto::Sha256(new_auth->PublicKeyDer()))) !=
        std::string::npos);
  CHECK(listed.output.find("held: the renewal asks for certificates the server does not hold") !=
        std::string::npos);

  // Renewing what it holds (auth, seal, its own member's signing) is still automatic.
  auto seal = NewKey();
  auto own_signing = NewKey();
  v1::RequestRecord renewed;
  REQUIRE(Submit(h,
                 Renewal(ss2, {{v1::CERT_KIND_AUTH, new_auth.get(), ""},
                               {v1::CERT_KIND_SEAL, seal.get(), ""},
                               {v1::CERT_KIND_SIGNING, own_signing.get(), kOtherMember}},
                         *ss2.auth_key),
                 &renewed)
              .ok());
  CHECK(renewed.state() == v1::APPROVED);
  CHECK(renewed.certificates_size() == 3);
  CHECK(renewed.held_for_review().empty());

  // The administrator may still decide to issue it.
  v1::RequestRecord approved = h.Approve(record.id());
  CHECK(approved.state() == v1::APPROVED);
  CHECK(approved.decided_by() != "auto-approve-renewal");
}

TEST_CASE("security: a renewal asking for a certificate kind the server does not hold waits",
          "[registry][security][auto-approval]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  RegisterApproved(h, ss, /*with_signing=*/false);  // auth and seal only

  auto signing = NewKey();
  v1::RequestRecord record;
  REQUIRE(Submit(h, Renewal(ss, {{v1::CERT_KIND_SIGNING, signing.get(), kMember}}, *ss.auth_key),
                 &record)
              .ok());
  CHECK(record.state() == v1::PENDING);
  CHECK(record.held_for_review().find(std::string("signing for member ") + kMember) !=
        std::string::npos);

  // A subset of what it holds is renewed at once.
  auto seal = NewKey();
  v1::RequestRecord renewed;
  REQUIRE(Submit(h, Renewal(ss, {{v1::CERT_KIND_SEAL, seal.get(), ""}}, *ss.auth_key), &renewed).ok());
  CHECK(renewed.state() == v1::APPROVED);
}

TEST_CASE("security: a revoked certificate does not count as held for auto-approval",
          "[registry][security][auto-approval]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  RegisterApproved(h, ss, /*with_signing=*/true);
  // Revoked, then registered again by the administrator without a signing certificate: the
  // old signing certificate is revoked and must not let a renewal bring it back unseen.
  v1::AdminServerRequest revoke;
  *revoke.mutable_id() = ss.id;
  v1::AdminEmpty empty;
  auto context = h.AdminContext();
  REQUIRE(h.AdminStub()->RevokeServer(context.get(), revoke, &empty).ok());
  FakeSecurityServer again(kServer);
  v1::RequestRecord submitted;
  REQUIRE(Submit(h, again.RegistrationRequest(/*with_signing=*/false), &submitted).ok());
  REQUIRE(submitted.state() == v1::PENDING);
  h.Approve(submitted.id());

  auto signing = NewKey();
  v1::RequestRecord record;
  REQUIRE(Submit(h, Renewal(again, {{v1::CERT_KIND_SIGNING, signing.get(), kMember}}, *again.auth_key),
                 &record)
              .ok());
  CHECK(record.state() == v1::PENDING);
}

TEST_CASE("security: a registration naming a registered server id is never auto-approved",
          "[registry][security][auto-approval]") {
  RegistryHarness::Options options;
  options.auto_approve = true;  // even the demo mode that approves every new registration
  RegistryHarness h(options);
  h.AddMember(kMember);
  FakeSecurityServer ss;
  v1::RequestRecord first;
  REQUIRE(Submit(h, ss.RegistrationRequest(), &first).ok());
  REQUIRE(first.state() == v1::APPROVED);

  // Someone else, knowing only the server id, registers it with keys of their own.
  FakeSecurityServer impostor(kServer);
  v1::RequestRecord second;
  REQUIRE(Submit(h, impostor.RegistrationRequest(), &second).ok());
  CHECK(second.state() == v1::PENDING);
  CHECK(second.certificates_size() == 0);
  CHECK(second.held_for_review().find("already registered") != std::string::npos);

  // The administrator-approved re-registration keeps working.
  v1::RequestRecord approved = h.Approve(second.id());
  CHECK(approved.state() == v1::APPROVED);
  CHECK(approved.certificates_size() == 3);
}

TEST_CASE("security: pending requests are capped, and auto-approved renewals still pass",
          "[registry][security][auto-approval]") {
  RegistryHarness::Options options;
  options.max_pending_requests = 3;
  RegistryHarness h(options);
  h.AddMember(kMember);
  FakeSecurityServer registered;
  RegisterApproved(h, registered, /*with_signing=*/true);

  std::vector<std::string> pending;
  for (int i = 0; i < 3; ++i) {
    FakeSecurityServer ss(std::string(kMember) + "/flood" + std::to_string(i));
    v1::RequestRecord record;
    REQUIRE(Submit(h, ss.RegistrationRequest(), &record).ok());
    REQUIRE(record.state() == v1::PENDING);
    pending.push_back(record.id());
  }
  FakeSecurityServer one_more(std::string(kMember) + "/flood3");
  v1::RequestRecord refused;
  std::string fault;
  grpc::Status status = Submit(h, one_more.RegistrationRequest(), &refused, &fault);
  CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(fault == "Server.Registry.TooManyPendingRequests");
  // A hosting request would wait too: refused the same way.
  status = Submit(h, registered.HostingRequest(std::string(kMember) + "/tax"), &refused, &fault);
  CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);

  // A renewal that auto-approval decides at once does not wait, so the flood cannot stop it.
  auto current = std::move(registered.auth_key);
  v1::RequestRecord renewed;
  REQUIRE(Submit(h, registered.RenewalRequest(*current), &renewed).ok());
  CHECK(renewed.state() == v1::APPROVED);

  // Once the administrator decides one, there is room again.
  v1::AdminDecision reject;
  reject.set_request_id(pending[0]);
  reject.set_reason("flood");
  v1::RequestRecord rejected;
  auto context = h.AdminContext();
  REQUIRE(h.AdminStub()->RejectRequest(context.get(), reject, &rejected).ok());
  v1::RequestRecord accepted;
  REQUIRE(Submit(h, one_more.RegistrationRequest(), &accepted).ok());
  CHECK(accepted.state() == v1::PENDING);
}

}  // namespace darvoza::testing
