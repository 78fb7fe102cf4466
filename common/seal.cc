#include "common/seal.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/identifiers.h"

namespace darvoza {
namespace {

const crypto::RevocationList& NoRevocations() {
  static const crypto::RevocationList* const kNone = new crypto::RevocationList();
  return *kNone;
}

absl::Status CheckChain(const crypto::Certificate& cert, const SealTrust& trust, absl::Time at,
                        const crypto::RevocationList& revoked) {
  return crypto::VerifyChain(cert, trust.intermediates, trust.roots, at, revoked);
}

std::string TimeText(absl::Time t) {
  if (t == absl::InfinitePast()) return "an unknown time (counted as always)";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<v1::SignedSeal> SignSeal(const v1::Seal& seal, crypto::Signer& signer,
                                        absl::string_view signer_cert_der) {
  v1::SignedSeal out;
  if (!seal.SerializeToString(out.mutable_seal())) {
    return absl::InternalError("cannot serialize seal");
  }
  auto sig = signer.Sign(crypto::SignatureContext::kSeal, out.seal());
  if (!sig.ok()) return sig.status();
  out.set_signature(*std::move(sig));
  out.set_signer_cert_der(std::string(signer_cert_der));
  return out;
}

absl::Status ValidateSeal(const v1::Seal& seal) {
  if (seal.first_seq() < 1) return absl::InvalidArgumentError("seal first_seq is 0");
  if (seal.first_seq() > seal.last_seq()) {
    return absl::InvalidArgumentError("seal first_seq > last_seq");
  }
  if (seal.merkle_root().size() != crypto::kSha256Size) {
    return absl::InvalidArgumentError("seal merkle_root is not 32 bytes");
  }
  if (seal.chain_head().size() != crypto::kSha256Size) {
    return absl::InvalidArgumentError("seal chain_head is not 32 bytes");
  }
  if (seal.previous_witnessed_seq() >= seal.first_seq()) {
    return absl::InvalidArgumentError("seal previous_witnessed_seq is not before first_seq");
  }
  const bool empty_prev = seal.previous_witnessed_head().empty();
  if (empty_prev != (seal.previous_witnessed_seq() == 0) ||
      (!empty_prev && seal.previous_witnessed_head().size() != crypto::kSha256Size)) {
    return absl::InvalidArgumentError("seal previous_witnessed_head malformed");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Seal> VerifySignedSeal(const v1::SignedSeal& signed_seal,
                                          const SealTrust& trust) {
  v1::Seal seal;
  if (!seal.ParseFromString(signed_seal.seal())) {
    return absl::InvalidArgumentError("seal bytes do not parse");
  }
  absl::Status shape = ValidateSeal(seal);
  if (!shape.ok()) return shape;
  auto cert = crypto::Certificate::FromDer(signed_seal.signer_cert_der());
  if (!cert.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("seal certificate does not parse: ", cert.status().message()));
  }
  absl::Status valid_server = ValidateSecurityServerId(seal.server());
  if (!valid_server.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("seal server id: ", valid_server.message()));
  }
  const std::string want_cn = absl::StrCat("server:", FormatSecurityServerId(seal.server()));
  if ((*cert)->subject_common_name() != want_cn) {
    return absl::UnauthenticatedError(absl::StrCat("seal certificate is for '",
                                                   (*cert)->subject_common_name(),
                                                   "', not '", want_cn, "'"));
  }
  absl::Status chain = CheckChain(**cert, trust, FromUnixNanosField(seal.sealed_at_unix_nanos()),
                                  NoRevocations());
  if (!chain.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("seal certificate: ", chain.message()));
  }
  absl::Status sig = crypto::VerifyWithContext((*cert)->public_key(),
                                               crypto::SignatureContext::kSeal,
                                               signed_seal.seal(), signed_seal.signature());
  if (!sig.ok()) return absl::UnauthenticatedError("seal signature does not verify");
  return seal;
}

std::string SealDigest(const v1::SignedSeal& signed_seal) {
  return crypto::Sha256(signed_seal.seal());
}

v1::WitnessReceipt MakeWitnessReceipt(const v1::SignedSeal& signed_seal, const v1::Seal& seal,
                                      absl::Time now) {
  v1::WitnessReceipt receipt;
  *receipt.mutable_server() = seal.server();
  receipt.set_seq(seal.last_seq());
  receipt.set_chain_head(seal.chain_head());
  receipt.set_seal_sha256(SealDigest(signed_seal));
  receipt.set_witnessed_at_unix_nanos(ToUnixNanosField(now));
  return receipt;
}

absl::StatusOr<v1::SignedWitnessReceipt> SignWitnessReceipt(const v1::WitnessReceipt& receipt,
                                                            crypto::Signer& signer,
                                                            absl::string_view signer_cert_der) {
  v1::SignedWitnessReceipt out;
  if (!receipt.SerializeToString(out.mutable_receipt())) {
    return absl::InternalError("cannot serialize witness receipt");
  }
  auto sig = signer.Sign(crypto::SignatureContext::kWitness, out.receipt());
  if (!sig.ok()) return sig.status();
  out.set_signature(*std::move(sig));
  out.set_signer_cert_der(std::string(signer_cert_der));
  return out;
}

absl::StatusOr<v1::WitnessReceipt> VerifySignedWitnessReceipt(
    const v1::SignedWitnessReceipt& signed_receipt, const SealTrust& trust) {
  v1::WitnessReceipt receipt;
  if (!receipt.ParseFromString(signed_receipt.receipt())) {
    return absl::InvalidArgumentError("witness receipt bytes do not parse");
  }
  auto cert = crypto::Certificate::FromDer(signed_receipt.signer_cert_der());
  if (!cert.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("witness certificate does not parse: ", cert.status().message()));
  }
  if (!trust.witness_cert_sha256.empty()) {
    if (!trust.witness_cert_sha256.contains((*cert)->sha256())) {
      return absl::UnauthenticatedError("witness certificate is not the configured witness");
    }
  } else {
    const std::string& cn = (*cert)->subject_common_name();
    if (absl::StartsWith(cn, "server:") || absl::StartsWith(cn, "member:") ||
        absl::StartsWith(cn, "subsystem:")) {
      return absl::UnauthenticatedError(
          absl::StrCat("witness receipt signed by '", cn, "', which is not a witness"));
    }
  }
  absl::Status chain =
      CheckChain(**cert, trust, FromUnixNanosField(receipt.witnessed_at_unix_nanos()),
                 trust.revoked != nullptr ? *trust.revoked : NoRevocations());
  if (!chain.ok()) {
    return absl::UnauthenticatedError(absl::StrCat("witness certificate: ", chain.message()));
  }
  absl::Status sig = crypto::VerifyWithContext((*cert)->public_key(),
                                               crypto::SignatureContext::kWitness,
                                               signed_receipt.receipt(),
                                               signed_receipt.signature());
  if (!sig.ok()) return absl::UnauthenticatedError("witness receipt signature does not verify");
  return receipt;
}

absl::Status CheckSealNotRevoked(const v1::SignedSeal& signed_seal,
                                 const v1::WitnessReceipt* receipt, const SealTrust& trust) {
  if (trust.revoked == nullptr || trust.revoked->size() == 0) return absl::OkStatus();
  auto cert = crypto::Certificate::FromDer(signed_seal.signer_cert_der());
  if (!cert.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("seal certificate does not parse: ", cert.status().message()));
  }
  const std::optional<absl::Time> revoked_at = trust.revoked->RevokedAt(**cert);
  if (!revoked_at.has_value()) return absl::OkStatus();
  const std::string what = absl::StrCat("seal certificate serial ", (*cert)->serial_hex(),
                                        " was revoked at ", TimeText(*revoked_at));
  if (receipt == nullptr) {
    return absl::UnauthenticatedError(
        absl::StrCat(what, " and no witness receipt shows the seal was made before that"));
  }
  const absl::Time witnessed_at = FromUnixNanosField(receipt->witnessed_at_unix_nanos());
  if (witnessed_at >= *revoked_at) {
    return absl::UnauthenticatedError(absl::StrCat(what, "; the witness accepted the seal at ",
                                                   TimeText(witnessed_at), ", not before"));
  }
  return absl::OkStatus();
}

