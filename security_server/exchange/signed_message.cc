#include "security_server/exchange/signed_message.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/globalconf.h"
#include "common/identifiers.h"

namespace darvoza::ss::exchange {
namespace {

absl::Status Unauthenticated(absl::string_view message) {
  return Fault(absl::StatusCode::kUnauthenticated, faults::kInvalidSignature, message);
}

}  // namespace

absl::StatusOr<v1::SignedMessage> SignMessage(const SigningIdentity& identity,
                                              crypto::SignatureContext context,
                                              std::string envelope_bytes, std::string body) {
  const MessageToSign item{context, envelope_bytes};
  auto signature = SignBatch(*identity.signer, {item});  // one item: an ordinary signature
  if (!signature.ok()) return signature.status();
  return PackSignedMessage(identity, std::move(signature->front()), std::move(envelope_bytes),
                           std::move(body));
}

v1::SignedMessage PackSignedMessage(const SigningIdentity& identity, v1::Signature signature,
                                    std::string envelope_bytes, std::string body) {
  v1::SignedMessage message;
  message.set_envelope(std::move(envelope_bytes));
  v1::Signature* sig = message.mutable_signature();
  *sig = std::move(signature);
  sig->set_algorithm(identity.signer->algorithm() == crypto::KeyAlgorithm::kEd25519
                         ? v1::ED25519
                         : v1::ECDSA_P256_SHA256);
  if (identity.cert != nullptr) sig->set_signer_cert_sha256(identity.cert->sha256());
  for (const std::string& der : identity.cert_chain_der) message.add_signer_cert_chain(der);
  message.set_body(std::move(body));
  return message;
}

std::string RequestHash(absl::string_view envelope_bytes) {
  return crypto::Sha256(envelope_bytes);
}

std::string RestRequestHash(absl::string_view envelope_bytes, absl::string_view body) {
  if (body.empty()) return crypto::Sha512(envelope_bytes);
  return crypto::Sha512(absl::StrCat(crypto::Sha512(envelope_bytes), crypto::Sha512(body)));
}

std::string RequestHashFor(const v1::Envelope& envelope, absl::string_view envelope_bytes,
                           absl::string_view body) {
  return envelope.has_http() ? RestRequestHash(envelope_bytes, body)
                             : RequestHash(envelope_bytes);
}

absl::StatusOr<std::shared_ptr<const crypto::Certificate>> SignedMessageVerifier::CheckedSigner(
    const v1::SignedMessage& message, const v1::MemberId& signer, const v1::GlobalConf& conf,
    absl::Time now) {
  if (message.signer_cert_chain_size() == 0) {
    return Unauthenticated("the signed message carries no signer certificate");
  }
  auto leaf = certificates_.Get(message.signer_cert_chain(0));
  if (!leaf.ok()) {
    return Unauthenticated(absl::StrCat("unreadable signer certificate: ",
                                        leaf.status().message()));
  }
  const std::string expected_cn = absl::StrCat("member:", FormatMemberId(signer));
  if ((*leaf)->subject_common_name() != expected_cn) {
    return Unauthenticated(absl::StrCat("signed by ", (*leaf)->subject_common_name(),
                                        ", not by ", expected_cn));
  }
  // Validity is checked on every message (the clock moves); the chain only once per serial.
  if (now < (*leaf)->not_before()) return Unauthenticated("signer certificate not yet valid");
  if (now > (*leaf)->not_after()) return Unauthenticated("signer certificate expired");
  {
    absl::MutexLock lock(&mu_);
    auto it = verified_.find((*leaf)->sha256());
    if (it != verified_.end() && it->second == conf.serial()) return *leaf;
  }
  std::vector<std::shared_ptr<const crypto::Certificate>> trusted;
  for (const v1::ApprovedCa& ca : conf.approved_cas()) {
    auto cert = certificates_.Get(ca.cert_der());
    if (cert.ok()) trusted.push_back(*std::move(cert));
  }
  std::vector<std::shared_ptr<const crypto::Certificate>> intermediates;
  for (int i = 1; i < message.signer_cert_chain_size(); ++i) {
    auto cert = certificates_.Get(message.signer_cert_chain(i));
    if (cert.ok()) intermediates.push_back(*std::move(cert));
  }
  const crypto::RevocationList revoked = RevocationListOf(conf.revoked());
  const crypto::CertificateProfile signing = crypto::CertificateProfile::kSigning;
  absl::Status chain = crypto::VerifyChain(**leaf, intermediates, trusted, now, revoked, &signing);
  if (!chain.ok()) {
    return Unauthenticated(absl::StrCat("signer certificate refused: ", chain.message()));
  }
  absl::MutexLock lock(&mu_);
  if (verified_.size() > 100000) verified_.clear();
  verified_[(*leaf)->sha256()] = conf.serial();
  return *leaf;
}

absl::Status SignedMessageVerifier::Verify(const v1::SignedMessage& message,
                                           crypto::SignatureContext context,
                                           const v1::MemberId& signer,
                                           absl::string_view body_sha256, uint64_t body_length,
                                           const v1::GlobalConf& conf, absl::Time now) {
  auto cert = CheckedSigner(message, signer, conf, now);
  if (!cert.ok()) return cert.status();
  absl::Status signature =
      VerifyMessageSignature((*cert)->public_key(), (*cert)->sha256(), context,
                             message.envelope(), message.signature(), &verified_roots_);
  if (!signature.ok()) return Unauthenticated(signature.message());
  if (message.body().size() != body_length || crypto::Sha256(message.body()) != body_sha256) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
                 "the body does not match the signed body hash and length");
  }
  return absl::OkStatus();
}

}  // namespace darvoza::ss::exchange
