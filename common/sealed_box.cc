#include "common/sealed_box.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/crypto/internal/openssl_util.h"

namespace darvoza {
namespace {

using crypto::internal::EvpPkeyCtxPtr;
using crypto::internal::EvpPkeyPtr;

constexpr absl::string_view kHkdfInfo = "darvoza.v1.sealed-box";
constexpr size_t kTagSize = 16;
constexpr size_t kMaxChunk = 16u << 20;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct KdfFree {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* k) const { EVP_KDF_CTX_free(k); }
};

void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}
void PutU32(std::string* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<char>(v >> s));
}
void PutU64(std::string* out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out->push_back(static_cast<char>(v >> s));
}
uint32_t GetU32(absl::string_view p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

absl::Status SslError(absl::string_view what) {
  return absl::InternalError(
      absl::StrCat(what, ": ", crypto::internal::TakeOpenSslError()));
}

absl::StatusOr<std::string> Ecdh(EVP_PKEY* own, EVP_PKEY* peer) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(own, nullptr));
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1) {
    return SslError("ECDH setup failed");
  }
  size_t len = 0;
  if (EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1) return SslError("ECDH failed");
  std::string secret(len, '\0');
  if (EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(secret.data()), &len) != 1) {
    return SslError("ECDH failed");
  }
  secret.resize(len);
  return secret;
}

absl::StatusOr<std::string> Hkdf(absl::string_view secret, absl::string_view salt) {
  std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (kdf == nullptr) return SslError("HKDF unavailable");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (ctx == nullptr) return SslError("HKDF context");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                        const_cast<char*>(kHkdfInfo.data()), kHkdfInfo.size()),
      OSSL_PARAM_construct_end()};
  std::string key(32, '\0');
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(key.data()), key.size(),
                     params) != 1) {
    return SslError("HKDF failed");
  }
  return key;
}

std::string Nonce(uint64_t index) {
  std::string n(4, '\0');
  PutU64(&n, index);
  return n;
}

std::string Aad(absl::string_view header_hash, uint64_t index, bool last) {
  std::string aad(header_hash);
  PutU64(&aad, index);
  aad.push_back(last ? 1 : 0);
  return aad;
}

// AES-256-GCM of one chunk; returns ciphertext||tag, or (decrypt) plaintext / error.
absl::StatusOr<std::string> Gcm(bool encrypt, absl::string_view key, absl::string_view nonce,
                                absl::string_view aad, absl::string_view in) {
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return SslError("cipher context");
  const auto* k = reinterpret_cast<const unsigned char*>(key.data());
  const auto* iv = reinterpret_cast<const unsigned char*>(nonce.data());
  if (EVP_CipherInit_ex2(ctx.get(), EVP_aes_256_gcm(), k, iv, encrypt ? 1 : 0, nullptr) != 1) {
    return SslError("AES-GCM init");
  }
  int len = 0;
  if (EVP_CipherUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                       static_cast<int>(aad.size())) != 1) {
    return SslError("AES-GCM aad");
  }
  absl::string_view body = in;
  std::string tag;
  if (!encrypt) {
    if (in.size() < kTagSize) return absl::UnauthenticatedError("chunk too short");
    body = in.substr(0, in.size() - kTagSize);
    tag = std::string(in.substr(in.size() - kTagSize));
  }
  std::string out(body.size() + kTagSize, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (EVP_CipherUpdate(ctx.get(), o, &len, reinterpret_cast<const unsigned char*>(body.data()),
                       static_cast<int>(body.size())) != 1) {
    return SslError("AES-GCM update");
  }
  size_t total = static_cast<size_t>(len);
  if (!encrypt) {
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()) != 1) {
      return SslError("AES-GCM tag");
    }
  }
  int fin = 0;
  if (EVP_CipherFinal_ex(ctx.get(), o + total, &fin) != 1) {
    crypto::internal::TakeOpenSslError();
    return absl::UnauthenticatedError("does not authenticate");
  }
  total += static_cast<size_t>(fin);
  if (encrypt) {
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, o + total) != 1) {
      return SslError("AES-GCM get tag");
    }
    total += kTagSize;
  }
  out.resize(total);
  return out;
}

bool IsP256(EVP_PKEY* pkey) { return EVP_PKEY_is_a(pkey, "EC") == 1; }

}  // namespace

bool IsSealedBox(absl::string_view data) {
  return data.substr(0, kSealedBoxMagic.size()) == kSealedBoxMagic;
}

