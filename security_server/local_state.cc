#include "security_server/local_state.h"

#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "common/faults.h"
#include "common/outside_values.h"
#include "common/identifiers.h"
#include "common/status_macros.h"
#include "common/tls.h"
#include "security_server/state_store.h"

namespace darvoza::ss {
namespace {

constexpr absl::string_view kClientPrefix = "c/";
constexpr absl::string_view kServicePrefix = "s/";
constexpr absl::string_view kAclPrefix = "a/";
constexpr absl::string_view kGroupPrefix = "g/";
// Security servers before the in-memory replay window (docs/design-changes.md) kept every seen
// nonce under this prefix; Load drops them.
constexpr absl::string_view kStoredNoncePrefix = "x/";
// A CA bundle (the system's is ~200 KiB), a client certificate chain or a key.
constexpr size_t kMaxBackendPemBytes = 1 << 20;

std::string ServiceKey(const v1::ServiceId& id) {
  return absl::StrCat(FormatSubsystemId(id.subsystem()), "/", id.service_code());
}

std::string AclKey(const v1::AclEntry& entry) {
  return absl::StrCat(ServiceKey(entry.service()), "\n", FormatAclSubject(entry.subject()));
}

template <typename Message>
absl::Status ParseAll(StateStore* store, absl::string_view prefix,
                      std::map<std::string, Message>* out) {
  DARVOZA_ASSIGN_OR_RETURN(auto rows, store->Scan(prefix));
  for (auto& [key, value] : rows) {
    Message m;
    if (!m.ParseFromString(value)) {
      return absl::InternalError(absl::StrCat("unreadable state entry ", key));
    }
    (*out)[key.substr(prefix.size())] = std::move(m);
  }
  return absl::OkStatus();
}

// grpc://host:port, or http(s)://host:port[/base] for a REST service; a numeric port.
absl::Status ValidateBackend(absl::string_view backend) {
  const std::string shape =
      "backend must be grpc://host:port or http(s)://host:port[/base path]";
  absl::string_view rest = backend;
  const bool http =
      absl::ConsumePrefix(&rest, "http://") || absl::ConsumePrefix(&rest, "https://");
  if (!http && !absl::ConsumePrefix(&rest, "grpc://")) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest, shape);
  }
  absl::string_view base;
  if (const size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    base = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  size_t colon = rest.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port == 0 || port > 65535 ||
      absl::StrContains(rest, "@") || (!http && !base.empty()) ||
      !ValidateHttpPath(base).ok()) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                 absl::StrCat(shape, ", not ", backend));
  }
  return absl::OkStatus();
}

// An https:// backend's trusted CAs and client certificate, as `ss service add` sends them
// (--backend-ca, --backend-cert, --backend-key).
absl::Status ValidateBackendTls(const v1::LocalService& service) {
  const bool any = !service.backend_ca_pem().empty() || !service.backend_cert_pem().empty() ||
                   !service.backend_key_pem().empty();
  if (!any) return absl::OkStatus();
  auto invalid = [](absl::string_view what, absl::string_view why) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                 absl::StrCat(what, ": ", why));
  };
  if (!absl::StartsWith(service.backend(), "https://")) {
    return invalid("--backend-ca, --backend-cert, --backend-key",
                   "only an https:// backend takes a CA or a client certificate");
  }
  if (service.backend_ca_pem().size() > kMaxBackendPemBytes ||
      service.backend_cert_pem().size() > kMaxBackendPemBytes ||
      service.backend_key_pem().size() > kMaxBackendPemBytes) {
    return invalid("--backend-ca, --backend-cert, --backend-key",
                   absl::StrCat("a PEM file is over ", kMaxBackendPemBytes, " bytes"));
  }
  if (!service.backend_ca_pem().empty()) {
    if (auto count = CheckPemCertificates(service.backend_ca_pem()); !count.ok()) {
      return invalid("--backend-ca", count.status().message());
    }
  }
  if (service.backend_cert_pem().empty() != service.backend_key_pem().empty()) {
    return invalid("--backend-cert, --backend-key", "give both or neither");
  }
  if (!service.backend_cert_pem().empty()) {
    if (auto count = CheckPemCertificates(service.backend_cert_pem()); !count.ok()) {
      return invalid("--backend-cert", count.status().message());
    }
    if (absl::Status match =
            CheckKeyMatchesCertificate(service.backend_key_pem(), service.backend_cert_pem());
        !match.ok()) {
      return invalid("--backend-key", match.message());
    }
  }
  return absl::OkStatus();
}

