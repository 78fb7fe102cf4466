#include "registry/registry.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/hash.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/faults.h"
#include "common/globalconf.h"
#include "common/host_port.h"
#include "common/identifiers.h"
#include "common/log.h"
#include "common/seal.h"
#include "common/status_macros.h"
#include "registry/store.h"

namespace darvoza::registry {
namespace {

using v1::CertKind;
using v1::GlobalGroup;
using v1::MemberEntry;
using v1::RegistryState;
using v1::RequestRecord;
using v1::ServerRecord;

constexpr int kMaxCsrs = 64;

std::string HistoryKey(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020llu", static_cast<unsigned long long>(seq));
  return absl::StrCat("hist/", buf);
}

std::string HistoryHash(const v1::HistoryEntry& entry) {
  v1::HistoryEntry copy = entry;
  copy.clear_hash();
  return crypto::Sha256(absl::StrCat(entry.prev_hash(), copy.SerializeAsString()));
}

absl::Status IdError(absl::Status s) {
  if (s.ok()) return s;
  return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidIdentifier, s.message());
}

MemberEntry* FindMember(RegistryState& state, const v1::MemberId& id) {
  for (auto& m : *state.mutable_members()) {
    if (SameMember(m.id(), id)) return &m;
  }
  return nullptr;
}

ServerRecord* FindServer(RegistryState& state, const v1::SecurityServerId& id) {
  for (auto& s : *state.mutable_servers()) {
    if (SameSecurityServer(s.id(), id)) return &s;
  }
  return nullptr;
}

GlobalGroup* FindGroup(RegistryState& state, const v1::GlobalGroupId& id) {
  for (auto& g : *state.mutable_groups()) {
    if (g.id().instance() == id.instance() && g.id().group_code() == id.group_code()) return &g;
  }
  return nullptr;
}

bool HasSubsystem(const MemberEntry& m, const v1::SubsystemId& id) {
  for (const auto& s : m.subsystems()) {
    if (SameSubsystem(s.id(), id)) return true;
  }
  return false;
}

template <typename Repeated, typename Pred>
void EraseIf(Repeated* list, Pred pred) {
  for (int i = list->size() - 1; i >= 0; --i) {
    if (pred(list->Get(i))) list->DeleteSubrange(i, 1);
  }
}

std::string KindName(CertKind kind) {
  switch (kind) {
    case v1::CERT_KIND_AUTH: return "auth";
    case v1::CERT_KIND_SEAL: return "seal";
    case v1::CERT_KIND_SIGNING: return "signing";
    default: return "unspecified";
  }
}

std::string ShortHex(absl::string_view bytes) {
  std::string hex = crypto::HexEncode(bytes);
  return hex.empty() ? "(none)" : hex.substr(0, 16);
}

// "" when every CSR of `reg` asks for a kind (and, for signing, a member) that `server` holds
// in a certificate not in `revoked`; otherwise what it asks for beyond that, for the
// administrator.
std::string NotHeldByServer(const ServerRecord& server, const v1::ServerRegistration& reg,
                            const crypto::RevocationList& revoked) {
  auto same_member = [](const v1::MemberId& a, const v1::MemberId& b) {
    return FormatMemberId(a) == FormatMemberId(b);
  };
  std::string beyond;
  for (const auto& wanted : reg.csrs()) {
    bool held = false;
    for (const auto& c : server.certificates()) {
      if (c.kind() != wanted.kind()) continue;
      if (c.kind() == v1::CERT_KIND_SIGNING && !same_member(c.member(), wanted.member())) continue;
      auto cert = crypto::Certificate::FromDer(c.cert_der());
      if (!cert.ok() || revoked.IsRevoked(**cert)) continue;
      held = true;
      break;
    }
    if (held) continue;
    absl::StrAppend(&beyond, beyond.empty() ? "" : ", ", KindName(wanted.kind()),
                    wanted.kind() == v1::CERT_KIND_SIGNING
                        ? absl::StrCat(" for member ", FormatMemberId(wanted.member()))
                        : "");
  }
  if (beyond.empty()) return "";
  return absl::StrCat("the renewal asks for certificates the server does not hold: ", beyond);
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Opening

Registry::Registry(const RegistryOptions& options, std::unique_ptr<RegistryStore> store)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : Clock::Real()),
      store_(std::move(store)) {}

Registry::~Registry() = default;

absl::StatusOr<std::unique_ptr<Registry>> Registry::Open(const RegistryOptions& options) {
  DARVOZA_ASSIGN_OR_RETURN(auto store,
                           RegistryStore::Open(DatabasePath(options.data_dir), /*create=*/false));
  std::unique_ptr<Registry> registry(new Registry(options, std::move(store)));
  DARVOZA_RETURN_IF_ERROR(registry->Load());
  return registry;
}

absl::Status Registry::Load() {
  DARVOZA_ASSIGN_OR_RETURN(auto state_bytes, store_->Get("state"));
  if (!state_bytes.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "registry database in ", options_.data_dir, " has no state; run `darvoza registry init`"));
  }
  bool need_publish = false;
  {
    absl::MutexLock lock(&mu_);
    if (!state_.ParseFromString(*state_bytes)) return absl::DataLossError("registry state is unreadable");
    instance_ = state_.instance();
    DARVOZA_ASSIGN_OR_RETURN(auto anchor_bytes, store_->Get("anchor"));
    if (!anchor_bytes.has_value() || !anchor_.ParseFromString(*anchor_bytes)) {
      return absl::DataLossError("registry anchor is missing from the database");
    }
    DARVOZA_ASSIGN_OR_RETURN(keys_, LoadRegistryKeys(options_.data_dir, state_.conf_key_index()));
    DARVOZA_ASSIGN_OR_RETURN(auto reqs, store_->Scan("req/"));
    for (auto& [key, value] : reqs) {
      RequestRecord r;
      if (!r.ParseFromString(value)) return absl::DataLossError(absl::StrCat("unreadable ", key));
      requests_[r.id()] = std::move(r);
    }
    if (keys_.witness_key == nullptr || keys_.witness_cert == nullptr) {
      return absl::DataLossError("the registry's witness key or certificate is missing");
    }
    witness_signer_ = std::make_unique<crypto::FileKeySigner>(std::move(keys_.witness_key));
    witness_cert_der_ = keys_.witness_cert->der();
    DARVOZA_ASSIGN_OR_RETURN(auto heads, store_->Scan("wit/"));
    absl::MutexLock witness_lock(&witness_mu_);
    for (auto& [key, value] : heads) {
      v1::WitnessHead h;
      if (!h.ParseFromString(value)) return absl::DataLossError(absl::StrCat("unreadable ", key));
      witness_heads_[key.substr(4)] = std::move(h);
    }
    history_size_ = state_.history_size();
    history_head_ = std::string(crypto::kSha256Size, '\0');
    if (history_size_ > 0) {
      DARVOZA_ASSIGN_OR_RETURN(auto last, store_->Get(HistoryKey(history_size_)));
      v1::HistoryEntry entry;
      if (!last.has_value() || !entry.ParseFromString(*last)) {
        return absl::DataLossError("registry history head is missing");
      }
      history_head_ = entry.hash();
    }
    DARVOZA_ASSIGN_OR_RETURN(auto conf_bytes, store_->Get("conf"));
    if (conf_bytes.has_value()) {
      auto conf = std::make_shared<v1::SignedGlobalConf>();
      v1::GlobalConf inner;
      if (!conf->ParseFromString(*conf_bytes) || !inner.ParseFromString(conf->conf())) {
        return absl::DataLossError("stored configuration is unreadable");
      }
      conf_ = conf;
      conf_generated_at_ = absl::FromUnixNanos(inner.generated_at_unix_nanos());
      conf_expires_at_ = absl::FromUnixNanos(inner.expires_at_unix_nanos());
      need_publish = ConfDueLocked();
    } else {
      need_publish = true;
    }
  }
  if (need_publish) {
    return Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (txn.state.history_size() == 0) {
        txn.history.push_back({"registry", "registry.init", instance_, "instance created"});
      }
      return absl::OkStatus();
    });
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------------------------------------
// Committing

