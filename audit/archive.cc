#include "audit/archive.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "audit/internal/store.h"
#include "common/crypto/hash.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/files.h"
#include "common/globalconf.h"
#include "common/identifiers.h"
#include "common/merkle.h"
#include "common/sealed_box.h"
#include "common/status_macros.h"

namespace darvoza::audit {
namespace {

std::string JsonEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<int>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> SerializeArchive(const v1::AuditArchive& archive,
                                             const crypto::PublicKey* encrypt_to) {
  std::string plain(kArchiveMagic);
  if (!archive.AppendToString(&plain)) return absl::InternalError("cannot serialize archive");
  if (encrypt_to == nullptr) return plain;
  return SealedBoxEncrypt(*encrypt_to, plain);
}

absl::StatusOr<v1::AuditArchive> ParseArchive(absl::string_view bytes,
                                              const crypto::PrivateKey* key) {
  std::string decrypted;
  if (IsSealedBox(bytes)) {
    if (key == nullptr) {
      return absl::FailedPreconditionError(
          "the archive is encrypted: give the auditor's private key (--key)");
    }
    DARVOZA_ASSIGN_OR_RETURN(decrypted, SealedBoxDecrypt(*key, bytes));
    bytes = decrypted;
  }
  if (bytes.substr(0, kArchiveMagic.size()) != kArchiveMagic) {
    return absl::InvalidArgumentError("not a darvoza audit archive");
  }
  v1::AuditArchive archive;
  bytes.remove_prefix(kArchiveMagic.size());
  if (!archive.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("archive does not parse (damaged file?)");
  }
  // Protobuf parses bytes appended to a message as more fields: a repeated scalar field
  // silently overrides the first (first_seq, last_seq, ...). Our writer emits each once, so the
  // parsed archive serializes back to exactly as many bytes; anything else was added later.
  if (archive.ByteSizeLong() != bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "archive has ", bytes.size(), " bytes but its content accounts for ",
        archive.ByteSizeLong(), ": bytes were appended or fields repeated after export"));
  }
  return archive;
}

absl::Status WriteArchiveFile(const std::string& path, const v1::AuditArchive& archive,
                              const crypto::PublicKey* encrypt_to) {
  DARVOZA_ASSIGN_OR_RETURN(std::string bytes, SerializeArchive(archive, encrypt_to));
  // Atomic and durable: purge deletes records on the strength of this file. Owner-only, since a
  // plain archive holds message bodies.
  return WriteFileAtomically(path, bytes, 0600);
}

absl::StatusOr<v1::AuditArchive> ReadArchiveFile(const std::string& path,
                                                 const crypto::PrivateKey* key) {
  DARVOZA_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(path));
  return ParseArchive(bytes, key);
}

absl::StatusOr<v1::ConfigurationAnchor> ReadAnchorFile(const std::string& path) {
  DARVOZA_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(path));
  v1::ConfigurationAnchor anchor;
  if (!anchor.ParseFromString(bytes) || anchor.root_ca_cert_der().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a configuration anchor (darvoza.v1.ConfigurationAnchor)"));
  }
  return anchor;
}

absl::StatusOr<VerifyOptions> VerifyOptionsFromAnchor(
    const v1::ConfigurationAnchor& anchor, const std::vector<std::string>& global_configurations) {
  VerifyOptions options;
  auto root = crypto::Certificate::FromDer(anchor.root_ca_cert_der());
  if (!root.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("anchor root certificate: ", root.status().message()));
  }
  options.trust.roots.push_back(*root);
  // Every revocation any trusted configuration lists, each at its earliest time: an older
  // configuration in the archive cannot hide a revocation a newer one (the auditor's) carries.
  google::protobuf::RepeatedPtrField<v1::RevokedCertificate> revoked;
  for (const std::string& blob : global_configurations) {
    v1::SignedGlobalConf signed_conf;
    if (!signed_conf.ParseFromString(blob)) continue;
    bool anchored = false;
    for (const std::string& der : anchor.conf_signing_cert_der()) {
      anchored = anchored || der == signed_conf.signer_cert_der();
    }
    if (!anchored) continue;
    auto cert = crypto::Certificate::FromDer(signed_conf.signer_cert_der());
    if (!cert.ok()) continue;
    if (!crypto::VerifyWithContext((*cert)->public_key(), crypto::SignatureContext::kGlobalConf,
                                   signed_conf.conf(), signed_conf.signature())
             .ok()) {
      continue;
    }
    v1::GlobalConf conf;
    if (!conf.ParseFromString(signed_conf.conf())) continue;
    revoked.MergeFrom(conf.revoked());
    if (conf.witness_cert_der().empty()) continue;
    options.trust.witness_cert_sha256.insert(crypto::Sha256(conf.witness_cert_der()));
  }
  options.trust.revoked = std::make_shared<const crypto::RevocationList>(RevocationListOf(revoked));
  return options;
}