bool GroupHas(const v1::LocalGroup& group, const v1::SubsystemId& client) {
  for (const auto& m : group.members()) {
    if (SameSubsystem(m, client)) return true;
  }
  return false;
}

}  // namespace

LocalState::LocalState(StateStore* store) : store_(store) {}

absl::StatusOr<std::unique_ptr<LocalState>> LocalState::Open(StateStore* store) {
  std::unique_ptr<LocalState> state(new LocalState(store));
  DARVOZA_RETURN_IF_ERROR(state->Load());
  return state;
}

absl::Status LocalState::Load() {
  absl::MutexLock lock(&mu_);
  DARVOZA_RETURN_IF_ERROR(ParseAll(store_, kClientPrefix, &clients_));
  DARVOZA_RETURN_IF_ERROR(ParseAll(store_, kServicePrefix, &services_));
  DARVOZA_RETURN_IF_ERROR(ParseAll(store_, kAclPrefix, &acl_));
  DARVOZA_RETURN_IF_ERROR(ParseAll(store_, kGroupPrefix, &groups_));
  constexpr size_t kPage = 10000;
  while (true) {
    DARVOZA_ASSIGN_OR_RETURN(auto rows, store_->Scan(kStoredNoncePrefix, kPage));
    if (rows.empty()) return absl::OkStatus();
    StateBatch batch;
    for (auto& row : rows) batch.Delete(std::move(row.first));
    DARVOZA_RETURN_IF_ERROR(store_->Write(batch, /*sync=*/false));
  }
}

// --- Clients.

absl::Status LocalState::PutClient(const v1::LocalClient& client) {
  DARVOZA_RETURN_IF_ERROR(ValidateSubsystemId(client.id()));
  if (client.auth_mode() == v1::IS_AUTH_MODE_UNSPECIFIED) {
    return absl::InvalidArgumentError("IS authentication mode must be plaintext or tls");
  }
  if (client.auth_mode() == v1::IS_AUTH_TLS) {
    if (client.cert_sha256().empty()) {
      return absl::InvalidArgumentError("tls mode needs the IS certificate's SHA-256 (--cert)");
    }
    for (const auto& pin : client.cert_sha256()) {
      if (pin.size() != 32) return absl::InvalidArgumentError("a pin must be 32 bytes");
    }
  }
  std::string key = FormatSubsystemId(client.id());
  absl::MutexLock lock(&mu_);
  StateBatch batch;
  batch.Put(absl::StrCat(kClientPrefix, key), client.SerializeAsString());
  DARVOZA_RETURN_IF_ERROR(store_->Write(batch));
  clients_[key] = client;
  return absl::OkStatus();
}

absl::StatusOr<v1::LocalClient> LocalState::GetClient(const v1::SubsystemId& id) const {
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(FormatSubsystemId(id));
  if (it == clients_.end()) {
    return absl::NotFoundError(
        absl::StrCat("subsystem ", FormatSubsystemId(id), " is not a client of this server"));
  }
  return it->second;
}

std::vector<v1::LocalClient> LocalState::ListClients() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::LocalClient> out;
  for (const auto& [key, client] : clients_) out.push_back(client);
  return out;
}

// --- Services.

absl::Status LocalState::AddService(const v1::LocalService& service) {
  DARVOZA_RETURN_IF_ERROR(ValidateServiceId(service.id()));
  DARVOZA_RETURN_IF_ERROR(ValidateBackend(service.backend()));
  DARVOZA_RETURN_IF_ERROR(ValidateBackendTls(service));
  absl::MutexLock lock(&mu_);
  if (!clients_.contains(FormatSubsystemId(service.id().subsystem()))) {
    return absl::FailedPreconditionError(
        absl::StrCat("subsystem ", FormatSubsystemId(service.id().subsystem()),
                     " is not a client of this server: `darvoza ss client add` it first"));
  }
  std::string key = ServiceKey(service.id());
  StateBatch batch;
  batch.Put(absl::StrCat(kServicePrefix, key), service.SerializeAsString());
  DARVOZA_RETURN_IF_ERROR(store_->Write(batch));
  services_[key] = service;
  return absl::OkStatus();
}

