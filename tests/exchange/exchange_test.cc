// The exchange end to end (issue 6): a registry, security servers of two members and the
// example agency backend, all real gRPC over loopback with real certificates and audit logs.
#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "adapters/examples/tax_registry_service.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"
#include "common/identifiers.h"
#include "proto/envelope.pb.h"
#include "proto/example_agency.grpc.pb.h"
#include "proto/exchange.grpc.pb.h"
#include "security_server/exchange/signed_message.h"
#include "security_server/global_conf_client.h"
#include "security_server/key_store.h"
#include "security_server/metrics.h"
#include "tests/exchange/federation.h"

namespace darvoza::testing {
namespace {

using examples::v1::TaxDebtReply;
using examples::v1::TaxDebtRequest;

constexpr char kTaxMember[] = "UZ/GOV/70000001";
constexpr char kTaxSubsystem[] = "UZ/GOV/70000001/tax-registry";
constexpr char kBenefitsMember[] = "UZ/GOV/70000002";
constexpr char kBenefitsSubsystem[] = "UZ/GOV/70000002/benefits";
constexpr char kGrpcService[] = "darvoza.examples.v1.TaxRegistry";

// The example backend on a loopback port.
class Backend {
 public:
  explicit Backend(const std::string& name) : service_(name) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    REQUIRE(server_ != nullptr);
  }
  ~Backend() { server_->Shutdown(); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int64_t hits() const { return service_.hits(); }
  const examples::TaxRegistryService& service() const { return service_; }

 private:
  examples::TaxRegistryService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

struct CallResult {
  grpc::Status status;
  std::string fault;
  std::string message_id;
  TaxDebtReply reply;
};

// An agency IS calling through its own SS with its ordinary generated stub.
CallResult CallTax(const std::string& ss_client_address, const std::string& client,
                   const std::string& service = kTaxSubsystem,
                   const std::string& person = "31234567890123") {
  auto stub = examples::v1::TaxRegistry::NewStub(
      grpc::CreateChannel(ss_client_address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-road-client", client);
  ctx.AddMetadata("x-road-service", service);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  TaxDebtRequest request;
  request.set_person_id(person);
  CallResult result;
  result.status = stub->GetTaxDebt(&ctx, request, &result.reply);
  auto fault = ctx.GetServerTrailingMetadata().find("x-road-error");
  if (fault != ctx.GetServerTrailingMetadata().end()) {
    result.fault = std::string(fault->second.data(), fault->second.size());
  }
  auto id = ctx.GetServerInitialMetadata().find("x-road-id");
  if (id != ctx.GetServerInitialMetadata().end()) {
    result.message_id = std::string(id->second.data(), id->second.size());
  }
  return result;
}

// Two members, each with its own SS; tax-registry offers the TaxRegistry service to benefits.
struct TwoAgencies {
  Federation fed;
  Backend backend{"tax-backend"};
  Federation::SecurityServer* provider = nullptr;
  Federation::SecurityServer* consumer = nullptr;

  explicit TwoAgencies(Clock* clock = nullptr) : fed("UZ", clock) {
    fed.AddMember(kTaxMember, "State Tax Committee");
    fed.AddMember(kBenefitsMember, "Ministry of Employment");
    fed.AddSubsystem(kTaxSubsystem);
    fed.AddSubsystem(kBenefitsSubsystem);
    provider = &fed.StartSecurityServer("UZ/GOV/70000001/ss1");
    consumer = &fed.StartSecurityServer("UZ/GOV/70000002/ss2");
    fed.Host(*provider, kTaxSubsystem);
    fed.Host(*consumer, kBenefitsSubsystem);
    fed.AddService(*provider, kTaxSubsystem, kGrpcService, backend.address());
    fed.Grant(*provider, absl::StrCat(kTaxSubsystem, "/", kGrpcService),
              absl::StrCat("subsystem:", kBenefitsSubsystem));
    fed.WaitForConfEverywhere();
  }
};

// The audit records of `ss` for one message id, by kind.
std::vector<v1::AuditRecordKind> RecordKinds(Federation::SecurityServer& ss,
                                             const std::string& message_id) {
  auto records = ss.node->services().audit->FindByMessageId(message_id);
  REQUIRE(records.ok());
  std::vector<v1::AuditRecordKind> kinds;
  for (const auto& r : *records) kinds.push_back(r.record.kind());
  return kinds;
}

// Every record of `ss`'s log, sealed, witnessed and verified offline with the anchor.
audit::VerifyReport VerifyLog(Federation& fed, Federation::SecurityServer& ss) {
  audit::AuditLog* log = ss.node->services().audit;
  REQUIRE(log->SealNow().ok());
  absl::Status witnessed = log->WitnessNow();
  INFO(witnessed.ToString());
  REQUIRE(witnessed.ok());
  audit::ExportOptions options;
  options.global_configurations.push_back(fed.registry().CurrentConf()->SerializeAsString());
  auto archive = log->Export(options);
  REQUIRE(archive.ok());
  auto verify = audit::VerifyOptionsFromAnchor(fed.anchor(), options.global_configurations);
  REQUIRE(verify.ok());
  return audit::VerifyArchive(*archive, *verify);
}

bool HasRefusal(Federation::SecurityServer& ss, const std::string& fault) {
  audit::AuditQuery query;
  auto records = ss.node->services().audit->Find(query);
  if (!records.ok()) return false;
  for (const auto& r : *records) {
    if (r.record.kind() == v1::REFUSAL && r.record.fault_code() == fault) return true;
  }
  return false;
}

TEST_CASE("Exchange: a client IS calls another agency's service through two SSs",
          "[exchange]") {
  TwoAgencies agencies;
  CallResult result = CallTax(agencies.consumer->client_address(), kBenefitsSubsystem);
  INFO(result.status.error_message() << " fault=" << result.fault);
  REQUIRE(result.status.ok());
  CHECK(result.reply.person_id() == "31234567890123");
  CHECK(result.reply.answered_by() == "tax-backend");
  CHECK(agencies.backend.hits() == 1);
  // The provider IS learns who asked from its SS, not from the client.
  CHECK(agencies.backend.service().last_client() == kBenefitsSubsystem);
  REQUIRE_FALSE(result.message_id.empty());

  CHECK(RecordKinds(*agencies.consumer, result.message_id) ==
        std::vector<v1::AuditRecordKind>{v1::REQUEST_OUT, v1::RESPONSE_IN});
  CHECK(RecordKinds(*agencies.provider, result.message_id) ==
        std::vector<v1::AuditRecordKind>{v1::REQUEST_IN, v1::RESPONSE_OUT});

  // A second call reuses the long-lived channel and gets its own message id.
  CallResult second = CallTax(agencies.consumer->client_address(), kBenefitsSubsystem);
  REQUIRE(second.status.ok());
  CHECK(second.message_id != result.message_id);
  CHECK(agencies.backend.hits() == 2);

  for (auto* ss : {agencies.consumer, agencies.provider}) {
    audit::VerifyReport report = VerifyLog(agencies.fed, *ss);
    INFO(ss->id << ": " << report.ToText());
    CHECK(report.ok);
    CHECK(report.records >= 4);
  }
}

TEST_CASE("Exchange: refusals on the consumer side carry their fault and are logged",
          "[exchange]") {
  TwoAgencies agencies;
  const std::string client_port = agencies.consumer->client_address();

  // Not hosted by this SS.
  CallResult not_hosted = CallTax(client_port, "UZ/GOV/70000002/other");
  CHECK(not_hosted.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(not_hosted.fault == "Client.NotAuthorized");
  CHECK(HasRefusal(*agencies.consumer, "Client.NotAuthorized"));

  // A malformed identifier.
  CallResult malformed = CallTax(client_port, "UZ/GOV/../benefits");
  CHECK(malformed.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(malformed.fault == "Client.InvalidIdentifier");

  // No SS hosts the service's subsystem.
  CallResult unknown = CallTax(client_port, kBenefitsSubsystem, "UZ/GOV/70000001/nothing-here");
  CHECK(unknown.status.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(unknown.fault == "Client.UnknownService");
  CHECK(HasRefusal(*agencies.consumer, "Client.UnknownService"));

  CHECK(agencies.backend.hits() == 0);
}

TEST_CASE("Exchange: the provider refuses calls without an access right or service",
          "[exchange]") {
  TwoAgencies agencies;
  agencies.fed.AddSubsystem("UZ/GOV/70000002/pensions");
  agencies.fed.Host(*agencies.consumer, "UZ/GOV/70000002/pensions");
  agencies.fed.WaitForConfEverywhere();

  CallResult denied = CallTax(agencies.consumer->client_address(), "UZ/GOV/70000002/pensions");
  CHECK(denied.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(denied.fault == "Server.ServerProxy.AccessDenied");
  CHECK(HasRefusal(*agencies.consumer, "Server.ServerProxy.AccessDenied"));
  CHECK(HasRefusal(*agencies.provider, "Server.ServerProxy.AccessDenied"));
  CHECK(agencies.backend.hits() == 0);

  // A member-wide right lets every subsystem of the member in.
  agencies.fed.Grant(*agencies.provider, absl::StrCat(kTaxSubsystem, "/", kGrpcService),
                     absl::StrCat("member:", kBenefitsMember));
  CallResult allowed = CallTax(agencies.consumer->client_address(), "UZ/GOV/70000002/pensions");
  CHECK(allowed.status.ok());
  CHECK(agencies.backend.hits() == 1);
}

}  // namespace
}  // namespace darvoza::testing
