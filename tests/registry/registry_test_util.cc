#include "tests/registry/registry_test_util.h"

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/signer.h"
#include "common/identifiers.h"
#include "registry/client.h"
#include "registry/keys.h"

namespace darvoza::testing {

std::string BuildDir() {
  const char* dir = std::getenv("DARVOZA_BUILD_DIR");
  return dir != nullptr ? std::string(dir) : std::string(DARVOZA_TEST_BUILD_DIR);
}

namespace {
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
}  // namespace

CommandResult RunDarvozaCli(const std::vector<std::string>& args) {
  std::vector<std::string> quoted;
  for (const auto& a : args) quoted.push_back(Quote(a));
  std::string command = absl::StrCat(Quote(BuildDir() + "/tools/darvoza"), " ",
                                     absl::StrJoin(quoted, " "), " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

RegistryHarness::RegistryHarness(const Options& options)
    : options_(options), clock_(absl::Now()) {
  registry::InitOptions init;
  init.instance = kInstance;
  init.data_dir = dir_.path() + "/reg";
  init.registry_addresses = {"127.0.0.1:4400"};
  init.clock = &clock_;
  auto anchor = registry::InitRegistry(init);
  REQUIRE(anchor.ok());
  anchor_ = *anchor;
  config_.data_dir = init.data_dir;
  config_.public_listen = "127.0.0.1:0";
  config_.ops_listen = "127.0.0.1:0";
  config_.auto_approve = options.auto_approve;
  config_.auto_approve_renewals = options.auto_approve_renewals;
  config_.conf_validity = options.conf_validity;
  config_.max_pending_requests = options.max_pending_requests;
  auto token = registry::ReadAdminToken(registry::AdminTokenPath(init.data_dir));
  REQUIRE(token.ok());
  token_ = *token;
  Start();
}

RegistryHarness::~RegistryHarness() { Stop(); }

void RegistryHarness::Start() {
  auto server = registry::RegistryServer::Start(config_, &clock_);
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  server_ = std::move(*server);
}

void RegistryHarness::Stop() {
  if (server_) server_->Shutdown();
  server_.reset();
}

std::unique_ptr<v1::Registration::Stub> RegistryHarness::RegistrationStub() {
  return v1::Registration::NewStub(
      registry::MakeRegistryChannel(anchor_, server_->addresses().public_address));
}
std::unique_ptr<v1::GlobalConfService::Stub> RegistryHarness::ConfStub() {
  return v1::GlobalConfService::NewStub(
      registry::MakeRegistryChannel(anchor_, server_->addresses().public_address));
}
std::unique_ptr<v1::Witness::Stub> RegistryHarness::WitnessStub() {
  return v1::Witness::NewStub(
      registry::MakeRegistryChannel(anchor_, server_->addresses().public_address));
}
std::unique_ptr<v1::RegistryAdmin::Stub> RegistryHarness::AdminStub() {
  return v1::RegistryAdmin::NewStub(registry::MakeAdminChannel(server_->addresses().admin_address));
}

std::unique_ptr<grpc::ClientContext> RegistryHarness::AdminContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  registry::AddAdminToken(context.get(), token_);
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return context;
}

void RegistryHarness::AddMember(const std::string& member) {
  v1::AdminMemberRequest request;
  *request.mutable_id() = ParseMemberId(member).value();
  request.set_name("Member " + member);
  v1::AdminEmpty empty;
  auto context = AdminContext();
  grpc::Status status = AdminStub()->AddMember(context.get(), request, &empty);
  INFO(status.error_message());
  REQUIRE(status.ok());
}

v1::RequestRecord RegistryHarness::Approve(const std::string& request_id) {
  v1::AdminDecision decision;
  decision.set_request_id(request_id);
  v1::RequestRecord record;
  auto context = AdminContext();
  grpc::Status status = AdminStub()->ApproveRequest(context.get(), decision, &record);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return record;
}

v1::SignedGlobalConf RegistryHarness::GetConf() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::SignedGlobalConf conf;
  grpc::Status status = ConfStub()->Get(&context, v1::GetConfRequest(), &conf);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return conf;
}

FakeSecurityServer::FakeSecurityServer(const std::string& id_text) {
  id = ParseSecurityServerId(id_text).value();
  auth_key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
  seal_key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
  signing_key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
}

v1::SubmitRequest FakeSecurityServer::RegistrationRequest(bool with_signing) const {
  std::string server_cn = "server:" + FormatSecurityServerId(id);
  v1::ServerRegistration reg;
  *reg.mutable_server() = id;
  reg.set_address("127.0.0.1:5500");
  auto* auth = reg.add_csrs();
  auth->set_kind(v1::CERT_KIND_AUTH);
  auth->set_csr(crypto::CertificateRequest::Create(*auth_key, server_cn).value()->der());
  auto* seal = reg.add_csrs();
  seal->set_kind(v1::CERT_KIND_SEAL);
  seal->set_csr(crypto::CertificateRequest::Create(*seal_key, server_cn).value()->der());
  if (with_signing) {
    auto* sign = reg.add_csrs();
    sign->set_kind(v1::CERT_KIND_SIGNING);
    *sign->mutable_member() = id.owner();
    sign->set_csr(crypto::CertificateRequest::Create(
                      *signing_key, "member:" + FormatMemberId(id.owner()))
                      .value()
                      ->der());
  }
  v1::SubmitRequest request;
  request.set_server_registration(reg.SerializeAsString());
  return request;
}

v1::SubmitRequest FakeSecurityServer::RenewalRequest(const crypto::PrivateKey& current_auth_key) {
  auth_key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
  seal_key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
  v1::SubmitRequest request = RegistrationRequest(/*with_signing=*/false);
  SignRenewal(&request, current_auth_key);
  return request;
}

void SignRenewal(v1::SubmitRequest* request, const crypto::PrivateKey& current_auth_key) {
  request->set_renewal_signature(
      current_auth_key
          .SignRaw(crypto::SignedBytes(crypto::SignatureContext::kRegistration,
                                       request->server_registration()))
          .value());
}

grpc::Status RegistryHarness::Submit(const v1::SubmitRequest& request, v1::RequestRecord* out,
                                     std::string* fault) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status status = RegistrationStub()->Submit(&context, request, out);
  if (fault != nullptr) *fault = FaultOf(context);
  return status;
}

