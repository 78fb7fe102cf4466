#include "registry/client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/x509.h"
#include "common/globalconf.h"
#include "registry/services.h"

namespace darvoza::registry {
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
  args.SetMaxReceiveMessageSize(64 << 20);
  // SNI names the registry's certificate (its CN), so the server's SNI lookup finds it instead
  // of logging a mismatch for every connection made to an IP address.
  args.SetSslTargetNameOverride(RegistryTlsCommonName(anchor.instance()));
  return grpc::CreateCustomChannel(address, grpc::experimental::TlsCredentials(options), args);
}

std::shared_ptr<grpc::Channel> MakeAdminChannel(const std::string& socket_path) {
  std::string target =
      absl::StartsWith(socket_path, "unix:") ? socket_path : absl::StrCat("unix:", socket_path);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

void AddAdminToken(grpc::ClientContext* context, const std::string& token) {
  context->AddMetadata(kAdminTokenMetadata, token);
}

}  // namespace darvoza::registry
