// TLS 1.3 only, although gRPC 1.51 has no TLS version setting (docs/design.md §4).
//
// Darvoza's certificates are all EC (P-256 or Ed25519). Restricting gRPC's TLS 1.2 cipher
// suites to RSA-only ones leaves no TLS 1.2 suite that an EC certificate can serve, so TLS 1.3
// is the only handshake that can succeed. gRPC reads the setting from the environment once,
// before its first TLS credentials: the daemons, the CLI and the test programs call
// SetUpTlsForProcess() first thing (the examples in adapters/ and the load generators in bench/
// are agency-side programs and set their own TLS).
#ifndef DARVOZA_COMMON_TLS_H_
#define DARVOZA_COMMON_TLS_H_

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

}  // namespace darvoza

#endif  // DARVOZA_COMMON_TLS_H_
