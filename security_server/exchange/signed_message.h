// Signing and checking the messages security servers exchange (docs/design.md §5): the request
// envelope signed by the client member, the response envelope signed by the provider member.
//
// A signature covers the serialized envelope under a context tag (darvoza.v1.request or
// darvoza.v1.response) and the body only through the envelope's body hash, so the check here
// verifies the signature, the signer's certificate (approved CA of the global configuration,
// the configuration's revocation list, validity at the Clock's time, the expected member), and
// that an inline body matches the signed hash and length.
//
//   DARVOZA_ASSIGN_OR_RETURN(v1::SignedMessage msg,
//                            SignMessage(identity, SignatureContext::kRequest, bytes, body));
//   DARVOZA_RETURN_IF_ERROR(verifier.Verify(msg, SignatureContext::kRequest, client.member(),
//                                           envelope.body_sha256(), envelope.body_length(),
//                                           *conf, clock->Now()));
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_SIGNED_MESSAGE_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_SIGNED_MESSAGE_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/message_signature.h"
#include "proto/envelope.pb.h"
#include "proto/globalconf.pb.h"
#include "security_server/key_store.h"

namespace darvoza::ss::exchange {

// Signs `envelope_bytes` with `identity` under `context` (an ordinary signature) and packs it
// with the certificate chain and the inline body. Errors are the signer's.
absl::StatusOr<v1::SignedMessage> SignMessage(const SigningIdentity& identity,
                                              crypto::SignatureContext context,
                                              std::string envelope_bytes, std::string body);

// Packs `signature` (by `identity`'s key over `envelope_bytes`, ordinary or batch) with the
// envelope, the inline body, the key's algorithm and certificate chain.
v1::SignedMessage PackSignedMessage(const SigningIdentity& identity, v1::Signature signature,
                                    std::string envelope_bytes, std::string body);

// The request hash a gRPC call's response carries: SHA-256 of the request's envelope bytes.
std::string RequestHash(absl::string_view envelope_bytes);

// The request hash a REST call's response carries (PR-REST's X-Road-Request-Hash, sent
// base64-encoded): SHA-512(SHA-512(envelope bytes) || SHA-512(body)), or SHA-512(envelope
// bytes) when there is no body. The envelope stands for PR-REST's "headers": it holds the
// method, path, query and forwarded headers, and everything the consumer SS added.
std::string RestRequestHash(absl::string_view envelope_bytes, absl::string_view body);

// RestRequestHash for an envelope with an HTTP call, RequestHash otherwise.
std::string RequestHashFor(const v1::Envelope& envelope, absl::string_view envelope_bytes,
                           absl::string_view body);

// Checks signed messages against a global configuration. Keeps parsed certificates and the
// chains it has verified (per configuration serial), since parsing and chain building cost more
// than the signature check itself. Thread-safe.
class SignedMessageVerifier {
 public:
  SignedMessageVerifier() = default;
  SignedMessageVerifier(const SignedMessageVerifier&) = delete;
  SignedMessageVerifier& operator=(const SignedMessageVerifier&) = delete;

  // OK when `message` is signed under `context` (ordinarily or in a batch,
  // common/message_signature.h) by a certificate with CN member:<signer> that
  // chains to an approved CA of `conf`, is not revoked there and is valid at `now`, and an
  // inline body (if any) has SHA-256 `body_sha256` and length `body_length`.
  // UNAUTHENTICATED for every signature or certificate failure (the message says which),
  // INVALID_ARGUMENT for a body that does not match its signed hash.
  absl::Status Verify(const v1::SignedMessage& message, crypto::SignatureContext context,
                      const v1::MemberId& signer, absl::string_view body_sha256,
                      uint64_t body_length, const v1::GlobalConf& conf, absl::Time now);

  // Parsed certificates (shared with TLS peer checks).
  crypto::CertificateCache& certificates() { return certificates_; }

 private:
  // The signer certificate, checked against `conf` at `now`; cached per (leaf, serial).
  absl::StatusOr<std::shared_ptr<const crypto::Certificate>> CheckedSigner(
      const v1::SignedMessage& message, const v1::MemberId& signer, const v1::GlobalConf& conf,
      absl::Time now);

  crypto::CertificateCache certificates_;
  // Batch roots whose signature verified, by signer certificate.
  VerifiedBatchRoots verified_roots_;
  absl::Mutex mu_;
  // Leaf SHA-256 -> configuration serial at which its chain was verified.
  absl::flat_hash_map<std::string, uint64_t> verified_ ABSL_GUARDED_BY(mu_);
};

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_SIGNED_MESSAGE_H_
