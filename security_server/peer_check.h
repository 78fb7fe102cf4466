// The check of a security server's TLS peer against the global configuration (docs/design.md §4),
// shared by the provider side (any SS of the instance may connect) and the consumer side (the
// peer must be the intended SS).
//
// A peer passes when the SHA-256 of its leaf certificate is an auth fingerprint of an SS that
// the configuration lists, and its chain verifies — at Clock time, with the configuration's
// revocations and the TLS-auth profile — to the anchor's root CA (or one of the
// configuration's approved CAs).
//
// The verifier runs inside the TLS handshake (gRPC's ExternalCertificateVerifier); refusals are
// counted in darvoza_ss_handshake_refusals_total.
#ifndef DARVOZA_SECURITY_SERVER_PEER_CHECK_H_
#define DARVOZA_SECURITY_SERVER_PEER_CHECK_H_

#include <memory>
#include <optional>
#include <string>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_verifier.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "proto/globalconf.pb.h"
#include "proto/identifiers.pb.h"

namespace darvoza::ss {

class GlobalConfClient;
class KeyStore;
class MetricsRegistry;

// The SS whose auth fingerprints include `sha256`, or null.
const v1::SecurityServerEntry* FindServerByAuthFingerprint(const v1::GlobalConf& conf,
                                                           absl::string_view sha256);

// Checks a peer's certificate chain (`leaf_pem`, plus `chain_pem` which may repeat the leaf and
// hold intermediates) against `conf` and `anchor` at `now`. With `expected`, the peer must be
// that SS. Returns the peer's entry; UNAUTHENTICATED with the reason otherwise.
absl::StatusOr<v1::SecurityServerEntry> CheckSecurityServerPeer(
    absl::string_view leaf_pem, absl::string_view chain_pem, const v1::GlobalConf& conf,
    const v1::ConfigurationAnchor& anchor, absl::Time now,
    const v1::SecurityServerId* expected = nullptr);

// A handshake verifier that applies CheckSecurityServerPeer with the current configuration of
// `conf` (refusing everything while the configuration is missing or expired). `expected` null:
// any SS of the instance (provider side). Pointers are not owned and must outlive the verifier.
std::shared_ptr<grpc::experimental::CertificateVerifier> MakeSecurityServerPeerVerifier(
    GlobalConfClient* conf, Clock* clock, MetricsRegistry* metrics,
    std::optional<v1::SecurityServerId> expected);

// Server credentials for the SS↔SS port: the auth key and certificate (re-read from the
// KeyStore's files every `refresh_seconds`, so a renewed certificate is used without restart),
// client certificates required and checked by MakeSecurityServerPeerVerifier.
std::shared_ptr<grpc::ServerCredentials> MakeSsToSsServerCredentials(
    const KeyStore& keys, GlobalConfClient* conf, Clock* clock, MetricsRegistry* metrics,
    int refresh_seconds);

// Server credentials for the client mTLS port: the auth identity as above; client
// certificates requested and required but not verified in the handshake — the
// ClientAuthenticator checks the pin per call so that a mismatch carries a fault.
std::shared_ptr<grpc::ServerCredentials> MakeClientTlsServerCredentials(const KeyStore& keys,
                                                                        int refresh_seconds);

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_PEER_CHECK_H_