absl::Status Registry::Change(const ChangeFn& change) {
  bool published = false;
  std::vector<RequestRecord> decided;
  std::vector<HistoryDraft> committed;
  {
    absl::MutexLock lock(&mu_);
    Txn txn;
    txn.state = state_;
    DARVOZA_RETURN_IF_ERROR(change(txn));
    DARVOZA_RETURN_IF_ERROR(CommitLocked(txn, &published, &decided));
    committed = std::move(txn.history);
  }
  // Each committed history entry is also an event line (registrations, approvals, published
  // configurations, ...), written after the store has it and outside the lock.
  for (const HistoryDraft& d : committed) {
    log::Event(log::Level::kInfo, d.action, "",
               {{"actor", d.actor}, {"subject", d.subject}, {"detail", d.detail}});
  }
  if (published) NotifyListeners();
  if (!decided.empty()) {
    std::vector<DecisionListener> listeners;
    {
      absl::MutexLock lock(&listeners_mu_);
      listeners = decision_listeners_;
    }
    for (const RequestRecord& r : decided) {
      for (const auto& l : listeners) l(r);
    }
  }
  return absl::OkStatus();
}

void Registry::AddDecisionListener(DecisionListener listener) {
  absl::MutexLock lock(&listeners_mu_);
  decision_listeners_.push_back(std::move(listener));
}

absl::Status Registry::CommitLocked(Txn& txn, bool* published, std::vector<RequestRecord>* decided) {
  StoreBatch batch;
  std::shared_ptr<v1::SignedGlobalConf> signed_conf;
  absl::Time now = clock_->Now();
  if (txn.publish) {
    uint64_t serial = txn.state.conf_serial() + 1;
    const crypto::PrivateKey& key = txn.new_conf_key ? *txn.new_conf_key : *keys_.conf_key;
    const crypto::Certificate& cert = txn.new_conf_cert ? *txn.new_conf_cert : *keys_.conf_cert;
    DARVOZA_ASSIGN_OR_RETURN(
        auto sc, BuildAndSign(txn.state, serial, key, cert, txn.new_anchor ? *txn.new_anchor : anchor_));
    signed_conf = std::make_shared<v1::SignedGlobalConf>(std::move(sc));
    txn.state.set_conf_serial(serial);
    txn.history.push_back({"registry", "conf.publish", absl::StrCat("serial ", serial), ""});
    batch.Put("conf", signed_conf->SerializeAsString());
  }
  uint64_t size = history_size_;
  std::string head = history_head_;
  for (const HistoryDraft& d : txn.history) {
    v1::HistoryEntry e;
    e.set_seq(++size);
    e.set_time_unix_nanos(absl::ToUnixNanos(now));
    e.set_actor(d.actor);
    e.set_action(d.action);
    e.set_subject(d.subject);
    e.set_detail(d.detail);
    e.set_prev_hash(head);
    e.set_hash(HistoryHash(e));
    head = e.hash();
    batch.Put(HistoryKey(e.seq()), e.SerializeAsString());
  }
  txn.state.set_history_size(size);
  batch.Put("state", txn.state.SerializeAsString());
  for (const RequestRecord& r : txn.requests) batch.Put(absl::StrCat("req/", r.id()), r.SerializeAsString());
  if (txn.new_anchor) batch.Put("anchor", txn.new_anchor->SerializeAsString());
  DARVOZA_RETURN_IF_ERROR(store_->Write(batch));

  state_ = std::move(txn.state);
  for (RequestRecord& r : txn.requests) {
    if (r.state() != v1::PENDING) decided->push_back(r);
    requests_[r.id()] = std::move(r);
  }
  history_size_ = size;
  history_head_ = head;
  if (txn.new_conf_key) {
    keys_.conf_key = std::move(txn.new_conf_key);
    keys_.conf_cert = std::move(txn.new_conf_cert);
  }
  if (txn.new_anchor) anchor_ = *txn.new_anchor;
  if (signed_conf) {
    v1::GlobalConf inner;
    inner.ParseFromString(signed_conf->conf());
    conf_generated_at_ = absl::FromUnixNanos(inner.generated_at_unix_nanos());
    conf_expires_at_ = absl::FromUnixNanos(inner.expires_at_unix_nanos());
    conf_ = std::move(signed_conf);
    *published = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SignedGlobalConf> Registry::BuildAndSign(const RegistryState& state,
                                                            uint64_t serial,
                                                            const crypto::PrivateKey& key,
                                                            const crypto::Certificate& cert,
                                                            const v1::ConfigurationAnchor& anchor) const {
  absl::Time now = clock_->Now();
  v1::GlobalConf conf;
  conf.set_instance(state.instance());
  conf.set_serial(serial);
  conf.set_generated_at_unix_nanos(absl::ToUnixNanos(now));
  conf.set_expires_at_unix_nanos(absl::ToUnixNanos(now + options_.conf_validity));
  *conf.mutable_members() = state.members();
  const crypto::RevocationList revoked = RevocationListOf(state.revoked());
  for (const ServerRecord& s : state.servers()) {
    if (s.revoked()) continue;
    v1::SecurityServerEntry* e = conf.add_security_servers();
    *e->mutable_id() = s.id();
    e->set_address(s.address());
    for (const auto& c : s.certificates()) {
      if (c.kind() != v1::CERT_KIND_AUTH) continue;
      auto parsed = crypto::Certificate::FromDer(c.cert_der());
      // A server registered again after a revocation keeps only its new certificates.
      if (!parsed.ok() || (*parsed)->not_after() <= now || revoked.IsRevoked(**parsed)) continue;
      e->add_auth_cert_sha256((*parsed)->sha256());
    }
    *e->mutable_hosted_subsystems() = s.hosted_subsystems();
  }
  v1::ApprovedCa* ca = conf.add_approved_cas();
  ca->set_name(keys_.root_cert->subject_common_name());
  ca->set_cert_der(keys_.root_cert->der());
  *conf.mutable_revoked() = state.revoked();
  *conf.mutable_global_groups() = state.groups();
  for (const auto& a : anchor.registry_addresses()) conf.add_registry_endpoints()->set_address(a);
  conf.set_witness_cert_der(keys_.witness_cert->der());

  v1::SignedGlobalConf signed_conf;
  signed_conf.set_conf(conf.SerializeAsString());
  DARVOZA_ASSIGN_OR_RETURN(std::string sig,
                           key.SignRaw(crypto::SignedBytes(crypto::SignatureContext::kGlobalConf,
                                                           signed_conf.conf())));
  signed_conf.set_signature(std::move(sig));
  signed_conf.set_signer_cert_der(cert.der());
  return signed_conf;
}

void Registry::NotifyListeners() {
  std::shared_ptr<const v1::SignedGlobalConf> conf = CurrentConf();
  std::vector<ConfListener> listeners;
  {
    absl::MutexLock lock(&listeners_mu_);
    listeners = listeners_;
  }
  for (const auto& l : listeners) l(conf);
}

void Registry::AddConfListener(ConfListener listener) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.push_back(std::move(listener));
}

std::shared_ptr<const v1::SignedGlobalConf> Registry::CurrentConf() const {
  absl::MutexLock lock(&mu_);
  return conf_;
}

v1::ConfigurationAnchor Registry::anchor() const {
  absl::MutexLock lock(&mu_);
  return anchor_;
}

bool Registry::ConfDueLocked() const {
  // Halfway through the published configuration's own lifetime, not the configured one: after
  // conf_validity_seconds is raised (600 -> 86400) and the registry restarted, half the new
  // validity (12 h) would come long after the published configuration (10 min) expired, and
  // every security server would stop exchanging. A lowered validity takes effect at once.
  const absl::Duration published = conf_expires_at_ - conf_generated_at_;
  return clock_->Now() - conf_generated_at_ >= std::min(published, options_.conf_validity) / 2;
}

absl::StatusOr<bool> Registry::RefreshConfIfDue() {
  bool due = false;
  absl::Status s = Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    due = ConfDueLocked();
    txn.publish = due;
    if (!due) return absl::CancelledError("not due");
    return absl::OkStatus();
  });
  if (!due) return false;
  DARVOZA_RETURN_IF_ERROR(s);
  return true;
}

