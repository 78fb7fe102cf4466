// Registry: the central state of a Darvoza instance (docs/design.md §4, §6, §7) — members,
// subsystems, security servers and their certificates, registration and hosting requests,
// global groups, the signed global configuration, witness heads and the hash-chained history.
//
// Every change is validated first and then committed as one synced RocksDB batch together with
// its history entries and (when the federation changed) a newly signed configuration with the
// next serial; a refused change leaves the store untouched. Listeners learn of each new
// configuration after the commit (the Watch service feeds on that).
//
// Thread-safe: gRPC callback threads call everything concurrently; a single mutex orders the
// changes. The witness ledger (the held heads) has its own mutex, so that witnessing, with its
// synced head write, never holds up administration or configuration reads; receipts are signed
// with no mutex held. Configuration listeners are called without the mutex held.
//
//   DARVOZA_ASSIGN_OR_RETURN(auto registry, Registry::Open(options));
//   DARVOZA_RETURN_IF_ERROR(registry->AddMember(member_id, "Tax Committee", "admin"));
#ifndef DARVOZA_REGISTRY_REGISTRY_H_
#define DARVOZA_REGISTRY_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crypto/signer.h"
#include "proto/audit.pb.h"
#include "proto/globalconf.pb.h"
#include "proto/registry.pb.h"
#include "registry/config.h"
#include "registry/keys.h"

namespace darvoza::registry {

class RegistryStore;

struct RegistryOptions {
  std::string data_dir;                            // made by InitRegistry
  absl::Duration conf_validity = absl::Seconds(600);
  absl::Duration cert_validity = absl::Hours(24 * 365);
  bool auto_approve = false;                       // demos and tests only
  bool auto_approve_renewals = true;
  // Requests waiting for an administrator; Submit refuses more with RESOURCE_EXHAUSTED, so
  // that anyone reaching the public port cannot grow the store without bound.
  size_t max_pending_requests = static_cast<size_t>(kDefaultMaxPendingRequests);
  Clock* clock = nullptr;                          // Default: Clock::Real(); not owned
};

using ConfListener = std::function<void(std::shared_ptr<const v1::SignedGlobalConf>)>;
using DecisionListener = std::function<void(const v1::RequestRecord&)>;

class Registry {
 public:
  // Opens the registry made by InitRegistry in options.data_dir, and signs a first (or a
  // fresh) configuration when none is stored or the stored one is due for re-signing.
  static absl::StatusOr<std::unique_ptr<Registry>> Open(const RegistryOptions& options);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // --- Administration (each records history and publishes a new configuration). `actor` names
  // who asked, for the history. NOT_FOUND / ALREADY_EXISTS / FAILED_PRECONDITION as apt;
  // INVALID_ARGUMENT + Client.InvalidIdentifier for malformed ids.
  absl::Status AddMember(const v1::MemberId& id, const std::string& name, const std::string& actor);
  absl::Status RemoveMember(const v1::MemberId& id, const std::string& actor);
  std::vector<v1::MemberEntry> ListMembers() const;
  absl::Status AddSubsystem(const v1::SubsystemId& id, const std::string& actor);
  absl::Status RemoveSubsystem(const v1::SubsystemId& id, const std::string& actor);
  std::vector<v1::RequestRecord> ListRequests(bool include_decided) const;
  absl::StatusOr<v1::RequestRecord> Approve(const std::string& request_id, const std::string& actor);
  absl::StatusOr<v1::RequestRecord> Reject(const std::string& request_id, const std::string& reason,
                                           const std::string& actor);
  std::vector<v1::ServerRecord> ListServers() const;
  // Marks the server revoked, drops it from the configuration and lists every certificate it
  // was issued in the configuration's revocations.
  absl::Status RevokeServer(const v1::SecurityServerId& id, const std::string& actor);
  absl::Status AddGroup(const v1::GlobalGroupId& id, const std::string& description,
                        const std::string& actor);
  absl::Status RemoveGroup(const v1::GlobalGroupId& id, const std::string& actor);
  absl::Status AddGroupMember(const v1::GlobalGroupId& id, const v1::SubsystemId& member,
                              const std::string& actor);
  absl::Status RemoveGroupMember(const v1::GlobalGroupId& id, const v1::SubsystemId& member,
                                 const std::string& actor);
  std::vector<v1::GlobalGroup> ListGroups() const;
  // Makes configuration-signing key n+1 (issued by the root CA), signs from now on with it,
  // writes anchor.bin listing the previous and the new certificate, and returns that anchor.
  absl::StatusOr<v1::ConfigurationAnchor> RotateConfKey(const std::string& actor);
  // Replaces the anchor's registry addresses (anchor.bin rewritten; the next configuration's
  // registry_endpoints follow). Returns the new anchor. INVALID_ARGUMENT (InvalidRequest) for
  // an empty list or an address that is not host:port.
  absl::StatusOr<v1::ConfigurationAnchor> SetAnchorAddresses(
      const std::string& actor, const std::vector<std::string>& addresses);
  // History entries with seq >= from_seq (at most `limit`, 0 = 1000); chain_ok tells whether
  // their hashes link up and match.
  absl::StatusOr<v1::HistoryList> History(uint64_t from_seq, uint32_t limit) const;