absl::StatusOr<std::string> SealedBoxEncrypt(const crypto::PublicKey& recipient,
                                             absl::string_view plaintext, size_t chunk_size) {
  if (recipient.algorithm() != crypto::KeyAlgorithm::kEcdsaP256 || !IsP256(recipient.evp())) {
    return absl::InvalidArgumentError("archives are encrypted only to P-256 keys");
  }
  if (chunk_size == 0 || chunk_size > kMaxChunk) {
    return absl::InvalidArgumentError("chunk size out of range");
  }
  auto eph = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  if (!eph.ok()) return eph.status();
  const std::string eph_der = (*eph)->PublicKeyDer();
  std::string out(kSealedBoxMagic);
  PutU16(&out, static_cast<uint16_t>(eph_der.size()));
  out += eph_der;
  PutU32(&out, static_cast<uint32_t>(chunk_size));
  const std::string header_hash = crypto::Sha256(out);
  auto secret = Ecdh((*eph)->evp(), recipient.evp());
  if (!secret.ok()) return secret.status();
  auto key = Hkdf(*secret, header_hash);
  if (!key.ok()) return key.status();
  uint64_t index = 0;
  size_t pos = 0;
  do {
    const size_t n = std::min(chunk_size, plaintext.size() - pos);
    const bool last = pos + n == plaintext.size();
    auto sealed = Gcm(true, *key, Nonce(index), Aad(header_hash, index, last),
                      plaintext.substr(pos, n));
    if (!sealed.ok()) return sealed.status();
    PutU32(&out, static_cast<uint32_t>(sealed->size()));
    out += *sealed;
    pos += n;
    ++index;
  } while (pos < plaintext.size());
  return out;
}

absl::StatusOr<std::string> SealedBoxDecrypt(const crypto::PrivateKey& recipient,
                                             absl::string_view box) {
  if (!IsSealedBox(box)) return absl::InvalidArgumentError("not an encrypted archive");
  size_t pos = kSealedBoxMagic.size();
  if (box.size() < pos + 2) return absl::InvalidArgumentError("truncated box header");
  const size_t der_len = (static_cast<uint8_t>(box[pos]) << 8) | static_cast<uint8_t>(box[pos + 1]);
  pos += 2;
  if (box.size() < pos + der_len + 4) return absl::InvalidArgumentError("truncated box header");
  auto eph = crypto::PublicKey::FromDer(box.substr(pos, der_len));
  if (!eph.ok()) return absl::InvalidArgumentError("box header has no valid ephemeral key");
  pos += der_len;
  const uint32_t chunk_size = GetU32(box.substr(pos, 4));
  pos += 4;
  if (chunk_size == 0 || chunk_size > kMaxChunk) {
    return absl::InvalidArgumentError("box chunk size out of range");
  }
  if (recipient.algorithm() != crypto::KeyAlgorithm::kEcdsaP256 ||
      (*eph)->algorithm() != crypto::KeyAlgorithm::kEcdsaP256) {
    return absl::InvalidArgumentError("archives are encrypted only to P-256 keys");
  }
  const std::string header_hash = crypto::Sha256(box.substr(0, pos));
  auto secret = Ecdh(recipient.evp(), (*eph)->evp());
  if (!secret.ok()) return secret.status();
  auto key = Hkdf(*secret, header_hash);
  if (!key.ok()) return key.status();
  std::string plain;
  for (uint64_t index = 0;; ++index) {
    if (box.size() < pos + 4) {
      return absl::UnauthenticatedError(
          absl::StrCat("encrypted archive truncated before chunk ", index));
    }
    const uint32_t len = GetU32(box.substr(pos, 4));
    pos += 4;
    if (len > chunk_size + kTagSize || box.size() - pos < len) {
      return absl::UnauthenticatedError(absl::StrCat("chunk ", index, " has a bad length"));
    }
    const absl::string_view sealed = box.substr(pos, len);
    pos += len;
    const bool last = pos == box.size();
    auto opened = Gcm(false, *key, Nonce(index), Aad(header_hash, index, last), sealed);
    if (!opened.ok()) {
      if (opened.status().code() != absl::StatusCode::kUnauthenticated) return opened.status();
      return absl::UnauthenticatedError(absl::StrCat(
          "chunk ", index,
          " does not authenticate (wrong key, or the archive was changed, reordered or cut)"));
    }
    plain += *opened;
    if (last) break;
  }
  return plain;
}

}  // namespace darvoza
