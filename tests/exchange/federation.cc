#include "tests/exchange/federation.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "common/identifiers.h"
#include "common/tls.h"
#include "registry/client.h"
#include "registry/config.h"
#include "registry/keys.h"
#include "security_server/global_conf_client.h"
#include "security_server/provisioning.h"

namespace darvoza::testing {

int PickFreePort() {
  // tools/free-ports holds the one rule: below the ephemeral range, where no outgoing
  // connection of a test running beside this one can take the port before the SS binds it.
  const char* source_dir = std::getenv("DARVOZA_SOURCE_DIR");
  REQUIRE(source_dir != nullptr);
  const std::string command = absl::StrCat(source_dir, "/tools/free-ports 1");
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char line[32] = {};
  const bool read = std::fgets(line, sizeof(line), pipe) != nullptr;
  const int exit_status = pclose(pipe);
  REQUIRE(read);
  REQUIRE(exit_status == 0);
  int port = 0;
  REQUIRE(absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &port));
  return port;
}

Federation::Federation(const std::string& instance, Clock* clock)
    : clock_(clock != nullptr ? clock : Clock::Real()), instance_(instance) {
  RestrictTlsToVersion13();  // before the process's first TLS credentials (common/tls.h)
  registry::InitOptions init;
  init.instance = instance;
  init.data_dir = dir_.File("registry");
  init.registry_addresses = {"127.0.0.1:1"};  // replaced below by the bound address
  init.public_listen = "127.0.0.1:0";
  init.auto_approve = true;
  init.clock = clock_;
  auto anchor = registry::InitRegistry(init);
  REQUIRE(anchor.ok());
  auto config = registry::LoadRegistryConfig(registry::ConfigPath(init.data_dir));
  REQUIRE(config.ok());
  config->public_listen = "127.0.0.1:0";
  config->ops_listen = "";
  config->auto_approve = true;
  auto server = registry::RegistryServer::Start(*config, clock_);
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  registry_server_ = *std::move(server);
  anchor_ = *anchor;
  anchor_.clear_registry_addresses();
  anchor_.add_registry_addresses(registry_address());
  anchor_file_ = dir_.File("anchor.bin");
  REQUIRE(registry::WriteAnchorFile(anchor_file_, anchor_).ok());
}

Federation::~Federation() {
  for (auto& [id, ss] : servers_) {
    if (ss->node != nullptr) ss->node->Shutdown();
  }
  servers_.clear();
  if (registry_server_ != nullptr) registry_server_->Shutdown();
}

void Federation::AddMember(const std::string& member, const std::string& name) {
  auto id = ParseMemberId(member);
  REQUIRE(id.ok());
  absl::Status added = registry().AddMember(*id, name, "test");
  INFO(added.ToString());
  REQUIRE(added.ok());
}

void Federation::AddSubsystem(const std::string& subsystem) {
  auto id = ParseSubsystemId(subsystem);
  REQUIRE(id.ok());
  absl::Status added = registry().AddSubsystem(*id, "test");
  INFO(added.ToString());
  REQUIRE(added.ok());
}

Federation::SecurityServer& Federation::StartSecurityServer(const std::string& server_id,
                                                            std::vector<std::string> members,
                                                            int ss_port) {
  auto ss = std::make_unique<SecurityServer>();
  ss->id = server_id;
  ss->data_dir = dir_.File(absl::StrReplaceAll(server_id, {{"/", "_"}}));
  ss->config.data_dir = ss->data_dir;
  ss->config.server_id = server_id;
  ss->config.ss_listen = absl::StrCat("127.0.0.1:", ss_port != 0 ? ss_port : PickFreePort());
  ss->config.client_listen = "127.0.0.1:0";
  ss->config.client_tls_listen = "127.0.0.1:0";
  ss->config.rest_listen = "127.0.0.1:0";
  ss->config.rest_tls_listen = "127.0.0.1:0";
  ss->config.ops_listen = "127.0.0.1:0";
  ss->config.registry_addresses = {registry_address()};
  ss->config.conf_poll_interval = absl::Hours(1);
  ss::InitOptions init;
  init.config = ss->config;
  init.anchor_file = anchor_file_;
  init.members = std::move(members);
  absl::Status initialised = ss::InitSecurityServer(init);
  INFO(initialised.ToString());
  REQUIRE(initialised.ok());

  ss::RegisterOptions reg;
  reg.data_dir = ss->data_dir;
  reg.registry_addresses = {registry_address()};
  reg.wait = absl::Seconds(20);
  reg.poll_interval = absl::Milliseconds(100);
  auto record = ss::RegisterSecurityServer(reg);
  INFO(record.status().ToString());
  REQUIRE(record.ok());
  REQUIRE(record->state() == v1::APPROVED);

  auto node = ss::Node::Start(ss->config, clock_);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  ss->node = *std::move(node);
  auto token = ss::ReadAdminToken(ss->data_dir);
  REQUIRE(token.ok());
  ss->admin_token = *token;
  ss->admin = v1::SecurityServerAdmin::NewStub(
      registry::MakeAdminChannel(ss->node->addresses().admin));
  SecurityServer& ref = *ss;
  servers_[server_id] = std::move(ss);
  return ref;
}

