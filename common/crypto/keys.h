// Private and public keys: ECDSA P-256 (the default) and Ed25519, on OpenSSL 3's EVP API.
//
// Private keys live in PKCS#8 PEM files created with mode 0600; a key file that the group or
// others can read is refused at load (the key must be considered leaked).
//
//   DARVOZA_ASSIGN_OR_RETURN(auto key, PrivateKey::Generate(KeyAlgorithm::kEcdsaP256));
//   DARVOZA_RETURN_IF_ERROR(key->SaveToFile("/var/lib/darvoza/keys/auth.key"));
#ifndef DARVOZA_COMMON_CRYPTO_KEYS_H_
#define DARVOZA_COMMON_CRYPTO_KEYS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace darvoza::crypto {

namespace internal {
class PkeyCtxPool;
}  // namespace internal

enum class KeyAlgorithm { kEcdsaP256, kEd25519 };

// "ecdsa-p256" / "ed25519".
absl::string_view KeyAlgorithmName(KeyAlgorithm algorithm);
// INVALID_ARGUMENT for any other name.
absl::StatusOr<KeyAlgorithm> ParseKeyAlgorithm(absl::string_view name);

// A public key. Immutable after construction; thread-safe.
class PublicKey {
 public:
  // From a DER SubjectPublicKeyInfo. INVALID_ARGUMENT when it is not P-256 or Ed25519.
  static absl::StatusOr<std::unique_ptr<PublicKey>> FromDer(absl::string_view spki_der);
  // Takes ownership of `pkey` (which the caller has checked). For common/ internals.
  static absl::StatusOr<std::unique_ptr<PublicKey>> FromOwnedEvp(EVP_PKEY* pkey);
  ~PublicKey();
  PublicKey(const PublicKey&) = delete;
  PublicKey& operator=(const PublicKey&) = delete;

  KeyAlgorithm algorithm() const { return algorithm_; }
  // DER SubjectPublicKeyInfo.
  const std::string& der() const { return der_; }

  // Verifies a raw signature over `data` (ECDSA with SHA-256, or pure Ed25519). No context tag:
  // use VerifyWithContext (signer.h) for Darvoza signatures. UNAUTHENTICATED when it does not
  // verify.
  absl::Status VerifyRaw(absl::string_view data, absl::string_view signature) const;

  // Borrowed; valid while this object lives. For common/ internals (X.509 building).
  EVP_PKEY* evp() const { return pkey_; }

 private:
  PublicKey(EVP_PKEY* pkey, KeyAlgorithm algorithm, std::string der);
  EVP_PKEY* pkey_;
  KeyAlgorithm algorithm_;
  std::string der_;
  // Verify contexts kept for reuse (ECDSA); null for Ed25519.
  std::unique_ptr<internal::PkeyCtxPool> verify_contexts_;
};

// A private key held in memory. Immutable after construction; thread-safe.
class PrivateKey {
 public:
  static absl::StatusOr<std::unique_ptr<PrivateKey>> Generate(KeyAlgorithm algorithm);
  // From PKCS#8 PEM (unencrypted). INVALID_ARGUMENT on anything else.
  static absl::StatusOr<std::unique_ptr<PrivateKey>> FromPem(absl::string_view pem);
  // Loads a PKCS#8 PEM file. PERMISSION_DENIED when the file is readable by group or others
  // (mode & 077), NOT_FOUND when missing, INVALID_ARGUMENT when not a supported key.
  static absl::StatusOr<std::unique_ptr<PrivateKey>> LoadFromFile(const std::string& path);
  ~PrivateKey();
  PrivateKey(const PrivateKey&) = delete;
  PrivateKey& operator=(const PrivateKey&) = delete;

  // Writes PKCS#8 PEM to `path`, created with mode 0600 (written to a temporary file in the same
  // directory, fsynced and renamed, so a crash never leaves half a key). ALREADY_EXISTS when
  // `path` exists and !overwrite.
  absl::Status SaveToFile(const std::string& path, bool overwrite = false) const;
  std::string ToPem() const;

  KeyAlgorithm algorithm() const { return algorithm_; }
  // DER SubjectPublicKeyInfo of the matching public key.
  std::string PublicKeyDer() const;
  std::unique_ptr<PublicKey> GetPublicKey() const;

  // Raw signature over `data` (ECDSA P-256 with SHA-256, DER-encoded; or pure Ed25519). No
  // context tag: Darvoza signatures go through a Signer (signer.h).
  absl::StatusOr<std::string> SignRaw(absl::string_view data) const;

  // Borrowed; valid while this object lives. For common/ internals (CSR and certificate signing).
  EVP_PKEY* evp() const { return pkey_; }

 private:
  PrivateKey(EVP_PKEY* pkey, KeyAlgorithm algorithm);
  EVP_PKEY* pkey_;
  KeyAlgorithm algorithm_;
  // Sign contexts kept for reuse (ECDSA); null for Ed25519.
  std::unique_ptr<internal::PkeyCtxPool> sign_contexts_;
};

}  // namespace darvoza::crypto

#endif  // DARVOZA_COMMON_CRYPTO_KEYS_H_
