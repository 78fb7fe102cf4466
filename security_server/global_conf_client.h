// GlobalConfClient: the security server's copy of the global configuration (docs/design.md §6).
//
// It fetches the signed configuration from the registry (Get), keeps a Watch stream open for
// new serials and polls at `poll_interval` as a fallback, verifies every configuration against
// the anchor (VerifySignedGlobalConf: a rolled-over signing key is followed when its
// certificate chains to the anchor's root), refuses older serials, writes the last good copy to
// <data dir>/globalconf.bin, and starts from that copy after a restart, so it keeps working
// while the registry is down — until the configuration's expires_at by the Clock, after which
// Current() fails with Server.ClientProxy.ConfigurationExpired.
//
//   DARVOZA_ASSIGN_OR_RETURN(auto conf_client, GlobalConfClient::Create(options));
//   conf_client->Start();
//   DARVOZA_ASSIGN_OR_RETURN(auto conf, conf_client->Current());
//
// Thread-safe. One background thread (Start) runs the watch and the polls; listeners are
// called on it (or on the caller of Offer), without internal locks held.
#ifndef DARVOZA_SECURITY_SERVER_GLOBAL_CONF_CLIENT_H_
#define DARVOZA_SECURITY_SERVER_GLOBAL_CONF_CLIENT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "proto/globalconf.pb.h"

namespace grpc {
class ClientContext;
}

namespace darvoza::ss {

class MetricsRegistry;
class RegistryClient;

struct GlobalConfClientOptions {
  // Where globalconf.bin (the last good copy) lives. Required.
  std::string data_dir;
  v1::ConfigurationAnchor anchor;
  // Registry public ports to try in order. Default: the anchor's registry_addresses.
  std::vector<std::string> registry_addresses;
  // Plain Get between watch attempts, in real time. Default: 60 s.
  absl::Duration poll_interval = absl::Seconds(60);
  // Wait before re-opening a broken watch stream. Default: 1 s.
  absl::Duration reconnect_delay = absl::Seconds(1);
  // Not owned. Default: Clock::Real().
  Clock* clock = nullptr;
  // Not owned; may be null.
  MetricsRegistry* metrics = nullptr;
};

using ConfListener = std::function<void(std::shared_ptr<const v1::GlobalConf>)>;

class GlobalConfClient {
 public:
  // Loads the last good copy from disk when there is one (a copy that no longer verifies is
  // ignored, with a log line). Does not contact the registry: call Start().
  static absl::StatusOr<std::unique_ptr<GlobalConfClient>> Create(
      GlobalConfClientOptions options);
  ~GlobalConfClient();  // Calls Shutdown().
  GlobalConfClient(const GlobalConfClient&) = delete;
  GlobalConfClient& operator=(const GlobalConfClient&) = delete;

  // Starts the background watch and poll threads. Call at most once.
  void Start();
  // Stops the thread and cancels the watch. Idempotent.
  void Shutdown();

  // The current configuration. UNAVAILABLE (fault InvalidConfiguration) when none was ever
  // accepted; FAILED_PRECONDITION with fault ConfigurationExpired when it expired by the Clock.
  absl::StatusOr<std::shared_ptr<const v1::GlobalConf>> Current() const;
  // The last accepted configuration even when expired; null when none.
  std::shared_ptr<const v1::GlobalConf> LastGood() const;
  // The signed form of LastGood() (for audit archives); null when none.
  std::shared_ptr<const v1::SignedGlobalConf> LastGoodSigned() const;
  // The anchor configurations are verified against (a copy: ReplaceAnchor may change it).
  v1::ConfigurationAnchor anchor() const;
  // Verifies configurations against `anchor` from now on and fetches them from `addresses`
  // (empty: the anchor's), after the operator installed a new anchor. INVALID_ARGUMENT, and
  // nothing changes, when `anchor` is for another instance or does not verify the held
  // configuration (a wrong file would otherwise cut the server off its federation).
  absl::Status ReplaceAnchor(const v1::ConfigurationAnchor& anchor,
                             std::vector<std::string> addresses);
  // The registry addresses tried, in order.
  std::vector<std::string> registry_addresses() const;

  // Calls `listener` after each newly accepted configuration (not for the one held now).
  void AddListener(ConfListener listener);

  // Verifies `signed_conf` and accepts it when its serial is newer than the held one (written to
  // disk first, then listeners run). The error of VerifySignedGlobalConf otherwise; the held
  // configuration is unchanged on any error. Used by the watch thread; public for tests and
  // for configuration files distributed by mirrors.
  absl::Status Offer(const v1::SignedGlobalConf& signed_conf);

  // One Get from the registry, offered as above. UNAVAILABLE when no registry answered.
  absl::Status FetchNow();

  // Whether the last attempt to reach the registry (Get or the watch) succeeded, and when one
  // last succeeded (InfinitePast when never).
  bool registry_reachable() const;
  absl::Time last_registry_contact() const;
  // Why the last attempt failed (e.g. "DNS resolution failed for registry.gov.uz:4400"); OK
  // when it succeeded or none was made.
  absl::Status registry_error() const;

 private:
  explicit GlobalConfClient(GlobalConfClientOptions options);
  void WatchLoop();
  void PollLoop();
  // Records the outcome of an attempt to reach the registry; logs when reachability changes.
  void MarkContact(const absl::Status& result);
  // Waits up to `d` (real time) or until shutdown; true when shutting down.
  bool WaitForShutdown(absl::Duration d);

  const GlobalConfClientOptions options_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  v1::ConfigurationAnchor anchor_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const v1::GlobalConf> conf_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const v1::SignedGlobalConf> signed_ ABSL_GUARDED_BY(mu_);
  std::vector<ConfListener> listeners_ ABSL_GUARDED_BY(mu_);
  bool reachable_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_contact_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // What the log last said, so that each change is one line, not one per attempt.
  std::optional<bool> logged_reachable_ ABSL_GUARDED_BY(mu_);
  mutable uint64_t logged_expired_serial_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* watch_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Mutex offer_mu_;  // one Offer at a time: serial check, disk write and swap together
  std::unique_ptr<RegistryClient> registry_;
  std::thread watch_thread_;
  std::thread poll_thread_;
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_GLOBAL_CONF_CLIENT_H_
