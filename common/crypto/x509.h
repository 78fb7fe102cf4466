// X.509 certificates and certificate signing requests for Darvoza's PKI (docs/design.md §4).
//
// The registry's instance root CA issues every certificate. A certificate's subject common name
// is a kind-prefixed identifier (common/identifiers.h), e.g. "server:UZ/GOV/70000001/ss1" for an
// authentication certificate or "member:UZ/GOV/70000001" for a member's signing certificate.
// Certificates are checked against a Clock's time and a revocation list of (issuer, serial),
// both given by the caller: OpenSSL's own idea of "now" is never used.
//
//   DARVOZA_ASSIGN_OR_RETURN(auto csr, CertificateRequest::Create(*key, "server:UZ/GOV/7/ss1"));
//   IssueOptions opts{.serial = 7, .not_before = now, .not_after = now + absl::Hours(24 * 365),
//                     .profile = CertificateProfile::kTlsAuth};
//   DARVOZA_ASSIGN_OR_RETURN(auto cert, IssueCertificate(*ca_key, ca_cert.get(), *csr, opts));
//   DARVOZA_RETURN_IF_ERROR(VerifyChain(*cert, {}, {ca_cert}, clock->Now(), revoked));
#ifndef DARVOZA_COMMON_CRYPTO_X509_H_
#define DARVOZA_COMMON_CRYPTO_X509_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/crypto/keys.h"

typedef struct x509_st X509;

namespace darvoza::crypto {

// What a certificate may be used for. Maps to basicConstraints, keyUsage and extendedKeyUsage.
enum class CertificateProfile {
  kRootCa,    // CA:TRUE, keyCertSign + cRLSign
  kTlsAuth,   // CA:FALSE, digitalSignature, EKU serverAuth + clientAuth (SS and registry TLS)
  kSigning,   // CA:FALSE, digitalSignature + nonRepudiation, EKU none (members, seals, conf,
              // witness: Darvoza signatures with context tags)
};

// A parsed certificate. Immutable; thread-safe; shared between caches and users.
class Certificate {
 public:
  static absl::StatusOr<std::shared_ptr<const Certificate>> FromDer(absl::string_view der);
  // The first certificate in PEM text.
  static absl::StatusOr<std::shared_ptr<const Certificate>> FromPem(absl::string_view pem);
  // PEM or DER file. NOT_FOUND when missing.
  static absl::StatusOr<std::shared_ptr<const Certificate>> LoadFromFile(const std::string& path);
  ~Certificate();
  Certificate(const Certificate&) = delete;
  Certificate& operator=(const Certificate&) = delete;

  const std::string& der() const { return der_; }
  std::string ToPem() const;
  // SHA-256 of the DER: 32 raw bytes (the pin used in global configurations and IS mTLS).
  const std::string& sha256() const { return sha256_; }

  // Subject common name (a kind-prefixed identifier for certificates Darvoza issues).
  const std::string& subject_common_name() const { return subject_cn_; }
  // RFC 2253 one-line forms.
  const std::string& subject() const { return subject_; }
  const std::string& issuer() const { return issuer_; }
  // Lower-case hex without leading zeros ("0" for zero); revocation lists use this form.
  const std::string& serial_hex() const { return serial_hex_; }
  absl::Time not_before() const { return not_before_; }
  absl::Time not_after() const { return not_after_; }
  bool is_ca() const { return is_ca_; }
  // The profile the extensions match, if any.
  absl::StatusOr<CertificateProfile> profile() const;
  const PublicKey& public_key() const { return *public_key_; }
  // The dNSName and iPAddress entries of the subjectAltName (IP addresses in their text form),
  // in certificate order; empty when there is no such extension.
  std::vector<std::string> SubjectAltHosts() const;

  // Borrowed; valid while this object lives. For common/ internals.
  X509* x509() const { return x509_; }

 private:
  Certificate() = default;
  X509* x509_ = nullptr;
  std::string der_;
  std::string sha256_;
  std::string subject_cn_;
  std::string subject_;
  std::string issuer_;
  std::string serial_hex_;
  absl::Time not_before_;
  absl::Time not_after_;
  bool is_ca_ = false;
  std::unique_ptr<PublicKey> public_key_;
};

// A PKCS#10 request. Immutable.
class CertificateRequest {
 public:
  // Makes a request for `key` whose subject CN is `subject_common_name`, self-signed by `key`.
  static absl::StatusOr<std::unique_ptr<CertificateRequest>> Create(
      const PrivateKey& key, absl::string_view subject_common_name);
  // Parses DER or PEM and checks the self-signature. INVALID_ARGUMENT on garbage, a bad
  // self-signature, or a key that is not P-256 / Ed25519.
  static absl::StatusOr<std::unique_ptr<CertificateRequest>> Parse(absl::string_view der_or_pem);
  CertificateRequest(const CertificateRequest&) = delete;
  CertificateRequest& operator=(const CertificateRequest&) = delete;

