#include "common/tls.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/internal/openssl_util.h"

namespace darvoza {
namespace {

using crypto::internal::BioContents;
using crypto::internal::BioPtr;
using crypto::internal::EvpPkeyPtr;
using crypto::internal::OpenSslError;
using crypto::internal::ReadOnlyBio;
using crypto::internal::X509Ptr;

// An encrypted key is refused rather than prompted for: a daemon has no terminal.
int NoPassphrase(char*, int, int, void*) { return -1; }

// Accepts whatever certificate the peer presents: it is checked against a pin per request,
// after the handshake, where a mismatch can be answered with a fault.
int AcceptAnyPeer(int, X509_STORE_CTX*) { return 1; }

EvpPkeyPtr ReadKey(absl::string_view key_pem) {
  BioPtr bio = ReadOnlyBio(key_pem);
  if (bio == nullptr) return nullptr;
  return EvpPkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
}

X509Ptr ReadFirstCertificate(absl::string_view cert_pem) {
  BioPtr bio = ReadOnlyBio(cert_pem);
  if (bio == nullptr) return nullptr;
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
}

}  // namespace

void RestrictTlsToVersion13() {
  setenv(kGrpcCipherSuitesEnv, kRsaOnlyTls12CipherSuites, /*overwrite=*/1);
}

void SetUpTlsForProcess() {
  // Only the first initialisation of a process decides whether OpenSSL registers its exit
  // handler, hence first thing in main().
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
  RestrictTlsToVersion13();
}

void SslCtxFree::operator()(ssl_ctx_st* ctx) const { SSL_CTX_free(ctx); }

absl::StatusOr<SslCtxPtr> NewTls13ServerContext(absl::string_view key_pem,
                                                absl::string_view cert_pem,
                                                bool request_client_certificate) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (ctx == nullptr) return OpenSslError(absl::StatusCode::kInternal, "SSL_CTX_new failed");
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "cannot restrict TLS to version 1.3");
  }
  // No resumption: every connection's client certificate comes from its own full handshake
  // with the current key and certificate.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  EvpPkeyPtr key = ReadKey(key_pem);
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "the TLS key is not a PEM private key");
  }
  BioPtr chain = ReadOnlyBio(cert_pem);
  X509Ptr leaf(chain == nullptr ? nullptr
                                : PEM_read_bio_X509(chain.get(), nullptr, NoPassphrase, nullptr));
  if (leaf == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "the TLS certificate is not a PEM certificate");
  }
  if (SSL_CTX_use_certificate(ctx.get(), leaf.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "the TLS key does not belong to the TLS certificate");
  }
  // Intermediate certificates after the leaf, if any.
  while (X509* extra = PEM_read_bio_X509(chain.get(), nullptr, NoPassphrase, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx.get(), extra) != 1) {
      X509_free(extra);
      return OpenSslError(absl::StatusCode::kInvalidArgument, "unusable chain certificate");
    }
  }
  ERR_clear_error();  // the end of the PEM input
  if (request_client_certificate) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, AcceptAnyPeer);
  }
  return ctx;
}

std::string PeerCertificatePem(ssl_st* ssl) {
  X509Ptr peer(SSL_get1_peer_certificate(ssl));
  if (peer == nullptr) return std::string();
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), peer.get()) != 1) {
    ERR_clear_error();
    return std::string();
  }
  return BioContents(bio.get());
}

absl::StatusOr<size_t> CheckPemCertificates(absl::string_view pem) {
  BioPtr bio = ReadOnlyBio(pem);
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  size_t count = 0;
  while (true) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;  // NOLINT(runtime/int): OpenSSL's type.
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) break;
    absl::Cleanup free_block = [&] {
      OPENSSL_free(name);
      OPENSSL_free(header);
      OPENSSL_free(data);
    };
    if (std::strcmp(name, "CERTIFICATE") != 0) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat("PEM block ", count + 1, " is '", name,
                                                     "', expected 'CERTIFICATE'"));
    }
    const unsigned char* p = data;
    X509Ptr cert(d2i_X509(nullptr, &p, len));
    if (cert == nullptr || p != data + len) {
      return OpenSslError(absl::StatusCode::kInvalidArgument,
                          absl::StrCat("certificate ", count + 1, " is malformed"));
    }
    ++count;
  }
  ERR_clear_error();  // the end of the PEM input
  if (count == 0) return absl::InvalidArgumentError("no PEM certificate found");
  return count;
}

absl::Status CheckKeyMatchesCertificate(absl::string_view key_pem, absl::string_view cert_pem) {
  EvpPkeyPtr key = ReadKey(key_pem);
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "not an unencrypted PEM private key");
  }
  X509Ptr cert = ReadFirstCertificate(cert_pem);
  if (cert == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "not a PEM certificate");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the private key does not belong to the certificate");
  }
  return absl::OkStatus();
}

}  // namespace darvoza