// ------------------------------------------------------------------------------------------
// Members, subsystems, groups

absl::Status Registry::AddMember(const v1::MemberId& id, const std::string& name,
                                 const std::string& actor) {
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateMemberId(id)));
  if (id.instance() != instance_) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidIdentifier,
                 absl::StrCat("member ", FormatMemberId(id), " is not of instance ", instance_));
  }
  if (name.size() > 1024) return absl::InvalidArgumentError("member name is longer than 1024 bytes");
  return Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (FindMember(txn.state, id) != nullptr) {
      return absl::AlreadyExistsError(absl::StrCat("member ", FormatMemberId(id), " already exists"));
    }
    MemberEntry* m = txn.state.add_members();
    *m->mutable_id() = id;
    m->set_name(name);
    txn.history.push_back({actor, "member.add", absl::StrCat("member:", FormatMemberId(id)), name});
    return absl::OkStatus();
  });
}

absl::Status Registry::RemoveMember(const v1::MemberId& id, const std::string& actor) {
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateMemberId(id)));
  return Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (FindMember(txn.state, id) == nullptr) {
      return Fault(absl::StatusCode::kNotFound, faults::kUnknownMember,
                   absl::StrCat("member ", FormatMemberId(id), " does not exist"));
    }
    for (const ServerRecord& s : txn.state.servers()) {
      if (!s.revoked() && SameMember(s.id().owner(), id)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "member ", FormatMemberId(id), " owns security server ", FormatSecurityServerId(s.id()),
            "; revoke it first (darvoza registry server revoke)"));
      }
    }
    EraseIf(txn.state.mutable_members(), [&](const MemberEntry& m) { return SameMember(m.id(), id); });
    for (auto& s : *txn.state.mutable_servers()) {
      EraseIf(s.mutable_hosted_subsystems(),
              [&](const v1::SubsystemId& h) { return SameMember(h.member(), id); });
    }
    for (auto& g : *txn.state.mutable_groups()) {
      EraseIf(g.mutable_members(), [&](const v1::SubsystemId& h) { return SameMember(h.member(), id); });
    }
    txn.history.push_back({actor, "member.remove", absl::StrCat("member:", FormatMemberId(id)), ""});
    return absl::OkStatus();
  });
}

std::vector<v1::MemberEntry> Registry::ListMembers() const {
  absl::MutexLock lock(&mu_);
  return {state_.members().begin(), state_.members().end()};
}

absl::Status Registry::AddSubsystem(const v1::SubsystemId& id, const std::string& actor) {
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateSubsystemId(id)));
  return Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    MemberEntry* m = FindMember(txn.state, id.member());
    if (m == nullptr) {
      return Fault(absl::StatusCode::kFailedPrecondition, faults::kUnknownMember,
                   absl::StrCat("member ", FormatMemberId(id.member()),
                                " does not exist; add it first (darvoza registry member add)"));
    }
    if (HasSubsystem(*m, id)) {
      return absl::AlreadyExistsError(absl::StrCat("subsystem ", FormatSubsystemId(id), " already exists"));
    }
    *m->add_subsystems()->mutable_id() = id;
    txn.history.push_back({actor, "subsystem.add", absl::StrCat("subsystem:", FormatSubsystemId(id)), ""});
    return absl::OkStatus();
  });
}

