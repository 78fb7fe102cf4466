// The host in a security server's auth certificate (its client mTLS port's identity) is the
// one the registry approved — the host of the registration's address — never one the SS chose
// alone: over real gRPC against a RegistryServer on port 0.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/identifiers.h"
#include "tests/registry/registry_test_util.h"

namespace darvoza::testing {
namespace {

// `request` (a registration) with its address and its auth CSR's tls_host replaced.
v1::SubmitRequest WithHost(v1::SubmitRequest request, const std::string& address,
                           const std::string& tls_host) {
  v1::ServerRegistration reg;
  REQUIRE(reg.ParseFromString(request.server_registration()));
  reg.set_address(address);
  for (auto& c : *reg.mutable_csrs()) {
    if (c.kind() == v1::CERT_KIND_AUTH) c.set_tls_host(tls_host);
  }
  request.set_server_registration(reg.SerializeAsString());
  return request;
}

// A renewal of the auth certificate only, from `address`, signed with `current`.
v1::SubmitRequest AuthRenewal(const FakeSecurityServer& ss, const crypto::PrivateKey& current,
                              const crypto::PrivateKey& next, const std::string& address,
                              const std::string& tls_host) {
  v1::ServerRegistration reg;
  *reg.mutable_server() = ss.id;
  reg.set_address(address);
  auto* auth = reg.add_csrs();
  auth->set_kind(v1::CERT_KIND_AUTH);
  auth->set_csr(crypto::CertificateRequest::Create(next, "server:" + FormatSecurityServerId(ss.id))
                    .value()
                    ->der());
  auth->set_tls_host(tls_host);
  v1::SubmitRequest request;
  request.set_server_registration(reg.SerializeAsString());
  SignRenewal(&request, current);
  return request;
}

std::unique_ptr<crypto::PrivateKey> NewKey() {
  return crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
}

}  // namespace

TEST_CASE("security: the auth certificate names the host of the approved address (DNS or IP)",
          "[registry][security][tls-host]") {
  RegistryHarness h;
  h.AddMember(kMember);

  FakeSecurityServer by_ip;  // 127.0.0.1:5500
  v1::RequestRecord submitted;
  REQUIRE(h.Submit(WithHost(by_ip.RegistrationRequest(), "127.0.0.1:5500", "127.0.0.1"),
                 &submitted)
              .ok());
  v1::RequestRecord approved = h.Approve(submitted.id());
  CHECK(CertOf(approved, v1::CERT_KIND_AUTH)->SubjectAltHosts() ==
        std::vector<std::string>{"127.0.0.1"});
  // Only the TLS identity carries a host; a signature key has no business with one.
  CHECK(CertOf(approved, v1::CERT_KIND_SEAL)->SubjectAltHosts().empty());

  // No tls_host (an older SS): the registry still names the approved host.
  FakeSecurityServer by_name(std::string(kMember) + "/ss2");
  REQUIRE(h.Submit(WithHost(by_name.RegistrationRequest(), "SS2.gov.example:5500", ""),
                 &submitted)
              .ok());
  approved = h.Approve(submitted.id());
  CHECK(CertOf(approved, v1::CERT_KIND_AUTH)->SubjectAltHosts() ==
        std::vector<std::string>{"SS2.gov.example"});

  // An address with no host a client could verify gets no name rather than a wrong one.
  FakeSecurityServer wildcard(std::string(kMember) + "/ss3");
  REQUIRE(h.Submit(WithHost(wildcard.RegistrationRequest(), "0.0.0.0:5500", ""), &submitted).ok());
  approved = h.Approve(submitted.id());
  CHECK(CertOf(approved, v1::CERT_KIND_AUTH)->SubjectAltHosts().empty());
}

TEST_CASE("security: an SS asking for a TLS host other than its address's is refused",
          "[registry][security][tls-host]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  v1::RequestRecord record;
  std::string fault;

  grpc::Status status =
      h.Submit(WithHost(ss.RegistrationRequest(), "127.0.0.1:5500", "bank.example"), &record,
             &fault);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(fault == "Client.InvalidRequest");
  CHECK(status.error_message().find("tls_host differs from the host of the registration's "
                                    "address (127.0.0.1)") != std::string::npos);

  // Nor may it smuggle a second entry into the extension, or name the unspecified address.
  status = h.Submit(WithHost(ss.RegistrationRequest(), "127.0.0.1:5500", "127.0.0.1,DNS:x"),
                  &record, &fault);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  status = h.Submit(WithHost(ss.RegistrationRequest(), "0.0.0.0:5500", "0.0.0.0"), &record,
                  &fault);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(fault == "Client.InvalidRequest");

  // The address every SS of the federation will dial (it is published in the global
  // configuration): one host:port rule, nothing a dialler or a log line could choke on.
  for (const char* bad : {"evil host:5500", "127.0.0.1:0", "127.0.0.1:99999", "::1:5500",
                          "127.0.0.1:5500/x", "a\r\nb:5500", ":5500"}) {
    INFO(bad);
    status = h.Submit(WithHost(ss.RegistrationRequest(), bad, ""), &record, &fault);
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(fault == "Client.InvalidRequest");
  }

  // A host on a CSR that is not the TLS identity's is refused too.
  v1::SubmitRequest request = ss.RegistrationRequest();
  v1::ServerRegistration reg;
  REQUIRE(reg.ParseFromString(request.server_registration()));
  for (auto& c : *reg.mutable_csrs()) {
    if (c.kind() == v1::CERT_KIND_SEAL) c.set_tls_host("127.0.0.1");
  }
  request.set_server_registration(reg.SerializeAsString());
  status = h.Submit(request, &record, &fault);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);

