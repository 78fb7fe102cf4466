// Fuzz target for what a security server reads from another one: a serialized SignedMessage
// carrying a request Envelope or a ResponseEnvelope, its signature and certificate chain
// (security_server/exchange/signed_message.h), and the provider's checks of the envelope's own
// values (envelope_checks.h).
//
// The signer is a fixed test member under a fixed test CA (the keys below are for this target
// only), so that the committed seeds verify and mutations explore every check behind them.
// Properties checked on every input, beyond "does not crash":
//  - a message that verifies was signed by the member it names, and its inline body has the
//    signed hash and length;
//  - an envelope whose values pass the check holds only values gRPC can carry;
//  - an authorized method is exactly the path of the signed service code.
//
// Seeds: DARVOZA_ENVELOPE_SEEDS=<dir> makes the first run write a few real signed messages
// there (tests/fuzz/corpus/envelopes/ holds them).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "absl/time/time.h"
#include "common/crypto/hash.h"
#include "common/crypto/keys.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/identifiers.h"
#include "common/outside_values.h"
#include "proto/envelope.pb.h"
#include "proto/globalconf.pb.h"
#include "security_server/exchange/envelope_checks.h"
#include "security_server/exchange/signed_message.h"
#include "security_server/key_store.h"

namespace {

using darvoza::crypto::SignatureContext;
namespace exchange = darvoza::ss::exchange;
namespace v1 = darvoza::v1;

void Require(bool condition) {
  if (!condition) std::abort();
}

// Test-only keys, never used outside this target.
constexpr char kCaKeyPem[] = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAWEqyVEErg2Gz0wG
pHDomJ+NN0BxFSUCphvJhnnvbPehRANCAARSOCBFSX2ncU1KtZAdjU0buGTE1Cx4
Fesvk+5N5MuZ3Kz8mhuPM5CSsuuAsXxHqPeAxsFTvW61XHOhIXzV/WEG
-----END PRIVATE KEY-----
)";
constexpr char kMemberKeyPem[] = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgE3rKywyID2edbixN
EgkdrFILCe19HPyBvWNQHiIZorqhRANCAAR1XKFGpmHxZdEGgKpj09KZzjYNZq+f
dJC0elS0TWW5sx9PUhp+tew9iEWwaA6aFwWJUp230FLz+pwB2GD25Vd7
-----END PRIVATE KEY-----
)";
constexpr char kMember[] = "UZ/GOV/70000002";
// Every certificate is valid from kEpoch - 1 year to kEpoch + 10 years; checks run at kEpoch.
const absl::Time kEpoch = absl::FromUnixSeconds(1800000000);

struct World {
  v1::GlobalConf conf;
  darvoza::ss::SigningIdentity member;
  exchange::SignedMessageVerifier verifier;
};

v1::MemberId Member() { return *darvoza::ParseMemberId(kMember); }

std::unique_ptr<World> MakeWorld() {
  auto world = std::make_unique<World>();
  auto ca_key = darvoza::crypto::PrivateKey::FromPem(kCaKeyPem);
  auto member_key = darvoza::crypto::PrivateKey::FromPem(kMemberKeyPem);
  Require(ca_key.ok() && member_key.ok());
  const darvoza::crypto::IssueOptions ca_options{
      .serial = 1, .not_before = kEpoch - absl::Hours(24 * 365),
      .not_after = kEpoch + absl::Hours(24 * 3650),
      .profile = darvoza::crypto::CertificateProfile::kRootCa};
  auto ca = darvoza::crypto::IssueCertificate(**ca_key, nullptr, *(*ca_key)->GetPublicKey(),
                                              "fuzz instance CA", ca_options);
  Require(ca.ok());
  darvoza::crypto::IssueOptions member_options = ca_options;
  member_options.serial = 2;
  member_options.profile = darvoza::crypto::CertificateProfile::kSigning;
  auto cert = darvoza::crypto::IssueCertificate(
      **ca_key, ca->get(), *(*member_key)->GetPublicKey(), std::string("member:") + kMember,
      member_options);
  Require(cert.ok());
  world->conf.set_serial(1);
  v1::ApprovedCa* approved = world->conf.add_approved_cas();
  approved->set_name("fuzz instance CA");
  approved->set_cert_der((*ca)->der());
  world->member.signer =
      std::make_shared<darvoza::crypto::FileKeySigner>(*std::move(member_key));
  world->member.cert_chain_der = {(*cert)->der(), (*ca)->der()};
  world->member.cert = *cert;
  return world;
}

v1::Envelope SeedEnvelope() {
  v1::Envelope envelope;
  envelope.set_message_id("0123456789abcdef");
  *envelope.mutable_client() = *darvoza::ParseSubsystemId("UZ/GOV/70000002/benefits");
  *envelope.mutable_service() =
      *darvoza::ParseServiceId("UZ/GOV/70000001/tax-registry/darvoza.examples.v1.TaxRegistry.GetTaxDebt");
  *envelope.mutable_target_server() = *darvoza::ParseSecurityServerId("UZ/GOV/70000001/ss1");
  *envelope.mutable_consumer_server() = *darvoza::ParseSecurityServerId("UZ/GOV/70000002/ss2");
  envelope.mutable_grpc()->set_method("/darvoza.examples.v1.TaxRegistry/GetTaxDebt");
  envelope.set_nonce(std::string(16, '\x5a'));
  envelope.set_created_at_unix_nanos(absl::ToUnixNanos(kEpoch));
  return envelope;
}

