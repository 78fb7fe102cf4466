// Signing with context tags (docs/design.md §4).
//
// Every Darvoza signature covers a context tag, a zero byte and then the bytes, so a signature
// made for one purpose (a seal, say) can never be replayed as another (a request). Keys are used
// only through the Signer interface so that a PKCS#11 token can replace a key file later.
//
//   DARVOZA_ASSIGN_OR_RETURN(auto signer, FileKeySigner::Open("/var/lib/darvoza/keys/seal.key"));
//   DARVOZA_ASSIGN_OR_RETURN(std::string sig, signer->Sign(SignatureContext::kSeal, seal_bytes));
//   DARVOZA_RETURN_IF_ERROR(VerifyWithContext(*cert->public_key(), SignatureContext::kSeal,
//                                             seal_bytes, sig));
#ifndef DARVOZA_COMMON_CRYPTO_SIGNER_H_
#define DARVOZA_COMMON_CRYPTO_SIGNER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/keys.h"

namespace darvoza::crypto {

enum class SignatureContext {
  kRequest,     // darvoza.v1.request
  kResponse,    // darvoza.v1.response
  kSeal,        // darvoza.v1.seal
  kGlobalConf,  // darvoza.v1.globalconf
  kBatchRoot,   // darvoza.v1.batch-root
  kWitness,     // darvoza.v1.witness
  kRegistration,  // darvoza.v1.registration (a renewal request signed with the current auth key)
};

// The tag text, e.g. "darvoza.v1.request".
absl::string_view ContextTag(SignatureContext context);

// The exact bytes a signature covers: tag, '\0', data.
std::string SignedBytes(SignatureContext context, absl::string_view data);

// Something that signs with one private key. Implementations are thread-safe.
class Signer {
 public:
  virtual ~Signer() = default;

  // Signs SignedBytes(context, data). Errors are UNAVAILABLE (token gone) or INTERNAL.
  virtual absl::StatusOr<std::string> Sign(SignatureContext context, absl::string_view data) = 0;

  virtual KeyAlgorithm algorithm() const = 0;
  // DER SubjectPublicKeyInfo of the signing key: the registry matches it against certificates.
  virtual std::string PublicKeyDer() const = 0;
};

// A Signer over a PKCS#8 key file (or a key already in memory).
class FileKeySigner final : public Signer {
 public:
  // Loads with PrivateKey::LoadFromFile (so a readable-by-others key file is refused).
  static absl::StatusOr<std::unique_ptr<FileKeySigner>> Open(const std::string& path);
  explicit FileKeySigner(std::unique_ptr<PrivateKey> key);

  absl::StatusOr<std::string> Sign(SignatureContext context, absl::string_view data) override;
  KeyAlgorithm algorithm() const override;
  std::string PublicKeyDer() const override;

 private:
  const std::unique_ptr<PrivateKey> key_;
};

// OK when `signature` is `key`'s signature over SignedBytes(context, data); UNAUTHENTICATED
// otherwise (a wrong tag, key, byte or a malformed signature are all simply "does not verify").
absl::Status VerifyWithContext(const PublicKey& key, SignatureContext context,
                               absl::string_view data, absl::string_view signature);

}  // namespace darvoza::crypto

#endif  // DARVOZA_COMMON_CRYPTO_SIGNER_H_