  // Nothing was recorded: the matching request is the first the registry sees.
  REQUIRE(h.Submit(WithHost(ss.RegistrationRequest(), "127.0.0.1:5500", "127.0.0.1"), &record)
              .ok());
  CHECK(record.state() == v1::PENDING);
}

TEST_CASE("security: a renewal that moves the server to another host waits for an administrator",
          "[registry][security][tls-host][auto-approval]") {
  RegistryHarness h;  // auto_approve_renewals = true, the default
  h.AddMember(kMember);
  FakeSecurityServer ss;
  v1::RequestRecord submitted;
  REQUIRE(h.Submit(ss.RegistrationRequest(), &submitted).ok());
  h.Approve(submitted.id());

  // Same address: renewed at once, still naming the approved host.
  auto next = NewKey();
  v1::RequestRecord renewed;
  REQUIRE(h.Submit(AuthRenewal(ss, *ss.auth_key, *next, "127.0.0.1:5500", "127.0.0.1"), &renewed)
              .ok());
  REQUIRE(renewed.state() == v1::APPROVED);
  CHECK(CertOf(renewed, v1::CERT_KIND_AUTH)->SubjectAltHosts() ==
        std::vector<std::string>{"127.0.0.1"});

  // A new address (and so a new host in the certificate): the SS alone cannot have it.
  auto moved_key = NewKey();
  v1::RequestRecord moved;
  REQUIRE(h.Submit(AuthRenewal(ss, *next, *moved_key, "ss1.bank.example:5500", "ss1.bank.example"),
                 &moved)
              .ok());
  CHECK(moved.state() == v1::PENDING);
  CHECK(moved.certificates_size() == 0);
  CHECK(moved.held_for_review().find("changes the server's address from 127.0.0.1:5500 to "
                                     "ss1.bank.example:5500") != std::string::npos);

  // Once the administrator approves the move, the certificate names the new host.
  v1::RequestRecord approved = h.Approve(moved.id());
  CHECK(CertOf(approved, v1::CERT_KIND_AUTH)->SubjectAltHosts() ==
        std::vector<std::string>{"ss1.bank.example"});
}

}  // namespace darvoza::testing
