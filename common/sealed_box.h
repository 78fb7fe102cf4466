// Sealed boxes: data encrypted to one recipient's P-256 public key (docs/design.md §7 archives).
//
// Scheme: an ephemeral P-256 key agrees a secret with the recipient's key (ECDH); HKDF-SHA256
// (salt = SHA-256 of the box header, info "darvoza.v1.sealed-box") turns it into an AES-256-GCM
// key; the plaintext is cut into chunks, each sealed with nonce = chunk index and associated data
// = SHA-256(header) || chunk index || last-chunk flag. So a flipped byte, a reordered, dropped or
// duplicated chunk, a truncated box and a wrong key are all refused.
//
// Layout: "DVZBOX01" | u16 len | ephemeral SPKI DER | u32 chunk size | chunks, each
// u32 len | ciphertext+tag (all integers big-endian).
//
//   DARVOZA_ASSIGN_OR_RETURN(std::string box, SealedBoxEncrypt(auditor_key, archive_bytes));
//   DARVOZA_ASSIGN_OR_RETURN(std::string plain, SealedBoxDecrypt(*auditor_private_key, box));
#ifndef DARVOZA_COMMON_SEALED_BOX_H_
#define DARVOZA_COMMON_SEALED_BOX_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/keys.h"

namespace darvoza {

inline constexpr absl::string_view kSealedBoxMagic = "DVZBOX01";
inline constexpr size_t kSealedBoxDefaultChunkSize = 64 * 1024;

// True when `data` starts like a sealed box.
bool IsSealedBox(absl::string_view data);

// Encrypts `plaintext` to `recipient` (REQUIRES nothing; INVALID_ARGUMENT when the key is not
// P-256). chunk_size must be in [1, 16 MiB].
absl::StatusOr<std::string> SealedBoxEncrypt(const crypto::PublicKey& recipient,
                                             absl::string_view plaintext,
                                             size_t chunk_size = kSealedBoxDefaultChunkSize);

// Decrypts a box made for `recipient`. INVALID_ARGUMENT when it is not a box;
// UNAUTHENTICATED naming the chunk when a chunk does not authenticate (wrong key, changed
// byte, reordered chunk) or the box is truncated.
absl::StatusOr<std::string> SealedBoxDecrypt(const crypto::PrivateKey& recipient,
                                             absl::string_view box);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_SEALED_BOX_H_
