#include "security_server/peer_check.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"
#include "common/faults.h"
#include "common/globalconf.h"
#include "common/identifiers.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "security_server/global_conf_client.h"
#include "security_server/key_store.h"
#include "security_server/metrics.h"

namespace darvoza::ss {
namespace {

// Every certificate in a PEM bundle, in order.
std::vector<std::shared_ptr<const crypto::Certificate>> ParsePemBundle(absl::string_view pem) {
  std::vector<std::shared_ptr<const crypto::Certificate>> out;
  constexpr absl::string_view kEnd = "-----END CERTIFICATE-----";
  size_t pos = 0;
  while (true) {
    size_t begin = pem.find("-----BEGIN CERTIFICATE-----", pos);
    if (begin == absl::string_view::npos) break;
    size_t end = pem.find(kEnd, begin);
    if (end == absl::string_view::npos) break;
    end += kEnd.size();
    auto cert = crypto::Certificate::FromPem(pem.substr(begin, end - begin));
    if (cert.ok()) out.push_back(*std::move(cert));
    pos = end;
  }
  return out;
}

class PeerVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  PeerVerifier(GlobalConfClient* conf, Clock* clock, MetricsRegistry* metrics,
               std::optional<v1::SecurityServerId> expected)
      : conf_(conf), clock_(clock), metrics_(metrics), expected_(std::move(expected)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    absl::Status s = Check(request);
    if (s.ok()) {
      *sync_status = grpc::Status::OK;
    } else {
      if (metrics_ != nullptr) metrics_->Increment("darvoza_ss_handshake_refusals_total");
      // The peer's address is not known to a gRPC 1.51 verifier; the target name is, when
      // this side dialled.
      log::Event(log::Level::kWarn, "handshake.refused", "TLS peer refused",
                 {{"side", expected_ ? "dialled" : "accepted"},
                  {"expected", expected_ ? FormatSecurityServerId(*expected_) : ""},
                  {"target", std::string(request->target_name().data(), request->target_name().size())},
                  {"fault", FaultCode(s)}, {"error", s.ToString()}});
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(s.message()));
    }
    return true;  // synchronous
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  absl::Status Check(grpc::experimental::TlsCustomVerificationCheckRequest* request) {
    DARVOZA_ASSIGN_OR_RETURN(std::shared_ptr<const v1::GlobalConf> conf, conf_->Current());
    absl::string_view leaf(request->peer_cert().data(), request->peer_cert().size());
    absl::string_view chain(request->peer_cert_full_chain().data(),
                            request->peer_cert_full_chain().size());
    return CheckSecurityServerPeer(leaf, chain, *conf, conf_->anchor(), clock_->Now(),
                                   expected_ ? &*expected_ : nullptr)
        .status();
  }

  GlobalConfClient* const conf_;
  Clock* const clock_;
  MetricsRegistry* const metrics_;
  const std::optional<v1::SecurityServerId> expected_;
};

}  // namespace

const v1::SecurityServerEntry* FindServerByAuthFingerprint(const v1::GlobalConf& conf,
                                                           absl::string_view sha256) {
  for (const auto& server : conf.security_servers()) {
    for (const auto& fp : server.auth_cert_sha256()) {
      if (fp == sha256) return &server;
    }
  }
  return nullptr;
}

absl::StatusOr<v1::SecurityServerEntry> CheckSecurityServerPeer(
    absl::string_view leaf_pem, absl::string_view chain_pem, const v1::GlobalConf& conf,
    const v1::ConfigurationAnchor& anchor, absl::Time now, const v1::SecurityServerId* expected) {
  auto leaf = crypto::Certificate::FromPem(leaf_pem);
  if (!leaf.ok()) return absl::UnauthenticatedError("the peer presented no readable certificate");
  const v1::SecurityServerEntry* entry = FindServerByAuthFingerprint(conf, (*leaf)->sha256());
  if (entry == nullptr) {
    return absl::UnauthenticatedError(
        absl::StrCat("certificate ", crypto::HexEncode((*leaf)->sha256()),
                     " is not the auth certificate of any security server in configuration ",
                     conf.serial()));
  }
  if (expected != nullptr && !SameSecurityServer(entry->id(), *expected)) {
    return absl::UnauthenticatedError(
        absl::StrCat("the peer is ", FormatSecurityServerId(entry->id()), ", not ",
                     FormatSecurityServerId(*expected)));
  }
  std::vector<std::shared_ptr<const crypto::Certificate>> trusted;
  if (auto root = crypto::Certificate::FromDer(anchor.root_ca_cert_der()); root.ok()) {
    trusted.push_back(*std::move(root));
  }
  for (const auto& ca : conf.approved_cas()) {
    if (auto c = crypto::Certificate::FromDer(ca.cert_der()); c.ok()) trusted.push_back(*c);
  }
  std::vector<std::shared_ptr<const crypto::Certificate>> intermediates;
  for (auto& c : ParsePemBundle(chain_pem)) {
    if (c->sha256() != (*leaf)->sha256()) intermediates.push_back(std::move(c));
  }
  const crypto::RevocationList revoked = RevocationListOf(conf.revoked());
  const crypto::CertificateProfile purpose = crypto::CertificateProfile::kTlsAuth;
  absl::Status chain = crypto::VerifyChain(**leaf, intermediates, trusted, now, revoked, &purpose);
  if (!chain.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "certificate of ", FormatSecurityServerId(entry->id()), ": ", chain.message()));
  }
  return *entry;
}

std::shared_ptr<grpc::experimental::CertificateVerifier> MakeSecurityServerPeerVerifier(
    GlobalConfClient* conf, Clock* clock, MetricsRegistry* metrics,
    std::optional<v1::SecurityServerId> expected) {
  return grpc::experimental::ExternalCertificateVerifier::Create<PeerVerifier>(
      conf, clock, metrics, std::move(expected));
}

std::shared_ptr<grpc::ServerCredentials> MakeSsToSsServerCredentials(
    const KeyStore& keys, GlobalConfClient* conf, Clock* clock, MetricsRegistry* metrics,
    int refresh_seconds) {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      keys.AuthKeyPath(), keys.AuthCertPath(), refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      MakeSecurityServerPeerVerifier(conf, clock, metrics, std::nullopt));
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ServerCredentials> MakeClientTlsServerCredentials(const KeyStore& keys,
                                                                        int refresh_seconds) {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      keys.AuthKeyPath(), keys.AuthCertPath(), refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace darvoza::ss