absl::Status Registry::RemoveSubsystem(const v1::SubsystemId& id, const std::string& actor) {
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateSubsystemId(id)));
  return Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    MemberEntry* m = FindMember(txn.state, id.member());
    if (m == nullptr || !HasSubsystem(*m, id)) {
      return absl::NotFoundError(absl::StrCat("subsystem ", FormatSubsystemId(id), " does not exist"));
    }
    EraseIf(m->mutable_subsystems(), [&](const v1::SubsystemEntry& s) { return SameSubsystem(s.id(), id); });
    for (auto& s : *txn.state.mutable_servers()) {
      EraseIf(s.mutable_hosted_subsystems(), [&](const v1::SubsystemId& h) { return SameSubsystem(h, id); });
    }
    for (auto& g : *txn.state.mutable_groups()) {
      EraseIf(g.mutable_members(), [&](const v1::SubsystemId& h) { return SameSubsystem(h, id); });
    }
    txn.history.push_back({actor, "subsystem.remove", absl::StrCat("subsystem:", FormatSubsystemId(id)), ""});
    return absl::OkStatus();
  });
}

absl::Status Registry::AddGroup(const v1::GlobalGroupId& id, const std::string& description,
                                const std::string& actor) {
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateGlobalGroupId(id)));
  if (id.instance() != instance_) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidIdentifier,
                 absl::StrCat("group ", FormatGlobalGroupId(id), " is not of instance ", instance_));
  }
  return Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (FindGroup(txn.state, id) != nullptr) {
      return absl::AlreadyExistsError(absl::StrCat("group ", FormatGlobalGroupId(id), " already exists"));
    }
    GlobalGroup* g = txn.state.add_groups();
    *g->mutable_id() = id;
    g->set_description(description);
    txn.history.push_back({actor, "group.add", absl::StrCat("globalgroup:", FormatGlobalGroupId(id)), description});
    return absl::OkStatus();
  });
}

absl::Status Registry::RemoveGroup(const v1::GlobalGroupId& id, const std::string& actor) {
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateGlobalGroupId(id)));
  return Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (FindGroup(txn.state, id) == nullptr) {
      return absl::NotFoundError(absl::StrCat("group ", FormatGlobalGroupId(id), " does not exist"));
    }
    EraseIf(txn.state.mutable_groups(), [&](const GlobalGroup& g) {
      return g.id().instance() == id.instance() && g.id().group_code() == id.group_code();
    });
    txn.history.push_back({actor, "group.remove", absl::StrCat("globalgroup:", FormatGlobalGroupId(id)), ""});
    return absl::OkStatus();
  });
}

absl::Status Registry::AddGroupMember(const v1::GlobalGroupId& id, const v1::SubsystemId& member,
                                      const std::string& actor) {
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateGlobalGroupId(id)));
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateSubsystemId(member)));
  return Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    GlobalGroup* g = FindGroup(txn.state, id);
    if (g == nullptr) {
      return absl::NotFoundError(absl::StrCat("group ", FormatGlobalGroupId(id), " does not exist"));
    }
    MemberEntry* m = FindMember(txn.state, member.member());
    if (m == nullptr || !HasSubsystem(*m, member)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "subsystem ", FormatSubsystemId(member), " does not exist; add it first"));
    }
    for (const auto& existing : g->members()) {
      if (SameSubsystem(existing, member)) {
        return absl::AlreadyExistsError(absl::StrCat(FormatSubsystemId(member), " is already in the group"));
      }
    }
    *g->add_members() = member;
    txn.history.push_back({actor, "group.add-member", absl::StrCat("globalgroup:", FormatGlobalGroupId(id)),
                           absl::StrCat("subsystem:", FormatSubsystemId(member))});
    return absl::OkStatus();
  });
}

absl::Status Registry::RemoveGroupMember(const v1::GlobalGroupId& id, const v1::SubsystemId& member,
                                         const std::string& actor) {
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateGlobalGroupId(id)));
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateSubsystemId(member)));
  return Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    GlobalGroup* g = FindGroup(txn.state, id);
    if (g == nullptr) {
      return absl::NotFoundError(absl::StrCat("group ", FormatGlobalGroupId(id), " does not exist"));
    }
    int before = g->members_size();
    EraseIf(g->mutable_members(), [&](const v1::SubsystemId& s) { return SameSubsystem(s, member); });
    if (g->members_size() == before) {
      return absl::NotFoundError(absl::StrCat(FormatSubsystemId(member), " is not in the group"));
    }
    txn.history.push_back({actor, "group.remove-member", absl::StrCat("globalgroup:", FormatGlobalGroupId(id)),
                           absl::StrCat("subsystem:", FormatSubsystemId(member))});
    return absl::OkStatus();
  });
}

std::vector<v1::GlobalGroup> Registry::ListGroups() const {
  absl::MutexLock lock(&mu_);
  return {state_.groups().begin(), state_.groups().end()};
}

// ------------------------------------------------------------------------------------------
// Requests

