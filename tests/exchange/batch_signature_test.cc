// Batch signatures through a real federation (docs/design.md §8): with many calls in flight
// both security servers sign in batches, every answer verifies, both audit logs verify, and
// every logged message signature (batched or not) can be checked offline from its record.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/message_signature.h"
#include "proto/example_agency.grpc.pb.h"
#include "security_server/metrics.h"
#include "tests/exchange/two_agencies.h"

namespace darvoza::testing {
namespace {

// sum and count of the signature batch size histogram of `ss`.
std::pair<double, double> BatchSizes(Federation::SecurityServer& ss) {
  const std::string text = ss.node->services().metrics->RenderText();
  double sum = 0, count = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 2) continue;
    if (parts[0] == "darvoza_ss_signature_batch_size_sum") REQUIRE(absl::SimpleAtod(parts[1], &sum));
    if (parts[0] == "darvoza_ss_signature_batch_size_count") {
      REQUIRE(absl::SimpleAtod(parts[1], &count));
    }
  }
  return {sum, count};
}

// `calls` concurrent GetTaxDebt calls through the consumer SS; returns how many failed.
int CallConcurrently(const std::string& address, int calls) {
  std::string first_error;
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = examples::v1::TaxRegistry::NewStub(channel);
  struct Call {
    grpc::ClientContext ctx;
    examples::v1::TaxDebtRequest request;
    examples::v1::TaxDebtReply reply;
  };
  std::vector<std::unique_ptr<Call>> in_flight;
  absl::Mutex mu;
  int done = 0;
  int failed = 0;
  for (int i = 0; i < calls; ++i) {
    auto call = std::make_unique<Call>();
    call->ctx.AddMetadata("x-road-client", kBenefitsSubsystem);
    call->ctx.AddMetadata("x-road-service", kTaxSubsystem);
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    call->request.set_person_id("31234567890123");
    Call* c = call.get();
    in_flight.push_back(std::move(call));
    stub->async()->GetTaxDebt(&c->ctx, &c->request, &c->reply, [&, c](grpc::Status status) {
      absl::MutexLock lock(&mu);
      if (!status.ok() || c->reply.person_id() != "31234567890123") {
        if (failed++ == 0) first_error = status.error_message();  // Catch2 is single-threaded
      }
      ++done;
    });
  }
  absl::MutexLock lock(&mu);
  auto all_done = [&] { return done == calls; };
  mu.Await(absl::Condition(&all_done));
  INFO("first failure: " << first_error);
  CHECK(failed == 0);
  return failed;
}

// Checks every signed message record of `ss` offline, as an auditor would years later: from
// the record's envelope, serialized Signature and certificate chain alone. Returns how many
// of them carried a batch signature.
int VerifyLoggedSignatures(Federation::SecurityServer& ss) {
  auto records = ss.node->services().audit->Find(audit::AuditQuery{});
  REQUIRE(records.ok());
  int batched = 0;
  int messages = 0;
  for (const auto& stored : *records) {
    const v1::AuditRecord& r = stored.record;
    crypto::SignatureContext context;
    if (r.kind() == v1::REQUEST_OUT || r.kind() == v1::REQUEST_IN) {
      context = crypto::SignatureContext::kRequest;
    } else if (r.kind() == v1::RESPONSE_OUT || r.kind() == v1::RESPONSE_IN) {
      context = crypto::SignatureContext::kResponse;
    } else {
      continue;
    }
    ++messages;
    v1::Signature signature;
    REQUIRE(signature.ParseFromString(r.signature()));
    // The log keeps each certificate once and the record its SHA-256 (docs/design.md §7).
    std::string leaf_der;
    if (r.signer_cert_chain_size() > 0) {
      leaf_der = r.signer_cert_chain(0);
    } else {
      REQUIRE(r.signer_cert_sha256_size() > 0);
      auto stored_cert = ss.node->services().audit->GetCertificate(r.signer_cert_sha256(0));
      REQUIRE(stored_cert.ok());
      leaf_der = *stored_cert;
    }
    auto cert = crypto::Certificate::FromDer(leaf_der);
    REQUIRE(cert.ok());
    INFO("record " << stored.seq);
    CHECK(VerifyMessageSignature((*cert)->public_key(), (*cert)->sha256(), context,
                                 r.envelope(), signature)
              .ok());
    if (signature.has_batch_proof()) ++batched;
  }
  CHECK(messages > 0);
  return batched;
}

TEST_CASE("Batch signatures: many calls in flight are signed in batches and all verify",
          "[exchange][batch][concurrency]") {
  TwoAgencies a;
  // The first exchange tells the consumer that the provider speaks version 1; until then it
  // signs alone.
  REQUIRE(CallConcurrently(a.consumer->client_address(), 1) == 0);
  // One call at a time: every message has a signature of its own.
  for (int i = 0; i < 4; ++i) REQUIRE(CallConcurrently(a.consumer->client_address(), 1) == 0);
  CHECK(BatchSizes(*a.consumer) == std::pair<double, double>{5, 5});
  CHECK(BatchSizes(*a.provider) == std::pair<double, double>{5, 5});

  // Waves of calls until both SSs have signed a batch of more than one message: a signing is
  // deferred into a batch only while other exchanges are in progress on that SS
  // (ExchangeCore::SignEnvelope), and how the calls of a wave overlap is up to the scheduler,
  // so no single wave is sure to batch.
  constexpr int kWave = 64;
  int waves = 0;
  int calls = 5;
  auto batched = [](Federation::SecurityServer& ss) {
    auto [sum, count] = BatchSizes(ss);
    return sum > count;
  };
  while (waves < 40 && !(batched(*a.consumer) && batched(*a.provider))) {
    REQUIRE(CallConcurrently(a.consumer->client_address(), kWave) == 0);
    ++waves;
    calls += kWave;
  }
  INFO("after " << waves << " waves of " << kWave << " calls");
  CHECK(batched(*a.consumer));
  CHECK(batched(*a.provider));
  CHECK(a.backend.hits() == calls);
  // Each signing is counted with the envelopes it covered: one request per call on the
  // consumer, one response per call on the provider.
  CHECK(BatchSizes(*a.consumer).first == calls);
  CHECK(BatchSizes(*a.provider).first == calls);

  CHECK(VerifyLoggedSignatures(*a.consumer) > 0);
  CHECK(VerifyLoggedSignatures(*a.provider) > 0);
  audit::VerifyReport consumer_log = a.fed.VerifyAuditLog(*a.consumer);
  INFO(consumer_log.reason);
  CHECK(consumer_log.ok);
  audit::VerifyReport provider_log = a.fed.VerifyAuditLog(*a.provider);
  INFO(provider_log.reason);
  CHECK(provider_log.ok);
}

}  // namespace
}  // namespace darvoza::testing