VerifyReport VerifyArchive(const v1::AuditArchive& archive, const VerifyOptions& options) {
  VerifyReport report;
  report.first_seq = archive.first_seq();
  report.last_seq = archive.last_seq();
  auto fail = [&report](uint64_t seq, std::string reason) {
    if (report.ok || seq < report.bad_seq) {
      report.ok = false;
      report.bad_seq = seq;
      report.reason = std::move(reason);
    }
  };
  const uint64_t first = archive.first_seq();
  if (first == 0) {
    if (archive.records_size() > 0) fail(1, "archive has records but first_seq is 0");
    return report;
  }

  // 1. Where the chain starts.
  const std::string zero = internal::ZeroHash();
  std::string prev = archive.start_prev_hash();
  bool seal_chain_known = false;
  uint64_t prev_seal_seq = 0;
  std::string prev_seal_head;
  if (first == 1) {
    seal_chain_known = true;
    if (prev != zero) fail(1, "record 1: the chain does not start from the zero hash");
  } else if (!archive.start_marker().has_seal()) {
    fail(first, absl::StrCat("record ", first, ": the hash it continues (record ", first - 1,
                             ") is not authenticated by any seal"));
  } else {
    const v1::PurgeMarker& m = archive.start_marker();
    auto seal = VerifySignedSeal(m.seal(), options.trust);
    if (!seal.ok()) {
      fail(first, absl::StrCat("record ", first, ": the seal before it: ",
                               seal.status().message()));
    } else if (seal->last_seq() != first - 1 || seal->chain_head() != prev ||
               m.last_purged_hash() != prev) {
      fail(first, absl::StrCat("record ", first,
                               ": the chain start does not match the seal before it"));
    } else {
      seal_chain_known = true;
      prev_seal_seq = seal->last_seq();
      prev_seal_head = seal->chain_head();
      if (m.has_receipt()) {
        auto receipt = VerifySignedWitnessReceipt(m.receipt(), options.trust);
        absl::Status match = receipt.ok() ? CheckReceiptMatchesSeal(*receipt, m.seal(), *seal)
                                          : receipt.status();
        if (match.ok()) match = CheckSealNotRevoked(m.seal(), &*receipt, options.trust);
        if (!match.ok()) {
          fail(first, absl::StrCat("record ", first, ": receipt of the seal before it: ",
                                   match.message()));
        }
      } else if (!options.allow_unwitnessed_seals) {
        fail(first, absl::StrCat("record ", first, ": the seal before it has no witness receipt"));
      } else if (absl::Status revoked = CheckSealNotRevoked(m.seal(), nullptr, options.trust);
                 !revoked.ok()) {
        fail(first, absl::StrCat("record ", first, ": the seal before it: ", revoked.message()));
      }
    }
  }

  // 2. Bodies.
  // A body is good only when every copy of it in the archive matches its hash: a reader that
  // takes the first copy must never be handed a forged one listed before the genuine one.
  absl::flat_hash_map<std::string, bool> body_ok;
  for (const v1::ArchivedBody& b : archive.bodies()) {
    const bool ok = crypto::Sha256(b.body()) == b.sha256();
    auto [it, inserted] = body_ok.try_emplace(b.sha256(), ok);
    if (!inserted) it->second = false;  // the exporter writes each body once
  }
  report.bodies = archive.bodies_size();
  // Certificates that records reference: by what they hash to, so a changed one is missing.
  absl::flat_hash_set<std::string> signer_certificates;
  for (const std::string& der : archive.signer_certificates_der()) {
    signer_certificates.insert(crypto::Sha256(der));
  }

  // 3. Records: dense seqs, links, hashes.
  std::vector<std::string> hashes;
  hashes.reserve(archive.records_size());
  uint64_t expect = first;
  for (const std::string& bytes : archive.records()) {
    v1::AuditRecord rec;
    if (!rec.ParseFromString(bytes)) {
      fail(expect, absl::StrCat("record ", expect, ": does not parse"));
      break;
    }
    if (expect > archive.last_seq()) {
      fail(expect, absl::StrCat("record ", expect, ": beyond the archive's last record ",
                                archive.last_seq(), " (added after export)"));
      break;
    }
    if (rec.seq() != expect) {
      bool later = false;  // is record `expect` stored further on (reordered), or gone?
      for (int j = static_cast<int>(hashes.size()) + 1; j < archive.records_size() && !later; ++j) {
        v1::AuditRecord other;
        later = other.ParseFromString(archive.records(j)) && other.seq() == expect;
      }
      if (rec.seq() > expect && !later) {
        fail(expect, absl::StrCat("record ", expect, ": missing (the next stored record is ",
                                  rec.seq(), ")"));
      } else {
        fail(expect, absl::StrCat("record ", expect, ": record ", rec.seq(),
                                  " is stored in its place (records reordered or replaced)"));
      }
      break;
    }
    if (rec.prev_hash() != prev) {
      // Either record k-1 changed (its hash moved) or record k did (its prev_hash moved; then
      // its own hash moved too, and record k+1 no longer links to it).
      const size_t k = hashes.size();  // index of this record
      bool this_one_changed = expect == first;
      if (!this_one_changed && k + 1 < static_cast<size_t>(archive.records_size())) {
        v1::AuditRecord next;
        this_one_changed = next.ParseFromString(archive.records(k + 1)) &&
                           next.prev_hash() != internal::RecordHash(rec.prev_hash(), bytes);
      }
      if (this_one_changed) {
        fail(expect, absl::StrCat("record ", expect, ": changed (its prev_hash does not link to ",
                                  expect == first ? std::string("the chain start")
                                                  : absl::StrCat("record ", expect - 1),
                                  ")"));
      } else {
        fail(expect - 1, absl::StrCat("record ", expect - 1,
                                      ": changed (its hash does not match the prev_hash of record ",
                                      expect, ")"));
      }
      break;
    }
    std::string h = internal::RecordHash(prev, bytes);
    if (!rec.body_sha256().empty()) {
      auto it = body_ok.find(rec.body_sha256());
      if (it != body_ok.end() && !it->second) {
        fail(expect, absl::StrCat("record ", expect,
                                  ": its body does not match body_sha256 (body changed)"));
      }
    }
    for (const std::string& sha : rec.signer_cert_sha256()) {
      if (!signer_certificates.contains(sha)) {
        fail(expect, absl::StrCat("record ", expect, ": the signer certificate ",
                                  crypto::HexEncode(sha), " it references is missing or changed"));
        break;
      }
    }
    hashes.push_back(h);
    prev = std::move(h);
    ++expect;
  }
  report.records = hashes.size();
  const uint64_t verified_through = first + hashes.size() - 1;  // first-1 when none
  if (report.ok && verified_through < archive.last_seq()) {
    fail(verified_through + 1, absl::StrCat("record ", verified_through + 1,
                                            ": missing (the log should reach ",
                                            archive.last_seq(), ")"));
  }
  auto hash_at = [&](uint64_t seq) -> const std::string& { return hashes[seq - first]; };

  // 4. Seals and their receipts.
  absl::flat_hash_map<std::string, const v1::SignedWitnessReceipt*> receipt_by_seal;
  std::vector<const v1::SignedWitnessReceipt*> unmatched;
  for (const v1::SignedWitnessReceipt& r : archive.receipts()) {
    v1::WitnessReceipt parsed;
    if (parsed.ParseFromString(r.receipt())) {
      receipt_by_seal[parsed.seal_sha256()] = &r;
    } else {
      unmatched.push_back(&r);
    }
  }
  absl::flat_hash_map<std::string, bool> receipt_used;
  uint64_t index = archive.first_seal_index();
  for (const v1::SignedSeal& ss : archive.seals()) {
    v1::Seal raw;
    raw.ParseFromString(ss.seal());
    const std::string name = absl::StrCat("seal ", index, " (records ", raw.first_seq(), "..",
                                          raw.last_seq(), ")");
    ++index;
    auto seal = VerifySignedSeal(ss, options.trust);
    if (!seal.ok()) {
      fail(std::max<uint64_t>(raw.first_seq(), 1),
           absl::StrCat("record ", raw.first_seq(), ": ", name, ": ", seal.status().message()));
      break;
    }
    const uint64_t a = seal->first_seq(), b = seal->last_seq();
    if (seal_chain_known) {
      if (a != prev_seal_seq + 1) {
        fail(a, absl::StrCat("record ", a, ": ", name,
                             " does not start where the previous seal ended (", prev_seal_seq,
                             ")"));
      } else if (seal->previous_witnessed_seq() != prev_seal_seq ||
                 seal->previous_witnessed_head() != prev_seal_head) {
        fail(a, absl::StrCat("record ", a, ": ", name,
                             " does not name the previous seal's head"));
      }
    }
    seal_chain_known = true;
    prev_seal_seq = b;
    prev_seal_head = seal->chain_head();
    ++report.seals;
    if (a < first) {
      fail(a, absl::StrCat("record ", a, ": ", name, " starts before the archive"));
      continue;
    }
    if (b > verified_through) {
      fail(verified_through + 1, absl::StrCat("record ", verified_through + 1, ": missing (",
                                              name, " covers records through ", b, ")"));
    } else if (hash_at(b) != seal->chain_head()) {
      fail(b, absl::StrCat("record ", b, ": changed (does not match the chain head of ", name,
                           ")"));
    } else {
      std::vector<std::string> leaves(hashes.begin() + (a - first),
                                      hashes.begin() + (b - first + 1));
      if (MerkleTree(leaves).Root() != seal->merkle_root()) {
        fail(a, absl::StrCat("record ", a, ": records ", a, "..", b,
                             " do not match the Merkle root of ", name));
      }
    }
    auto rit = receipt_by_seal.find(SealDigest(ss));
    if (rit == receipt_by_seal.end()) {
      ++report.unwitnessed_seals;
      if (!options.allow_unwitnessed_seals) {
        fail(a, absl::StrCat("record ", a, ": ", name,
                             " has no witness receipt (the witness never accepted it)"));
      } else if (absl::Status revoked = CheckSealNotRevoked(ss, nullptr, options.trust);
                 !revoked.ok()) {
        fail(a, absl::StrCat("record ", a, ": ", name, ": ", revoked.message()));
      }
      continue;
    }
    receipt_used[rit->first] = true;
    auto receipt = VerifySignedWitnessReceipt(*rit->second, options.trust);
    absl::Status match =
        receipt.ok() ? CheckReceiptMatchesSeal(*receipt, ss, *seal) : receipt.status();
    if (!match.ok()) {
      fail(a, absl::StrCat("record ", a, ": witness receipt of ", name, ": ", match.message()));
    } else if (absl::Status revoked = CheckSealNotRevoked(ss, &*receipt, options.trust);
               !revoked.ok()) {
      fail(a, absl::StrCat("record ", a, ": ", name, ": ", revoked.message()));
    } else {
      ++report.receipts;
    }
  }
  if (verified_through > prev_seal_seq) {
    report.unsealed_records = verified_through - prev_seal_seq;
    // Anyone can extend a hash chain: records after the last seal are authenticated by nothing.
    if (!options.allow_unwitnessed_seals) {
      fail(prev_seal_seq + 1,
           absl::StrCat("record ", prev_seal_seq + 1, ": not sealed (", report.unsealed_records,
                        " records after the last seal are authenticated by nothing; "
                        "--allow-unwitnessed accepts a live log's tail)"));
    }
  }
  for (const auto& [digest, r] : receipt_by_seal) {
    if (!receipt_used.contains(digest)) unmatched.push_back(r);
  }

  // 5. Heads the witness holds: the log must contain them.
  std::vector<const v1::SignedWitnessReceipt*> heads = unmatched;
  for (const v1::SignedWitnessReceipt& r : options.witness_heads) heads.push_back(&r);
  for (const v1::SignedWitnessReceipt* r : heads) {
    auto receipt = VerifySignedWitnessReceipt(*r, options.trust);
    if (!receipt.ok()) {
      fail(first, absl::StrCat("record ", first, ": a witness receipt does not verify: ",
                               receipt.status().message()));
      continue;
    }
    if (archive.has_server() && !SameSecurityServer(receipt->server(), archive.server())) continue;
    const uint64_t seq = receipt->seq();
    if (seq < first) continue;
    if (seq > verified_through) {
      fail(verified_through + 1,
           absl::StrCat("record ", verified_through + 1, ": missing (the witness holds head seq ",
                        seq, " but the log ends at ", verified_through, ")"));
    } else if (hash_at(seq) != receipt->chain_head()) {
      fail(seq, absl::StrCat("record ", seq, ": differs from the head the witness holds"));
    }
  }
  return report;
}