absl::StatusOr<v1::RequestRecord> Registry::Submit(const v1::SubmitRequest& request) {
  RequestRecord record;
  record.set_id(crypto::HexEncode(crypto::RandomBytes(16)));
  record.set_submitted_at_unix_nanos(absl::ToUnixNanos(clock_->Now()));
  record.set_state(v1::PENDING);
  std::string subject;
  if (request.kind_case() == v1::SubmitRequest::kServerRegistration) {
    v1::ServerRegistration reg;
    if (!reg.ParseFromString(request.server_registration())) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                   "server_registration is not a serialized ServerRegistration");
    }
    DARVOZA_RETURN_IF_ERROR(IdError(ValidateSecurityServerId(reg.server())));
    if (reg.server().owner().instance() != instance_) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidIdentifier,
                   absl::StrCat("security server ", FormatSecurityServerId(reg.server()),
                                " is not of instance ", instance_));
    }
    if (absl::StatusOr<HostPort> parsed = ParseDialAddress(reg.address()); !parsed.ok()) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                   absl::StrCat("address must be host:port of the security server's SS-to-SS "
                                "port: ", parsed.status().message()));
    }
    if (reg.csrs_size() == 0 || reg.csrs_size() > kMaxCsrs) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                   absl::StrCat("a registration carries 1 to ", kMaxCsrs, " CSRs"));
    }
    int auth = 0, seal = 0;
    for (const auto& c : reg.csrs()) {
      std::string what = KindName(c.kind());
      if (c.kind() == v1::CERT_KIND_AUTH) ++auth;
      else if (c.kind() == v1::CERT_KIND_SEAL) ++seal;
      else if (c.kind() == v1::CERT_KIND_SIGNING) {
        DARVOZA_RETURN_IF_ERROR(IdError(ValidateMemberId(c.member())));
      } else {
        return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                     "every CSR needs a kind: auth, seal or signing");
      }
      auto parsed = crypto::CertificateRequest::Parse(c.csr());
      if (!parsed.ok()) {
        return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidCsr,
                     absl::StrCat("the ", what, " CSR is not a valid certificate request: ",
                                  parsed.status().message()));
      }
      if (!c.tls_host().empty()) {
        // The subjectAltName names what the registry approves, never what the SS chose alone
        // (docs/design.md §4): only the host of the address in this same registration.
        auto approved = crypto::SubjectAltHostOf(reg.address());
        if (c.kind() != v1::CERT_KIND_AUTH || !approved.ok() ||
            !absl::EqualsIgnoreCase(*approved, c.tls_host())) {
          return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                       absl::StrCat("the ", what, " CSR's tls_host differs from the host of "
                                    "the registration's address (",
                                    approved.ok() ? absl::string_view(*approved)
                                                  : approved.status().message(),
                                    "): the registry names only that host in an auth "
                                    "certificate"));
        }
      }
    }
    if (auth > 1 || seal > 1) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                   "at most one auth and one seal CSR per request");
    }
    record.set_renewal(!request.renewal_signature().empty());
    *record.mutable_registration() = reg;
    subject = absl::StrCat("server:", FormatSecurityServerId(reg.server()));
  } else if (request.kind_case() == v1::SubmitRequest::kHosting) {
    const v1::HostingRequest& h = request.hosting();
    DARVOZA_RETURN_IF_ERROR(IdError(ValidateSecurityServerId(h.server())));
    DARVOZA_RETURN_IF_ERROR(IdError(ValidateSubsystemId(h.subsystem())));
    *record.mutable_hosting() = h;
    subject = absl::StrCat("subsystem:", FormatSubsystemId(h.subsystem()), " on server:",
                           FormatSecurityServerId(h.server()));
  } else {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                 "the request is neither a server registration nor a hosting request");
  }

  RequestRecord result;
  DARVOZA_RETURN_IF_ERROR(Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    txn.publish = false;
    bool auto_ok = options_.auto_approve;
    // Why auto-approval, though configured, left the request to an administrator.
    std::string withheld;
    if (record.has_registration()) {
      const auto& reg = record.registration();
      if (FindMember(txn.state, reg.server().owner()) == nullptr) {
        return Fault(absl::StatusCode::kFailedPrecondition, faults::kUnknownMember,
                     absl::StrCat("member ", FormatMemberId(reg.server().owner()),
                                  " is not registered; ask the registry administrator to add it"));
      }
      for (const auto& c : reg.csrs()) {
        if (c.kind() == v1::CERT_KIND_SIGNING && FindMember(txn.state, c.member()) == nullptr) {
          return Fault(absl::StatusCode::kFailedPrecondition, faults::kUnknownMember,
                       absl::StrCat("member ", FormatMemberId(c.member()), " is not registered"));
        }
      }
      if (record.renewal()) {
        ServerRecord* server = FindServer(txn.state, reg.server());
        if (server == nullptr || server->revoked()) {
          return Fault(absl::StatusCode::kFailedPrecondition, faults::kNotAuthorized,
                       "a renewal needs a registered, unrevoked security server");
        }
        const crypto::RevocationList revoked = RevocationListOf(txn.state.revoked());
        crypto::CertificateProfile purpose = crypto::CertificateProfile::kTlsAuth;
        bool verified = false;
        for (const auto& c : server->certificates()) {
          if (c.kind() != v1::CERT_KIND_AUTH) continue;
          auto cert = crypto::Certificate::FromDer(c.cert_der());
          if (!cert.ok()) continue;
          if (!crypto::VerifyChain(**cert, {}, {keys_.root_cert}, clock_->Now(), revoked, &purpose).ok()) {
            continue;
          }
          if (crypto::VerifyWithContext((*cert)->public_key(), crypto::SignatureContext::kRegistration,
                                        request.server_registration(), request.renewal_signature())
                  .ok()) {
            verified = true;
            break;
          }
        }
        if (!verified) {
          return Fault(absl::StatusCode::kUnauthenticated, faults::kNotAuthorized,
                       "the renewal signature does not verify with a current, unrevoked auth "
                       "certificate of that security server");
        }
        auto_ok = auto_ok || options_.auto_approve_renewals;
        // The auth key proves only who the server is, not what it may hold: a renewal that
        // widens what the server holds (a signing certificate for another member above all)
        // is the administrator's decision.
        withheld = NotHeldByServer(*server, reg, revoked);
        // The address decides the auth certificate's subjectAltName: a new one is the
        // administrator's to approve, as at registration.
        if (withheld.empty() && reg.address() != server->address()) {
          withheld = absl::StrCat("the renewal changes the server's address from ",
                                  server->address(), " to ", reg.address());
        }
      } else if (FindServer(txn.state, reg.server()) != nullptr) {
        // Whoever knows a server id could otherwise replace its certificates.
        withheld = absl::StrCat("security server ", FormatSecurityServerId(reg.server()),
                                " is already registered: re-registration needs an administrator");
      }
    } else {
      const auto& h = record.hosting();
      ServerRecord* server = FindServer(txn.state, h.server());
      if (server == nullptr || server->revoked()) {
        return Fault(absl::StatusCode::kFailedPrecondition, faults::kInvalidRequest,
                     absl::StrCat("security server ", FormatSecurityServerId(h.server()),
                                  " is not registered (or is revoked)"));
      }
      if (FindMember(txn.state, h.subsystem().member()) == nullptr) {
        return Fault(absl::StatusCode::kFailedPrecondition, faults::kUnknownMember,
                     absl::StrCat("member ", FormatMemberId(h.subsystem().member()),
                                  " is not registered; ask the registry administrator to add it"));
      }
    }
    if (auto_ok && !withheld.empty()) {
      auto_ok = false;
      record.set_held_for_review(withheld);
    }
    if (!auto_ok && PendingCountLocked() >= options_.max_pending_requests) {
      return Fault(absl::StatusCode::kResourceExhausted, faults::kTooManyPendingRequests,
                   absl::StrCat(options_.max_pending_requests,
                                " requests already wait for an administrator; try again after "
                                "they are decided"));
    }
    txn.history.push_back({"registration", record.has_registration()
                                               ? (record.renewal() ? "request.renewal" : "request.server")
                                               : "request.hosting",
                           subject, absl::StrCat("request ", record.id())});
    if (auto_ok) {
      record.set_decided_by(options_.auto_approve ? "auto-approve" : "auto-approve-renewal");
      DARVOZA_RETURN_IF_ERROR(ApproveInto(txn, record));
      txn.publish = true;
    }
    txn.requests.push_back(record);
    result = record;
    return absl::OkStatus();
  }));
  return result;
}

size_t Registry::PendingCountLocked() const {
  size_t pending = 0;
  for (const auto& [id, r] : requests_) pending += r.state() == v1::PENDING ? 1 : 0;
  return pending;
}

absl::StatusOr<v1::RequestRecord> Registry::GetRequest(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = requests_.find(id);
  if (it == requests_.end()) return absl::NotFoundError(absl::StrCat("no request with id '", id, "'"));
  return it->second;
}

