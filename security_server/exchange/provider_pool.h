// ProviderPool: the consumer side's long-lived mTLS channels to provider security servers, and
// the choice among the servers that host a subsystem (docs/design.md §4, §5 step 1).
//
// Each channel has its own certificate verifier, run inside the TLS handshake, that accepts
// the provider only when the SHA-256 of its certificate is one the current global
// configuration lists for that very server, and its chain verifies to the anchor's root at the
// Clock's time without revocation (gRPC's own checks are off: they use the real clock and host
// names). A new configuration closes the channels of servers it no longer lists, or lists with
// other certificates.
//
// Selection prefers servers without a recent connection failure, then the lowest recent
// latency (an exponentially weighted mean), with untried servers first so each gets measured.
//
// Thread-safe.
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_PROVIDER_POOL_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_PROVIDER_POOL_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crypto/x509.h"
#include "proto/exchange.grpc.pb.h"
#include "proto/globalconf.pb.h"

namespace darvoza::ss {
class GlobalConfClient;
class KeyStore;
class MetricsRegistry;
}  // namespace darvoza::ss

namespace darvoza::ss::exchange {

// One provider security server as the consumer sees it.
class ProviderPeer {
 public:
  explicit ProviderPeer(v1::SecurityServerEntry entry);
  ProviderPeer(const ProviderPeer&) = delete;
  ProviderPeer& operator=(const ProviderPeer&) = delete;

  const v1::SecurityServerEntry& entry() const { return entry_; }
  const std::string& key() const { return key_; }
  grpc::Channel* channel() const { return channel_.get(); }
  v1::SecurityServerExchange::Stub* stub() const { return stub_.get(); }

  // Called by the handshake verifier when it refuses this provider.
  void NoteHandshakeRefusal(absl::Time now);
  // True when our verifier refused this provider since `since`.
  bool RefusedSince(absl::Time since) const;
  // Called by the handshake verifier when it accepts this provider's certificate (null when
  // it could not be parsed again for keeping).
  void NoteAcceptedCertificate(std::shared_ptr<const crypto::Certificate> cert);
  // How many handshakes with this provider our verifier accepted: a call whose attempt saw this
  // unchanged (and the channel not READY at its start) had no connection to travel on.
  uint64_t accepted_handshakes() const { return accepted_handshakes_.load(); }
  // The certificate of the last accepted handshake, or null.
  std::shared_ptr<const crypto::Certificate> accepted_certificate() const;
  // The protocol version of this provider's last verified answer (0 until one came): what
  // the consumer may send it (security_server/exchange/protocol_version.h).
  void NoteProtocolVersion(uint32_t version) { protocol_version_.store(version); }
  uint32_t protocol_version() const { return protocol_version_.load(); }

 private:
  friend class ProviderPool;
  const v1::SecurityServerEntry entry_;
  const std::string key_;  // server id text
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SecurityServerExchange::Stub> stub_;
  std::atomic<int64_t> last_refusal_nanos_{0};
  std::atomic<uint64_t> accepted_handshakes_{0};
  std::atomic<uint32_t> protocol_version_{0};
  mutable absl::Mutex cert_mu_;
  std::shared_ptr<const crypto::Certificate> accepted_cert_ ABSL_GUARDED_BY(cert_mu_);
  // Guarded by the pool's mutex.
  double latency_ewma_ms_ = -1;  // -1: never measured
  absl::Time failed_at_ = absl::InfinitePast();
};

struct ProviderPoolOptions {
  // A server whose connection failed is avoided for this long. Default: 30 s.
  absl::Duration failure_backoff = absl::Seconds(30);
};

class ProviderPool {
 public:
  // None owned; all must outlive the pool. `self`: this (the consumer) security server.
  ProviderPool(v1::SecurityServerId self, GlobalConfClient* conf, KeyStore* keys, Clock* clock,
               MetricsRegistry* metrics, ProviderPoolOptions options = {});
  ProviderPool(const ProviderPool&) = delete;
  ProviderPool& operator=(const ProviderPool&) = delete;

  // The servers of `conf` that host `subsystem`, best first; only `only` when given (the client
  // asked for one with x-road-security-server). Channels are made on first use.
  // NOT_FOUND when none hosts it (or `only` does not).
  absl::StatusOr<std::vector<std::shared_ptr<ProviderPeer>>> Candidates(
      const v1::GlobalConf& conf, const v1::SubsystemId& subsystem,
      const v1::SecurityServerId* only);

  // Outcome of one call: the latency when it was answered, or a connection failure.
  void ReportAnswered(ProviderPeer& peer, absl::Duration latency);
  void ReportConnectionFailure(ProviderPeer& peer);

  // Drops the channels of servers `conf` no longer lists or lists with other certificates;
  // all of them when `conf` no longer lists this server itself (its identity is void, and
  // providers must see that in a new handshake).
  void OnNewConf(const v1::GlobalConf& conf);

  size_t open_channels() const;

 private:
  absl::StatusOr<std::shared_ptr<ProviderPeer>> PeerFor(const v1::SecurityServerEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const v1::SecurityServerId self_;
  GlobalConfClient* const conf_;
  KeyStore* const keys_;
  Clock* const clock_;
  MetricsRegistry* const metrics_;
  const ProviderPoolOptions options_;
  crypto::CertificateCache certificates_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<ProviderPeer>> peers_ ABSL_GUARDED_BY(mu_);
};

// The SHA-256 fingerprints `conf` lists for `server`, or empty when it is not listed.
std::vector<std::string> ListedFingerprints(const v1::GlobalConf& conf,
                                            const v1::SecurityServerId& server);

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_PROVIDER_POOL_H_
