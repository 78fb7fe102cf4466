// KeyStore: the security server's keys and certificates (docs/design.md §4) in its data directory:
//   keys/auth.key   certs/auth.pem     TLS identity (SS↔SS mTLS); watched by gRPC for renewal
//   keys/seal.key   certs/seal.pem     signs audit seals
//   keys/signing-<member>.key  certs/signing-<member>.pem   one per hosted member
//   csr/<name>.csr                     the PKCS#10 requests `ss init` made
//   keys/<name>.next.key  certs/<name>.next.pem   a renewed pair waiting to be switched to
// where <member> is the member id with '/' replaced by '~'. Key files are PKCS#8 PEM, mode
// 0600; certificates are PEM (leaf only; chains add the anchor's root CA).
//
//   DARVOZA_ASSIGN_OR_RETURN(auto keys, KeyStore::Open(data_dir, anchor.root_ca_cert_der()));
//   DARVOZA_ASSIGN_OR_RETURN(SigningIdentity id, keys->SigningSigner(member));
//   DARVOZA_ASSIGN_OR_RETURN(std::string sig, id.signer->Sign(SignatureContext::kRequest, b));
//
// Thread-safe. Signers are shared_ptr so that a renewal never pulls one out from under a user.
#ifndef DARVOZA_SECURITY_SERVER_KEY_STORE_H_
#define DARVOZA_SECURITY_SERVER_KEY_STORE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "proto/identifiers.pb.h"
#include "proto/registry.pb.h"
#include "proto/security_server.pb.h"

namespace darvoza::ss {

// A key that signs, with its certificate chain (DER, leaf first, ending at the root CA).
struct SigningIdentity {
  std::shared_ptr<crypto::Signer> signer;
  std::vector<std::string> cert_chain_der;
  std::shared_ptr<const crypto::Certificate> cert;
};

// The file name stem of a key: "auth", "seal", "signing-UZ~GOV~70000001".
std::string KeyName(v1::CertKind kind, const v1::MemberId* member);

class KeyStore {
 public:
  // `ss init`: creates keys/ (0700), the auth and seal keys, a signing key per member in
  // `members`, and a CSR for each (CN server:<id> or member:<member>). ALREADY_EXISTS when
  // keys exist. Returns the CSRs as submissions for a ServerRegistration.
  static absl::StatusOr<std::vector<v1::CsrSubmission>> CreateKeys(
      const std::string& data_dir, const v1::SecurityServerId& server,
      const std::vector<v1::MemberId>& members);

  // Loads every key and the certificates that exist. `root_ca_der` (the anchor's root) ends
  // each chain. PERMISSION_DENIED for a key readable by others; INTERNAL for unreadable files.
  static absl::StatusOr<std::unique_ptr<KeyStore>> Open(const std::string& data_dir,
                                                        const std::string& root_ca_der);
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  const std::string& data_dir() const { return data_dir_; }
  // Paths of the TLS identity files (what FileWatcherCertificateProvider watches).
  std::string AuthKeyPath() const;
  std::string AuthCertPath() const;
  // The current auth certificate; FAILED_PRECONDITION ("not registered") when none yet.
  absl::StatusOr<std::shared_ptr<const crypto::Certificate>> AuthCert() const;
  // PEM of the auth key and of its certificate chain (for TLS credentials).
  absl::StatusOr<std::string> AuthKeyPem() const;
  absl::StatusOr<std::string> AuthCertChainPem() const;
  // The auth key as a signer (renewal signatures).
  absl::StatusOr<SigningIdentity> AuthSigner() const;
  // The seal key and certificate.
  absl::StatusOr<SigningIdentity> SealSigner() const;
  // The signing key of `member`. NOT_FOUND when this SS holds no signing key for it;
  // FAILED_PRECONDITION when its certificate has not been issued yet.
  absl::StatusOr<SigningIdentity> SigningSigner(const v1::MemberId& member) const;
  // Members that have signing keys here.
  std::vector<v1::MemberId> SigningMembers() const;
  const std::string& root_ca_der() const { return root_ca_der_; }

  // Stores an issued certificate for the current key of (kind, member). INVALID_ARGUMENT when
  // the certificate is not for that key.
  absl::Status StoreCertificate(const v1::IssuedCertificate& issued);

  // --- Renewal.
  // Makes a new key for (kind, member) as <name>.next.key and returns its CSR (DER).
  // Replaces an earlier pending key.
  absl::StatusOr<std::string> CreateRenewalKey(v1::CertKind kind, const v1::MemberId* member,
                                               const std::string& common_name);
  // Stores the certificate issued for the pending key (INVALID_ARGUMENT when it does not
  // match, NOT_FOUND when no key is pending).
  absl::Status StoreRenewedCertificate(const v1::IssuedCertificate& issued);
  // The renewed certificate waiting for promotion, if any.
  std::shared_ptr<const crypto::Certificate> PendingCertificate(v1::CertKind kind,
                                                                const v1::MemberId* member) const;
  // Makes the pending key and certificate the current ones (files renamed, key before
  // certificate so a watcher never pairs a new certificate with the old key for long).
  absl::Status PromotePending(v1::CertKind kind, const v1::MemberId* member);

  // One entry per certificate held (and pending), for status and metrics.
  std::vector<v1::CertificateStatus> Describe() const;

 private:
  struct Slot {
    v1::CertKind kind = v1::CERT_KIND_UNSPECIFIED;
    v1::MemberId member;
    std::shared_ptr<crypto::Signer> signer;
    std::string public_key_der;
    std::shared_ptr<const crypto::Certificate> cert;
    std::unique_ptr<crypto::PrivateKey> next_key;
    std::shared_ptr<const crypto::Certificate> next_cert;
  };
  KeyStore(std::string data_dir, std::string root_ca_der);
  absl::Status LoadSlot(v1::CertKind kind, const v1::MemberId* member);
  absl::StatusOr<SigningIdentity> Identity(const std::string& name) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const std::string data_dir_;
  const std::string root_ca_der_;
  mutable absl::Mutex mu_;
  std::map<std::string, Slot> slots_ ABSL_GUARDED_BY(mu_);  // by KeyName
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_KEY_STORE_H_