  const std::string& der() const { return der_; }
  std::string ToPem() const;
  const std::string& subject_common_name() const { return subject_cn_; }
  const PublicKey& public_key() const { return *public_key_; }

 private:
  CertificateRequest() = default;
  std::string der_;
  std::string subject_cn_;
  std::unique_ptr<PublicKey> public_key_;
};

struct IssueOptions {
  uint64_t serial = 0;  // REQUIRES: > 0 and unique per issuer
  absl::Time not_before;
  absl::Time not_after;  // REQUIRES: > not_before
  CertificateProfile profile = CertificateProfile::kSigning;
  // subjectAltName entries: host names (dNSName) and IP address literals (iPAddress), each
  // checked with ValidateSubjectAltHost. Stock TLS clients verify a server by these alone.
  // Default: none (no subjectAltName extension).
  std::vector<std::string> subject_alt_hosts;
};

// OK when `host` may go into a subjectAltName: an IPv4 or IPv6 address literal other than the
// unspecified one (0.0.0.0, ::), or a DNS name of 1-253 characters in labels of 1-63 letters,
// digits and '-' (not at a label's ends). INVALID_ARGUMENT saying which rule failed.
absl::Status ValidateSubjectAltHost(absl::string_view host);

// The host part of "host:port" or "[v6]:port", checked with ValidateSubjectAltHost.
// INVALID_ARGUMENT when there is no port or the host does not pass.
absl::StatusOr<std::string> SubjectAltHostOf(absl::string_view host_port);

// Issues a certificate for `subject_key` with subject CN `subject_common_name`, signed by
// `issuer_key`. `issuer_cert` null means self-signed (a root CA: issuer_key must be the
// subject key). INVALID_ARGUMENT when issuer_cert is not a CA or does not match issuer_key.
absl::StatusOr<std::shared_ptr<const Certificate>> IssueCertificate(
    const PrivateKey& issuer_key, const Certificate* issuer_cert, const PublicKey& subject_key,
    absl::string_view subject_common_name, const IssueOptions& options);

// Convenience: issues for a CSR's key and CN (the CSR is already self-signature-checked).
absl::StatusOr<std::shared_ptr<const Certificate>> IssueCertificate(
    const PrivateKey& issuer_key, const Certificate* issuer_cert, const CertificateRequest& csr,
    const IssueOptions& options);

// Revoked (issuer, serial) pairs, as the global configuration carries them, each with the time
// its issuer revoked it.
class RevocationList {
 public:
  // `revoked_at` unknown (InfinitePast): revoked for everything ever signed with it. A pair
  // added again keeps its earliest time.
  void Add(absl::string_view issuer, absl::string_view serial_hex,
           absl::Time revoked_at = absl::InfinitePast());
  bool IsRevoked(const Certificate& cert) const;
  // When `cert` was revoked; nullopt when it is not.
  std::optional<absl::Time> RevokedAt(const Certificate& cert) const;
  size_t size() const { return revoked_.size(); }

 private:
  absl::flat_hash_map<std::string, absl::Time> revoked_;  // issuer + '\n' + serial_hex
};

// Verifies that `leaf` chains through `intermediates` to one of `trusted` at time `at`, that no
// certificate in the chain is revoked, and, when `purpose` is given, that the leaf matches it.
// Returns UNAUTHENTICATED with a message naming the reason: "certificate expired",
// "certificate not yet valid", "certificate revoked", "unknown issuer", "bad signature",
// "wrong certificate purpose". Time is `at`, never the system clock.
absl::Status VerifyChain(const Certificate& leaf,
                         const std::vector<std::shared_ptr<const Certificate>>& intermediates,
                         const std::vector<std::shared_ptr<const Certificate>>& trusted,
                         absl::Time at, const RevocationList& revoked,
                         const CertificateProfile* purpose = nullptr);

// Parsed certificates by SHA-256 of their DER: parsing costs more than verifying a signature.
// Thread-safe. Bounded: when full, it is cleared (simple and adequate for a federation's size).
class CertificateCache {
 public:
  explicit CertificateCache(size_t max_entries = 4096);
  CertificateCache(const CertificateCache&) = delete;
  CertificateCache& operator=(const CertificateCache&) = delete;

  // The parsed certificate for `der`, parsing it only on first sight.
  absl::StatusOr<std::shared_ptr<const Certificate>> Get(absl::string_view der);
  // The same for PEM text (what TLS stacks hand out for a peer), keyed by the text's hash:
  // decoding PEM costs more than the DER parse.
  absl::StatusOr<std::shared_ptr<const Certificate>> GetPem(absl::string_view pem);
  size_t size() const;
  uint64_t hits() const;

 private:
  absl::StatusOr<std::shared_ptr<const Certificate>> GetOrParse(
      std::string key,
      const std::function<absl::StatusOr<std::shared_ptr<const Certificate>>()>& parse);

  const size_t max_entries_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const Certificate>> by_sha256_
      ABSL_GUARDED_BY(mu_);
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace darvoza::crypto

#endif  // DARVOZA_COMMON_CRYPTO_X509_H_
