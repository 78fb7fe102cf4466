#include "registry/services.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/faults.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace darvoza::registry {
namespace {

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context, const absl::Status& status) {
  if (!status.ok()) {
    // A witness refusal is the event the witness exists for (docs/design.md §7).
    const std::string fault = FaultCode(status);
    log::Event(fault == faults::kWitnessHeadMismatch ? log::Level::kWarn : log::Level::kInfo,
               "call.refused", "",
               {{"fault", fault}, {"code", absl::StatusCodeToString(status.code())},
                {"peer", context->peer()}, {"error", status.message()}});
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status, context));
  return reactor;
}

constexpr char kAdminActor[] = "admin";

// One Watch stream. Lives until OnDone; never blocks a gRPC thread.
class WatchReactor final : public grpc::ServerWriteReactor<v1::SignedGlobalConf>,
                           public ConfPublisher::Subscriber {
 public:
  WatchReactor(ConfPublisher* publisher, std::shared_ptr<const v1::SignedGlobalConf> current,
               uint64_t known_serial)
      : publisher_(publisher), queued_serial_(known_serial) {
    if (!publisher_->Subscribe(this)) {
      absl::MutexLock lock(&mu_);
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the registry is shutting down"));
      subscribed_ = false;
      return;
    }
    if (current) OnConf(current, SerialOf(*current));
  }

  void OnConf(std::shared_ptr<const v1::SignedGlobalConf> conf, uint64_t serial) override {
    absl::MutexLock lock(&mu_);
    if (finished_ || closing_ || serial <= queued_serial_) return;
    queued_serial_ = serial;
    if (writing_) {
      pending_ = std::move(conf);
      return;
    }
    writing_ = true;
    in_flight_ = std::move(conf);
    StartWrite(in_flight_.get());
  }

  void OnClose() override {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    if (!writing_) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the registry is shutting down"));
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    in_flight_.reset();
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "watcher went away"));
      return;
    }
    if (closing_) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the registry is shutting down"));
      return;
    }
    if (pending_) {
      writing_ = true;
      in_flight_ = std::move(pending_);
      StartWrite(in_flight_.get());
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    if (!writing_) FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    if (subscribed_) publisher_->Unsubscribe(this);
    delete this;
  }

 private:
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    pending_.reset();
    Finish(status);
  }

  ConfPublisher* const publisher_;
  bool subscribed_ = true;  // constant after construction
  absl::Mutex mu_;
  uint64_t queued_serial_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<const v1::SignedGlobalConf> in_flight_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const v1::SignedGlobalConf> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

// ------------------------------------------------------------------------------------------

grpc::ServerUnaryReactor* RegistrationServiceImpl::Submit(grpc::CallbackServerContext* context,
                                                          const v1::SubmitRequest* request,
                                                          v1::RequestRecord* response) {
  auto result = registry_->Submit(*request);
  if (result.ok()) *response = *std::move(result);
  return Reply(context, result.status());
}

grpc::ServerUnaryReactor* RegistrationServiceImpl::GetStatus(grpc::CallbackServerContext* context,
                                                             const v1::RequestStatusQuery* request,
                                                             v1::RequestRecord* response) {
  auto result = registry_->GetRequest(request->id());
  if (!result.ok() || result->state() != v1::PENDING || request->wait_seconds() == 0) {
    if (result.ok()) *response = *std::move(result);
    return Reply(context, result.status());
  }
  const absl::Duration wait = absl::Seconds(std::min<uint32_t>(request->wait_seconds(), 300));
  grpc::ServerUnaryReactor* reactor =
      waiters_->Wait(request->id(), *result, clock_->MonotonicNow() + wait, response);
  // A decision made between the read above and Wait would otherwise be missed.
  auto now = registry_->GetRequest(request->id());
  if (now.ok() && now->state() != v1::PENDING) waiters_->Notify(*now);
  return reactor;
}

