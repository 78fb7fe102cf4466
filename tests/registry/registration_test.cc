// Registration end to end over real gRPC (TLS public port, admin Unix socket) on port 0.
#include <atomic>
#include <chrono>
#include <thread>

#include <catch2/catch.hpp>

#include "common/crypto/hash.h"
#include "common/globalconf.h"
#include "common/identifiers.h"
#include "tests/registry/registry_test_util.h"

namespace darvoza::testing {
namespace {

std::shared_ptr<const crypto::Certificate> AnchorRoot(const v1::ConfigurationAnchor& anchor) {
  return crypto::Certificate::FromDer(anchor.root_ca_cert_der()).value();
}

grpc::Status Submit(RegistryHarness& h, const v1::SubmitRequest& request, v1::RequestRecord* out,
                    std::string* fault = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status status = h.RegistrationStub()->Submit(&context, request, out);
  if (fault != nullptr) *fault = FaultOf(context);
  return status;
}

v1::RequestRecord Status(RegistryHarness& h, const std::string& id) {
  grpc::ClientContext context;
  v1::RequestStatusQuery query;
  query.set_id(id);
  v1::RequestRecord record;
  REQUIRE(h.RegistrationStub()->GetStatus(&context, query, &record).ok());
  return record;
}

const v1::SecurityServerEntry* FindServer(const v1::GlobalConf& conf, const v1::SecurityServerId& id) {
  for (const auto& s : conf.security_servers()) {
    if (SameSecurityServer(s.id(), id)) return &s;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("Registration: a CSR stays pending, is approved, and its certificates chain to the anchor CA",
          "[registry][registration]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  const uint64_t serial_before = Decode(h.GetConf()).serial();

  v1::RequestRecord submitted;
  REQUIRE(Submit(h, ss.RegistrationRequest(), &submitted).ok());
  CHECK(submitted.state() == v1::PENDING);
  CHECK(submitted.certificates_size() == 0);
  v1::RequestRecord polled = Status(h, submitted.id());
  CHECK(polled.state() == v1::PENDING);
  CHECK(polled.certificates_size() == 0);
  // Pending changes nothing in the configuration.
  CHECK(Decode(h.GetConf()).serial() == serial_before);

  v1::RequestRecord approved = h.Approve(submitted.id());
  CHECK(approved.state() == v1::APPROVED);
  polled = Status(h, submitted.id());
  REQUIRE(polled.state() == v1::APPROVED);
  REQUIRE(polled.certificates_size() == 3);

  auto root = AnchorRoot(h.anchor());
  crypto::RevocationList none;
  auto auth = CertOf(polled, v1::CERT_KIND_AUTH);
  crypto::CertificateProfile tls = crypto::CertificateProfile::kTlsAuth;
  crypto::CertificateProfile signing = crypto::CertificateProfile::kSigning;
  CHECK(crypto::VerifyChain(*auth, {}, {root}, h.clock().Now(), none, &tls).ok());
  CHECK(auth->subject_common_name() == "server:UZ/GOV/70000001/ss1");
  CHECK(auth->public_key().der() == ss.auth_key->PublicKeyDer());
  auto seal = CertOf(polled, v1::CERT_KIND_SEAL);
  CHECK(crypto::VerifyChain(*seal, {}, {root}, h.clock().Now(), none, &signing).ok());
  CHECK(seal->subject_common_name() == "server:UZ/GOV/70000001/ss1");
  CHECK(seal->public_key().der() == ss.seal_key->PublicKeyDer());
  auto member = CertOf(polled, v1::CERT_KIND_SIGNING);
  CHECK(crypto::VerifyChain(*member, {}, {root}, h.clock().Now(), none, &signing).ok());
  CHECK(member->subject_common_name() == "member:UZ/GOV/70000001");

  // The next configuration lists the server with its auth certificate's fingerprint.
  v1::GlobalConf conf = Decode(h.GetConf());
  CHECK(conf.serial() > serial_before);
  const v1::SecurityServerEntry* entry = FindServer(conf, ss.id);
  REQUIRE(entry != nullptr);
  CHECK(entry->address() == "127.0.0.1:5500");
  REQUIRE(entry->auth_cert_sha256_size() == 1);
  CHECK(entry->auth_cert_sha256(0) == auth->sha256());
}

TEST_CASE("Registration: a rejected request never gets a certificate", "[registry][registration]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  v1::RequestRecord submitted;
  REQUIRE(Submit(h, ss.RegistrationRequest(), &submitted).ok());

  v1::AdminDecision decision;
  decision.set_request_id(submitted.id());
  decision.set_reason("unknown operator");
  v1::RequestRecord rejected;
  auto context = h.AdminContext();
  REQUIRE(h.AdminStub()->RejectRequest(context.get(), decision, &rejected).ok());
  CHECK(rejected.state() == v1::REJECTED);
  CHECK(rejected.certificates_size() == 0);

  v1::RequestRecord polled = Status(h, submitted.id());
  CHECK(polled.state() == v1::REJECTED);
  CHECK(polled.reason() == "unknown operator");
  CHECK(polled.certificates_size() == 0);
  // A rejected request cannot be approved afterwards.
  auto context2 = h.AdminContext();
  v1::RequestRecord again;
  grpc::Status status = h.AdminStub()->ApproveRequest(context2.get(), decision, &again);
  CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(FindServer(Decode(h.GetConf()), ss.id) == nullptr);
}

TEST_CASE("Registration: an unknown member's request is refused", "[registry][registration]") {
  RegistryHarness h;
  FakeSecurityServer ss;
  v1::RequestRecord out;
  std::string fault;
  grpc::Status status = Submit(h, ss.RegistrationRequest(), &out, &fault);
  CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(fault == "Client.UnknownMember");
  CHECK(status.error_message().find("UZ/GOV/70000001") != std::string::npos);
  v1::AdminListRequestsRequest all;
  all.set_all(true);
  v1::RequestList list;
  auto context = h.AdminContext();
  REQUIRE(h.AdminStub()->ListRequests(context.get(), all, &list).ok());
  CHECK(list.requests_size() == 0);
}

TEST_CASE("Registration: an approved hosting request appears in the next configuration",
          "[registry][registration]") {
  RegistryHarness h;
  h.AddMember(kMember);
  h.AddMember("UZ/COM/123");
  FakeSecurityServer ss;
  v1::RequestRecord reg;
  REQUIRE(Submit(h, ss.RegistrationRequest(), &reg).ok());
  h.Approve(reg.id());

  v1::RequestRecord hosting;
  REQUIRE(Submit(h, ss.HostingRequest("UZ/COM/123/billing"), &hosting).ok());
  CHECK(hosting.state() == v1::PENDING);
  const uint64_t serial = Decode(h.GetConf()).serial();
  const v1::GlobalConf conf_before = Decode(h.GetConf());
  const v1::SecurityServerEntry* before = FindServer(conf_before, ss.id);
  REQUIRE(before != nullptr);
  CHECK(before->hosted_subsystems_size() == 0);

  h.Approve(hosting.id());
  v1::GlobalConf conf = Decode(h.GetConf());
  CHECK(conf.serial() == serial + 1);
  const v1::SecurityServerEntry* entry = FindServer(conf, ss.id);
  REQUIRE(entry != nullptr);
  REQUIRE(entry->hosted_subsystems_size() == 1);
  CHECK(FormatSubsystemId(entry->hosted_subsystems(0)) == "UZ/COM/123/billing");
  bool listed = false;
  for (const auto& m : conf.members()) {
    for (const auto& s : m.subsystems()) listed = listed || FormatSubsystemId(s.id()) == "UZ/COM/123/billing";
  }
  CHECK(listed);
}

TEST_CASE("Registration: auto-approve issues at once", "[registry][registration]") {
  RegistryHarness::Options options;
  options.auto_approve = true;
  RegistryHarness h(options);
  h.AddMember(kMember);
  FakeSecurityServer ss;
  v1::RequestRecord record;
  REQUIRE(Submit(h, ss.RegistrationRequest(), &record).ok());
  CHECK(record.state() == v1::APPROVED);
  CHECK(record.decided_by() == "auto-approve");
  CHECK(record.certificates_size() == 3);
}

TEST_CASE("Registration: a renewal signed with the current auth key is approved automatically",
          "[registry][registration]") {
  RegistryHarness h;  // auto_approve_renewals = true by default
  h.AddMember(kMember);
  FakeSecurityServer ss;
  v1::RequestRecord reg;
  REQUIRE(Submit(h, ss.RegistrationRequest(), &reg).ok());
  h.Approve(reg.id());
  auto old_auth = CertOf(Status(h, reg.id()), v1::CERT_KIND_AUTH);

  // Signed with a key that is not the current auth key: refused.
  FakeSecurityServer stranger;
  FakeSecurityServer copy;
  copy.id = ss.id;
  v1::RequestRecord refused;
  std::string fault;
  grpc::Status status = Submit(h, copy.RenewalRequest(*stranger.auth_key), &refused, &fault);
  CHECK(status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(fault == "Client.NotAuthorized");

  auto current_auth = std::move(ss.auth_key);
  v1::RequestRecord renewal;
  REQUIRE(Submit(h, ss.RenewalRequest(*current_auth), &renewal).ok());
  CHECK(renewal.state() == v1::APPROVED);
  CHECK(renewal.renewal());
  auto new_auth = CertOf(renewal, v1::CERT_KIND_AUTH);
  CHECK(new_auth->public_key().der() == ss.auth_key->PublicKeyDer());
  // Overlap: both auth certificates are listed until the old one expires.
  const v1::GlobalConf conf = Decode(h.GetConf());
  const v1::SecurityServerEntry* entry = FindServer(conf, ss.id);
  REQUIRE(entry != nullptr);
  CHECK(entry->auth_cert_sha256_size() == 2);
}

TEST_CASE("Registration: revoking a server lists its certificates in the next configuration",
          "[registry][registration]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  v1::RequestRecord reg;
  REQUIRE(Submit(h, ss.RegistrationRequest(), &reg).ok());
  v1::RequestRecord approved = h.Approve(reg.id());
  auto auth = CertOf(approved, v1::CERT_KIND_AUTH);

  v1::AdminServerRequest revoke;
  revoke.mutable_id()->CopyFrom(ss.id);
  v1::AdminEmpty empty;
  auto context = h.AdminContext();
  REQUIRE(h.AdminStub()->RevokeServer(context.get(), revoke, &empty).ok());
  v1::GlobalConf conf = Decode(h.GetConf());
  CHECK(FindServer(conf, ss.id) == nullptr);
  CHECK(conf.revoked_size() == 3);
  bool listed = false;
  for (const auto& r : conf.revoked()) {
    listed = listed || (r.issuer() == auth->issuer() && r.serial_hex() == auth->serial_hex());
  }
  CHECK(listed);
  // A revoked server cannot renew with its old key.
  auto old_key = std::move(ss.auth_key);
  v1::RequestRecord renewal;
  CHECK_FALSE(Submit(h, ss.RenewalRequest(*old_key), &renewal).ok());

  // Registered again (approved by the administrator), only the new auth certificate is listed.
  v1::RequestRecord again;
  REQUIRE(Submit(h, ss.RegistrationRequest(), &again).ok());
  auto new_auth = CertOf(h.Approve(again.id()), v1::CERT_KIND_AUTH);
  const v1::GlobalConf conf2 = Decode(h.GetConf());
  const v1::SecurityServerEntry* entry = FindServer(conf2, ss.id);
  REQUIRE(entry != nullptr);
  REQUIRE(entry->auth_cert_sha256_size() == 1);
  CHECK(entry->auth_cert_sha256(0) == new_auth->sha256());
  CHECK(conf2.revoked_size() == 3);
}

}  // namespace darvoza::testing

namespace darvoza::testing {

TEST_CASE("Registration: GetStatus can wait for the decision", "[registry][registration]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  v1::RequestRecord submitted;
  REQUIRE(Submit(h, ss.RegistrationRequest(), &submitted).ok());
  auto stub = h.RegistrationStub();

  SECTION("answered when approved") {
    v1::RequestRecord waited;
    grpc::Status status;
    std::thread waiter([&] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      v1::RequestStatusQuery query;
      query.set_id(submitted.id());
      query.set_wait_seconds(60);
      status = stub->GetStatus(&context, query, &waited);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let it start waiting (either way is fine)
    h.Approve(submitted.id());
    waiter.join();
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(waited.state() == v1::APPROVED);
    CHECK(waited.certificates_size() == 3);
  }
  SECTION("answered PENDING when the wait runs out") {
    std::atomic<bool> done{false};
    v1::RequestRecord waited;
    grpc::Status status;
    std::thread waiter([&] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      v1::RequestStatusQuery query;
      query.set_id(submitted.id());
      query.set_wait_seconds(5);
      status = stub->GetStatus(&context, query, &waited);
      done = true;
    });
    // Move the simulated clock until the registry's periodic check answers the wait; the
    // waiter may start waiting before or after any one step.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!done.load() && std::chrono::steady_clock::now() < deadline) {
      h.clock().Advance(absl::Seconds(6));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    waiter.join();
    REQUIRE(status.ok());
    CHECK(waited.state() == v1::PENDING);
  }
  SECTION("answered PENDING at shutdown") {
    v1::RequestRecord waited;
    grpc::Status status;
    std::thread waiter([&] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      v1::RequestStatusQuery query;
      query.set_id(submitted.id());
      query.set_wait_seconds(60);
      status = stub->GetStatus(&context, query, &waited);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    h.Stop();
    waiter.join();
    if (status.ok()) CHECK(waited.state() == v1::PENDING);
  }
}

}  // namespace darvoza::testing
