// TLS 1.3 only, although gRPC 1.51 has no TLS version setting (docs/design.md §4).
//
// Darvoza's certificates are all EC (P-256 or Ed25519). Restricting gRPC's TLS 1.2 cipher
// suites to RSA-only ones leaves no TLS 1.2 suite that an EC certificate can serve, so TLS 1.3
// is the only handshake that can succeed. gRPC reads the setting from the environment once,
// before its first TLS credentials: the daemons, the CLI and the test programs call
// SetUpTlsForProcess() first thing (the examples in adapters/ and the load generators in bench/
// are agency-side programs and set their own TLS).
//
// The process's own TLS (Boost.Beast's HTTP server, libcurl's backends) is OpenSSL's, set up
// here too: TLS 1.3 server contexts for the HTTP server and the checks of PEM files an operator
// hands over for backends.
#ifndef DARVOZA_COMMON_TLS_H_
#define DARVOZA_COMMON_TLS_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// OpenSSL's SSL_CTX and SSL, without OpenSSL's headers.
struct ssl_ctx_st;
struct ssl_st;

namespace darvoza {

inline constexpr char kGrpcCipherSuitesEnv[] = "GRPC_SSL_CIPHER_SUITES";
inline constexpr char kRsaOnlyTls12CipherSuites[] =
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384";

// Sets GRPC_SSL_CIPHER_SUITES to the RSA-only TLS 1.2 suites, overwriting any inherited
// value: a value exported in an operator's shell (or a unit file) listing EC suites would
// silently turn TLS 1.2 back on, and Darvoza has no setting that may do that.
// REQUIRES: no gRPC TLS credentials yet (gRPC reads the variable once, at the first).
void RestrictTlsToVersion13();

// What every process does first, before any TLS or other OpenSSL use: RestrictTlsToVersion13(),
// and OpenSSL told not to clean itself up at exit. gRPC's worker threads are detached and still
// running then; OpenSSL's exit-time clean-up deletes the thread-local keys, so a worker thread
// that ends during exit no longer frees its own OpenSSL state (error queue, random generators),
// and another that still uses OpenSSL would touch freed memory. The operating system reclaims
// it all at exit anyway.
void SetUpTlsForProcess();

struct SslCtxFree {
  void operator()(ssl_ctx_st* ctx) const;
};
using SslCtxPtr = std::unique_ptr<ssl_ctx_st, SslCtxFree>;

// A server context speaking TLS 1.3 only, serving the PEM key and certificate (chain) given.
// With `request_client_certificate` it asks the peer for a certificate but neither requires
// nor verifies one: the caller checks the certificate it got (PeerCertificatePem) per
// request, so that a wrong one is answered with a fault rather than a failed handshake.
// INVALID_ARGUMENT when the key or certificate is unreadable or they do not match.
absl::StatusOr<SslCtxPtr> NewTls13ServerContext(absl::string_view key_pem,
                                                absl::string_view cert_pem,
                                                bool request_client_certificate);

// The certificate the peer of an established connection presented, as PEM; "" when none.
std::string PeerCertificatePem(ssl_st* ssl);

// Checks a PEM bundle of certificates (trusted CAs, or a client certificate chain): at least
// one certificate, each readable, nothing but certificates. Returns how many there are.
// INVALID_ARGUMENT saying what is wrong.
absl::StatusOr<size_t> CheckPemCertificates(absl::string_view pem);

// Checks that `key_pem` is an unencrypted private key (any algorithm OpenSSL knows) whose
// public half is that of the first certificate in `cert_pem`. INVALID_ARGUMENT otherwise.
absl::Status CheckKeyMatchesCertificate(absl::string_view key_pem, absl::string_view cert_pem);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_TLS_H_
