// LocalState: what an administrator configured on this security server — the subsystems it
// hosts (with their IS authentication mode), the services they offer and where the backends
// are, access rights (default deny), local groups. Everything lives in the StateStore, so it
// survives restarts; reads are served from an in-memory copy.
//
//   DARVOZA_ASSIGN_OR_RETURN(auto state, LocalState::Open(store.get()));
//   DARVOZA_ASSIGN_OR_RETURN(v1::LocalService svc, state->LookupService(service_id));
//   if (!state->IsAllowed(client, service_id, conf.get())) { ... AccessDenied ... }
//
// Thread-safe: admin handlers change it while exchange threads read it.
#ifndef DARVOZA_SECURITY_SERVER_LOCAL_STATE_H_
#define DARVOZA_SECURITY_SERVER_LOCAL_STATE_H_

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "proto/globalconf.pb.h"
#include "proto/identifiers.pb.h"
#include "proto/security_server.pb.h"

namespace darvoza::ss {

class StateStore;

class LocalState {
 public:
  // Loads the state from `store` (not owned; must outlive this). INTERNAL on a read error or
  // an unreadable stored value.
  static absl::StatusOr<std::unique_ptr<LocalState>> Open(StateStore* store);
  LocalState(const LocalState&) = delete;
  LocalState& operator=(const LocalState&) = delete;

  // --- Hosted subsystems ("clients").
  // Adds or replaces the entry for client.id(). INVALID_ARGUMENT for a malformed id, a TLS
  // mode without a 32-byte pin, or an unspecified mode.
  absl::Status PutClient(const v1::LocalClient& client);
  // The entry for `id`, or NOT_FOUND.
  absl::StatusOr<v1::LocalClient> GetClient(const v1::SubsystemId& id) const;
  std::vector<v1::LocalClient> ListClients() const;

  // --- Services.
  // Adds or replaces the service service.id() (keyed by subsystem and service code). The
  // subsystem must be a hosted client (FAILED_PRECONDITION otherwise); the backend must be
  // grpc://host:port or http(s)://host:port[/base] (INVALID_ARGUMENT otherwise). Backend TLS
  // material (https:// only) must be PEM certificates, and a client certificate comes with
  // its matching unencrypted key (INVALID_ARGUMENT, fault Client.InvalidRequest, otherwise).
  // It is kept in the state with the service: one record, written atomically, backed up and
  // restored with the rest of the state, nothing else in the data directory to keep in step.
  absl::Status AddService(const v1::LocalService& service);
  // NOT_FOUND (fault Client.UnknownService) when absent. Removes its access rights too.
  absl::Status RemoveService(const v1::ServiceId& id);
  // The service registered for id's subsystem and service code (the version is ignored), or
  // NOT_FOUND with fault Client.UnknownService.
  absl::StatusOr<v1::LocalService> LookupService(const v1::ServiceId& id) const;
  // Services of `subsystem`, or of every subsystem when null.
  std::vector<v1::LocalService> ListServices(const v1::SubsystemId* subsystem) const;

  // --- Access rights (default deny).
  // Grants entry.subject() the right to call entry.service(). The service must exist
  // (NOT_FOUND) and the subject must be a subsystem, member, global group or local group
  // (INVALID_ARGUMENT). Granting twice is OK.
  absl::Status Grant(const v1::AclEntry& entry);
  // NOT_FOUND when no such right.
  absl::Status Revoke(const v1::AclEntry& entry);
  // Rights on `service`, or all when null.
  std::vector<v1::AclEntry> ListAcl(const v1::ServiceId* service) const;
  // True when `client` may call `service`: a right names the client subsystem, its member, a
  // local group that lists it, or a global group of `conf` (may be null) that lists it.
  bool IsAllowed(const v1::SubsystemId& client, const v1::ServiceId& service,
                 const v1::GlobalConf* conf) const;
  // Services of local subsystems that `client` may call.
  std::vector<v1::ServiceId> AllowedServices(const v1::SubsystemId& client,
                                             const v1::GlobalConf* conf) const;

  // --- Local groups.
  // ALREADY_EXISTS when the group exists.
  absl::Status AddGroup(const v1::LocalGroupId& id, const std::string& description);
  // NOT_FOUND for an unknown group; adding a member twice is OK.
  absl::Status AddGroupMember(const v1::LocalGroupId& id, const v1::SubsystemId& member);
  // NOT_FOUND for an unknown group or member.
  absl::Status RemoveGroupMember(const v1::LocalGroupId& id, const v1::SubsystemId& member);
  std::vector<v1::LocalGroup> ListGroups() const;

 private:
  explicit LocalState(StateStore* store);
  absl::Status Load();

  StateStore* const store_;
  mutable absl::Mutex mu_;
  std::map<std::string, v1::LocalClient> clients_ ABSL_GUARDED_BY(mu_);    // by subsystem text
  std::map<std::string, v1::LocalService> services_ ABSL_GUARDED_BY(mu_);  // subsystem/code
  std::map<std::string, v1::AclEntry> acl_ ABSL_GUARDED_BY(mu_);  // service key + '\n' + subject
  std::map<std::string, v1::LocalGroup> groups_ ABSL_GUARDED_BY(mu_);      // by name
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_LOCAL_STATE_H_