v1::SubmitRequest FakeSecurityServer::HostingRequest(const std::string& subsystem) const {
  v1::SubmitRequest request;
  *request.mutable_hosting()->mutable_server() = id;
  *request.mutable_hosting()->mutable_subsystem() = ParseSubsystemId(subsystem).value();
  return request;
}

v1::SignedSeal FakeSecurityServer::MakeSeal(uint64_t first, uint64_t last, const std::string& head,
                                            uint64_t prev_seq, const std::string& prev_head,
                                            const std::string& seal_cert_der) const {
  v1::Seal seal;
  *seal.mutable_server() = id;
  seal.set_first_seq(first);
  seal.set_last_seq(last);
  seal.set_merkle_root(Hash32('m'));
  seal.set_chain_head(head);
  seal.set_previous_witnessed_seq(prev_seq);
  seal.set_previous_witnessed_head(prev_head);
  seal.set_sealed_at_unix_nanos(absl::ToUnixNanos(absl::Now()));
  v1::SignedSeal signed_seal;
  signed_seal.set_seal(seal.SerializeAsString());
  signed_seal.set_signature(
      seal_key->SignRaw(crypto::SignedBytes(crypto::SignatureContext::kSeal, signed_seal.seal()))
          .value());
  signed_seal.set_signer_cert_der(seal_cert_der);
  return signed_seal;
}

std::shared_ptr<const crypto::Certificate> CertOf(const v1::RequestRecord& record,
                                                  v1::CertKind kind) {
  for (const auto& c : record.certificates()) {
    if (c.kind() == kind) {
      auto cert = crypto::Certificate::FromDer(c.cert_der());
      REQUIRE(cert.ok());
      return *cert;
    }
  }
  FAIL("no certificate of kind " << v1::CertKind_Name(kind));
  return nullptr;
}

std::string FaultOf(const grpc::ClientContext& context) {
  return ObservedFault(context.GetServerTrailingMetadata());
}

v1::GlobalConf Decode(const v1::SignedGlobalConf& signed_conf) {
  v1::GlobalConf conf;
  REQUIRE(conf.ParseFromString(signed_conf.conf()));
  return conf;
}

std::string Hash32(char c) { return std::string(32, c); }

}  // namespace darvoza::testing