std::vector<v1::RequestRecord> Registry::ListRequests(bool include_decided) const {
  absl::MutexLock lock(&mu_);
  std::vector<RequestRecord> out;
  for (const auto& [id, r] : requests_) {
    if (include_decided || r.state() == v1::PENDING) out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const RequestRecord& a, const RequestRecord& b) {
    return a.submitted_at_unix_nanos() < b.submitted_at_unix_nanos();
  });
  return out;
}

absl::Status Registry::ApproveInto(Txn& txn, RequestRecord& record) const {
  const absl::Time now = clock_->Now();
  record.set_state(v1::APPROVED);
  record.set_decided_at_unix_nanos(absl::ToUnixNanos(now));
  if (record.has_hosting()) {
    const auto& h = record.hosting();
    ServerRecord* server = FindServer(txn.state, h.server());
    if (server == nullptr || server->revoked()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "security server ", FormatSecurityServerId(h.server()), " is not registered (or is revoked)"));
    }
    MemberEntry* m = FindMember(txn.state, h.subsystem().member());
    if (m == nullptr) {
      return Fault(absl::StatusCode::kFailedPrecondition, faults::kUnknownMember,
                   absl::StrCat("member ", FormatMemberId(h.subsystem().member()), " no longer exists"));
    }
    if (!HasSubsystem(*m, h.subsystem())) *m->add_subsystems()->mutable_id() = h.subsystem();
    bool hosted = false;
    for (const auto& s : server->hosted_subsystems()) hosted = hosted || SameSubsystem(s, h.subsystem());
    if (!hosted) *server->add_hosted_subsystems() = h.subsystem();
    txn.history.push_back({record.decided_by(), "request.approve",
                           absl::StrCat("subsystem:", FormatSubsystemId(h.subsystem())),
                           absl::StrCat("request ", record.id(), " hosted by server:",
                                        FormatSecurityServerId(h.server()))});
    return absl::OkStatus();
  }
  const auto& reg = record.registration();
  if (FindMember(txn.state, reg.server().owner()) == nullptr) {
    return Fault(absl::StatusCode::kFailedPrecondition, faults::kUnknownMember,
                 absl::StrCat("member ", FormatMemberId(reg.server().owner()), " no longer exists"));
  }
  ServerRecord* server = FindServer(txn.state, reg.server());
  if (server == nullptr) {
    server = txn.state.add_servers();
    *server->mutable_id() = reg.server();
    server->set_registered_at_unix_nanos(absl::ToUnixNanos(now));
  }
  server->set_revoked(false);
  server->set_address(reg.address());
  std::string server_text = FormatSecurityServerId(reg.server());
  std::string issued;
  for (const auto& c : reg.csrs()) {
    DARVOZA_ASSIGN_OR_RETURN(auto csr, crypto::CertificateRequest::Parse(c.csr()));
    crypto::IssueOptions opts;
    opts.serial = txn.state.next_cert_serial();
    txn.state.set_next_cert_serial(opts.serial + 1);
    opts.not_before = now - absl::Minutes(5);
    opts.not_after = now + options_.cert_validity;
    std::string cn;
    if (c.kind() == v1::CERT_KIND_SIGNING) {
      if (FindMember(txn.state, c.member()) == nullptr) {
        return Fault(absl::StatusCode::kFailedPrecondition, faults::kUnknownMember,
                     absl::StrCat("member ", FormatMemberId(c.member()), " no longer exists"));
      }
      cn = absl::StrCat("member:", FormatMemberId(c.member()));
      opts.profile = crypto::CertificateProfile::kSigning;
    } else {
      cn = absl::StrCat("server:", server_text);
      opts.profile = c.kind() == v1::CERT_KIND_AUTH ? crypto::CertificateProfile::kTlsAuth
                                                    : crypto::CertificateProfile::kSigning;
      // The approved address's host lets stock TLS clients of the client port verify the
      // server (docs/design.md §4). An address without a usable host (0.0.0.0) gets none.
      if (c.kind() == v1::CERT_KIND_AUTH) {
        if (auto host = crypto::SubjectAltHostOf(reg.address()); host.ok()) {
          opts.subject_alt_hosts.push_back(*host);
        }
      }
    }
    DARVOZA_ASSIGN_OR_RETURN(auto cert, crypto::IssueCertificate(*keys_.root_key, keys_.root_cert.get(),
                                                                 csr->public_key(), cn, opts));
    v1::IssuedCertificate* out = record.add_certificates();
    out->set_kind(c.kind());
    if (c.kind() == v1::CERT_KIND_SIGNING) *out->mutable_member() = c.member();
    out->set_cert_der(cert->der());
    out->set_not_after_unix_nanos(absl::ToUnixNanos(cert->not_after()));
    v1::ServerCertificate* kept = server->add_certificates();
    kept->set_kind(c.kind());
    if (c.kind() == v1::CERT_KIND_SIGNING) *kept->mutable_member() = c.member();
    kept->set_cert_der(cert->der());
    absl::StrAppend(&issued, issued.empty() ? "" : ", ", KindName(c.kind()), " serial ", cert->serial_hex());
  }
  txn.history.push_back({record.decided_by(), "request.approve", absl::StrCat("server:", server_text),
                         absl::StrCat("request ", record.id(), "; issued ", issued)});
  return absl::OkStatus();
}

