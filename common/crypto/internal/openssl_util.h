// Private helpers for common/crypto: RAII owners for OpenSSL objects and error reporting.
//
// Not part of the public API: only common/crypto/*.cc and common/tls.cc include this.
#ifndef DARVOZA_COMMON_CRYPTO_INTERNAL_OPENSSL_UTIL_H_
#define DARVOZA_COMMON_CRYPTO_INTERNAL_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace darvoza::crypto::internal {

template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};

template <typename T, void (*Free)(T*)>
using OpenSslPtr = std::unique_ptr<T, OpenSslDeleter<T, Free>>;

using BioPtr = OpenSslPtr<BIO, BIO_free_all>;
using BignumPtr = OpenSslPtr<BIGNUM, BN_free>;
using EvpMdCtxPtr = OpenSslPtr<EVP_MD_CTX, EVP_MD_CTX_free>;
using EvpPkeyCtxPtr = OpenSslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using EvpPkeyPtr = OpenSslPtr<EVP_PKEY, EVP_PKEY_free>;
using X509Ptr = OpenSslPtr<X509, X509_free>;
using X509ExtensionPtr = OpenSslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using X509NamePtr = OpenSslPtr<X509_NAME, X509_NAME_free>;
using X509ReqPtr = OpenSslPtr<X509_REQ, X509_REQ_free>;
using X509StorePtr = OpenSslPtr<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = OpenSslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;

inline void FreeOpenSslString(char* p) { OPENSSL_free(p); }
using OpenSslStringPtr = OpenSslPtr<char, FreeOpenSslString>;

// Drains OpenSSL's thread-local error queue and returns its first entry as text ("" when the
// queue was empty). Always clears the queue so that a failure never leaks into a later call's
// diagnostics.
inline std::string TakeOpenSslError() {
  unsigned long code = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type.
  std::string text;
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    text = buf;
  }
  ERR_clear_error();
  return text;
}

// A Status of `code` with `message`, plus OpenSSL's error when there is one. Clears the queue.
inline absl::Status OpenSslError(absl::StatusCode code, absl::string_view message) {
  std::string detail = TakeOpenSslError();
  if (detail.empty()) return absl::Status(code, message);
  return absl::Status(code, absl::StrCat(message, " (", detail, ")"));
}

// Reads everything written to a memory BIO.
inline std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int): OpenSSL's type.
  if (len <= 0 || data == nullptr) return std::string();
  return std::string(data, static_cast<size_t>(len));
}

// SHA-256 and SHA-512 fetched from the default provider once per process. OpenSSL 3 looks the
// implementation up again on every digest or signature init given the legacy EVP_sha256()
// (a locked method-store search); a fetched EVP_MD skips that. Never freed: process lifetime.
inline const EVP_MD* FetchedSha256() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  return md;
}
inline const EVP_MD* FetchedSha512() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-512", nullptr);
  return md;
}

// A read-only memory BIO over `data` (which must outlive the BIO).
inline BioPtr ReadOnlyBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

}  // namespace darvoza::crypto::internal

#endif  // DARVOZA_COMMON_CRYPTO_INTERNAL_OPENSSL_UTIL_H_
