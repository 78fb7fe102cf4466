// ClientAuthenticator: checks that a call on a client port comes from the information system of
// the local subsystem it claims to be (docs/design.md §4, "IS to its own SS").
//
// Per hosted subsystem (LocalState), either plaintext — accepted only on the plaintext client
// port, which listens on loopback only — or mutual TLS on the client TLS port with the SHA-256
// of the IS's certificate pinned. The TLS port requests client certificates without verifying
// them in the handshake (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY), so a
// mismatch can be answered per call with a fault instead of a silent handshake failure.
//
// Thread-safe.
#ifndef DARVOZA_SECURITY_SERVER_CLIENT_AUTH_H_
#define DARVOZA_SECURITY_SERVER_CLIENT_AUTH_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/identifiers.pb.h"

namespace grpc {
class ServerContextBase;
}

namespace darvoza::ss {

class LocalState;

class ClientAuthenticator {
 public:
  // `state` is not owned and must outlive this.
  explicit ClientAuthenticator(const LocalState* state) : state_(state) {}

  // OK when `claimed` is hosted here and the call on `ctx` meets its authentication mode.
  //   - `claimed` not hosted here: PERMISSION_DENIED + Client.NotAuthorized.
  //   - plaintext mode on the TLS port, TLS mode on the plaintext port, or a TLS peer whose
  //     certificate SHA-256 is not pinned: UNAUTHENTICATED + SslAuthenticationFailed.
  // `tls_port` says which client port the call came in on. Accepts a CallbackServerContext.
  absl::Status Authenticate(const v1::SubsystemId& claimed, const grpc::ServerContextBase& ctx,
                            bool tls_port) const;

  // The same check for a call on the plaintext REST port (no gRPC context): OK only for a
  // subsystem hosted here in plaintext mode.
  absl::Status AuthenticatePlaintextPort(const v1::SubsystemId& claimed) const;

  // The same check for a call whose transport is not gRPC's (the REST ports): `peer_pem` is
  // the TLS peer's certificate (PEM) when the call came over TLS with one.
  absl::Status Authenticate(const v1::SubsystemId& claimed, bool tls_port,
                            std::optional<absl::string_view> peer_pem) const;

  const LocalState* const state_;
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_CLIENT_AUTH_H_