absl::Status CheckReceiptMatchesSeal(const v1::WitnessReceipt& receipt,
                                     const v1::SignedSeal& signed_seal, const v1::Seal& seal) {
  if (!SameSecurityServer(receipt.server(), seal.server())) {
    return absl::UnauthenticatedError("witness receipt names another security server");
  }
  if (receipt.seq() != seal.last_seq()) {
    return absl::UnauthenticatedError(absl::StrCat("witness receipt is for seq ", receipt.seq(),
                                                   ", the seal ends at ", seal.last_seq()));
  }
  if (receipt.chain_head() != seal.chain_head()) {
    return absl::UnauthenticatedError("witness receipt chain head differs from the seal's");
  }
  if (receipt.seal_sha256() != SealDigest(signed_seal)) {
    return absl::UnauthenticatedError("witness receipt is for a different seal");
  }
  return absl::OkStatus();
}

absl::StatusOr<WitnessStep> CheckWitnessHead(const v1::Seal& seal, absl::string_view seal_sha256,
                                             const WitnessedHead& held) {
  if (held.seq != 0 && seal_sha256 == held.seal_sha256) return WitnessStep::kRepeats;
  if (seal.previous_witnessed_seq() != held.seq || seal.previous_witnessed_head() != held.chain_head) {
    return Fault(absl::StatusCode::kFailedPrecondition, faults::kWitnessHeadMismatch,
                 absl::StrCat("seal names previous witnessed seq ", seal.previous_witnessed_seq(),
                              " but the witness holds seq ", held.seq,
                              ": the log went backwards, forked, or was cut and regrown"));
  }
  if (seal.last_seq() <= held.seq) {
    return Fault(absl::StatusCode::kFailedPrecondition, faults::kWitnessHeadMismatch,
                 absl::StrCat("seal ends at seq ", seal.last_seq(),
                              ", not after the witnessed seq ", held.seq));
  }
  return WitnessStep::kExtends;
}

}  // namespace darvoza
