// Audit archive files and their offline verification (docs/design.md §7).
//
// An archive (darvoza.v1.AuditArchive) carries records, bodies (unless excluded), seals,
// receipts, certificates and global configurations. On disk it is "DVZARC01" followed by the
// serialized archive, or that whole file inside a sealed box (common/sealed_box.h) when it is
// encrypted to an auditor's P-256 key.
//
// Verification checks, in seq order: every record's seq (dense), its prev_hash link and
// recomputed hash; every body against its hash; that every certificate a record references
// (signer_cert_sha256) is in the archive and hashes to its reference; every seal's signature,
// certificate chain and Merkle root and chain head against the recomputed record hashes; that each seal names the
// previous seal's head; every witness receipt (signature, certificate, that it is for that
// seal); that a seal by a revoked certificate was witnessed before its revocation
// (CheckSealNotRevoked); and, when given, heads the witness holds (receipts fetched from the
// registry), which catch a tail cut off and re-sealed. Strict verification also refuses records after the last
// seal, records beyond the archive's last_seq, bytes appended to the archive file and a body
// listed twice. It reports OK with counts, or the first bad record.
//
//   DARVOZA_ASSIGN_OR_RETURN(v1::AuditArchive archive, ReadArchiveFile(path, nullptr));
//   DARVOZA_ASSIGN_OR_RETURN(VerifyOptions options, VerifyOptionsFromAnchor(anchor, archive));
//   VerifyReport report = VerifyArchive(archive, options);
//   std::cout << report.ToText();
#ifndef DARVOZA_AUDIT_ARCHIVE_H_
#define DARVOZA_AUDIT_ARCHIVE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/keys.h"
#include "common/seal.h"
#include "proto/archive.pb.h"
#include "proto/globalconf.pb.h"

namespace darvoza::audit {

inline constexpr absl::string_view kArchiveMagic = "DVZARC01";

// Serializes an archive, encrypted to `encrypt_to` when it is not null.
absl::StatusOr<std::string> SerializeArchive(const v1::AuditArchive& archive,
                                             const crypto::PublicKey* encrypt_to);
// Parses archive bytes; decrypts with `key` when encrypted. FAILED_PRECONDITION when encrypted
// and no key was given; UNAUTHENTICATED when decryption fails (wrong key, changed or reordered
// chunk); INVALID_ARGUMENT when it is not an archive.
absl::StatusOr<v1::AuditArchive> ParseArchive(absl::string_view bytes,
                                              const crypto::PrivateKey* key);
absl::Status WriteArchiveFile(const std::string& path, const v1::AuditArchive& archive,
                              const crypto::PublicKey* encrypt_to);
absl::StatusOr<v1::AuditArchive> ReadArchiveFile(const std::string& path,
                                                 const crypto::PrivateKey* key);

struct VerifyOptions {
  SealTrust trust;
  // Accept a live log's tail: seals without a witness receipt (receipts can lag) and records
  // after the last seal, counted but authenticated by nothing. Default (strict): every record
  // is in a seal and every seal is witnessed.
  bool allow_unwitnessed_seals = false;
  // Heads the witness holds, fetched from it out of band: the log must contain them.
  std::vector<v1::SignedWitnessReceipt> witness_heads;
};

struct VerifyReport {
  bool ok = true;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t records = 0;
  uint64_t bodies = 0;
  uint64_t seals = 0;
  uint64_t receipts = 0;
  uint64_t unsealed_records = 0;
  uint64_t unwitnessed_seals = 0;
  // When !ok: the first bad record and why.
  uint64_t bad_seq = 0;
  std::string reason;

  std::string ToText() const;
  std::string ToJson() const;
};

// Builds the trust of an offline check from a configuration anchor: its root CA, and the
// witness certificates pinned and the revocations listed (with their times) by any global
// configuration in `global_configurations` that is signed by one of the anchor's
// configuration-signing certificates.
absl::StatusOr<VerifyOptions> VerifyOptionsFromAnchor(
    const v1::ConfigurationAnchor& anchor, const std::vector<std::string>& global_configurations);
// Reads a serialized ConfigurationAnchor file.
absl::StatusOr<v1::ConfigurationAnchor> ReadAnchorFile(const std::string& path);

// Checks everything in `archive` (see the file comment).
VerifyReport VerifyArchive(const v1::AuditArchive& archive, const VerifyOptions& options);

// Checks one inclusion proof: record hash, Merkle path to the seal's root, the seal and its
// receipt against `options` (a receipt is required unless allow_unwitnessed_seals). Returns
// the record; UNAUTHENTICATED naming what failed.
absl::StatusOr<v1::AuditRecord> VerifyInclusionProof(const v1::AuditInclusionProof& proof,
                                                     const VerifyOptions& options);

}  // namespace darvoza::audit

#endif  // DARVOZA_AUDIT_ARCHIVE_H_
