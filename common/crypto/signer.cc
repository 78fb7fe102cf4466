// Context-tagged signatures (docs/design.md §4) over PrivateKey / PublicKey.
#include "common/crypto/signer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace darvoza::crypto {

absl::string_view ContextTag(SignatureContext context) {
  switch (context) {
    case SignatureContext::kRequest:
      return "darvoza.v1.request";
    case SignatureContext::kResponse:
      return "darvoza.v1.response";
    case SignatureContext::kSeal:
      return "darvoza.v1.seal";
    case SignatureContext::kGlobalConf:
      return "darvoza.v1.globalconf";
    case SignatureContext::kBatchRoot:
      return "darvoza.v1.batch-root";
    case SignatureContext::kWitness:
      return "darvoza.v1.witness";
    case SignatureContext::kRegistration:
      return "darvoza.v1.registration";
  }
  DARVOZA_CHECK(false) << "unknown SignatureContext " << static_cast<int>(context);
  return "";
}

std::string SignedBytes(SignatureContext context, absl::string_view data) {
  // The '\0' cannot occur in a tag, so no tag is a prefix of another tag plus data.
  const absl::string_view tag = ContextTag(context);
  std::string out;
  out.reserve(tag.size() + 1 + data.size());
  out.append(tag.data(), tag.size());
  out.push_back('\0');
  out.append(data.data(), data.size());
  return out;
}

absl::StatusOr<std::unique_ptr<FileKeySigner>> FileKeySigner::Open(const std::string& path) {
  auto key = PrivateKey::LoadFromFile(path);
  if (!key.ok()) return key.status();
  return std::make_unique<FileKeySigner>(std::move(key).value());
}

FileKeySigner::FileKeySigner(std::unique_ptr<PrivateKey> key) : key_(std::move(key)) {
  DARVOZA_CHECK(key_ != nullptr) << "FileKeySigner needs a key";
}

absl::StatusOr<std::string> FileKeySigner::Sign(SignatureContext context,
                                                absl::string_view data) {
  auto sig = key_->SignRaw(SignedBytes(context, data));
  if (!sig.ok()) {
    // The Signer contract allows only UNAVAILABLE or INTERNAL; a key in memory is never
    // "unavailable", so whatever went wrong is internal.
    return absl::InternalError(absl::StrCat("signing failed: ", sig.status().message()));
  }
  return sig;
}

KeyAlgorithm FileKeySigner::algorithm() const { return key_->algorithm(); }

std::string FileKeySigner::PublicKeyDer() const { return key_->PublicKeyDer(); }

absl::Status VerifyWithContext(const PublicKey& key, SignatureContext context,
                               absl::string_view data, absl::string_view signature) {
  absl::Status status = key.VerifyRaw(SignedBytes(context, data), signature);
  if (status.ok()) return status;
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    return absl::UnauthenticatedError(
        absl::StrCat(ContextTag(context), " signature does not verify"));
  }
  return status;
}

}  // namespace darvoza::crypto