std::string VerifyReport::ToText() const {
  if (!ok) return absl::StrCat("FAILED at record ", bad_seq, ": ", reason, "\n");
  if (records == 0) {
    return absl::StrCat("OK: no records", first_seq > 1 ? absl::StrCat(" after the purge at seq ",
                                                                        first_seq - 1)
                                                      : std::string(),
                        "\n");
  }
  std::string out = absl::StrCat("OK: records ", first_seq, "..", last_seq, " (", records,
                                 " records, ", bodies, " bodies), ", seals, " seals, ", receipts,
                                 " witness receipts");
  if (unsealed_records > 0) absl::StrAppend(&out, ", ", unsealed_records, " not yet sealed");
  if (unwitnessed_seals > 0) {
    absl::StrAppend(&out, ", ", unwitnessed_seals, " seals awaiting the witness");
  }
  out += "\n";
  return out;
}

std::string VerifyReport::ToJson() const {
  return absl::StrCat(
      "{\"ok\":", ok ? "true" : "false", ",\"first_seq\":", first_seq, ",\"last_seq\":", last_seq,
      ",\"records\":", records, ",\"bodies\":", bodies, ",\"seals\":", seals,
      ",\"receipts\":", receipts, ",\"unsealed_records\":", unsealed_records,
      ",\"unwitnessed_seals\":", unwitnessed_seals,
      ok ? std::string()
         : absl::StrCat(",\"bad_seq\":", bad_seq, ",\"reason\":\"", JsonEscape(reason), "\""),
      "}\n");
}