absl::Status LocalState::RemoveService(const v1::ServiceId& id) {
  std::string key = ServiceKey(id);
  absl::MutexLock lock(&mu_);
  if (!services_.contains(key)) {
    return Fault(absl::StatusCode::kNotFound, faults::kUnknownService,
                 absl::StrCat("no service ", FormatServiceId(id)));
  }
  StateBatch batch;
  batch.Delete(absl::StrCat(kServicePrefix, key));
  std::vector<std::string> acl_keys;
  for (auto it = acl_.lower_bound(key + "\n");
       it != acl_.end() && absl::StartsWith(it->first, key + "\n"); ++it) {
    acl_keys.push_back(it->first);
    batch.Delete(absl::StrCat(kAclPrefix, it->first));
  }
  DARVOZA_RETURN_IF_ERROR(store_->Write(batch));
  services_.erase(key);
  for (const auto& k : acl_keys) acl_.erase(k);
  return absl::OkStatus();
}

absl::StatusOr<v1::LocalService> LocalState::LookupService(const v1::ServiceId& id) const {
  absl::MutexLock lock(&mu_);
  auto it = services_.find(ServiceKey(id));
  if (it == services_.end()) {
    return Fault(absl::StatusCode::kNotFound, faults::kUnknownService,
                 absl::StrCat("service ", ServiceKey(id), " is not registered on this server"));
  }
  return it->second;
}

std::vector<v1::LocalService> LocalState::ListServices(const v1::SubsystemId* subsystem) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::LocalService> out;
  for (const auto& [key, service] : services_) {
    if (subsystem == nullptr || SameSubsystem(service.id().subsystem(), *subsystem)) {
      out.push_back(service);
    }
  }
  return out;
}

// --- Access rights.

absl::Status LocalState::Grant(const v1::AclEntry& entry) {
  switch (entry.subject().kind_case()) {
    case v1::AclSubject::kSubsystem:
      DARVOZA_RETURN_IF_ERROR(ValidateSubsystemId(entry.subject().subsystem()));
      break;
    case v1::AclSubject::kMember:
      DARVOZA_RETURN_IF_ERROR(ValidateMemberId(entry.subject().member()));
      break;
    case v1::AclSubject::kGlobalGroup:
      DARVOZA_RETURN_IF_ERROR(ValidateGlobalGroupId(entry.subject().global_group()));
      break;
    case v1::AclSubject::kLocalGroup:
      DARVOZA_RETURN_IF_ERROR(ParseLocalGroupId(entry.subject().local_group().group_code())
                                  .status());
      break;
    default:
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidIdentifier,
                   "an access right's subject is a subsystem:, member:, globalgroup: or "
                   "localgroup:");
  }
  std::string key = AclKey(entry);
  absl::MutexLock lock(&mu_);
  if (!services_.contains(ServiceKey(entry.service()))) {
    return Fault(absl::StatusCode::kNotFound, faults::kUnknownService,
                 absl::StrCat("no service ", ServiceKey(entry.service()),
                              ": `darvoza ss service add` it first"));
  }
  v1::AclEntry stored = entry;
  stored.mutable_service()->clear_service_version();
  StateBatch batch;
  batch.Put(absl::StrCat(kAclPrefix, key), stored.SerializeAsString());
  DARVOZA_RETURN_IF_ERROR(store_->Write(batch));
  acl_[key] = stored;
  return absl::OkStatus();
}

absl::Status LocalState::Revoke(const v1::AclEntry& entry) {
  std::string key = AclKey(entry);
  absl::MutexLock lock(&mu_);
  if (!acl_.contains(key)) {
    return absl::NotFoundError(absl::StrCat("no such access right: ",
                                            FormatAclSubject(entry.subject()), " on ",
                                            ServiceKey(entry.service())));
  }
  StateBatch batch;
  batch.Delete(absl::StrCat(kAclPrefix, key));
  DARVOZA_RETURN_IF_ERROR(store_->Write(batch));
  acl_.erase(key);
  return absl::OkStatus();
}

std::vector<v1::AclEntry> LocalState::ListAcl(const v1::ServiceId* service) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::AclEntry> out;
  std::string prefix = service == nullptr ? "" : ServiceKey(*service) + "\n";
  for (const auto& [key, entry] : acl_) {
    if (absl::StartsWith(key, prefix)) out.push_back(entry);
  }
  return out;
}