  // --- Public.
  // Records a registration or hosting request: see Registration.Submit in registry.proto.
  // Auto-approval (options.auto_approve, auto_approve_renewals) never approves a registration
  // naming a registered server id, nor a renewal asking for a certificate kind or a signing
  // member the server does not hold unrevoked: those wait, with held_for_review saying why.
  // RESOURCE_EXHAUSTED + Server.Registry.TooManyPendingRequests when the request would wait and
  // max_pending_requests already do.
  absl::StatusOr<v1::RequestRecord> Submit(const v1::SubmitRequest& request);
  // NOT_FOUND for an unknown id.
  absl::StatusOr<v1::RequestRecord> GetRequest(const std::string& id) const;
  // The latest signed configuration. Never null after Open.
  std::shared_ptr<const v1::SignedGlobalConf> CurrentConf() const;
  // Checks the seal (signature by the SS's seal certificate, previous witnessed head equal to
  // the held head), stores its head and returns a receipt signed by the witness key. A repeat
  // of the held seal gets its receipt again, with the original witnessed time.
  // PERMISSION_DENIED + Client.NotAuthorized when the server is not registered, or it or the
  // seal's certificate is revoked: a revoked key seals nothing from its revocation on.
  absl::StatusOr<v1::SignedWitnessReceipt> Witness(const v1::SignedSeal& signed_seal)
      ABSL_LOCKS_EXCLUDED(mu_, witness_mu_);
  // The held head of `server`, if any.
  absl::StatusOr<v1::WitnessHead> WitnessHeadOf(const v1::SecurityServerId& server) const
      ABSL_LOCKS_EXCLUDED(witness_mu_);
  // The receipt for the held head of `server` (its original witnessed time), signed by the
  // witness key: what an auditor needs to see that no tail was cut off. NOT_FOUND when nothing
  // was witnessed for it.
  absl::StatusOr<v1::SignedWitnessReceipt> LatestWitnessReceipt(
      const v1::SecurityServerId& server) const ABSL_LOCKS_EXCLUDED(witness_mu_);

  // --- Maintenance.
  // Re-signs the configuration (next serial) when half the published configuration's
  // validity (or of options.conf_validity, if that is shorter) has passed by the Clock: a
  // changed setting never lets the published configuration expire. Called periodically by
  // RegistryServer; returns whether it re-signed.
  absl::StatusOr<bool> RefreshConfIfDue();
  // Called after each newly published configuration, without the mutex held.
  void AddConfListener(ConfListener listener);
  // Called with each request record once it is approved or rejected, without the mutex held.
  void AddDecisionListener(DecisionListener listener);
  v1::ConfigurationAnchor anchor() const;
  const std::string& instance() const { return instance_; }
  // Counters for metrics.
  struct Stats {
    uint64_t conf_serial = 0;
    absl::Time conf_expires_at;
    size_t members = 0;
    size_t servers = 0;
    size_t pending_requests = 0;
    uint64_t witness_receipts = 0;
    uint64_t history_size = 0;
    absl::Time root_ca_not_after;
    absl::Time conf_cert_not_after;
    absl::Time witness_cert_not_after;
  };
  Stats GetStats() const;