absl::StatusOr<v1::AuditRecord> VerifyInclusionProof(const v1::AuditInclusionProof& proof,
                                                     const VerifyOptions& options) {
  v1::AuditRecord record;
  if (!record.ParseFromString(proof.record())) {
    return absl::InvalidArgumentError("the proof's record does not parse");
  }
  const std::string hash = internal::RecordHash(record.prev_hash(), proof.record());
  if (hash != proof.record_hash()) {
    return absl::UnauthenticatedError("the record does not match its hash");
  }
  auto seal = VerifySignedSeal(proof.seal(), options.trust);
  if (!seal.ok()) return absl::UnauthenticatedError(absl::StrCat("seal: ", seal.status().message()));
  if (record.seq() < seal->first_seq() || record.seq() > seal->last_seq() ||
      proof.leaf_index() != record.seq() - seal->first_seq()) {
    return absl::UnauthenticatedError("the record is not in the range of the seal");
  }
  std::vector<std::string> path(proof.path().begin(), proof.path().end());
  absl::Status inclusion =
      VerifyMerkleInclusion(hash, proof.leaf_index(), seal->last_seq() - seal->first_seq() + 1,
                            path, seal->merkle_root());
  if (!inclusion.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the record is not in the seal's Merkle tree: ", inclusion.message()));
  }
  if (proof.has_receipt()) {
    auto receipt = VerifySignedWitnessReceipt(proof.receipt(), options.trust);
    absl::Status match =
        receipt.ok() ? CheckReceiptMatchesSeal(*receipt, proof.seal(), *seal) : receipt.status();
    if (!match.ok()) {
      return absl::UnauthenticatedError(absl::StrCat("witness receipt: ", match.message()));
    }
    DARVOZA_RETURN_IF_ERROR(CheckSealNotRevoked(proof.seal(), &*receipt, options.trust));
  } else if (!options.allow_unwitnessed_seals) {
    return absl::UnauthenticatedError("the seal has no witness receipt yet");
  } else {
    DARVOZA_RETURN_IF_ERROR(CheckSealNotRevoked(proof.seal(), nullptr, options.trust));
  }
  return record;
}

}  // namespace darvoza::audit
