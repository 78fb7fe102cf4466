// SHA-2 digests, hex and randomness on OpenSSL 3's EVP API.
#include "common/crypto/hash.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/crypto/internal/openssl_util.h"

namespace darvoza::crypto {
namespace {

// One-shot digest. A digest over memory can only fail if OpenSSL itself is broken (no
// provider, out of memory), which no caller could handle: it is an invariant, hence CHECK.
std::string Digest(const EVP_MD* md, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const int ok = EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  DARVOZA_CHECK(ok == 1) << "EVP_Digest failed: " << internal::TakeOpenSslError();
  return std::string(reinterpret_cast<const char*>(out), len);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string Sha256(absl::string_view data) { return Digest(internal::FetchedSha256(), data); }

std::string Sha512(absl::string_view data) { return Digest(internal::FetchedSha512(), data); }

struct Sha256Hasher::State {
  internal::EvpMdCtxPtr ctx;
};

Sha256Hasher::Sha256Hasher() : state_(new State{internal::EvpMdCtxPtr(EVP_MD_CTX_new())}) {
  DARVOZA_CHECK(state_->ctx != nullptr) << "EVP_MD_CTX_new failed";
  DARVOZA_CHECK(EVP_DigestInit_ex(state_->ctx.get(), internal::FetchedSha256(), nullptr) == 1)
      << "EVP_DigestInit_ex failed: " << internal::TakeOpenSslError();
}

Sha256Hasher::~Sha256Hasher() { delete state_; }

void Sha256Hasher::Update(absl::string_view data) {
  DARVOZA_CHECK(state_->ctx != nullptr) << "Sha256Hasher used after Finish()";
  DARVOZA_CHECK(EVP_DigestUpdate(state_->ctx.get(), data.data(), data.size()) == 1)
      << "EVP_DigestUpdate failed: " << internal::TakeOpenSslError();
}

std::string Sha256Hasher::Finish() {
  DARVOZA_CHECK(state_->ctx != nullptr) << "Sha256Hasher::Finish() called twice";
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  DARVOZA_CHECK(EVP_DigestFinal_ex(state_->ctx.get(), out, &len) == 1)
      << "EVP_DigestFinal_ex failed: " << internal::TakeOpenSslError();
  // Drop the context so that misuse after Finish() is caught rather than hashing garbage.
  state_->ctx.reset();
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string HexEncode(absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.resize(bytes.size() * 2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0x0f];
  }
  return out;
}

absl::StatusOr<std::string> HexDecode(absl::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("hex string has odd length ", hex.size()));
  }
  std::string out;
  out.resize(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("non-hex character near offset ", 2 * i, " of hex string"));
    }
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t done = 0;
  // RAND_bytes takes an int length; chunk so that any size_t works.
  while (done < n) {
    const size_t chunk = std::min<size_t>(n - done, INT_MAX);
    const int ok = RAND_bytes(reinterpret_cast<unsigned char*>(out.data() + done),
                              static_cast<int>(chunk));
    DARVOZA_CHECK(ok == 1) << "RAND_bytes failed: " << internal::TakeOpenSslError();
    done += chunk;
  }
  return out;
}

}  // namespace darvoza::crypto