bool LocalState::IsAllowed(const v1::SubsystemId& client, const v1::ServiceId& service,
                           const v1::GlobalConf* conf) const {
  std::string prefix = ServiceKey(service) + "\n";
  absl::MutexLock lock(&mu_);
  for (auto it = acl_.lower_bound(prefix); it != acl_.end() && absl::StartsWith(it->first, prefix);
       ++it) {
    const v1::AclSubject& subject = it->second.subject();
    switch (subject.kind_case()) {
      case v1::AclSubject::kSubsystem:
        if (SameSubsystem(subject.subsystem(), client)) return true;
        break;
      case v1::AclSubject::kMember:
        if (SameMember(subject.member(), client.member())) return true;
        break;
      case v1::AclSubject::kLocalGroup: {
        auto g = groups_.find(subject.local_group().group_code());
        if (g != groups_.end() && GroupHas(g->second, client)) return true;
        break;
      }
      case v1::AclSubject::kGlobalGroup:
        if (conf == nullptr) break;
        for (const auto& group : conf->global_groups()) {
          if (group.id().instance() != subject.global_group().instance() ||
              group.id().group_code() != subject.global_group().group_code()) {
            continue;
          }
          for (const auto& m : group.members()) {
            if (SameSubsystem(m, client)) return true;
          }
        }
        break;
      default:
        break;
    }
  }
  return false;
}

std::vector<v1::ServiceId> LocalState::AllowedServices(const v1::SubsystemId& client,
                                                       const v1::GlobalConf* conf) const {
  std::vector<v1::ServiceId> ids;
  for (const auto& service : ListServices(nullptr)) ids.push_back(service.id());
  std::vector<v1::ServiceId> out;
  for (const auto& id : ids) {
    if (IsAllowed(client, id, conf)) out.push_back(id);
  }
  return out;
}

// --- Local groups.

absl::Status LocalState::AddGroup(const v1::LocalGroupId& id, const std::string& description) {
  DARVOZA_RETURN_IF_ERROR(ParseLocalGroupId(id.group_code()).status());
  absl::MutexLock lock(&mu_);
  if (groups_.contains(id.group_code())) {
    return absl::AlreadyExistsError(absl::StrCat("local group ", id.group_code(), " exists"));
  }
  v1::LocalGroup group;
  *group.mutable_id() = id;
  group.set_description(description);
  StateBatch batch;
  batch.Put(absl::StrCat(kGroupPrefix, id.group_code()), group.SerializeAsString());
  DARVOZA_RETURN_IF_ERROR(store_->Write(batch));
  groups_[id.group_code()] = std::move(group);
  return absl::OkStatus();
}

absl::Status LocalState::AddGroupMember(const v1::LocalGroupId& id,
                                        const v1::SubsystemId& member) {
  DARVOZA_RETURN_IF_ERROR(ValidateSubsystemId(member));
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(id.group_code());
  if (it == groups_.end()) {
    return absl::NotFoundError(absl::StrCat("no local group ", id.group_code()));
  }
  if (GroupHas(it->second, member)) return absl::OkStatus();
  v1::LocalGroup group = it->second;
  *group.add_members() = member;
  StateBatch batch;
  batch.Put(absl::StrCat(kGroupPrefix, id.group_code()), group.SerializeAsString());
  DARVOZA_RETURN_IF_ERROR(store_->Write(batch));
  it->second = std::move(group);
  return absl::OkStatus();
}

absl::Status LocalState::RemoveGroupMember(const v1::LocalGroupId& id,
                                           const v1::SubsystemId& member) {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(id.group_code());
  if (it == groups_.end()) {
    return absl::NotFoundError(absl::StrCat("no local group ", id.group_code()));
  }
  v1::LocalGroup group = it->second;
  group.clear_members();
  bool found = false;
  for (const auto& m : it->second.members()) {
    if (SameSubsystem(m, member)) {
      found = true;
    } else {
      *group.add_members() = m;
    }
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat(FormatSubsystemId(member), " is not in local group ",
                                            id.group_code()));
  }
  StateBatch batch;
  batch.Put(absl::StrCat(kGroupPrefix, id.group_code()), group.SerializeAsString());
  DARVOZA_RETURN_IF_ERROR(store_->Write(batch));
  it->second = std::move(group);
  return absl::OkStatus();
}

std::vector<v1::LocalGroup> LocalState::ListGroups() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::LocalGroup> out;
  for (const auto& [name, group] : groups_) out.push_back(group);
  return out;
}

}  // namespace darvoza::ss
