// The provider SS's checks (docs/design.md §5 step 3) and the SS-to-SS TLS (§4), exercised by
// sending hand-made signed messages over the real SS-to-SS port, and by openssl s_client.
#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/examples/tax_registry_service.h"
#include "audit/audit_log.h"
#include "common/clock.h"
#include "common/crypto/hash.h"
#include "common/crypto/keys.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/identifiers.h"
#include "common/message_signature.h"
#include "proto/envelope.pb.h"
#include "proto/example_agency.grpc.pb.h"
#include "proto/exchange.grpc.pb.h"
#include "security_server/exchange/signed_message.h"
#include "security_server/global_conf_client.h"
#include "security_server/key_store.h"
#include "security_server/metrics.h"
#include "tests/exchange/two_agencies.h"

namespace darvoza::testing {
namespace {

constexpr char kHandshakeRefusals[] = "darvoza_ss_handshake_refusals_total";

// What a consumer SS would send for `a`, before signing; `body` receives the request body.
v1::Envelope MakeEnvelope(TwoAgencies& a, std::string* body) {
  v1::Envelope envelope;
  envelope.set_message_id(crypto::HexEncode(crypto::RandomBytes(8)));
  *envelope.mutable_client() = *ParseSubsystemId(kBenefitsSubsystem);
  *envelope.mutable_service() =
      *ParseServiceId(absl::StrCat(kTaxSubsystem, "/", kGrpcService, ".GetTaxDebt"));
  *envelope.mutable_target_server() = *ParseSecurityServerId(a.provider->id);
  *envelope.mutable_consumer_server() = *ParseSecurityServerId(a.consumer->id);
  envelope.mutable_grpc()->set_method("/darvoza.examples.v1.TaxRegistry/GetTaxDebt");
  examples::v1::TaxDebtRequest request;
  request.set_person_id("42");
  *body = request.SerializeAsString();
  envelope.set_body_sha256(crypto::Sha256(*body));
  envelope.set_body_length(body->size());
  envelope.set_nonce(crypto::RandomBytes(16));
  envelope.set_created_at_unix_nanos(absl::ToUnixNanos(a.fed.clock()->Now()));
  return envelope;
}

// Signs as the consumer SS's member (the benefits ministry).
v1::SignedMessage SignAsConsumer(TwoAgencies& a, const v1::Envelope& envelope,
                                 const std::string& body,
                                 crypto::SignatureContext context =
                                     crypto::SignatureContext::kRequest) {
  auto identity =
      a.consumer->node->services().keys->SigningSigner(*ParseMemberId(kBenefitsMember));
  REQUIRE(identity.ok());
  auto signed_message =
      ss::exchange::SignMessage(*identity, context, envelope.SerializeAsString(), body);
  REQUIRE(signed_message.ok());
  return *signed_message;
}

// A signed request of `a`, optionally changed before signing.
v1::SignedMessage Request(TwoAgencies& a,
                          const std::function<void(v1::Envelope&)>& change = nullptr,
                          crypto::SignatureContext context = crypto::SignatureContext::kRequest) {
  std::string body;
  v1::Envelope envelope = MakeEnvelope(a, &body);
  if (change) change(envelope);
  return SignAsConsumer(a, envelope, body, context);
}

struct Answer {
  grpc::Status status;
  std::string fault;
  v1::SignedMessage response;
};

Answer Send(v1::SecurityServerExchange::Stub& stub, const v1::SignedMessage& message) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  Answer answer;
  answer.status = stub.Call(&ctx, message, &answer.response);
  answer.fault = ObservedFault(ctx.GetServerTrailingMetadata());
  return answer;
}

std::unique_ptr<v1::SecurityServerExchange::Stub> StubAs(Federation::SecurityServer& as,
                                                         Federation::SecurityServer& to) {
  return v1::SecurityServerExchange::NewStub(
      TlsChannelAs(as.node->services().keys->AuthKeyPath(),
                   as.node->services().keys->AuthCertPath(), to.node->addresses().ss));
}

TEST_CASE("Provider: every check refuses with its own fault and the backend is not called",
          "[exchange][provider]") {
  TwoAgencies a;
  auto stub = StubAs(*a.consumer, *a.provider);

  // A well-formed request passes (the baseline for everything below).
  v1::SignedMessage good_message = Request(a);
  Answer ok = Send(*stub, good_message);
  INFO(ok.status.error_message() << " " << ok.fault);
  REQUIRE(ok.status.ok());
  v1::ResponseEnvelope response;
  REQUIRE(response.ParseFromString(ok.response.envelope()));
  CHECK(response.request_hash() == crypto::Sha256(good_message.envelope()));
  CHECK(a.backend.hits() == 1);

  auto expect = [&](const v1::SignedMessage& message, grpc::StatusCode code,
                    const std::string& fault) {
    Answer answer = Send(*stub, message);
    INFO("expected " << fault << ", got " << answer.status.error_code() << " " << answer.fault
                     << ": " << answer.status.error_message());
    CHECK(answer.status.error_code() == code);
    CHECK(answer.fault == fault);
  };

  // The same message again: the nonce was seen.
  expect(good_message, grpc::StatusCode::UNAUTHENTICATED, "Server.ServerProxy.ReplayedMessage");

  // Tampered after signing.
  {
    v1::SignedMessage tampered = Request(a);
    v1::Envelope changed;
    REQUIRE(changed.ParseFromString(tampered.envelope()));
    changed.set_user_id("someone-else");
    tampered.set_envelope(changed.SerializeAsString());
    expect(tampered, grpc::StatusCode::UNAUTHENTICATED, "Server.ServerProxy.InvalidSignature");
  }
  // A body that is not the one signed.
  {
    v1::SignedMessage other_body = Request(a);
    other_body.set_body(other_body.body() + "x");
    expect(other_body, grpc::StatusCode::INVALID_ARGUMENT, "Server.ServerProxy.InvalidMessage");
  }
  // Signed under another context tag (a response signature replayed as a request).
  expect(Request(a, nullptr, crypto::SignatureContext::kResponse),
         grpc::StatusCode::UNAUTHENTICATED, "Server.ServerProxy.InvalidSignature");
  // Stale and future created_at.
  const absl::Time now = a.fed.clock()->Now();
  expect(Request(a,
                 [&](v1::Envelope& e) {
                   e.set_created_at_unix_nanos(absl::ToUnixNanos(now - absl::Minutes(10)));
                 }),
         grpc::StatusCode::UNAUTHENTICATED, "Server.ServerProxy.ReplayedMessage");
  expect(Request(a,
                 [&](v1::Envelope& e) {
                   e.set_created_at_unix_nanos(absl::ToUnixNanos(now + absl::Minutes(10)));
                 }),
         grpc::StatusCode::UNAUTHENTICATED, "Server.ServerProxy.ReplayedMessage");
  // Addressed to another SS.
  expect(Request(a,
                 [](v1::Envelope& e) {
                   *e.mutable_target_server() = *ParseSecurityServerId("UZ/GOV/70000001/ss9");
                 }),
         grpc::StatusCode::PERMISSION_DENIED, "Server.ServerProxy.WrongTargetServer");
  // A service that is not registered.
  expect(Request(a,
                 [](v1::Envelope& e) {
                   e.mutable_service()->set_service_code("darvoza.examples.v1.Nothing.Here");
                 }),
         grpc::StatusCode::NOT_FOUND, "Client.UnknownService");
  // A client its SS does not host.
  expect(Request(a, [](v1::Envelope& e) { e.mutable_client()->set_subsystem_code("pensions"); }),
         grpc::StatusCode::PERMISSION_DENIED, "Server.ServerProxy.SslAuthenticationFailed");
  // Another SS's certificate (the provider itself) for a message that names the consumer SS.
  {
    auto impostor = StubAs(*a.provider, *a.provider);
    Answer answer = Send(*impostor, Request(a));
    CHECK(answer.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(answer.fault == "Server.ServerProxy.SslAuthenticationFailed");
  }
  CHECK(a.backend.hits() == 1);

  // Seen nonces survive a provider restart.
  a.fed.RestartSecurityServer(*a.provider);
  a.fed.WaitForConfEverywhere();
  auto after_restart = StubAs(*a.consumer, *a.provider);
  Answer replayed = Send(*after_restart, good_message);
  CHECK(replayed.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(replayed.fault == "Server.ServerProxy.ReplayedMessage");
  CHECK(a.backend.hits() == 1);
  // And the provider logged the refusals.
  auto records = a.provider->node->services().audit->Find(audit::AuditQuery{});
  REQUIRE(records.ok());
  int refusals = 0;
  for (const auto& r : *records) refusals += r.record.kind() == v1::REFUSAL ? 1 : 0;
  CHECK(refusals >= 9);
}

// MakeEnvelope builds the previous release's format: no protocol_version field at all.
TEST_CASE("Provider: a previous-version request gets a previous-version answer, a newer "
          "version is refused",
          "[exchange][provider][version]") {
  TwoAgencies a;
  auto stub = StubAs(*a.consumer, *a.provider);
  auto provider_identity =
      a.provider->node->services().keys->SigningSigner(*ParseMemberId(kTaxMember));
  REQUIRE(provider_identity.ok());

  // What a previous-release consumer SS checks: an ordinary signature by the provider member
  // over the response envelope, the request hash, and no field it does not know.
  auto expect_answer = [&](const v1::SignedMessage& request, uint32_t version) {
    Answer answer = Send(*stub, request);
    INFO(answer.status.error_message() << " " << answer.fault);
    REQUIRE(answer.status.ok());
    CHECK_FALSE(answer.response.signature().has_batch_proof());
    CHECK(answer.response.signature().batch_root().empty());
    CHECK(crypto::VerifyWithContext(provider_identity->cert->public_key(),
                                    crypto::SignatureContext::kResponse,
                                    answer.response.envelope(),
                                    answer.response.signature().value())
              .ok());
    v1::ResponseEnvelope response;
    REQUIRE(response.ParseFromString(answer.response.envelope()));
    CHECK(response.protocol_version() == version);
    CHECK(response.request_hash() == crypto::Sha256(request.envelope()));
    CHECK(response.grpc_status_code() == 0);
  };

  v1::SignedMessage previous = Request(a);
  {
    v1::Envelope sent;
    REQUIRE(sent.ParseFromString(previous.envelope()));
    REQUIRE(sent.protocol_version() == 0);
  }
  expect_answer(previous, 0);
  expect_answer(Request(a, [](v1::Envelope& e) { e.set_protocol_version(1); }), 1);
  CHECK(a.backend.hits() == 2);

  for (uint32_t too_new : {2u, 1000u}) {
    Answer answer = Send(*stub, Request(a, [&](v1::Envelope& e) {
                           e.set_protocol_version(too_new);
                         }));
    INFO(answer.status.error_message());
    CHECK(answer.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK(answer.fault == "Server.ServerProxy.InvalidProtocolVersion");
  }
  CHECK(a.backend.hits() == 2);
  // Logged as refusals, with the fault.
  auto records = a.provider->node->services().audit->Find(audit::AuditQuery{});
  REQUIRE(records.ok());
  int refused = 0;
  for (const auto& r : *records) {
    if (r.record.kind() == v1::REFUSAL &&
        r.record.fault_code() == "Server.ServerProxy.InvalidProtocolVersion") {
      ++refused;
    }
  }
  CHECK(refused == 2);
}

// Requests of `a` signed as one batch by the consumer member's key, as a consumer SS under
// load sends them; `change` may alter each signature after signing.
std::vector<v1::SignedMessage> BatchRequests(
    TwoAgencies& a, size_t n, const std::function<void(size_t, v1::Signature&)>& change = nullptr) {
  auto identity =
      a.consumer->node->services().keys->SigningSigner(*ParseMemberId(kBenefitsMember));
  REQUIRE(identity.ok());
  std::vector<std::string> envelopes;
  std::vector<std::string> bodies(n);
  std::vector<MessageToSign> items;
  for (size_t i = 0; i < n; ++i) {
    v1::Envelope envelope = MakeEnvelope(a, &bodies[i]);
    envelope.set_protocol_version(1);
    envelopes.push_back(envelope.SerializeAsString());
  }
  for (const std::string& e : envelopes) items.push_back({crypto::SignatureContext::kRequest, e});
  auto signatures = SignBatch(*identity->signer, items);
  REQUIRE(signatures.ok());
  std::vector<v1::SignedMessage> out;
  for (size_t i = 0; i < n; ++i) {
    if (change) change(i, (*signatures)[i]);
    out.push_back(ss::exchange::PackSignedMessage(*identity, (*signatures)[i], envelopes[i],
                                                  bodies[i]));
  }
  return out;
}

TEST_CASE("Provider: batch-signed requests are answered, hostile batch proofs are refused",
          "[exchange][provider][batch]") {
  TwoAgencies a;
  auto stub = StubAs(*a.consumer, *a.provider);
  auto expect_refused = [&](const v1::SignedMessage& message, const std::string& what) {
    Answer answer = Send(*stub, message);
    INFO(what << ": " << answer.status.error_code() << " " << answer.fault << ": "
              << answer.status.error_message());
    CHECK(answer.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(answer.fault == "Server.ServerProxy.InvalidSignature");
  };

  // Every message of a real batch passes (the root's signature is checked once, then cached).
  std::vector<v1::SignedMessage> batch = BatchRequests(a, 5);
  for (const v1::SignedMessage& m : batch) {
    REQUIRE(m.signature().batch_proof().tree_size() == 5);
    Answer answer = Send(*stub, m);
    INFO(answer.status.error_message() << " " << answer.fault);
    CHECK(answer.status.ok());
  }
  CHECK(a.backend.hits() == 5);

  expect_refused(BatchRequests(a, 4, [](size_t, v1::Signature& s) {
                   std::string* hash = s.mutable_batch_proof()->mutable_path(0);
                   (*hash)[5] = static_cast<char>((*hash)[5] ^ 0x40);
                 })[1],
                 "a proof that does not lead to the root");
  {
    // A root signed with the right key but under the request context.
    auto identity =
        a.consumer->node->services().keys->SigningSigner(*ParseMemberId(kBenefitsMember));
    REQUIRE(identity.ok());
    expect_refused(BatchRequests(a, 4,
                                 [&](size_t, v1::Signature& s) {
                                   auto value = identity->signer->Sign(
                                       crypto::SignatureContext::kRequest,
                                       BatchRootStatement(s.batch_root(),
                                                          s.batch_proof().tree_size()));
                                   REQUIRE(value.ok());
                                   s.set_value(*value);
                                 })[2],
                   "a root signed under the wrong context");
  }
  expect_refused(BatchRequests(a, 4,
                               [](size_t, v1::Signature& s) {
                                 s.mutable_batch_proof()->set_leaf_index(4);
                               })[0],
                 "a leaf index outside the tree");
  expect_refused(BatchRequests(a, 4,
                               [](size_t, v1::Signature& s) {
                                 s.mutable_batch_proof()->set_tree_size(kMaxSignatureBatch + 1);
                               })[0],
                 "a tree size over the limit");
  expect_refused(BatchRequests(a, 4,
                               [](size_t, v1::Signature& s) {
                                 s.mutable_batch_proof()->add_path(crypto::Sha256("x"));
                               })[3],
                 "a proof path too long");
  {
    // A valid proof, but of another message of the same batch.
    std::vector<v1::SignedMessage> other = BatchRequests(a, 3);
    v1::SignedMessage swapped = other[0];
    *swapped.mutable_signature() = other[1].signature();
    expect_refused(swapped, "a valid proof for another message");
  }
  CHECK(a.backend.hits() == 5);
}

TEST_CASE("Provider: TLS handshakes from outside the federation are refused and counted",
          "[exchange][tls]") {
  TwoAgencies a;
  ss::MetricsRegistry* metrics = a.provider->node->services().metrics;
  const double before = metrics->Get(kHandshakeRefusals);

  // A certificate of another CA, with the consumer's identifier in it.
  TempDir dir;
  const absl::Time now = a.fed.clock()->Now();
  auto ca_key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  REQUIRE(ca_key.ok());
  auto ca = crypto::IssueCertificate(**ca_key, nullptr, *(*ca_key)->GetPublicKey(), "rogue CA",
                                     {.serial = 1, .not_before = now - absl::Hours(1),
                                      .not_after = now + absl::Hours(24),
                                      .profile = crypto::CertificateProfile::kRootCa});
  REQUIRE(ca.ok());
  auto key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  REQUIRE(key.ok());
  auto cert = crypto::IssueCertificate(**ca_key, ca->get(), *(*key)->GetPublicKey(),
                                       absl::StrCat("server:", a.consumer->id),
                                       {.serial = 2, .not_before = now - absl::Hours(1),
                                        .not_after = now + absl::Hours(24),
                                        .profile = crypto::CertificateProfile::kTlsAuth});
  REQUIRE(cert.ok());
  REQUIRE((*key)->SaveToFile(dir.File("rogue.key")).ok());
  WriteFileForTest(dir.File("rogue.pem"), (*cert)->ToPem());
  auto rogue = v1::SecurityServerExchange::NewStub(
      TlsChannelAs(dir.File("rogue.key"), dir.File("rogue.pem"), a.provider->node->addresses().ss));
  Answer answer = Send(*rogue, Request(a));
  CHECK(answer.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(metrics->Get(kHandshakeRefusals) > before);
  CHECK(a.backend.hits() == 0);
}

std::string RunCommand(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  pclose(pipe);
  return output;
}

TEST_CASE("Provider: the SS-to-SS port speaks TLS 1.3 only", "[exchange][tls]") {
  TwoAgencies a;
  const std::string address = a.provider->node->addresses().ss;
  const std::string key = a.consumer->node->services().keys->AuthKeyPath();
  const std::string cert = a.consumer->node->services().keys->AuthCertPath();
  std::string tls12 = RunCommand(absl::StrCat("echo | timeout 10 openssl s_client -connect ",
                                              address, " -tls1_2 -cert ", cert, " -key ", key));
  INFO(tls12);
  // The handshake fails: no cipher was agreed (s_client still names the version it tried).
  CHECK(absl::StrContains(tls12, "Cipher is (NONE)"));
  CHECK_FALSE(absl::StrContains(tls12, "New, TLSv1.2"));
  std::string tls13 = RunCommand(absl::StrCat("echo | timeout 10 openssl s_client -connect ",
                                              address, " -tls1_3 -cert ", cert, " -key ", key));
  INFO(tls13);
  CHECK(absl::StrContains(tls13, "New, TLSv1.3"));
  // And a gRPC call with the SS's own certificate goes through.
  auto stub = StubAs(*a.consumer, *a.provider);
  Answer answer = Send(*stub, Request(a));
  CHECK(answer.status.ok());
}

}  // namespace
}  // namespace darvoza::testing
