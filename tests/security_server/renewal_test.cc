// Certificate renewal with a simulated clock (docs/design.md §4): within the margin the SS makes
// new keys and a renewal request signed with its current auth key, the registry approves it
// automatically, and once a configuration lists the new auth fingerprint the SS's TLS ports
// present the new certificate — without a restart and before the old certificate expires.
#include <catch2/catch.hpp>

#include "common/crypto/hash.h"
#include "common/identifiers.h"
#include "tests/security_server/ss_test_util.h"

namespace darvoza::testing {
namespace {

const v1::CertificateStatus* CertStatus(const v1::StatusReport& report, const std::string& kind) {
  for (const auto& c : report.certificates()) {
    if (c.kind() == kind) return &c;
  }
  return nullptr;
}

std::string PresentedCert(const std::string& address, const TestIdentity& is) {
  auto channel = TlsChannelWithIdentity(address, is.key_pem, is.cert_pem);
  grpc::ClientContext ctx;
  std::string response;
  (void)GenericUnary(channel, "/pkg.Svc/Method", "", &response, &ctx);
  return PeerCertSha256(ctx);
}

TEST_CASE("Renewal: a new certificate is in use before the old one expires", "[ss][renewal]") {
  TempDir dir;
  SimulatedClock clock(absl::Now());
  TestRegistry registry(dir.path(), &clock, {.conf_validity = absl::Hours(1)});
  REQUIRE(registry.registry().AddMember(ParseMemberId(kSsMember).value(), "Tax", "admin").ok());
  ss::SsConfig config = InitTestSecurityServer(dir.File("ss"), registry);
  RegisterAndApprove(config.data_dir, registry);
  config.renewal_margin = absl::Hours(24 * 30);
  config.expiry_warning = absl::Hours(24 * 45);
  auto started = ss::Node::Start(config, &clock);
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  std::unique_ptr<ss::Node> node = std::move(*started);
  REQUIRE(WaitFor([&] { return node->Status().listed_in_conf(); }));

  v1::StatusReport before = node->Status();
  const auto* old_auth = CertStatus(before, "auth");
  REQUIRE(old_auth != nullptr);
  const std::string old_sha = old_auth->sha256();
  const absl::Time old_not_after = FromUnixNanosField(old_auth->not_after_unix_nanos());
  CHECK(before.warnings_size() == 0);
  TestIdentity is = MakeTestIdentity("is:probe");
  CHECK(PresentedCert(node->addresses().client_tls, is) == old_sha);

  // Nothing to do far from expiry.
  REQUIRE(node->CheckRenewalForTest().ok());
  CHECK(!CertStatus(node->Status(), "auth")->pending_renewal());

  // 40 days before expiry: warnings, no renewal yet.
  clock.SetNow(old_not_after - absl::Hours(24 * 40));
  REQUIRE(node->CheckRenewalForTest().ok());
  CHECK(node->Status().warnings_size() >= 1);
  CHECK(!CertStatus(node->Status(), "auth")->pending_renewal());

  // 20 days before expiry: within the margin. The registry (same clock) re-signs the expired
  // configuration on its own; wait until the SS holds a current one, then renew.
  clock.SetNow(old_not_after - absl::Hours(24 * 20));
  REQUIRE(WaitFor([&] { return !node->Status().conf_expired(); }));
  absl::Status renewed = node->CheckRenewalForTest();
  INFO(renewed.ToString());
  REQUIRE(renewed.ok());

  // The registry approved it at once and published a configuration with the new fingerprint;
  // the SS switched its key files and gRPC picked them up.
  std::string new_sha;
  REQUIRE(WaitFor([&] {
    v1::StatusReport report = node->Status();
    const auto* auth = CertStatus(report, "auth");
    if (auth == nullptr || auth->sha256() == old_sha || auth->pending_renewal()) return false;
    new_sha = auth->sha256();
    return true;
  }));
  REQUIRE(WaitFor([&] { return PresentedCert(node->addresses().client_tls, is) == new_sha; }));
  CHECK(clock.Now() < old_not_after);
  v1::StatusReport after = node->Status();
  for (const auto& c : after.certificates()) {
    CHECK(FromUnixNanosField(c.not_after_unix_nanos()) > old_not_after);  // all renewed
  }
  CHECK(after.listed_in_conf());
  node->Shutdown();
}

}  // namespace
}  // namespace darvoza::testing
