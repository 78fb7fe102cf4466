#include "security_server/exchange/provider_pool.h"

#include <algorithm>
#include <utility>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "common/faults.h"
#include "common/globalconf.h"
#include "common/identifiers.h"
#include "security_server/global_conf_client.h"
#include "security_server/key_store.h"
#include "security_server/metrics.h"
#include "security_server/node_services.h"
#include "security_server/peer_check.h"

namespace darvoza::ss::exchange {
namespace {

constexpr double kEwmaWeight = 0.2;
constexpr unsigned int kIdentityRefreshSeconds = 5;

// Accepts the provider only when it is the server this channel was made for (checked in the
// handshake), and tells the peer when it refused, so the consumer can report
// SslAuthenticationFailed rather than a plain network error.
class ProviderVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  ProviderVerifier(GlobalConfClient* conf, Clock* clock, MetricsRegistry* metrics,
                   v1::SecurityServerId expected, std::weak_ptr<ProviderPeer> peer)
      : conf_(conf), clock_(clock), metrics_(metrics), expected_(std::move(expected)),
        peer_(std::move(peer)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    absl::Status status = Check(request);
    if (status.ok()) {
      *sync_status = grpc::Status::OK;
      const grpc::string_ref leaf = request->peer_cert();
      auto cert = crypto::Certificate::FromPem(absl::string_view(leaf.data(), leaf.size()));
      if (auto peer = peer_.lock(); peer != nullptr) {
        peer->NoteAcceptedCertificate(cert.ok() ? *std::move(cert) : nullptr);
      }
    } else {
      metrics_->Increment("darvoza_ss_provider_handshake_refusals_total");
      if (auto peer = peer_.lock()) peer->NoteHandshakeRefusal(clock_->Now());
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(status.message()));
    }
    return true;
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  absl::Status Check(grpc::experimental::TlsCustomVerificationCheckRequest* request) {
    auto conf = conf_->Current();
    if (!conf.ok()) return conf.status();
    const grpc::string_ref leaf = request->peer_cert();
    const grpc::string_ref chain = request->peer_cert_full_chain();
    return CheckSecurityServerPeer(absl::string_view(leaf.data(), leaf.size()),
                                   absl::string_view(chain.data(), chain.size()), **conf,
                                   conf_->anchor(), clock_->Now(), &expected_)
        .status();
  }

  GlobalConfClient* const conf_;
  Clock* const clock_;
  MetricsRegistry* const metrics_;
  const v1::SecurityServerId expected_;
  const std::weak_ptr<ProviderPeer> peer_;
};

}  // namespace

ProviderPeer::ProviderPeer(v1::SecurityServerEntry entry)
    : entry_(std::move(entry)), key_(FormatSecurityServerId(entry_.id())) {}

void ProviderPeer::NoteHandshakeRefusal(absl::Time now) {
  last_refusal_nanos_.store(absl::ToUnixNanos(now));
}

void ProviderPeer::NoteAcceptedCertificate(std::shared_ptr<const crypto::Certificate> cert) {
  accepted_handshakes_.fetch_add(1);
  if (cert == nullptr) return;  // accepted, but unreadable to us: keep the previous one
  absl::MutexLock lock(&cert_mu_);
  accepted_cert_ = std::move(cert);
}

std::shared_ptr<const crypto::Certificate> ProviderPeer::accepted_certificate() const {
  absl::MutexLock lock(&cert_mu_);
  return accepted_cert_;
}

bool ProviderPeer::RefusedSince(absl::Time since) const {
  const int64_t refused = last_refusal_nanos_.load();
  return refused != 0 && refused >= absl::ToUnixNanos(since);
}

std::vector<std::string> ListedFingerprints(const v1::GlobalConf& conf,
                                            const v1::SecurityServerId& server) {
  for (const v1::SecurityServerEntry& entry : conf.security_servers()) {
    if (SameSecurityServer(entry.id(), server)) {
      return {entry.auth_cert_sha256().begin(), entry.auth_cert_sha256().end()};
    }
  }
  return {};
}

ProviderPool::ProviderPool(v1::SecurityServerId self, GlobalConfClient* conf, KeyStore* keys,
                           Clock* clock, MetricsRegistry* metrics, ProviderPoolOptions options)
    : self_(std::move(self)),
      conf_(conf), keys_(keys), clock_(clock), metrics_(metrics), options_(options) {}

