// The darvoza-ss node end to end: init, register, approval, hosting request and its
// approval, status; and what each port answers (admin token, health, reflection).
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "audit/audit_log.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "common/files.h"
#include "security_server/provisioning.h"
#include "tests/security_server/ss_test_util.h"

namespace darvoza::testing {
namespace {

constexpr char kHealthCheck[] = "/grpc.health.v1.Health/Check";
constexpr char kReflection[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
// ServerReflectionRequest{list_services: "*"}
const std::string kListServices = std::string("\x3a\x01*", 3);

int FileMode(const std::string& path) {
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// A registered SS with a running node.
struct RunningSs {
  explicit RunningSs(TempDir& dir, SimulatedClock& clock, TestRegistry& registry) {
    config = InitTestSecurityServer(dir.File("ss"), registry);
    RegisterAndApprove(config.data_dir, registry);
    auto started = ss::Node::Start(config, &clock);
    INFO(started.status().ToString());
    REQUIRE(started.ok());
    node = std::move(*started);
  }
  ss::SsConfig config;
  std::unique_ptr<ss::Node> node;
};

TEST_CASE("Node: init, register, approval, hosting request and status", "[ss][node]") {
  TempDir dir;
  SimulatedClock clock(absl::Now());
  TestRegistry registry(dir.path(), &clock, {});
  REQUIRE(registry.registry().AddMember(ParseMemberId(kSsMember).value(), "Tax", "admin").ok());

  ss::SsConfig config = InitTestSecurityServer(dir.File("ss"), registry);
  CHECK(FileMode(config.data_dir) == 0700);
  CHECK(FileMode(config.data_dir + "/keys/auth.key") == 0600);
  CHECK(FileMode(config.data_dir + "/keys/seal.key") == 0600);
  CHECK(FileMode(config.data_dir + "/keys/signing-UZ~GOV~70000001.key") == 0600);
  CHECK(FileMode(config.data_dir + "/admin.token") == 0600);
  CHECK(darvoza::FileExists(config.data_dir + "/csr/auth.csr"));
  // init twice is refused.
  ss::InitOptions again;
  again.config = config;
  again.anchor_file = registry.anchor_file();
  CHECK(absl::IsAlreadyExists(ss::InitSecurityServer(again)));

  // Registration: pending until the registry's administrator approves.
  ss::RegisterOptions reg;
  reg.data_dir = config.data_dir;
  auto pending = ss::RegisterSecurityServer(reg);
  REQUIRE(pending.ok());
  CHECK(pending->state() == v1::PENDING);
  auto not_yet = ss::Node::Start(config, &clock);
  CHECK(absl::IsFailedPrecondition(not_yet.status()));
  REQUIRE(registry.registry().Approve(pending->id(), "test-admin").ok());
  auto approved = ss::RegisterSecurityServer(reg);
  REQUIRE(approved.ok());
  CHECK(approved->id() == pending->id());  // polled, not submitted again
  CHECK(approved->state() == v1::APPROVED);
  CHECK(darvoza::FileExists(config.data_dir + "/certs/auth.pem"));

  auto started = ss::Node::Start(config, &clock);
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  std::unique_ptr<ss::Node> node = std::move(*started);
  auto listen = ss::ReadListenFile(config.data_dir);
  REQUIRE(listen.ok());
  CHECK(listen->ss == node->addresses().ss);
  CHECK(listen->client == node->addresses().client);
  CHECK(listen->client_tls == node->addresses().client_tls);
  CHECK(listen->admin == node->addresses().admin);
  CHECK(listen->ops == node->addresses().ops);
  CHECK(FileMode(config.AdminSocketPath()) == 0600);
  REQUIRE(WaitFor([&] { return node->Status().listed_in_conf(); }));

  // Hosting request through the admin API, approved by the registry's administrator.
  auto admin = AdminStub(*node);
  v1::ClientAddRequest add;
  *add.mutable_id() = ParseSubsystemId(kSsSubsystem).value();
  add.set_auth_mode(v1::IS_AUTH_PLAINTEXT);
  v1::LocalClient client;
  grpc::Status s = admin->AddClient(AdminContext(config.data_dir).get(), add, &client);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(client.hosting_state() == "PENDING");
  REQUIRE_FALSE(client.hosting_request_id().empty());
  REQUIRE(registry.registry().Approve(client.hosting_request_id(), "test-admin").ok());
  REQUIRE(WaitFor([&] {
    v1::StatusReport status = node->Status();
    return status.hosted_in_conf_size() == 1 &&
           FormatSubsystemId(status.hosted_in_conf(0)) == kSsSubsystem;
  }));
  v1::ClientList clients;
  REQUIRE(admin->ListClients(AdminContext(config.data_dir).get(), v1::SsEmpty(), &clients).ok());
  REQUIRE(clients.clients_size() == 1);
  CHECK(clients.clients(0).hosting_state() == "APPROVED");

  // The change is an ADMIN_ACTION record in the SS's audit log.
  audit::AuditLog* log = node->services().audit;
  REQUIRE(log != nullptr);
  REQUIRE(log->head_seq() >= 1);
  auto record = log->GetRecord(1);
  REQUIRE(record.ok());
  CHECK(record->record.kind() == v1::ADMIN_ACTION);
  CHECK(record->record.admin().action() == "client.add");
  CHECK(record->record.admin().subject() == std::string("subsystem:") + kSsSubsystem);

  // Status over the admin API: identity, certificates and expiry, configuration, registry.
  v1::StatusReport status;
  REQUIRE(admin->Status(AdminContext(config.data_dir).get(), v1::SsEmpty(), &status).ok());
  CHECK(FormatSecurityServerId(status.server()) == kSsServer);
  CHECK(status.instance() == kSsInstance);
  CHECK(status.certificates_size() == 3);
  for (const auto& cert : status.certificates()) {
    CHECK(cert.sha256().size() == 32);
    CHECK(cert.not_after_unix_nanos() > ToUnixNanosField(clock.Now()));
  }
  CHECK(status.conf_serial() == registry.conf_serial());
  CHECK(status.conf_expires_at_unix_nanos() > ToUnixNanosField(clock.Now()));
  CHECK_FALSE(status.conf_expired());
  CHECK(status.registry_reachable());
  CHECK(status.listed_in_conf());
  node->Shutdown();
}

TEST_CASE("Node: each port answers only its own services", "[ss][node][ports]") {
  TempDir dir;
  SimulatedClock clock(absl::Now());
  TestRegistry registry(dir.path(), &clock, {});
  REQUIRE(registry.registry().AddMember(ParseMemberId(kSsMember).value(), "Tax", "admin").ok());
  RunningSs ss(dir, clock, registry);
  ss::Node& node = *ss.node;
  REQUIRE(WaitFor([&] { return node.Status().listed_in_conf(); }));
  auto admin = AdminStub(node);

  SECTION("admin API without the token changes nothing") {
    v1::ClientAddRequest add;
    *add.mutable_id() = ParseSubsystemId(kSsSubsystem).value();
    add.set_auth_mode(v1::IS_AUTH_PLAINTEXT);
    add.set_skip_registry(true);
    grpc::ClientContext no_token;
    v1::LocalClient client;
    grpc::Status s = admin->AddClient(&no_token, add, &client);
    CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    grpc::ClientContext wrong_token;
    wrong_token.AddMetadata("x-darvoza-admin-token", std::string(64, '0'));
    CHECK(admin->AddClient(&wrong_token, add, &client).error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
    grpc::ClientContext no_token2;
    v1::MaintenanceRequest on;
    on.set_on(true);
    v1::SsEmpty empty;
    CHECK(admin->SetMaintenance(&no_token2, on, &empty).error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
    v1::ClientList clients;
    REQUIRE(admin->ListClients(AdminContext(ss.config.data_dir).get(), v1::SsEmpty(), &clients)
                .ok());
    CHECK(clients.clients_size() == 0);
    CHECK_FALSE(node.Status().maintenance());
    CHECK(node.services().audit->head_seq() == 0);  // nothing recorded either
  }

  SECTION("health on ops only; reflection on admin only") {
    auto ops = grpc::CreateChannel(node.addresses().ops, grpc::InsecureChannelCredentials());
    std::string response;
    // SERVING once the configuration is in (the health service follows within a second).
    REQUIRE(WaitFor([&] {
      return GenericUnary(ops, kHealthCheck, "", &response).ok() &&
             response == std::string("\x08\x01", 2);
    }));
    CHECK_FALSE(GenericUnary(ops, kReflection, kListServices, &response).ok());

    auto admin_channel =
        grpc::CreateChannel(node.addresses().admin, grpc::InsecureChannelCredentials());
    REQUIRE(GenericUnary(admin_channel, kReflection, kListServices, &response).ok());
    CHECK(response.find("darvoza.v1.SecurityServerAdmin") != std::string::npos);
    CHECK_FALSE(GenericUnary(admin_channel, kHealthCheck, "", &response).ok());

    auto client = grpc::CreateChannel(node.addresses().client, grpc::InsecureChannelCredentials());
    CHECK_FALSE(GenericUnary(client, kHealthCheck, "", &response).ok());
    CHECK_FALSE(GenericUnary(client, kReflection, kListServices, &response).ok());

    TestIdentity is = MakeTestIdentity("is:test");
    auto client_tls = TlsChannelWithIdentity(node.addresses().client_tls, is.key_pem, is.cert_pem);
    CHECK_FALSE(GenericUnary(client_tls, kHealthCheck, "", &response).ok());
    CHECK_FALSE(GenericUnary(client_tls, kReflection, kListServices, &response).ok());

    // The SS port with a certificate the configuration lists (this SS's own): the handshake
    // succeeds, and there is neither health nor reflection behind it: every path but the
    // exchange's is refused as an invalid message.
    auto key_pem = darvoza::ReadWholeFile(ss.config.data_dir + "/keys/auth.key").value();
    auto cert_pem = darvoza::ReadWholeFile(ss.config.data_dir + "/certs/auth.pem").value();
    auto peer = TlsChannelWithIdentity(node.addresses().ss, key_pem, cert_pem);
    CHECK(GenericUnary(peer, kHealthCheck, "", &response).error_code() ==
          grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(GenericUnary(peer, kReflection, kListServices, &response).error_code() ==
          grpc::StatusCode::INVALID_ARGUMENT);

    // Maintenance mode: the ops port's health says NOT_SERVING.
    v1::MaintenanceRequest on;
    on.set_on(true);
    v1::SsEmpty empty;
    REQUIRE(admin->SetMaintenance(AdminContext(ss.config.data_dir).get(), on, &empty).ok());
    REQUIRE(GenericUnary(ops, kHealthCheck, "", &response).ok());
    CHECK(response == std::string("\x08\x02", 2));  // NOT_SERVING
  }

  SECTION("the SS port refuses a peer the configuration does not list, and counts it") {
    auto ops = v1::SecurityServerOps::NewStub(
        grpc::CreateChannel(node.addresses().ops, grpc::InsecureChannelCredentials()));
    TestIdentity stranger = MakeTestIdentity("server:UZ/GOV/70000001/ss1");
    auto peer = TlsChannelWithIdentity(node.addresses().ss, stranger.key_pem, stranger.cert_pem);
    std::string response;
    CHECK(GenericUnary(peer, kHealthCheck, "", &response).error_code() ==
          grpc::StatusCode::UNAVAILABLE);
    grpc::ClientContext ctx;
    v1::SsMetricsText text;
    REQUIRE(ops->Metrics(&ctx, v1::SsMetricsRequest(), &text).ok());
    CHECK(text.text().find("darvoza_ss_handshake_refusals_total 0\n") == std::string::npos);
    CHECK(text.text().find("darvoza_ss_handshake_refusals_total") != std::string::npos);
    CHECK(text.text().find("darvoza_ss_certificate_expiry_seconds{kind=\"auth\"}") !=
          std::string::npos);
    CHECK(text.text().find("darvoza_ss_globalconf_expiry_seconds") != std::string::npos);
  }
  node.Shutdown();
}

}  // namespace
}  // namespace darvoza::testing
