// Renewer: certificate renewal before expiry (docs/design.md §4).
//
// When a certificate comes within `margin` of its not_after (by the Clock), the SS makes a new
// key and CSR for it, and submits a ServerRegistration carrying every due CSR, signed with its
// current auth key (renewal_signature, context darvoza.v1.registration), so that a registry with
// auto_approve_renewals approves it at once. Once approved, the new certificates are stored
// beside the old ones; seal and signing certificates are switched to at once, the auth
// certificate only when a global configuration lists its fingerprint for this SS (peers check
// fingerprints against the configuration, so switching earlier would lock them out). The
// switch renames the files gRPC's FileWatcherCertificateProvider watches: no restart.
// Certificates within `warning` of expiry produce warnings (status, logs).
//
// Thread-safe: Step() runs on the node's renewal thread (or a test), OnConf() on the
// configuration client's thread; a mutex orders them.
#ifndef DARVOZA_SECURITY_SERVER_RENEWAL_H_
#define DARVOZA_SECURITY_SERVER_RENEWAL_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "proto/globalconf.pb.h"
#include "proto/identifiers.pb.h"
#include "proto/registry.pb.h"

namespace darvoza::ss {

class GlobalConfClient;
class KeyStore;
class MetricsRegistry;
class RegistryClient;
class StateStore;

struct RenewerOptions {
  v1::SecurityServerId self;
  std::string address;  // the SS↔SS address sent with the registration
  absl::Duration margin = absl::Hours(24 * 30);
  absl::Duration warning = absl::Hours(24 * 45);
  // Not owned; all required except metrics.
  Clock* clock = nullptr;
  KeyStore* keys = nullptr;
  RegistryClient* registry = nullptr;
  GlobalConfClient* conf = nullptr;
  StateStore* store = nullptr;
  MetricsRegistry* metrics = nullptr;
};

class Renewer {
 public:
  explicit Renewer(RenewerOptions options) : options_(std::move(options)) {}
  Renewer(const Renewer&) = delete;
  Renewer& operator=(const Renewer&) = delete;

  // Looks at the outstanding renewal request (stores approved certificates, forgets a rejected
  // one) or submits one for every certificate within the margin. OK when nothing needed doing;
  // the registry's error when it could not be reached; FAILED_PRECONDITION when rejected.
  absl::Status Step();
  // Switches to the renewed auth certificate when `conf` lists its fingerprint for this SS.
  void OnConf(const v1::GlobalConf& conf);
  // Human-readable warnings about certificates near (or past) expiry or awaiting renewal.
  std::vector<std::string> Warnings() const;
  // The outstanding renewal request id, "" when none.
  std::string PendingRequestId() const;

 private:
  absl::Status ProcessRecord(const v1::RequestRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TryPromoteAuth(const v1::GlobalConf& conf) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RenewerOptions options_;
  mutable absl::Mutex mu_;
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_RENEWAL_H_
