// Hashes and encodings used across Darvoza. Digests are raw bytes in std::string.
#ifndef DARVOZA_COMMON_CRYPTO_HASH_H_
#define DARVOZA_COMMON_CRYPTO_HASH_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace darvoza::crypto {

inline constexpr size_t kSha256Size = 32;
inline constexpr size_t kSha512Size = 64;

// SHA-256 of `data`: 32 raw bytes.
std::string Sha256(absl::string_view data);

// SHA-512 of `data`: 64 raw bytes.
std::string Sha512(absl::string_view data);

// Incremental SHA-256 for data that arrives in pieces (streamed bodies). Not thread-safe.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(absl::string_view data);
  // Returns the digest; the hasher must not be used afterwards.
  std::string Finish();

 private:
  struct State;
  State* state_;
};

// Lower-case hex.
std::string HexEncode(absl::string_view bytes);
// INVALID_ARGUMENT on odd length or a non-hex character.
absl::StatusOr<std::string> HexDecode(absl::string_view hex);

// n random bytes from OpenSSL's CSPRNG. DARVOZA_CHECKs that the CSPRNG works.
std::string RandomBytes(size_t n);

}  // namespace darvoza::crypto

#endif  // DARVOZA_COMMON_CRYPTO_HASH_H_
