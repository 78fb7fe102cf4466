#include "common/registry_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/x509.h"
#include "common/globalconf.h"

namespace darvoza {
namespace {

// Accepts only the registry's TLS certificate of the anchor's instance (the chain itself was
// checked against the anchor's root by the handshake).
class RegistryNameVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit RegistryNameVerifier(std::string expected_cn) : expected_cn_(std::move(expected_cn)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    grpc::string_ref pem = request->peer_cert();
    auto cert = crypto::Certificate::FromPem(absl::string_view(pem.data(), pem.size()));
    if (!cert.ok()) {
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "registry certificate unreadable");
    } else if ((*cert)->subject_common_name() != expected_cn_) {
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  absl::StrCat("peer is '", (*cert)->subject_common_name(),
                                               "', not the registry '", expected_cn_, "'"));
    } else {
      *sync_status = grpc::Status::OK;
    }
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::string expected_cn_;
};

}  // namespace

std::shared_ptr<grpc::Channel> MakeRegistryChannel(const v1::ConfigurationAnchor& anchor,
                                                   const std::string& address) {
  std::string root_pem;
  auto root = crypto::Certificate::FromDer(anchor.root_ca_cert_der());
  if (root.ok()) root_pem = (*root)->ToPem();
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(
      std::make_shared<grpc::experimental::StaticDataCertificateProvider>(root_pem));
  options.watch_root_certs();
  options.set_verify_server_certs(true);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<RegistryNameVerifier>(
          RegistryTlsCommonName(anchor.instance())));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxRegistryResponseBytes);
  // A security server polls and watches the registry: after a registry restart it should be
  // back within a second, not after gRPC's default backoff of up to two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // SNI names the registry's certificate (its CN), so the server's SNI lookup finds it instead
  // of logging a mismatch for every connection made to an IP address.
  args.SetSslTargetNameOverride(RegistryTlsCommonName(anchor.instance()));
  return grpc::CreateCustomChannel(address, grpc::experimental::TlsCredentials(options), args);
}

}  // namespace darvoza
