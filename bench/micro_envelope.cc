// Micro-benchmarks of one exchange's CPU by stage, outside the network (docs/design.md §5):
// what a consumer security server does to a request before it leaves (hash the body, build and
// serialize the envelope, sign, pack the signed message) and what the provider does before it
// calls the backend (parse, look up the signer certificate, verify, check the body hash).
// TLS, gRPC and the audit log (micro_audit.cc) are measured elsewhere. Bodies: 1 KiB and 64 KiB.
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "common/check.h"
#include "common/crypto/hash.h"
#include "common/crypto/keys.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/identifiers.h"
#include "proto/envelope.pb.h"

namespace darvoza {
namespace {

struct Member {
  std::unique_ptr<crypto::PrivateKey> ca_key;
  std::shared_ptr<const crypto::Certificate> ca;
  std::shared_ptr<const crypto::Certificate> cert;
  std::unique_ptr<crypto::FileKeySigner> signer;
};

const Member& BenchMember() {
  static const Member* member = [] {
    auto* m = new Member;
    m->ca_key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
    crypto::IssueOptions ca_options;
    ca_options.serial = 1;
    ca_options.not_before = absl::Now() - absl::Hours(1);
    ca_options.not_after = absl::Now() + absl::Hours(24);
    ca_options.profile = crypto::CertificateProfile::kRootCa;
    m->ca = crypto::IssueCertificate(*m->ca_key, nullptr, *m->ca_key->GetPublicKey(), "bench CA",
                                     ca_options)
                .value();
    auto key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256).value();
    crypto::IssueOptions options = ca_options;
    options.serial = 2;
    options.profile = crypto::CertificateProfile::kSigning;
    m->cert = crypto::IssueCertificate(*m->ca_key, m->ca.get(), *key->GetPublicKey(),
                                       "member:UZ/GOV/70000001", options)
                  .value();
    m->signer = std::make_unique<crypto::FileKeySigner>(std::move(key));
    return m;
  }();
  return *member;
}

v1::Envelope RequestEnvelope(const std::string& body) {
  v1::Envelope envelope;
  envelope.set_message_id(crypto::HexEncode(crypto::RandomBytes(16)));
  *envelope.mutable_client() = ParseSubsystemId("UZ/GOV/70000001/client").value();
  *envelope.mutable_service() = ParseServiceId("UZ/GOV/70000002/tax/GetTaxDebt").value();
  envelope.mutable_grpc()->set_method("/darvoza.example.TaxRegistry/GetTaxDebt");
  v1::MetadataEntry* entry = envelope.mutable_grpc()->add_metadata();
  entry->set_key("x-request-id");
  entry->set_value("3f2a9c1e-bench");
  envelope.set_body_sha256(crypto::Sha256(body));
  envelope.set_body_length(body.size());
  envelope.set_nonce(crypto::RandomBytes(16));
  envelope.set_created_at_unix_nanos(absl::ToUnixNanos(absl::Now()));
  envelope.mutable_consumer_server()->mutable_owner()->set_instance("UZ");
  envelope.mutable_consumer_server()->set_server_code("ss1");
  return envelope;
}

v1::SignedMessage Sign(const v1::Envelope& envelope, const std::string& body) {
  const Member& m = BenchMember();
  v1::SignedMessage message;
  message.set_envelope(envelope.SerializeAsString());
  message.mutable_signature()->set_algorithm(v1::ECDSA_P256_SHA256);
  message.mutable_signature()->set_value(
      m.signer->Sign(crypto::SignatureContext::kRequest, message.envelope()).value());
  message.mutable_signature()->set_signer_cert_sha256(m.cert->sha256());
  message.add_signer_cert_chain(m.cert->der());
  message.add_signer_cert_chain(m.ca->der());
  message.set_body(body);
  return message;
}

void BM_ConsumerHashBody(benchmark::State& state) {
  const std::string body = crypto::RandomBytes(static_cast<size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(crypto::Sha256(body));
}
BENCHMARK(BM_ConsumerHashBody)->Arg(1024)->Arg(64 * 1024);

void BM_ConsumerEnvelopeSerialize(benchmark::State& state) {
  const v1::Envelope envelope = RequestEnvelope("body");
  for (auto _ : state) benchmark::DoNotOptimize(envelope.SerializeAsString());
}
BENCHMARK(BM_ConsumerEnvelopeSerialize);

void BM_ConsumerSign(benchmark::State& state) {
  const std::string bytes = RequestEnvelope("body").SerializeAsString();
  for (auto _ : state) {
    auto sig = BenchMember().signer->Sign(crypto::SignatureContext::kRequest, bytes);
    DARVOZA_CHECK(sig.ok());
    benchmark::DoNotOptimize(sig);
  }
}
BENCHMARK(BM_ConsumerSign);

// The signed message with its certificate chain and inline body, serialized for the wire.
void BM_ConsumerPackSignedMessage(benchmark::State& state) {
  const std::string body = crypto::RandomBytes(static_cast<size_t>(state.range(0)));
  const v1::SignedMessage signed_message = Sign(RequestEnvelope(body), body);
  for (auto _ : state) {
    v1::SignedMessage copy = signed_message;  // the exchange builds it anew per call
    benchmark::DoNotOptimize(copy.SerializeAsString());
  }
}
BENCHMARK(BM_ConsumerPackSignedMessage)->Arg(1024)->Arg(64 * 1024);

void BM_ProviderParse(benchmark::State& state) {
  const std::string body = crypto::RandomBytes(static_cast<size_t>(state.range(0)));
  const std::string wire = Sign(RequestEnvelope(body), body).SerializeAsString();
  for (auto _ : state) {
    v1::SignedMessage message;
    DARVOZA_CHECK(message.ParseFromString(wire));
    v1::Envelope envelope;
    DARVOZA_CHECK(envelope.ParseFromString(message.envelope()));
    benchmark::DoNotOptimize(envelope);
  }
}
BENCHMARK(BM_ProviderParse)->Arg(1024)->Arg(64 * 1024);

// A cache hit: the verifier keeps parsed certificates by their DER.
void BM_ProviderCertificateLookup(benchmark::State& state) {
  crypto::CertificateCache cache;
  const std::string der = BenchMember().cert->der();
  DARVOZA_CHECK(cache.Get(der).ok());
  for (auto _ : state) benchmark::DoNotOptimize(cache.Get(der));
}
BENCHMARK(BM_ProviderCertificateLookup);

// The cost a cache miss would add: parsing the signer's certificate.
void BM_ProviderCertificateParse(benchmark::State& state) {
  const std::string der = BenchMember().cert->der();
  for (auto _ : state) benchmark::DoNotOptimize(crypto::Certificate::FromDer(der));
}
BENCHMARK(BM_ProviderCertificateParse);

void BM_ProviderVerify(benchmark::State& state) {
  const v1::SignedMessage message = Sign(RequestEnvelope("body"), "body");
  const crypto::PublicKey& key = BenchMember().cert->public_key();
  for (auto _ : state) {
    DARVOZA_CHECK(crypto::VerifyWithContext(key, crypto::SignatureContext::kRequest,
                                            message.envelope(), message.signature().value())
                      .ok());
  }
}
BENCHMARK(BM_ProviderVerify);

void BM_ProviderCheckBody(benchmark::State& state) {
  const std::string body = crypto::RandomBytes(static_cast<size_t>(state.range(0)));
  const v1::Envelope envelope = RequestEnvelope(body);
  for (auto _ : state) {
    DARVOZA_CHECK(crypto::Sha256(body) == envelope.body_sha256());
  }
}
BENCHMARK(BM_ProviderCheckBody)->Arg(1024)->Arg(64 * 1024);

}  // namespace
}  // namespace darvoza