// Writes a signed message as a seed, after checking that it verifies (so the seeds lead the
// fuzzer past the signature check, not just into it).
void WriteSeed(const std::string& dir, const std::string& name, SignatureContext context,
               World& world, const std::string& envelope_bytes, const std::string& body) {
  auto message = exchange::SignMessage(world.member, context, envelope_bytes, body);
  Require(message.ok());
  Require(world.verifier
              .Verify(*message, context, Member(), darvoza::crypto::Sha256(body), body.size(),
                      world.conf, kEpoch)
              .ok());
  std::ofstream(dir + "/" + name, std::ios::binary) << message->SerializeAsString();
}

void WriteSeeds(const std::string& dir, World& world) {
  const std::string body = "\x0a\x0e" "31234567890123";
  v1::Envelope envelope = SeedEnvelope();
  envelope.set_body_sha256(darvoza::crypto::Sha256(body));
  envelope.set_body_length(body.size());
  WriteSeed(dir, "request", SignatureContext::kRequest, world, envelope.SerializeAsString(), body);

  v1::Envelope with_metadata = envelope;
  with_metadata.set_user_id("EE12345678901");
  with_metadata.set_issue("case-17");
  v1::MetadataEntry* entry = with_metadata.mutable_grpc()->add_metadata();
  entry->set_key("x-custom");
  entry->set_value("value");
  entry = with_metadata.mutable_grpc()->add_metadata();
  entry->set_key("trace-bin");
  entry->set_value(std::string("\x00\xff\x10", 3));
  WriteSeed(dir, "request_metadata", SignatureContext::kRequest, world,
            with_metadata.SerializeAsString(), body);

  v1::Envelope bad_value = envelope;
  bad_value.set_user_id("a\tb");
  WriteSeed(dir, "request_bad_value", SignatureContext::kRequest, world,
            bad_value.SerializeAsString(), body);

  v1::ResponseEnvelope response;
  response.set_message_id(envelope.message_id());
  response.set_request_hash(exchange::RequestHash(envelope.SerializeAsString()));
  response.set_grpc_status_code(5);
  response.set_status_message("not found");
  response.set_body_sha256(darvoza::crypto::Sha256(""));
  *response.mutable_provider_server() = envelope.target_server();
  *response.mutable_service() = envelope.service();
  entry = response.add_trailing_metadata();
  entry->set_key("x-fine");
  entry->set_value("passes");
  WriteSeed(dir, "response", SignatureContext::kResponse, world, response.SerializeAsString(),
            "");
}

World& TheWorld() {
  static World* world = [] {
    // Parsing fuzzed bytes makes protobuf log every invalid UTF-8 string; that is expected here.
    google::protobuf::SetLogHandler(nullptr);
    World* made = MakeWorld().release();
    if (const char* dir = std::getenv("DARVOZA_ENVELOPE_SEEDS"); dir != nullptr) {
      WriteSeeds(dir, *made);
    }
    return made;
  }();
  return *world;
}

void CheckVerified(World& world, const v1::SignedMessage& message, SignatureContext context,
                   const std::string& body_sha256, uint64_t body_length) {
  absl::Status verified = world.verifier.Verify(message, context, Member(), body_sha256,
                                                body_length, world.conf, kEpoch);
  if (!verified.ok()) return;
  Require(message.signer_cert_chain_size() > 0);
  auto leaf = world.verifier.certificates().Get(message.signer_cert_chain(0));
  Require(leaf.ok() && (*leaf)->subject_common_name() == std::string("member:") + kMember);
  Require(message.body().size() == body_length &&
          darvoza::crypto::Sha256(message.body()) == body_sha256);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& world = TheWorld();
  v1::SignedMessage message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;

  v1::Envelope envelope;
  if (envelope.ParseFromString(message.envelope())) {
    if (exchange::ValidateEnvelopeValues(envelope).ok()) {
      for (const std::string* value :
           {&envelope.message_id(), &envelope.user_id(), &envelope.issue()}) {
        for (char c : *value) Require(c >= 0x20 && c <= 0x7e);
      }
      for (const v1::MetadataEntry& entry : envelope.grpc().metadata()) {
        Require(darvoza::ValidateMetadataEntry(entry.key(), entry.value()).ok());
      }
    }
    if (auto method = exchange::AuthorizedMethod(envelope); method.ok()) {
      auto path = darvoza::MethodPathFromServiceCode(envelope.service().service_code());
      Require(path.ok() && *path == *method && envelope.grpc().method() == *method);
    }
    CheckVerified(world, message, SignatureContext::kRequest, envelope.body_sha256(),
                  envelope.body_length());
  }
  v1::ResponseEnvelope response;
  if (response.ParseFromString(message.envelope())) {
    CheckVerified(world, message, SignatureContext::kResponse, response.body_sha256(),
                  response.body_length());
  }
  return 0;
}