void Federation::StopSecurityServer(SecurityServer& ss) {
  if (ss.node != nullptr) ss.node->Shutdown();
  ss.node.reset();
}

void Federation::RestartSecurityServer(SecurityServer& ss) {
  StopSecurityServer(ss);
  auto node = ss::Node::Start(ss.config, clock_);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  ss.node = *std::move(node);
  ss.admin = v1::SecurityServerAdmin::NewStub(
      registry::MakeAdminChannel(ss.node->addresses().admin));
}

std::unique_ptr<grpc::ClientContext> Federation::AdminContext(const SecurityServer& ss) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  registry::AddAdminToken(ctx.get(), ss.admin_token);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return ctx;
}

void Federation::Host(SecurityServer& ss, const std::string& subsystem,
                      const std::string& tls_pin) {
  v1::ClientAddRequest request;
  auto id = ParseSubsystemId(subsystem);
  REQUIRE(id.ok());
  *request.mutable_id() = *id;
  if (tls_pin.empty()) {
    request.set_auth_mode(v1::IS_AUTH_PLAINTEXT);
  } else {
    request.set_auth_mode(v1::IS_AUTH_TLS);
    request.add_cert_sha256(tls_pin);
  }
  v1::LocalClient reply;
  auto ctx = AdminContext(ss);
  grpc::Status status = ss.admin->AddClient(ctx.get(), request, &reply);
  INFO(status.error_message());
  REQUIRE(status.ok());
}

void Federation::AddService(SecurityServer& ss, const std::string& subsystem,
                            const std::string& service_code, const std::string& backend_address) {
  AddServiceAt(ss, subsystem, service_code, absl::StrCat("grpc://", backend_address));
}

void Federation::AddServiceAt(SecurityServer& ss, const std::string& subsystem,
                              const std::string& service_code, const std::string& backend,
                              int timeout_millis) {
  v1::LocalService service;
  auto id = ParseServiceId(absl::StrCat(subsystem, "/", service_code));
  REQUIRE(id.ok());
  *service.mutable_id() = *id;
  service.set_backend(backend);
  service.set_timeout_millis(timeout_millis);
  v1::SsEmpty reply;
  auto ctx = AdminContext(ss);
  grpc::Status status = ss.admin->AddService(ctx.get(), service, &reply);
  INFO(status.error_message());
  REQUIRE(status.ok());
}

namespace {

v1::AclRequest AclRequestFor(const std::string& service, const std::string& subject) {
  v1::AclRequest request;
  auto service_id = ParseServiceId(service);
  REQUIRE(service_id.ok());
  auto subject_id = ParseAclSubject(subject);
  REQUIRE(subject_id.ok());
  *request.mutable_entry()->mutable_service() = *service_id;
  *request.mutable_entry()->mutable_subject() = *subject_id;
  return request;
}

}  // namespace

void Federation::Grant(SecurityServer& ss, const std::string& service,
                       const std::string& subject) {
  v1::SsEmpty reply;
  auto ctx = AdminContext(ss);
  grpc::Status status =
      ss.admin->GrantAccess(ctx.get(), AclRequestFor(service, subject), &reply);
  INFO(status.error_message());
  REQUIRE(status.ok());
}

void Federation::Revoke(SecurityServer& ss, const std::string& service,
                        const std::string& subject) {
  v1::SsEmpty reply;
  auto ctx = AdminContext(ss);
  grpc::Status status =
      ss.admin->RevokeAccess(ctx.get(), AclRequestFor(service, subject), &reply);
  INFO(status.error_message());
  REQUIRE(status.ok());
}

audit::VerifyReport Federation::VerifyAuditLog(SecurityServer& ss) {
  audit::AuditLog* log = ss.node->services().audit;
  REQUIRE(log->SealNow().ok());
  absl::Status witnessed = log->WitnessNow();
  INFO(witnessed.ToString());
  REQUIRE(witnessed.ok());
  audit::ExportOptions options;
  options.global_configurations.push_back(registry().CurrentConf()->SerializeAsString());
  auto archive = log->Export(options);
  REQUIRE(archive.ok());
  auto verify = audit::VerifyOptionsFromAnchor(anchor(), options.global_configurations);
  REQUIRE(verify.ok());
  return audit::VerifyArchive(*archive, *verify);
}

void Federation::StopRegistry() { registry_server_->Shutdown(); }

void Federation::WaitForConfEverywhere() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (true) {
    auto current = registry().CurrentConf();
    REQUIRE(current != nullptr);
    v1::GlobalConf conf;
    REQUIRE(conf.ParseFromString(current->conf()));
    bool all = true;
    for (auto& [id, ss] : servers_) {
      if (ss->node == nullptr) continue;
      auto have = ss->node->services().conf->Current();
      if (!have.ok() || (*have)->serial() < conf.serial()) all = false;
    }
    if (all) return;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace darvoza::testing
