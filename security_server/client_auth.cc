#include "security_server/client_auth.h"

#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "security_server/local_state.h"

namespace darvoza::ss {

absl::Status ClientAuthenticator::Authenticate(const v1::SubsystemId& claimed,
                                               const grpc::ServerContextBase& ctx,
                                               bool tls_port) const {
  std::vector<grpc::string_ref> pems;
  if (tls_port) {
    std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
    if (auth != nullptr) pems = auth->FindPropertyValues("x509_pem_cert");
  }
  std::optional<absl::string_view> pem;
  if (!pems.empty()) pem = absl::string_view(pems[0].data(), pems[0].size());
  return Authenticate(claimed, tls_port, pem);
}

absl::Status ClientAuthenticator::AuthenticatePlaintextPort(const v1::SubsystemId& claimed) const {
  return Authenticate(claimed, /*tls_port=*/false, std::nullopt);
}

absl::Status ClientAuthenticator::Authenticate(const v1::SubsystemId& claimed, bool tls_port,
                                               std::optional<absl::string_view> peer_pem) const {
  absl::StatusOr<v1::LocalClient> client = state_->GetClient(claimed);
  if (!client.ok()) {
    return Fault(absl::StatusCode::kPermissionDenied, faults::kNotAuthorized,
                 absl::StrCat("client ", FormatSubsystemId(claimed),
                              " is not hosted by this security server"));
  }
  if (client->auth_mode() == v1::IS_AUTH_PLAINTEXT) {
    if (tls_port) {
      return Fault(absl::StatusCode::kUnauthenticated, faults::kSslAuthenticationFailed,
                   absl::StrCat("client ", FormatSubsystemId(claimed),
                                " is configured for the plaintext port"));
    }
    return absl::OkStatus();
  }
  if (!tls_port) {
    return Fault(absl::StatusCode::kUnauthenticated, faults::kSslAuthenticationFailed,
                 absl::StrCat("client ", FormatSubsystemId(claimed),
                              " must call over mutual TLS with its pinned certificate"));
  }
  if (!peer_pem.has_value()) {
    return Fault(absl::StatusCode::kUnauthenticated, faults::kSslAuthenticationFailed,
                 "no client certificate was presented");
  }
  auto cert = crypto::Certificate::FromPem(*peer_pem);
  if (!cert.ok()) {
    return Fault(absl::StatusCode::kUnauthenticated, faults::kSslAuthenticationFailed,
                 "the client certificate is unreadable");
  }
  for (const auto& pin : client->cert_sha256()) {
    if (pin == (*cert)->sha256()) return absl::OkStatus();
  }
  return Fault(absl::StatusCode::kUnauthenticated, faults::kSslAuthenticationFailed,
               absl::StrCat("the client certificate (SHA-256 ", crypto::HexEncode((*cert)->sha256()),
                            ") is not the one pinned for ", FormatSubsystemId(claimed)));
}

}  // namespace darvoza::ss