grpc::ServerUnaryReactor* GlobalConfServiceImpl::Get(grpc::CallbackServerContext* context,
                                                     const v1::GetConfRequest* /*request*/,
                                                     v1::SignedGlobalConf* response) {
  *response = *registry_->CurrentConf();
  return Reply(context, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::SignedGlobalConf>* GlobalConfServiceImpl::Watch(
    grpc::CallbackServerContext* /*context*/, const v1::WatchConfRequest* request) {
  return new WatchReactor(publisher_, registry_->CurrentConf(), request->known_serial());
}

grpc::ServerUnaryReactor* WitnessServiceImpl::Witness(grpc::CallbackServerContext* context,
                                                      const v1::SignedSeal* request,
                                                      v1::SignedWitnessReceipt* response) {
  auto result = registry_->Witness(*request);
  if (result.ok()) *response = *std::move(result);
  return Reply(context, result.status());
}

grpc::ServerUnaryReactor* WitnessServiceImpl::GetHead(grpc::CallbackServerContext* context,
                                                      const v1::SecurityServerId* request,
                                                      v1::SignedWitnessReceipt* response) {
  auto result = registry_->LatestWitnessReceipt(*request);
  if (result.ok()) *response = *std::move(result);
  return Reply(context, result.status());
}

// ------------------------------------------------------------------------------------------

absl::Status AdminServiceImpl::CheckAdmin(grpc::CallbackServerContext* context) const {
  return CheckAdminToken(*context, admin_token_);
}

#define DARVOZA_ADMIN_GUARD(context)             \
  do {                                           \
    absl::Status _admin = CheckAdmin(context);   \
    if (!_admin.ok()) return Reply(context, _admin); \
  } while (0)

grpc::ServerUnaryReactor* AdminServiceImpl::AddMember(grpc::CallbackServerContext* c,
                                                      const v1::AdminMemberRequest* r, v1::AdminEmpty*) {
  DARVOZA_ADMIN_GUARD(c);
  return Reply(c, registry_->AddMember(r->id(), r->name(), kAdminActor));
}

grpc::ServerUnaryReactor* AdminServiceImpl::RemoveMember(grpc::CallbackServerContext* c,
                                                         const v1::AdminMemberRequest* r, v1::AdminEmpty*) {
  DARVOZA_ADMIN_GUARD(c);
  return Reply(c, registry_->RemoveMember(r->id(), kAdminActor));
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListMembers(grpc::CallbackServerContext* c,
                                                        const v1::AdminEmpty*, v1::MemberList* out) {
  DARVOZA_ADMIN_GUARD(c);
  for (auto& m : registry_->ListMembers()) *out->add_members() = std::move(m);
  return Reply(c, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminServiceImpl::AddSubsystem(grpc::CallbackServerContext* c,
                                                         const v1::AdminSubsystemRequest* r, v1::AdminEmpty*) {
  DARVOZA_ADMIN_GUARD(c);
  return Reply(c, registry_->AddSubsystem(r->id(), kAdminActor));
}

grpc::ServerUnaryReactor* AdminServiceImpl::RemoveSubsystem(grpc::CallbackServerContext* c,
                                                            const v1::AdminSubsystemRequest* r, v1::AdminEmpty*) {
  DARVOZA_ADMIN_GUARD(c);
  return Reply(c, registry_->RemoveSubsystem(r->id(), kAdminActor));
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListRequests(grpc::CallbackServerContext* c,
                                                         const v1::AdminListRequestsRequest* r,
                                                         v1::RequestList* out) {
  DARVOZA_ADMIN_GUARD(c);
  for (auto& q : registry_->ListRequests(r->all())) *out->add_requests() = std::move(q);
  return Reply(c, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminServiceImpl::ApproveRequest(grpc::CallbackServerContext* c,
                                                           const v1::AdminDecision* r, v1::RequestRecord* out) {
  DARVOZA_ADMIN_GUARD(c);
  auto result = registry_->Approve(r->request_id(), kAdminActor);
  if (result.ok()) *out = *std::move(result);
  return Reply(c, result.status());
}

grpc::ServerUnaryReactor* AdminServiceImpl::RejectRequest(grpc::CallbackServerContext* c,
                                                          const v1::AdminDecision* r, v1::RequestRecord* out) {
  DARVOZA_ADMIN_GUARD(c);
  auto result = registry_->Reject(r->request_id(), r->reason(), kAdminActor);
  if (result.ok()) *out = *std::move(result);
  return Reply(c, result.status());
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListServers(grpc::CallbackServerContext* c,
                                                        const v1::AdminEmpty*, v1::ServerList* out) {
  DARVOZA_ADMIN_GUARD(c);
  for (auto& s : registry_->ListServers()) *out->add_servers() = std::move(s);
  return Reply(c, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeServer(grpc::CallbackServerContext* c,
                                                         const v1::AdminServerRequest* r, v1::AdminEmpty*) {
  DARVOZA_ADMIN_GUARD(c);
  return Reply(c, registry_->RevokeServer(r->id(), kAdminActor));
}

grpc::ServerUnaryReactor* AdminServiceImpl::AddGroup(grpc::CallbackServerContext* c,
                                                     const v1::AdminGroupRequest* r, v1::AdminEmpty*) {
  DARVOZA_ADMIN_GUARD(c);
  return Reply(c, registry_->AddGroup(r->id(), r->description(), kAdminActor));
}

grpc::ServerUnaryReactor* AdminServiceImpl::RemoveGroup(grpc::CallbackServerContext* c,
                                                        const v1::AdminGroupRequest* r, v1::AdminEmpty*) {
  DARVOZA_ADMIN_GUARD(c);
  return Reply(c, registry_->RemoveGroup(r->id(), kAdminActor));
}

grpc::ServerUnaryReactor* AdminServiceImpl::AddGroupMember(grpc::CallbackServerContext* c,
                                                           const v1::AdminGroupRequest* r, v1::AdminEmpty*) {
  DARVOZA_ADMIN_GUARD(c);
  return Reply(c, registry_->AddGroupMember(r->id(), r->member(), kAdminActor));
}

grpc::ServerUnaryReactor* AdminServiceImpl::RemoveGroupMember(grpc::CallbackServerContext* c,
                                                              const v1::AdminGroupRequest* r, v1::AdminEmpty*) {
  DARVOZA_ADMIN_GUARD(c);
  return Reply(c, registry_->RemoveGroupMember(r->id(), r->member(), kAdminActor));
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListGroups(grpc::CallbackServerContext* c,
                                                       const v1::AdminEmpty*, v1::GroupList* out) {
  DARVOZA_ADMIN_GUARD(c);
  for (auto& g : registry_->ListGroups()) *out->add_groups() = std::move(g);
  return Reply(c, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetConf(grpc::CallbackServerContext* c,
                                                    const v1::AdminEmpty*, v1::SignedGlobalConf* out) {
  DARVOZA_ADMIN_GUARD(c);
  *out = *registry_->CurrentConf();
  return Reply(c, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminServiceImpl::RotateConfKey(grpc::CallbackServerContext* c,
                                                          const v1::AdminEmpty*,
                                                          v1::RotateConfKeyResponse* out) {
  DARVOZA_ADMIN_GUARD(c);
  auto anchor = registry_->RotateConfKey(kAdminActor);
  if (anchor.ok()) out->set_anchor(anchor->SerializeAsString());
  return Reply(c, anchor.status());
}

grpc::ServerUnaryReactor* AdminServiceImpl::History(grpc::CallbackServerContext* c,
                                                    const v1::HistoryRequest* r, v1::HistoryList* out) {
  DARVOZA_ADMIN_GUARD(c);
  auto list = registry_->History(r->from_seq(), r->limit());
  if (list.ok()) *out = *std::move(list);
  return Reply(c, list.status());
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetAnchorAddresses(
    grpc::CallbackServerContext* c, const v1::AdminSetAnchorAddressesRequest* r,
    v1::RotateConfKeyResponse* out) {
  DARVOZA_ADMIN_GUARD(c);
  auto anchor = registry_->SetAnchorAddresses(
      kAdminActor, std::vector<std::string>(r->addresses().begin(), r->addresses().end()));
  if (anchor.ok()) out->set_anchor(anchor->SerializeAsString());
  return Reply(c, anchor.status());
}

#undef DARVOZA_ADMIN_GUARD

// ------------------------------------------------------------------------------------------

namespace {

MetricHelp RegistryMetricsHelp() {
  return {
      {"darvoza_registry_conf_serial", "Serial of the published global configuration."},
      {"darvoza_registry_conf_expiry_seconds",
       "Seconds until the published global configuration expires (it is re-signed before)."},
      {"darvoza_registry_cert_expiry_seconds",
       "Seconds until each of the registry's certificates expires, by certificate."},
      {"darvoza_registry_members", "Registered members."},
      {"darvoza_registry_servers", "Registered security servers."},
      {"darvoza_registry_pending_requests", "Requests waiting for an administrator."},
      {"darvoza_registry_witness_receipts_total", "Audit seal receipts the witness signed."},
      {"darvoza_registry_history_entries", "Entries of the administrative history."},
      {"darvoza_registry_conf_watchers", "Security servers watching for configurations."},
  };
}

}  // namespace

OpsServiceImpl::OpsServiceImpl(Registry* registry, ConfPublisher* publisher, Clock* clock)
    : registry_(registry), publisher_(publisher), clock_(clock), metrics_(RegistryMetricsHelp()) {
  metrics_.AddCollector([this](MetricsRegistry& m) {
    Registry::Stats s = registry_->GetStats();
    absl::Time now = clock_->Now();
    auto seconds = [now](absl::Time t) {
      return static_cast<double>(absl::ToInt64Seconds(t - now));
    };
    m.SetGauge("darvoza_registry_conf_serial", static_cast<double>(s.conf_serial));
    m.SetGauge("darvoza_registry_conf_expiry_seconds", seconds(s.conf_expires_at));
    m.SetGauge("darvoza_registry_cert_expiry_seconds{cert=\"root-ca\"}",
               seconds(s.root_ca_not_after));
    m.SetGauge("darvoza_registry_cert_expiry_seconds{cert=\"conf-signing\"}",
               seconds(s.conf_cert_not_after));
    m.SetGauge("darvoza_registry_cert_expiry_seconds{cert=\"witness\"}",
               seconds(s.witness_cert_not_after));
    m.SetGauge("darvoza_registry_members", static_cast<double>(s.members));
    m.SetGauge("darvoza_registry_servers", static_cast<double>(s.servers));
    m.SetGauge("darvoza_registry_pending_requests", static_cast<double>(s.pending_requests));
    m.FollowCounter("darvoza_registry_witness_receipts_total",
                    static_cast<double>(s.witness_receipts));
    m.SetGauge("darvoza_registry_history_entries", static_cast<double>(s.history_size));
    m.SetGauge("darvoza_registry_conf_watchers", static_cast<double>(publisher_->subscribers()));
  });
}

grpc::ServerUnaryReactor* OpsServiceImpl::Metrics(grpc::CallbackServerContext* context,
                                                  const v1::MetricsRequest*, v1::MetricsText* out) {
  out->set_text(metrics_.RenderText());
  return Reply(context, absl::OkStatus());
}

}  // namespace darvoza::registry