absl::StatusOr<std::shared_ptr<ProviderPeer>> ProviderPool::PeerFor(
    const v1::SecurityServerEntry& entry) {
  const std::string key = FormatSecurityServerId(entry.id());
  auto it = peers_.find(key);
  if (it != peers_.end()) return it->second;

  auto peer = std::make_shared<ProviderPeer>(entry);
  auto identity = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      keys_->AuthKeyPath(), keys_->AuthCertPath(), kIdentityRefreshSeconds);
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(identity);
  tls.watch_identity_key_cert_pairs();
  // Chain, dates (our Clock) and the pinned fingerprint are all checked by ProviderVerifier;
  // gRPC's own check would use the real clock and host names, which SS certificates lack.
  tls.set_verify_server_certs(false);
  tls.set_check_call_host(false);
  tls.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<ProviderVerifier>(
          conf_, clock_, metrics_, entry.id(), std::weak_ptr<ProviderPeer>(peer)));
  auto credentials = grpc::experimental::TlsCredentials(tls);
  if (credentials == nullptr) {
    return Fault(absl::StatusCode::kInternal, faults::kInternalError,
                 "cannot create TLS credentials for the SS-to-SS channel");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxSecurityServerMessageBytes);
  args.SetMaxSendMessageSize(kMaxSecurityServerMessageBytes);
  // One channel per provider, never shared with another target's verifier.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  peer->channel_ = grpc::CreateCustomChannel(entry.address(), credentials, args);
  peer->stub_ = v1::SecurityServerExchange::NewStub(peer->channel_);
  peers_[key] = peer;
  metrics_->SetGauge("darvoza_ss_provider_channels", static_cast<double>(peers_.size()));
  return peer;
}

absl::StatusOr<std::vector<std::shared_ptr<ProviderPeer>>> ProviderPool::Candidates(
    const v1::GlobalConf& conf, const v1::SubsystemId& subsystem,
    const v1::SecurityServerId* only) {
  std::vector<const v1::SecurityServerEntry*> hosting;
  for (const v1::SecurityServerEntry& entry : conf.security_servers()) {
    if (only != nullptr && !SameSecurityServer(entry.id(), *only)) continue;
    for (const v1::SubsystemId& hosted : entry.hosted_subsystems()) {
      if (SameSubsystem(hosted, subsystem)) {
        hosting.push_back(&entry);
        break;
      }
    }
  }
  if (hosting.empty()) {
    return Fault(absl::StatusCode::kNotFound, faults::kUnknownService,
                 absl::StrCat("no security server ",
                              only != nullptr ? FormatSecurityServerId(*only) + " " : "",
                              "hosts subsystem ", FormatSubsystemId(subsystem),
                              " in global configuration ", conf.serial()));
  }
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<ProviderPeer>> peers;
  for (const v1::SecurityServerEntry* entry : hosting) {
    auto peer = PeerFor(*entry);
    if (!peer.ok()) return peer.status();
    peers.push_back(*std::move(peer));
  }
  const absl::Time now = clock_->Now();
  auto rank = [&](const std::shared_ptr<ProviderPeer>& p) {
    const bool failed_recently = p->failed_at_ + options_.failure_backoff > now;
    return std::make_pair(failed_recently ? 1 : 0, p->latency_ewma_ms_);
  };
  std::stable_sort(peers.begin(), peers.end(),
                   [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  return peers;
}

void ProviderPool::ReportAnswered(ProviderPeer& peer, absl::Duration latency) {
  absl::MutexLock lock(&mu_);
  const double ms = absl::ToDoubleMilliseconds(latency);
  peer.latency_ewma_ms_ =
      peer.latency_ewma_ms_ < 0 ? ms : (1 - kEwmaWeight) * peer.latency_ewma_ms_ + kEwmaWeight * ms;
  peer.failed_at_ = absl::InfinitePast();
}

void ProviderPool::ReportConnectionFailure(ProviderPeer& peer) {
  absl::MutexLock lock(&mu_);
  peer.failed_at_ = clock_->Now();
}

void ProviderPool::OnNewConf(const v1::GlobalConf& conf) {
  const crypto::RevocationList revocations = RevocationListOf(conf.revoked());
  absl::MutexLock lock(&mu_);
  if (ListedFingerprints(conf, self_).empty()) peers_.clear();
  for (auto it = peers_.begin(); it != peers_.end();) {
    const ProviderPeer& peer = *it->second;
    std::vector<std::string> listed = ListedFingerprints(conf, peer.entry().id());
    std::vector<std::string> known(peer.entry().auth_cert_sha256().begin(),
                                   peer.entry().auth_cert_sha256().end());
    // A revoked certificate is also refused by the verifier at the next handshake; dropping
    // the channel ends the established connection now.
    auto cert = peer.accepted_certificate();
    const bool revoked = cert != nullptr && revocations.IsRevoked(*cert);
    std::sort(listed.begin(), listed.end());
    std::sort(known.begin(), known.end());
    std::string address;
    for (const v1::SecurityServerEntry& entry : conf.security_servers()) {
      if (SameSecurityServer(entry.id(), peer.entry().id())) address = entry.address();
    }
    if (listed.empty() || listed != known || address != peer.entry().address() || revoked) {
      peers_.erase(it++);
    } else {
      ++it;
    }
  }
  metrics_->SetGauge("darvoza_ss_provider_channels", static_cast<double>(peers_.size()));
}

size_t ProviderPool::open_channels() const {
  absl::MutexLock lock(&mu_);
  return peers_.size();
}

}  // namespace darvoza::ss::exchange
