// IS authentication (docs/design.md §4): per subsystem, plaintext on the loopback port or
// mutual TLS with the IS certificate's SHA-256 pinned; a mismatch is SslAuthenticationFailed.
// Served the way the node serves the client ports: the TLS port requests client certificates
// without verifying them, and the ClientAuthenticator decides per call.
#include <catch2/catch.hpp>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "common/faults.h"
#include "common/globalconf.h"
#include "common/grpc_status.h"
#include "common/identifiers.h"
#include "security_server/client_auth.h"
#include "security_server/key_store.h"
#include "security_server/local_state.h"
#include "security_server/peer_check.h"
#include "security_server/state_store.h"
#include "tests/security_server/ss_test_util.h"

namespace darvoza::testing {
namespace {

// Answers every call with the authenticator's verdict on the x-road-client it claims.
class AuthProbe final : public grpc::CallbackGenericService {
 public:
  AuthProbe(const ss::ClientAuthenticator* auth, bool tls_port) : auth_(auth), tls_port_(tls_port) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      Reactor(grpc::GenericCallbackServerContext* ctx, const ss::ClientAuthenticator* auth,
              bool tls_port) {
        auto it = ctx->client_metadata().find("x-road-client");
        absl::Status s = absl::InvalidArgumentError("no x-road-client");
        if (it != ctx->client_metadata().end()) {
          auto id = ParseSubsystemId(absl::string_view(it->second.data(), it->second.size()));
          s = id.ok() ? auth->Authenticate(*id, *ctx, tls_port) : id.status();
        }
        Finish(ToGrpcStatus(s, ctx));
      }
      void OnDone() override { delete this; }
    };
    return new Reactor(ctx, auth_, tls_port_);
  }

 private:
  const ss::ClientAuthenticator* const auth_;
  const bool tls_port_;
};

grpc::Status CallAs(const std::shared_ptr<grpc::Channel>& channel, const std::string& client,
                    std::string* fault) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-road-client", client);
  std::string response;
  grpc::Status s = GenericUnary(channel, "/pkg.Svc/Method", "", &response, &ctx);
  *fault = FaultOfCall(ctx);
  return s;
}

TEST_CASE("IS authentication: a pinned certificate is accepted, another refused with the fault",
          "[ss][is-auth]") {
  TempDir dir;
  SimulatedClock clock(absl::Now());
  TestRegistry registry(dir.path(), &clock, {});
  REQUIRE(registry.registry().AddMember(ParseMemberId(kSsMember).value(), "Tax", "admin").ok());
  ss::SsConfig config = InitTestSecurityServer(dir.File("ss"), registry);
  RegisterAndApprove(config.data_dir, registry);
  auto anchor = LoadConfigurationAnchor(config.AnchorPath()).value();
  auto keys = ss::KeyStore::Open(config.data_dir, anchor.root_ca_cert_der()).value();
  auto store = ss::StateStore::Open(dir.File("state")).value();
  auto state = ss::LocalState::Open(store.get()).value();

  TestIdentity pinned = MakeTestIdentity("is:tax-registry");
  TestIdentity other = MakeTestIdentity("is:tax-registry");
  v1::LocalClient tls_client;
  *tls_client.mutable_id() = ParseSubsystemId("UZ/GOV/70000001/tax-registry").value();
  tls_client.set_auth_mode(v1::IS_AUTH_TLS);
  tls_client.add_cert_sha256(pinned.cert->sha256());
  REQUIRE(state->PutClient(tls_client).ok());
  v1::LocalClient plain_client;
  *plain_client.mutable_id() = ParseSubsystemId("UZ/GOV/70000001/dev").value();
  plain_client.set_auth_mode(v1::IS_AUTH_PLAINTEXT);
  REQUIRE(state->PutClient(plain_client).ok());

  ss::ClientAuthenticator auth(state.get());
  AuthProbe tls_probe(&auth, /*tls_port=*/true);
  AuthProbe plain_probe(&auth, /*tls_port=*/false);
  int tls_port = 0, plain_port = 0;
  grpc::ServerBuilder tls_builder;
  tls_builder.AddListeningPort("127.0.0.1:0", ss::MakeClientTlsServerCredentials(*keys, 1),
                               &tls_port);
  tls_builder.RegisterCallbackGenericService(&tls_probe);
  auto tls_server = tls_builder.BuildAndStart();
  grpc::ServerBuilder plain_builder;
  plain_builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &plain_port);
  plain_builder.RegisterCallbackGenericService(&plain_probe);
  auto plain_server = plain_builder.BuildAndStart();
  REQUIRE(tls_port != 0);
  REQUIRE(plain_port != 0);
  const std::string tls_address = "127.0.0.1:" + std::to_string(tls_port);
  const std::string plain_address = "127.0.0.1:" + std::to_string(plain_port);
  std::string fault;

  // The pinned IS certificate.
  auto good = TlsChannelWithIdentity(tls_address, pinned.key_pem, pinned.cert_pem);
  grpc::Status s = CallAs(good, "UZ/GOV/70000001/tax-registry", &fault);
  INFO(s.error_message());
  CHECK(s.ok());
  // The SS presents its auth certificate to the IS.
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-road-client", "UZ/GOV/70000001/tax-registry");
  std::string response;
  REQUIRE(GenericUnary(good, "/pkg.Svc/Method", "", &response, &ctx).ok());
  CHECK(PeerCertSha256(ctx) == keys->AuthCert().value()->sha256());

  // Another certificate for the same subsystem.
  auto bad = TlsChannelWithIdentity(tls_address, other.key_pem, other.cert_pem);
  s = CallAs(bad, "UZ/GOV/70000001/tax-registry", &fault);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(fault == faults::kSslAuthenticationFailed);

  // A plaintext-mode subsystem may not use the TLS port, a TLS-mode one not the plaintext port.
  s = CallAs(good, "UZ/GOV/70000001/dev", &fault);
  CHECK(fault == faults::kSslAuthenticationFailed);
  auto plain = grpc::CreateChannel(plain_address, grpc::InsecureChannelCredentials());
  CHECK(CallAs(plain, "UZ/GOV/70000001/dev", &fault).ok());
  s = CallAs(plain, "UZ/GOV/70000001/tax-registry", &fault);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(fault == faults::kSslAuthenticationFailed);

  // A subsystem this SS does not host.
  s = CallAs(plain, "UZ/GOV/70000001/unknown", &fault);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(fault == faults::kNotAuthorized);

  tls_server->Shutdown();
  plain_server->Shutdown();
}

}  // namespace
}  // namespace darvoza::testing
