// Audit seals and witness receipts (docs/design.md §7): the checks every party shares.
//
// A security server signs a Seal (context darvoza.v1.seal) over a batch of its audit records;
// the registry's witness returns a signed WitnessReceipt (context darvoza.v1.witness) and
// refuses a seal whose previous witnessed head is not the head it holds. Auditors, the registry
// and the audit log all check these with the functions here, so there is one definition of
// "a valid seal".
//
// Conventions the checks enforce:
// - A seal certificate's subject CN is "server:" + the security server's id (the seal's
//   `server`), and it chains to a trusted root at the seal's `sealed_at` time.
// - A witness certificate chains to a trusted root at the receipt's `witnessed_at` time and is
//   either pinned (SealTrust::witness_cert_sha256, e.g. from GlobalConf.witness_cert_der) or,
//   with no pins, is not a server/member/subsystem certificate.
// - The first seal of a server names previous_witnessed_seq = 0 and an empty
//   previous_witnessed_head; the witness's empty state is (0, "").
//
//   DARVOZA_ASSIGN_OR_RETURN(v1::SignedSeal signed_seal, SignSeal(seal, *signer, cert_der));
//   SealTrust trust{.roots = {root_ca}};
//   DARVOZA_ASSIGN_OR_RETURN(v1::Seal checked, VerifySignedSeal(signed_seal, trust));
#ifndef DARVOZA_COMMON_SEAL_H_
#define DARVOZA_COMMON_SEAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "proto/audit.pb.h"

namespace darvoza {

// What seal and receipt signatures must chain to. Plain value; cheap to copy.
struct SealTrust {
  std::vector<std::shared_ptr<const crypto::Certificate>> roots;
  std::vector<std::shared_ptr<const crypto::Certificate>> intermediates;
  // Null: nothing is revoked. Revoked witness certificates are refused outright; a revoked
  // seal certificate is judged by CheckSealNotRevoked.
  std::shared_ptr<const crypto::RevocationList> revoked;
  // SHA-256 (raw) of the accepted witness certificates; empty: see the file comment.
  absl::flat_hash_set<std::string> witness_cert_sha256;
};

// Signs `seal` with `signer` (context kSeal) and attaches `signer_cert_der`. Errors are the
// signer's (UNAVAILABLE or INTERNAL).
absl::StatusOr<v1::SignedSeal> SignSeal(const v1::Seal& seal, crypto::Signer& signer,
                                        absl::string_view signer_cert_der);

// Checks a seal's shape: first_seq >= 1, first_seq <= last_seq, 32-byte merkle_root and
// chain_head, previous_witnessed_seq < first_seq, previous head empty iff its seq is 0.
// INVALID_ARGUMENT naming the problem.
absl::Status ValidateSeal(const v1::Seal& seal);

// Parses and checks a signed seal: its shape, its certificate (parsed, CN naming the seal's
// server, chain to `trust` at sealed_at) and the signature. Returns the seal. Revocation of the
// seal certificate is not applied here: it depends on the seal's witness receipt, so the caller
// applies CheckSealNotRevoked once it knows the receipt. INVALID_ARGUMENT for malformed bytes,
// UNAUTHENTICATED for a signature or certificate that does not check (the message says which).
absl::StatusOr<v1::Seal> VerifySignedSeal(const v1::SignedSeal& signed_seal,
                                          const SealTrust& trust);

// SHA-256 of the serialized seal bytes (SignedSeal.seal): what a receipt names.
std::string SealDigest(const v1::SignedSeal& signed_seal);

// The receipt a witness issues for `signed_seal` (already checked) at `now`.
v1::WitnessReceipt MakeWitnessReceipt(const v1::SignedSeal& signed_seal, const v1::Seal& seal,
                                      absl::Time now);

// Signs a receipt with the witness key (context kWitness).
absl::StatusOr<v1::SignedWitnessReceipt> SignWitnessReceipt(const v1::WitnessReceipt& receipt,
                                                            crypto::Signer& signer,
                                                            absl::string_view signer_cert_der);

// Parses and checks a signed receipt: certificate (chain to `trust` at witnessed_at, witness
// pin or not an SS certificate) and signature. Returns the receipt. INVALID_ARGUMENT for
// malformed bytes, UNAUTHENTICATED otherwise.
absl::StatusOr<v1::WitnessReceipt> VerifySignedWitnessReceipt(
    const v1::SignedWitnessReceipt& signed_receipt, const SealTrust& trust);

// OK when `receipt` is a receipt for exactly `signed_seal` (server, last seq, chain head,
// seal digest); UNAUTHENTICATED naming the mismatch otherwise.
absl::Status CheckReceiptMatchesSeal(const v1::WitnessReceipt& receipt,
                                     const v1::SignedSeal& signed_seal, const v1::Seal& seal);

// The revocation rule for seals. A seal's sealed_at is its signer's claim, so a seal whose
// certificate `trust.revoked` lists counts only when its witness receipt shows that the witness
// accepted it before the revocation: witnessed_at earlier than revoked_at. `receipt` is the
// seal's receipt, already verified and matched to it (CheckReceiptMatchesSeal), or null when it
// has none: an unwitnessed seal by a revoked certificate never counts, however lenient the
// caller is about a live log's unwitnessed tail. OK when the certificate is not revoked or the
// receipt predates the revocation; UNAUTHENTICATED naming the certificate and times otherwise.
absl::Status CheckSealNotRevoked(const v1::SignedSeal& signed_seal,
                                 const v1::WitnessReceipt* receipt, const SealTrust& trust);

// What a witness holds for one security server: the last seal it witnessed ((0, "", "") before
// the first).
struct WitnessedHead {
  uint64_t seq = 0;
  std::string chain_head;
  std::string seal_sha256;  // SealDigest of that seal
};

// How a seal that passed CheckWitnessHead relates to the held head.
enum class WitnessStep {
  kExtends,  // names the held head as its previous: the witness moves its head to this seal
  kRepeats,  // is the very seal the witness holds: its receipt was lost on the way back (the
             // reply was dropped, or the security server could not store it), so the witness
             // signs a receipt again and keeps its head
};

// The witness's head rule, the one definition the registry, the audit log's tests and auditors
// share: a seal either names the held head as its previous witnessed (seq, head) and ends after
// it, or is byte for byte the seal last witnessed (`seal_sha256` = SealDigest). REQUIRES: the
// seal passed ValidateSeal. FAILED_PRECONDITION with fault Server.Registry.WitnessHeadMismatch
// otherwise: the log went backwards, forked, or was cut and regrown.
absl::StatusOr<WitnessStep> CheckWitnessHead(const v1::Seal& seal, absl::string_view seal_sha256,
                                             const WitnessedHead& held);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_SEAL_H_