 private:
  struct HistoryDraft {
    std::string actor, action, subject, detail;
  };
  // One change under construction: a copy of the state, the requests it writes, its history.
  struct Txn {
    v1::RegistryState state;
    std::vector<v1::RequestRecord> requests;
    std::vector<HistoryDraft> history;
    bool publish = true;  // sign a new configuration with the next serial
    std::unique_ptr<crypto::PrivateKey> new_conf_key;  // set by RotateConfKey
    std::shared_ptr<const crypto::Certificate> new_conf_cert;
    std::unique_ptr<v1::ConfigurationAnchor> new_anchor;
  };
  using ChangeFn = std::function<absl::Status(Txn&)>;

  Registry(const RegistryOptions& options, std::unique_ptr<RegistryStore> store);
  absl::Status Load();

  // Runs `change` on a copy of the state, holding mu_: each lambda passed here is annotated
  // ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_), since std::function cannot carry the annotation and
  // the analysis would otherwise see the lambda's reads of guarded fields as unlocked.
  // On success commits the copy, its requests, history
  // and (when txn.publish) a newly signed configuration in one store batch, then swaps them
  // in. Nothing changes on failure. Notifies listeners after unlocking.
  absl::Status Change(const ChangeFn& change) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CommitLocked(Txn& txn, bool* published, std::vector<v1::RequestRecord>* decided)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `anchor` gives the registry endpoints: the one the same change installs, if it does.
  absl::StatusOr<v1::SignedGlobalConf> BuildAndSign(const v1::RegistryState& state, uint64_t serial,
                                                    const crypto::PrivateKey& key,
                                                    const crypto::Certificate& cert,
                                                    const v1::ConfigurationAnchor& anchor) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Issues the certificates of an approved server request into `txn` and `record`.
  absl::Status ApproveInto(Txn& txn, v1::RequestRecord& record) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::RequestRecord> Decide(const std::string& request_id, bool approve,
                                           const std::string& reason, const std::string& actor);
  void NotifyListeners() ABSL_LOCKS_EXCLUDED(mu_);
  size_t PendingCountLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the published configuration is due for re-signing (see RefreshConfIfDue).
  bool ConfDueLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RegistryOptions options_;
  Clock* const clock_;
  const std::unique_ptr<RegistryStore> store_;
  std::string instance_;

  mutable absl::Mutex mu_;
  RegistryKeys keys_ ABSL_GUARDED_BY(mu_);
  v1::ConfigurationAnchor anchor_ ABSL_GUARDED_BY(mu_);
  v1::RegistryState state_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::RequestRecord> requests_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const v1::SignedGlobalConf> conf_ ABSL_GUARDED_BY(mu_);
  absl::Time conf_generated_at_ ABSL_GUARDED_BY(mu_);
  absl::Time conf_expires_at_ ABSL_GUARDED_BY(mu_);
  uint64_t history_size_ ABSL_GUARDED_BY(mu_) = 0;
  std::string history_head_ ABSL_GUARDED_BY(mu_);

  // The witness: its key is set by Load and constant afterwards (Signer is thread-safe); the
  // ledger is ordered by witness_mu_, taken after mu_ when both are held (only in Load).
  std::unique_ptr<crypto::Signer> witness_signer_;
  std::string witness_cert_der_;
  mutable absl::Mutex witness_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::map<std::string, v1::WitnessHead> witness_heads_ ABSL_GUARDED_BY(witness_mu_);
  uint64_t witness_receipts_ ABSL_GUARDED_BY(witness_mu_) = 0;

  mutable absl::Mutex listeners_mu_;
  std::vector<ConfListener> listeners_ ABSL_GUARDED_BY(listeners_mu_);
  std::vector<DecisionListener> decision_listeners_ ABSL_GUARDED_BY(listeners_mu_);
};

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_REGISTRY_H_