absl::StatusOr<v1::RequestRecord> Registry::Decide(const std::string& request_id, bool approve,
                                                   const std::string& reason,
                                                   const std::string& actor) {
  RequestRecord result;
  DARVOZA_RETURN_IF_ERROR(Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    auto it = requests_.find(request_id);
    if (it == requests_.end()) {
      return absl::NotFoundError(absl::StrCat("no request with id '", request_id,
                                              "' (see darvoza registry request list)"));
    }
    RequestRecord record = it->second;
    if (record.state() != v1::PENDING) {
      return absl::FailedPreconditionError(absl::StrCat(
          "request ", request_id, " is already ", v1::RequestState_Name(record.state())));
    }
    record.set_decided_by(actor);
    if (approve) {
      DARVOZA_RETURN_IF_ERROR(ApproveInto(txn, record));
    } else {
      record.set_state(v1::REJECTED);
      record.set_reason(reason);
      record.set_decided_at_unix_nanos(absl::ToUnixNanos(clock_->Now()));
      txn.publish = false;
      txn.history.push_back({actor, "request.reject", absl::StrCat("request ", request_id), reason});
    }
    txn.requests.push_back(record);
    result = record;
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<v1::RequestRecord> Registry::Approve(const std::string& id, const std::string& actor) {
  return Decide(id, true, "", actor);
}

absl::StatusOr<v1::RequestRecord> Registry::Reject(const std::string& id, const std::string& reason,
                                                   const std::string& actor) {
  return Decide(id, false, reason, actor);
}

// ------------------------------------------------------------------------------------------
// Servers

std::vector<v1::ServerRecord> Registry::ListServers() const {
  absl::MutexLock lock(&mu_);
  return {state_.servers().begin(), state_.servers().end()};
}

absl::Status Registry::RevokeServer(const v1::SecurityServerId& id, const std::string& actor) {
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateSecurityServerId(id)));
  return Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ServerRecord* server = FindServer(txn.state, id);
    if (server == nullptr) {
      return absl::NotFoundError(absl::StrCat("security server ", FormatSecurityServerId(id),
                                              " is not registered"));
    }
    if (server->revoked()) {
      return absl::FailedPreconditionError(absl::StrCat("security server ", FormatSecurityServerId(id),
                                                        " is already revoked"));
    }
    server->set_revoked(true);
    const absl::Time now = clock_->Now();
    std::string serials;
    const crypto::RevocationList already = RevocationListOf(txn.state.revoked());
    for (const auto& c : server->certificates()) {
      auto cert = crypto::Certificate::FromDer(c.cert_der());
      if (!cert.ok() || already.IsRevoked(**cert)) continue;
      v1::RevokedCertificate* r = txn.state.add_revoked();
      r->set_issuer((*cert)->issuer());
      r->set_serial_hex((*cert)->serial_hex());
      r->set_revoked_at_unix_nanos(ToUnixNanosField(now));
      absl::StrAppend(&serials, serials.empty() ? "" : ",", (*cert)->serial_hex());
    }
    txn.history.push_back({actor, "server.revoke", absl::StrCat("server:", FormatSecurityServerId(id)),
                           absl::StrCat("revoked serials ", serials)});
    return absl::OkStatus();
  });
}

// ------------------------------------------------------------------------------------------
// Keys and history

