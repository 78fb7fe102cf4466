// The exchange end to end: a registry, security servers of two members and the
// example agency backend, all real gRPC over loopback with real certificates and audit logs.
#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <algorithm>
#include <atomic>
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
#include "security_server/exchange/consumer.h"
#include "security_server/exchange/signed_message.h"
#include "security_server/global_conf_client.h"
#include "security_server/key_store.h"
#include "security_server/metrics.h"
#include "tests/exchange/two_agencies.h"

namespace darvoza::testing {
namespace {

using examples::v1::TaxDebtReply;
using examples::v1::TaxDebtRequest;

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
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto stub = examples::v1::TaxRegistry::NewStub(grpc::CreateCustomChannel(
      ss_client_address, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-road-client", client);
  ctx.AddMetadata("x-road-service", service);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  TaxDebtRequest request;
  request.set_person_id(person);
  CallResult result;
  result.status = stub->GetTaxDebt(&ctx, request, &result.reply);
  result.fault = ObservedFault(ctx.GetServerTrailingMetadata());
  auto id = ctx.GetServerInitialMetadata().find("x-road-id");
  if (id != ctx.GetServerInitialMetadata().end()) {
    result.message_id = std::string(id->second.data(), id->second.size());
  }
  return result;
}

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
  return fed.VerifyAuditLog(ss);
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
  // Both SSs count the exchanges under the identities they verified (docs/operator.md §7).
  for (auto [ss, role] : {std::pair{agencies.consumer, "consumer"},
                          std::pair{agencies.provider, "provider"}}) {
    std::string text = ss->node->services().metrics->RenderText();
    INFO(text);
    CHECK(text.find(absl::StrCat("darvoza_ss_exchanges_total{client=\"", kBenefitsSubsystem,
                                 "\",fault=\"none\",role=\"", role, "\",service=\"",
                                 kTaxSubsystem, "/")) != std::string::npos);
  }

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

// A self-signed IS certificate and its key, written to `dir`; returns the cert's SHA-256.
std::string MakeIsIdentity(const TempDir& dir, const std::string& name, absl::Time now) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  REQUIRE(key.ok());
  auto cert = crypto::IssueCertificate(**key, nullptr, *(*key)->GetPublicKey(), name,
                                       {.serial = 1, .not_before = now - absl::Hours(1),
                                        .not_after = now + absl::Hours(24),
                                        .profile = crypto::CertificateProfile::kRootCa});
  REQUIRE(cert.ok());
  REQUIRE((*key)->SaveToFile(dir.File(name + ".key")).ok());
  WriteFileForTest(dir.File(name + ".pem"), (*cert)->ToPem());
  return (*cert)->sha256();
}

CallResult CallTaxOverTls(const std::string& address, const TempDir& dir,
                          const std::string& identity, const std::string& client) {
  auto stub = examples::v1::TaxRegistry::NewStub(
      TlsChannelAs(dir.File(identity + ".key"), dir.File(identity + ".pem"), address));
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-road-client", client);
  ctx.AddMetadata("x-road-service", kTaxSubsystem);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  TaxDebtRequest request;
  request.set_person_id("42");
  CallResult result;
  result.status = stub->GetTaxDebt(&ctx, request, &result.reply);
  result.fault = ObservedFault(ctx.GetServerTrailingMetadata());
  return result;
}

TEST_CASE("Exchange: an IS on the mTLS client port must present its pinned certificate",
          "[exchange][tls]") {
  TwoAgencies agencies;
  TempDir dir;
  const absl::Time now = agencies.fed.clock()->Now();
  const std::string pinned = MakeIsIdentity(dir, "pinned-is", now);
  MakeIsIdentity(dir, "other-is", now);
  const std::string secure = "UZ/GOV/70000002/secure";
  agencies.fed.AddSubsystem(secure);
  agencies.fed.Host(*agencies.consumer, secure, pinned);
  agencies.fed.Grant(*agencies.provider, absl::StrCat(kTaxSubsystem, "/", kGrpcService),
                     absl::StrCat("subsystem:", secure));
  agencies.fed.WaitForConfEverywhere();

  const std::string port = agencies.consumer->client_tls_address();
  CallResult good = CallTaxOverTls(port, dir, "pinned-is", secure);
  INFO(good.status.error_message() << " " << good.fault);
  CHECK(good.status.ok());
  CHECK(agencies.backend.hits() == 1);

  CallResult bad = CallTaxOverTls(port, dir, "other-is", secure);
  CHECK(bad.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(bad.fault == "Server.ClientProxy.SslAuthenticationFailed");
  CHECK(HasRefusal(*agencies.consumer, "Server.ClientProxy.SslAuthenticationFailed"));
  // A TLS-mode subsystem is refused on the plaintext port too.
  CallResult plaintext = CallTax(agencies.consumer->client_address(), secure);
  CHECK(plaintext.fault == "Server.ClientProxy.SslAuthenticationFailed");
  CHECK(agencies.backend.hits() == 1);
}

TEST_CASE("Exchange: an expired global configuration stops exchanges", "[exchange]") {
  SimulatedClock clock(absl::Now());
  TwoAgencies agencies(&clock);
  REQUIRE(CallTax(agencies.consumer->client_address(), kBenefitsSubsystem).status.ok());
  // Without the registry no newer configuration can arrive; past expires_at the SS refuses.
  agencies.fed.StopRegistry();
  clock.Advance(absl::Minutes(11));
  CallResult expired = CallTax(agencies.consumer->client_address(), kBenefitsSubsystem);
  CHECK(expired.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(expired.fault == "Server.ClientProxy.ConfigurationExpired");
  CHECK(HasRefusal(*agencies.consumer, "Server.ClientProxy.ConfigurationExpired"));
  CHECK(agencies.backend.hits() == 1);
}

TEST_CASE("Exchange: a revoked consumer SS is refused in the provider's handshake",
          "[exchange][tls]") {
  TwoAgencies agencies;
  REQUIRE(CallTax(agencies.consumer->client_address(), kBenefitsSubsystem).status.ok());
  ss::MetricsRegistry* metrics = agencies.provider->node->services().metrics;
  const double before = metrics->Get("darvoza_ss_handshake_refusals_total");
  REQUIRE(agencies.fed.registry()
              .RevokeServer(*ParseSecurityServerId(agencies.consumer->id), "test")
              .ok());
  agencies.fed.WaitForConfEverywhere();
  // The consumer itself no longer finds its hosting in the configuration: it refuses at once
  // and sends nothing.
  CallResult refused = CallTax(agencies.consumer->client_address(), kBenefitsSubsystem);
  INFO(refused.status.error_message());
  CHECK(refused.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(refused.fault == "Client.NotAuthorized");
  CHECK(HasRefusal(*agencies.consumer, "Client.NotAuthorized"));
  // A revoked SS that connects anyway (with its old identity) needs a new handshake, which
  // the provider's verifier refuses.
  auto channel = TlsChannelAs(agencies.consumer->node->services().keys->AuthKeyPath(),
                              agencies.consumer->node->services().keys->AuthCertPath(),
                              agencies.provider->node->addresses().ss);
  auto stub = v1::SecurityServerExchange::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::SignedMessage empty;
  v1::SignedMessage response;
  grpc::Status handshake = stub->Call(&ctx, empty, &response);
  CHECK(handshake.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(metrics->Get("darvoza_ss_handshake_refusals_total") > before);
  CHECK(agencies.backend.hits() == 1);
}

TEST_CASE("Exchange: a provider address answered by another SS is refused by the consumer",
          "[exchange][tls]") {
  TwoAgencies agencies;
  REQUIRE(CallTax(agencies.consumer->client_address(), kBenefitsSubsystem).status.ok());
  // Another registered SS takes over the provider's SS-to-SS address.
  const std::string address = agencies.provider->config.ss_listen;
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  agencies.fed.AddMember("UZ/COM/80000001", "A company");
  agencies.fed.StopSecurityServer(*agencies.provider);
  agencies.fed.StartSecurityServer("UZ/COM/80000001/ss3", {}, port);
  agencies.fed.WaitForConfEverywhere();
  CallResult impostor = CallTax(agencies.consumer->client_address(), kBenefitsSubsystem);
  INFO(impostor.status.error_message());
  CHECK(impostor.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(impostor.fault == "Server.ClientProxy.SslAuthenticationFailed");
  CHECK(HasRefusal(*agencies.consumer, "Server.ClientProxy.SslAuthenticationFailed"));
  CHECK(agencies.backend.hits() == 1);
}

TEST_CASE("Exchange: new calls fail over to another provider SS, and nothing runs twice",
          "[exchange][failover]") {
  TwoAgencies agencies;
  // A second SS of the tax member hosts the same subsystem.
  auto& second = agencies.fed.StartSecurityServer("UZ/GOV/70000001/ss1b");
  agencies.fed.Host(second, kTaxSubsystem);
  agencies.fed.AddService(second, kTaxSubsystem, kGrpcService, agencies.backend.address());
  agencies.fed.Grant(second, absl::StrCat(kTaxSubsystem, "/", kGrpcService),
                     absl::StrCat("subsystem:", kBenefitsSubsystem));
  agencies.fed.WaitForConfEverywhere();

  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  std::atomic<bool> stop{false};
  std::atomic<int> answered_after_kill{0};
  std::atomic<bool> killed{false};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        CallResult r = CallTax(agencies.consumer->client_address(), kBenefitsSubsystem);
        if (r.status.ok()) {
          ++answered;
          if (killed.load()) ++answered_after_kill;
        } else {
          ++failed;
        }
      }
    });
  }
  auto wait_for = [&](int n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (answered.load() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  wait_for(20);
  agencies.fed.StopSecurityServer(*agencies.provider);
  killed = true;
  const int at_kill = answered.load();
  wait_for(at_kill + 40);
  stop = true;
  for (auto& t : clients) t.join();
  INFO("answered " << answered << ", failed " << failed << ", after kill "
                   << answered_after_kill);
  CHECK(answered_after_kill >= 30);
  // Nothing was executed twice: every backend hit is one answered call.
  CHECK(agencies.backend.hits() == answered.load());
}

TEST_CASE("Exchange: metadata services list clients, services, rights and descriptions",
          "[exchange][metadata]") {
  TwoAgencies agencies;
  auto stub = v1::Metadata::NewStub(grpc::CreateChannel(agencies.consumer->client_address(),
                                                        grpc::InsecureChannelCredentials()));
  auto context = [](const std::string& client, const std::string& service) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("x-road-client", client);
    if (!service.empty()) ctx->AddMetadata("x-road-service", service);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return ctx;
  };

  // ListClients: answered by the client's own SS from the global configuration.
  v1::MetadataClientList clients;
  auto ctx = context(kBenefitsSubsystem, "");
  grpc::Status status = stub->ListClients(ctx.get(), v1::MetadataClientsRequest(), &clients);
  INFO(status.error_message());
  REQUIRE(status.ok());
  std::vector<std::string> names;
  for (const auto& c : clients.clients()) names.push_back(FormatSubsystemId(c.id()));
  CHECK(std::find(names.begin(), names.end(), kTaxSubsystem) != names.end());
  CHECK(std::find(names.begin(), names.end(), kBenefitsSubsystem) != names.end());

  // ListServices and AllowedServices: answered by the provider's SS.
  v1::MetadataServiceList services;
  ctx = context(kBenefitsSubsystem, kTaxSubsystem);
  status = stub->ListServices(ctx.get(), v1::MetadataServicesRequest(), &services);
  INFO(status.error_message());
  REQUIRE(status.ok());
  REQUIRE(services.services_size() == 1);
  CHECK(services.services(0).id().service_code() == kGrpcService);

  agencies.fed.AddSubsystem("UZ/GOV/70000002/pensions");
  agencies.fed.Host(*agencies.consumer, "UZ/GOV/70000002/pensions");
  agencies.fed.WaitForConfEverywhere();
  v1::MetadataServiceList allowed;
  ctx = context("UZ/GOV/70000002/pensions", kTaxSubsystem);
  status = stub->AllowedServices(ctx.get(), v1::MetadataServicesRequest(), &allowed);
  REQUIRE(status.ok());
  CHECK(allowed.services_size() == 0);
  ctx = context(kBenefitsSubsystem, kTaxSubsystem);
  status = stub->AllowedServices(ctx.get(), v1::MetadataServicesRequest(), &allowed);
  REQUIRE(status.ok());
  CHECK(allowed.services_size() == 1);

  // GetServiceDescription: needs the right to call the service.
  v1::ServiceDescriptionRequest request;
  request.set_service_code(kGrpcService);
  v1::ServiceDescription description;
  ctx = context(kBenefitsSubsystem, kTaxSubsystem);
  status = stub->GetServiceDescription(ctx.get(), request, &description);
  CHECK(status.ok());
  CHECK(description.id().service_code() == kGrpcService);
  ctx = context("UZ/GOV/70000002/pensions", kTaxSubsystem);
  status = stub->GetServiceDescription(ctx.get(), request, &description);
  CHECK(status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(agencies.backend.hits() == 0);
}

// Installs an outgoing-request hook for one scope (what lies between the two SSs).
class WireHook {
 public:
  explicit WireHook(std::function<void(v1::SignedMessage&)> hook) {
    ss::exchange::SetOutgoingRequestHookForTest(std::move(hook));
  }
  ~WireHook() { ss::exchange::SetOutgoingRequestHookForTest(nullptr); }
};

TEST_CASE("Exchange: refusals between the SSs reach the client and the consumer's log",
          "[exchange][provider]") {
  TwoAgencies agencies;
  const std::string port = agencies.consumer->client_address();
  auto identity = agencies.consumer->node->services().keys->SigningSigner(
      *ParseMemberId(kBenefitsMember));
  REQUIRE(identity.ok());
  // Changes the envelope and signs it again, as a consumer with a wrong clock or target would.
  auto resign = [&](v1::SignedMessage& message, const std::function<void(v1::Envelope&)>& change,
                    crypto::SignatureContext context) {
    v1::Envelope envelope;
    REQUIRE(envelope.ParseFromString(message.envelope()));
    change(envelope);
    auto signed_message =
        ss::exchange::SignMessage(*identity, context, envelope.SerializeAsString(), message.body());
    REQUIRE(signed_message.ok());
    message = *signed_message;
  };
  auto expect = [&](const std::string& fault, grpc::StatusCode code) {
    CallResult result = CallTax(port, kBenefitsSubsystem);
    INFO("expected " << fault << ", got " << result.fault << ": "
                     << result.status.error_message());
    CHECK(result.status.error_code() == code);
    CHECK(result.fault == fault);
    CHECK(HasRefusal(*agencies.consumer, fault));
  };

  {
    WireHook tamper([](v1::SignedMessage& m) {
      v1::Envelope envelope;
      envelope.ParseFromString(m.envelope());
      envelope.set_user_id("someone-else");
      m.set_envelope(envelope.SerializeAsString());
    });
    expect("Server.ServerProxy.InvalidSignature", grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    WireHook other_context([&](v1::SignedMessage& m) {
      resign(m, [](v1::Envelope&) {}, crypto::SignatureContext::kResponse);
    });
    expect("Server.ServerProxy.InvalidSignature", grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    WireHook stale([&](v1::SignedMessage& m) {
      resign(m,
             [&](v1::Envelope& e) {
               e.set_created_at_unix_nanos(
                   absl::ToUnixNanos(agencies.fed.clock()->Now() - absl::Minutes(10)));
             },
             crypto::SignatureContext::kRequest);
    });
    expect("Server.ServerProxy.ReplayedMessage", grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    WireHook elsewhere([&](v1::SignedMessage& m) {
      resign(m,
             [](v1::Envelope& e) {
               *e.mutable_target_server() = *ParseSecurityServerId("UZ/GOV/70000001/ss9");
             },
             crypto::SignatureContext::kRequest);
    });
    expect("Server.ServerProxy.WrongTargetServer", grpc::StatusCode::PERMISSION_DENIED);
  }
  CHECK(agencies.backend.hits() == 0);

  // A replay: the first request passes, the same bytes sent again are refused, also after the
  // provider restarted.
  v1::SignedMessage first;
  {
    WireHook record([&](v1::SignedMessage& m) { first = m; });
    REQUIRE(CallTax(port, kBenefitsSubsystem).status.ok());
  }
  CHECK(agencies.backend.hits() == 1);
  {
    WireHook replay([&](v1::SignedMessage& m) { m = first; });
    expect("Server.ServerProxy.ReplayedMessage", grpc::StatusCode::UNAUTHENTICATED);
    agencies.fed.RestartSecurityServer(*agencies.provider);
    agencies.fed.WaitForConfEverywhere();
    expect("Server.ServerProxy.ReplayedMessage", grpc::StatusCode::UNAUTHENTICATED);
  }
  CHECK(agencies.backend.hits() == 1);
}

TEST_CASE("Exchange: large bodies pass through up to the limit, and beyond it are refused",
          "[exchange]") {
  TwoAgencies agencies;
  // 5 MiB each way: more than gRPC's 4 MiB default, signed and logged like any other.
  const std::string big(5 << 20, '7');
  CallResult large = CallTax(agencies.consumer->client_address(), kBenefitsSubsystem,
                             kTaxSubsystem, big);
  INFO(large.status.error_message() << " " << large.fault);
  REQUIRE(large.status.ok());
  CHECK(large.reply.person_id().size() == big.size());
  CHECK(agencies.backend.hits() == 1);

  const std::string too_big((16 << 20) + 1, '7');
  CallResult refused = CallTax(agencies.consumer->client_address(), kBenefitsSubsystem,
                               kTaxSubsystem, too_big);
  CHECK(refused.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(refused.fault == "Client.InvalidRequest");
  CHECK(agencies.backend.hits() == 1);
}


// A TaxRegistry backend that looks, when called, for the provider's REQUEST_IN record of the
// call in the provider's audit log.
class RecordCheckingBackend final : public examples::v1::TaxRegistry::CallbackService {
 public:
  grpc::ServerUnaryReactor* GetTaxDebt(grpc::CallbackServerContext* ctx,
                                       const TaxDebtRequest* request,
                                       TaxDebtReply* reply) override {
    auto it = ctx->client_metadata().find("x-road-id");
    const std::string id =
        it == ctx->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
    bool logged = false;
    if (audit::AuditLog* log = provider_audit.load(); log != nullptr && !id.empty()) {
      auto records = log->FindByMessageId(id);
      if (records.ok()) {
        for (const auto& r : *records) logged |= r.record.kind() == v1::REQUEST_IN;
      }
    }
    (logged ? calls_after_record : calls_before_record).fetch_add(1);
    reply->set_person_id(request->person_id());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  std::atomic<audit::AuditLog*> provider_audit{nullptr};
  std::atomic<int> calls_after_record{0};
  std::atomic<int> calls_before_record{0};
};

TEST_CASE("Exchange: the provider's request record is in its log before the backend is called",
          "[exchange][replay]") {
  // The replay window is restored from these records after a restart or SIGKILL
  // (security_server/exchange/replay_guard.h): a backend must never run for a request whose
  // record could be missing.
  RecordCheckingBackend backend;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&backend);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  REQUIRE(server != nullptr);

  Federation fed("UZ");
  fed.AddMember(kTaxMember, "State Tax Committee");
  fed.AddMember(kBenefitsMember, "Ministry of Employment");
  fed.AddSubsystem(kTaxSubsystem);
  fed.AddSubsystem(kBenefitsSubsystem);
  auto& provider = fed.StartSecurityServer("UZ/GOV/70000001/ss1");
  auto& consumer = fed.StartSecurityServer("UZ/GOV/70000002/ss2");
  fed.Host(provider, kTaxSubsystem);
  fed.Host(consumer, kBenefitsSubsystem);
  fed.AddService(provider, kTaxSubsystem, kGrpcService, absl::StrCat("127.0.0.1:", port));
  fed.Grant(provider, absl::StrCat(kTaxSubsystem, "/", kGrpcService),
            absl::StrCat("subsystem:", kBenefitsSubsystem));
  fed.WaitForConfEverywhere();
  backend.provider_audit = provider.node->services().audit;

  // Concurrent calls, so that request records meet group commits in progress.
  std::vector<std::thread> callers;
  std::atomic<int> answered{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        answered += CallTax(consumer.client_address(), kBenefitsSubsystem).status.ok() ? 1 : 0;
      }
    });
  }
  for (auto& caller : callers) caller.join();
  CHECK(answered == 40);
  CHECK(backend.calls_after_record == 40);
  CHECK(backend.calls_before_record == 0);
  server->Shutdown();
}

}  // namespace
}  // namespace darvoza::testing
