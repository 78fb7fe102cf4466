#include "tests/security_server/ss_test_util.h"

#include <chrono>
#include <future>
#include <thread>

#include <catch2/catch.hpp>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/identifiers.h"
#include "registry/keys.h"
#include "security_server/admin_service.h"
#include "security_server/provisioning.h"

namespace darvoza::testing {

TestRegistry::TestRegistry(const std::string& dir, Clock* clock, const Options& options)
    : clock_(clock) {
  registry::InitOptions init;
  init.instance = kSsInstance;
  init.data_dir = dir + "/reg";
  init.registry_addresses = {"127.0.0.1:1"};  // the SSs are told the real port
  init.clock = clock;
  auto anchor = registry::InitRegistry(init);
  INFO(anchor.status().ToString());
  REQUIRE(anchor.ok());
  config_.data_dir = init.data_dir;
  config_.public_listen = "127.0.0.1:0";
  config_.ops_listen = "";
  config_.auto_approve = options.auto_approve;
  config_.auto_approve_renewals = true;
  config_.conf_validity = options.conf_validity;
  config_.cert_validity = options.cert_validity;
  Start();
}

TestRegistry::~TestRegistry() { Stop(); }

void TestRegistry::Start() {
  auto server = registry::RegistryServer::Start(config_, clock_);
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  server_ = std::move(*server);
  address_ = server_->addresses().public_address;
  config_.public_listen = address_;  // a restart binds the same port
}

void TestRegistry::Stop() {
  if (server_ != nullptr) server_->Shutdown();
  server_.reset();
}

std::string TestRegistry::anchor_file() const { return registry::AnchorPath(config_.data_dir); }

uint64_t TestRegistry::conf_serial() {
  v1::GlobalConf conf;
  REQUIRE(conf.ParseFromString(registry().CurrentConf()->conf()));
  return conf.serial();
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  absl::Time give_up = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

ss::SsConfig InitTestSecurityServer(const std::string& data_dir, TestRegistry& registry) {
  ss::InitOptions init;
  init.config.data_dir = data_dir;
  init.config.server_id = kSsServer;
  init.config.ss_listen = "127.0.0.1:0";
  init.config.ss_address = "127.0.0.1:5500";
  init.config.client_listen = "127.0.0.1:0";
  init.config.client_tls_listen = "127.0.0.1:0";
  init.config.ops_listen = "127.0.0.1:0";
  init.config.registry_addresses = {registry.address()};
  init.config.tls_refresh_seconds = 1;
  init.anchor_file = registry.anchor_file();
  absl::Status s = ss::InitSecurityServer(init);
  INFO(s.ToString());
  REQUIRE(s.ok());
  auto config = ss::LoadSsConfig(ss::SsConfigPath(data_dir));
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  return *config;
}

void RegisterAndApprove(const std::string& data_dir, TestRegistry& registry) {
  ss::RegisterOptions options;
  options.data_dir = data_dir;
  auto record = ss::RegisterSecurityServer(options);
  INFO(record.status().ToString());
  REQUIRE(record.ok());
  if (record->state() == v1::PENDING) {
    auto approved = registry.registry().Approve(record->id(), "test-admin");
    INFO(approved.status().ToString());
    REQUIRE(approved.ok());
    record = ss::RegisterSecurityServer(options);  // polls, stores the certificates
    INFO(record.status().ToString());
    REQUIRE(record.ok());
  }
  REQUIRE(record->state() == v1::APPROVED);
}

std::unique_ptr<v1::SecurityServerAdmin::Stub> AdminStub(const ss::Node& node) {
  return v1::SecurityServerAdmin::NewStub(
      grpc::CreateChannel(node.addresses().admin, grpc::InsecureChannelCredentials()));
}

std::unique_ptr<grpc::ClientContext> AdminContext(const std::string& data_dir) {
  auto context = std::make_unique<grpc::ClientContext>();
  auto token = ss::ReadAdminToken(data_dir);
  REQUIRE(token.ok());
  context->AddMetadata(ss::kAdminTokenHeader, *token);
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  return context;
}

grpc::Status GenericUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                          const std::string& request, std::string* response,
                          grpc::ClientContext* context) {
  grpc::ClientContext own;
  if (context == nullptr) context = &own;
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::GenericStub stub(channel);
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  stub.UnaryCall(context, method, grpc::StubOptions(), &request_buffer, &response_buffer,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status status = done.get_future().get();
  if (status.ok() && response != nullptr) {
    std::vector<grpc::Slice> slices;
    response_buffer.Dump(&slices);
    response->clear();
    for (const auto& s : slices) response->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return status;
}

TestIdentity MakeTestIdentity(const std::string& common_name) {
  TestIdentity id;
  id.key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
  crypto::IssueOptions options;
  options.serial = 1;
  options.not_before = absl::Now() - absl::Hours(1);
  options.not_after = absl::Now() + absl::Hours(24);
  options.profile = crypto::CertificateProfile::kTlsAuth;
  auto public_key = id.key->GetPublicKey();
  auto cert = crypto::IssueCertificate(*id.key, nullptr, *public_key, common_name, options);
  INFO(cert.status().ToString());
  REQUIRE(cert.ok());
  id.cert = *cert;
  id.key_pem = id.key->ToPem();
  id.cert_pem = id.cert->ToPem();
  return id;
}

std::shared_ptr<grpc::Channel> TlsChannelWithIdentity(const std::string& address,
                                                      const std::string& key_pem,
                                                      const std::string& cert_pem) {
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs = {{key_pem, cert_pem}};
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(pairs);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(false);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a fresh connection per channel
  return grpc::CreateCustomChannel(address, grpc::experimental::TlsCredentials(options), args);
}

std::string PeerCertSha256(const grpc::ClientContext& context) {
  auto auth = context.auth_context();
  if (auth == nullptr) return "";
  auto pems = auth->FindPropertyValues("x509_pem_cert");
  if (pems.empty()) return "";
  auto cert = crypto::Certificate::FromPem(absl::string_view(pems[0].data(), pems[0].size()));
  return cert.ok() ? (*cert)->sha256() : "";
}

std::string FaultOfCall(const grpc::ClientContext& context) {
  return ObservedFault(context.GetServerTrailingMetadata());
}

}  // namespace darvoza::testing