absl::StatusOr<v1::ConfigurationAnchor> Registry::RotateConfKey(const std::string& actor) {
  v1::ConfigurationAnchor result;
  DARVOZA_RETURN_IF_ERROR(Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    uint32_t index = txn.state.conf_key_index() + 1;
    uint64_t serial = txn.state.next_cert_serial();
    txn.state.set_next_cert_serial(serial + 1);
    DARVOZA_RETURN_IF_ERROR(CreateConfSigningKey(options_.data_dir, instance_, index, serial,
                                                 *keys_.root_key, *keys_.root_cert, clock_->Now()));
    std::string name = ConfSigningName(index);
    DARVOZA_ASSIGN_OR_RETURN(txn.new_conf_key, crypto::PrivateKey::LoadFromFile(KeyPath(options_.data_dir, name)));
    DARVOZA_ASSIGN_OR_RETURN(txn.new_conf_cert, crypto::Certificate::LoadFromFile(CertPath(options_.data_dir, name)));
    txn.state.set_conf_key_index(index);
    auto anchor = std::make_unique<v1::ConfigurationAnchor>(anchor_);
    anchor->clear_conf_signing_cert_der();
    anchor->add_conf_signing_cert_der(keys_.conf_cert->der());
    anchor->add_conf_signing_cert_der(txn.new_conf_cert->der());
    anchor->set_generated_at_unix_nanos(absl::ToUnixNanos(clock_->Now()));
    DARVOZA_RETURN_IF_ERROR(WriteAnchorFile(AnchorPath(options_.data_dir), *anchor));
    result = *anchor;
    txn.new_anchor = std::move(anchor);
    txn.history.push_back({actor, "key.rotate-conf", name,
                           absl::StrCat("certificate serial ", txn.new_conf_cert->serial_hex())});
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<v1::ConfigurationAnchor> Registry::SetAnchorAddresses(
    const std::string& actor, const std::vector<std::string>& addresses) {
  if (addresses.empty() || addresses.size() > 16) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                 "give between 1 and 16 registry addresses");
  }
  for (const auto& a : addresses) {
    if (absl::Status valid = CheckAnchorAddress(a); !valid.ok()) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest, valid.message());
    }
  }
  v1::ConfigurationAnchor result;
  DARVOZA_RETURN_IF_ERROR(Change([&](Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    auto anchor = std::make_unique<v1::ConfigurationAnchor>(anchor_);
    anchor->clear_registry_addresses();
    for (const auto& a : addresses) anchor->add_registry_addresses(a);
    anchor->set_generated_at_unix_nanos(absl::ToUnixNanos(clock_->Now()));
    DARVOZA_RETURN_IF_ERROR(WriteAnchorFile(AnchorPath(options_.data_dir), *anchor));
    result = *anchor;
    txn.new_anchor = std::move(anchor);
    txn.history.push_back({actor, "anchor.addresses", instance_, absl::StrJoin(addresses, ",")});
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<v1::HistoryList> Registry::History(uint64_t from_seq, uint32_t limit) const {
  if (limit == 0 || limit > 10000) limit = limit == 0 ? 1000 : 10000;
  if (from_seq == 0) from_seq = 1;
  DARVOZA_ASSIGN_OR_RETURN(auto rows, store_->Scan("hist/", HistoryKey(from_seq), limit));
  v1::HistoryList list;
  list.set_chain_ok(true);
  std::string prev(crypto::kSha256Size, '\0');
  if (from_seq > 1) {
    DARVOZA_ASSIGN_OR_RETURN(auto before, store_->Get(HistoryKey(from_seq - 1)));
    v1::HistoryEntry e;
    if (!before.has_value() || !e.ParseFromString(*before)) {
      list.set_chain_ok(false);
    } else {
      prev = e.hash();
    }
  }
  uint64_t expect = from_seq;
  for (auto& [key, value] : rows) {
    v1::HistoryEntry* e = list.add_entries();
    if (!e->ParseFromString(value) || e->seq() != expect || e->prev_hash() != prev ||
        HistoryHash(*e) != e->hash()) {
      list.set_chain_ok(false);
    }
    prev = e->hash();
    ++expect;
  }
  return list;
}

// ------------------------------------------------------------------------------------------
// Witness

absl::StatusOr<v1::WitnessHead> Registry::WitnessHeadOf(const v1::SecurityServerId& server) const {
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateSecurityServerId(server)));
  absl::MutexLock lock(&witness_mu_);
  auto it = witness_heads_.find(FormatSecurityServerId(server));
  if (it == witness_heads_.end()) {
    return absl::NotFoundError(absl::StrCat("no witnessed head for ", FormatSecurityServerId(server)));
  }
  return it->second;
}

absl::StatusOr<v1::SignedWitnessReceipt> Registry::Witness(const v1::SignedSeal& signed_seal) {
  v1::Seal seal;
  if (!seal.ParseFromString(signed_seal.seal())) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                 "seal bytes are not a darvoza.v1.Seal");
  }
  DARVOZA_RETURN_IF_ERROR(IdError(ValidateSecurityServerId(seal.server())));
  if (absl::Status shape = ValidateSeal(seal); !shape.ok()) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest, shape.message());
  }
  const std::string server_text = FormatSecurityServerId(seal.server());

  // What the seal is checked against, copied under mu_ so that the checks and the ledger's
  // synced write run without it.
  std::vector<std::shared_ptr<const crypto::Certificate>> seal_certs;
  crypto::RevocationList revoked;
  std::shared_ptr<const crypto::Certificate> root;
  {
    absl::MutexLock lock(&mu_);
    const ServerRecord* server = FindServer(state_, seal.server());
    if (server == nullptr) {
      return Fault(absl::StatusCode::kPermissionDenied, faults::kNotAuthorized,
                   absl::StrCat("security server ", server_text, " is not registered"));
    }
    if (server->revoked()) {
      return Fault(absl::StatusCode::kPermissionDenied, faults::kNotAuthorized,
                   absl::StrCat("security server ", server_text,
                                " is revoked: the witness accepts no seal by its keys"));
    }
    for (const auto& c : server->certificates()) {
      if (c.kind() != v1::CERT_KIND_SEAL) continue;
      if (!signed_seal.signer_cert_der().empty() && c.cert_der() != signed_seal.signer_cert_der()) {
        continue;
      }
      auto cert = crypto::Certificate::FromDer(c.cert_der());
      if (cert.ok()) seal_certs.push_back(*std::move(cert));
    }
    revoked = RevocationListOf(state_.revoked());
    root = keys_.root_cert;
  }

  // The revocation is checked at the time the head is written (below) or earlier, so a
  // receipt's witnessed_at is never before the moment its certificate was seen unrevoked.
  const absl::Time checked_at = clock_->Now();
  crypto::CertificateProfile purpose = crypto::CertificateProfile::kSigning;
  absl::Status verdict = Fault(absl::StatusCode::kUnauthenticated, faults::kInvalidSignature,
                               absl::StrCat("the seal's signer certificate is not a seal "
                                            "certificate issued to ", server_text));
  for (const auto& cert : seal_certs) {
    if (revoked.IsRevoked(*cert)) {
      verdict = Fault(absl::StatusCode::kPermissionDenied, faults::kNotAuthorized,
                      absl::StrCat("seal certificate serial ", cert->serial_hex(), " of ",
                                   server_text, " is revoked: the witness accepts no seal by it"));
      continue;
    }
    absl::Status chain = crypto::VerifyChain(*cert, {}, {root}, checked_at, revoked, &purpose);
    if (!chain.ok()) {
      verdict = Fault(absl::StatusCode::kUnauthenticated, faults::kInvalidSignature,
                      absl::StrCat("seal certificate of ", server_text, " is not valid: ", chain.message()));
      continue;
    }
    if (crypto::VerifyWithContext(cert->public_key(), crypto::SignatureContext::kSeal,
                                  signed_seal.seal(), signed_seal.signature())
            .ok()) {
      verdict = absl::OkStatus();
      break;
    }
    verdict = Fault(absl::StatusCode::kUnauthenticated, faults::kInvalidSignature,
                    "the seal signature does not verify with the security server's seal certificate");
  }
  DARVOZA_RETURN_IF_ERROR(verdict);

  const std::string seal_sha = SealDigest(signed_seal);
  v1::WitnessHead held;
  {
    absl::MutexLock lock(&witness_mu_);
    auto it = witness_heads_.find(server_text);
    if (it != witness_heads_.end()) held = it->second;
    auto step = CheckWitnessHead(seal, seal_sha,
                                 WitnessedHead{held.seq(), held.chain_head(), held.seal_sha256()});
    if (!step.ok()) {
      return Fault(absl::StatusCode::kFailedPrecondition, faults::kWitnessHeadMismatch,
                   absl::StrCat("seal of ", server_text, " names previous witnessed head (seq ",
                                seal.previous_witnessed_seq(), ", ",
                                ShortHex(seal.previous_witnessed_head()), ") but the registry holds (seq ",
                                held.seq(), ", ", ShortHex(held.chain_head()), "): ",
                                step.status().message()));
    }
    if (*step == WitnessStep::kExtends) {
      held.Clear();
      *held.mutable_server() = seal.server();
      held.set_seq(seal.last_seq());
      held.set_chain_head(seal.chain_head());
      held.set_seal_sha256(seal_sha);
      // Read under witness_mu_: the times of one server's heads never go backwards.
      held.set_witnessed_at_unix_nanos(absl::ToUnixNanos(clock_->Now()));
      StoreBatch batch;
      batch.Put(absl::StrCat("wit/", server_text), held.SerializeAsString());
      DARVOZA_RETURN_IF_ERROR(store_->Write(batch));
      witness_heads_[server_text] = held;
    }
    ++witness_receipts_;
  }
  // A repeat carries the original time: the receipt is the same statement again.
  return SignWitnessReceipt(
      MakeWitnessReceipt(signed_seal, seal, absl::FromUnixNanos(held.witnessed_at_unix_nanos())),
      *witness_signer_, witness_cert_der_);
}

absl::StatusOr<v1::SignedWitnessReceipt> Registry::LatestWitnessReceipt(
    const v1::SecurityServerId& server) const {
  DARVOZA_ASSIGN_OR_RETURN(v1::WitnessHead held, WitnessHeadOf(server));
  v1::WitnessReceipt receipt;
  *receipt.mutable_server() = held.server();
  receipt.set_seq(held.seq());
  receipt.set_chain_head(held.chain_head());
  receipt.set_seal_sha256(held.seal_sha256());
  receipt.set_witnessed_at_unix_nanos(held.witnessed_at_unix_nanos());
  return SignWitnessReceipt(receipt, *witness_signer_, witness_cert_der_);
}

Registry::Stats Registry::GetStats() const {
  Stats s;
  {
    absl::MutexLock lock(&witness_mu_);
    s.witness_receipts = witness_receipts_;
  }
  absl::MutexLock lock(&mu_);
  s.conf_serial = state_.conf_serial();
  s.conf_expires_at = conf_expires_at_;
  s.members = state_.members_size();
  s.servers = state_.servers_size();
  s.pending_requests = PendingCountLocked();
  s.history_size = history_size_;
  s.root_ca_not_after = keys_.root_cert->not_after();
  s.conf_cert_not_after = keys_.conf_cert->not_after();
  s.witness_cert_not_after = keys_.witness_cert->not_after();
  return s;
}

}  // namespace darvoza::registry
