// The registry's gRPC services: thin final classes that turn protos into Registry calls and
// map absl::Status (with its fault) to grpc::Status + the x-road-error trailer.
//
// All use the callback API, so no thread is held per call or per Watch stream.
#ifndef DARVOZA_REGISTRY_SERVICES_H_
#define DARVOZA_REGISTRY_SERVICES_H_

#include <string>

#include "common/admin_token.h"
#include "common/metrics.h"
#include "proto/registry.grpc.pb.h"
#include "registry/conf_publisher.h"
#include "registry/decision_waiters.h"
#include "registry/registry.h"

namespace darvoza::registry {

using ::darvoza::kAdminTokenMetadata;  // common/admin_token.h

class RegistrationServiceImpl final : public v1::Registration::CallbackService {
 public:
  // `waiters` and `clock` are not owned and outlive the service.
  RegistrationServiceImpl(Registry* registry, DecisionWaiters* waiters, Clock* clock)
      : registry_(registry), waiters_(waiters), clock_(clock) {}
  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context,
                                   const v1::SubmitRequest* request,
                                   v1::RequestRecord* response) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::RequestStatusQuery* request,
                                      v1::RequestRecord* response) override;

 private:
  Registry* const registry_;
  DecisionWaiters* const waiters_;
  Clock* const clock_;
};

class GlobalConfServiceImpl final : public v1::GlobalConfService::CallbackService {
 public:
  GlobalConfServiceImpl(Registry* registry, ConfPublisher* publisher)
      : registry_(registry), publisher_(publisher) {}
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const v1::GetConfRequest* request,
                                v1::SignedGlobalConf* response) override;
  grpc::ServerWriteReactor<v1::SignedGlobalConf>* Watch(
      grpc::CallbackServerContext* context, const v1::WatchConfRequest* request) override;

 private:
  Registry* const registry_;
  ConfPublisher* const publisher_;
};

class WitnessServiceImpl final : public v1::Witness::CallbackService {
 public:
  explicit WitnessServiceImpl(Registry* registry) : registry_(registry) {}
  grpc::ServerUnaryReactor* Witness(grpc::CallbackServerContext* context,
                                    const v1::SignedSeal* request,
                                    v1::SignedWitnessReceipt* response) override;
  grpc::ServerUnaryReactor* GetHead(grpc::CallbackServerContext* context,
                                    const v1::SecurityServerId* request,
                                    v1::SignedWitnessReceipt* response) override;

 private:
  Registry* const registry_;
};

// Every method first checks the admin token (UNAUTHENTICATED when absent, PERMISSION_DENIED
// when wrong; fault Client.NotAuthorized) and changes nothing when it fails.
class AdminServiceImpl final : public v1::RegistryAdmin::CallbackService {
 public:
  AdminServiceImpl(Registry* registry, std::string admin_token)
      : registry_(registry), admin_token_(std::move(admin_token)) {}

  grpc::ServerUnaryReactor* AddMember(grpc::CallbackServerContext*, const v1::AdminMemberRequest*, v1::AdminEmpty*) override;
  grpc::ServerUnaryReactor* RemoveMember(grpc::CallbackServerContext*, const v1::AdminMemberRequest*, v1::AdminEmpty*) override;
  grpc::ServerUnaryReactor* ListMembers(grpc::CallbackServerContext*, const v1::AdminEmpty*, v1::MemberList*) override;
  grpc::ServerUnaryReactor* AddSubsystem(grpc::CallbackServerContext*, const v1::AdminSubsystemRequest*, v1::AdminEmpty*) override;
  grpc::ServerUnaryReactor* RemoveSubsystem(grpc::CallbackServerContext*, const v1::AdminSubsystemRequest*, v1::AdminEmpty*) override;
  grpc::ServerUnaryReactor* ListRequests(grpc::CallbackServerContext*, const v1::AdminListRequestsRequest*, v1::RequestList*) override;
  grpc::ServerUnaryReactor* ApproveRequest(grpc::CallbackServerContext*, const v1::AdminDecision*, v1::RequestRecord*) override;
  grpc::ServerUnaryReactor* RejectRequest(grpc::CallbackServerContext*, const v1::AdminDecision*, v1::RequestRecord*) override;
  grpc::ServerUnaryReactor* ListServers(grpc::CallbackServerContext*, const v1::AdminEmpty*, v1::ServerList*) override;
  grpc::ServerUnaryReactor* RevokeServer(grpc::CallbackServerContext*, const v1::AdminServerRequest*, v1::AdminEmpty*) override;
  grpc::ServerUnaryReactor* AddGroup(grpc::CallbackServerContext*, const v1::AdminGroupRequest*, v1::AdminEmpty*) override;
  grpc::ServerUnaryReactor* RemoveGroup(grpc::CallbackServerContext*, const v1::AdminGroupRequest*, v1::AdminEmpty*) override;
  grpc::ServerUnaryReactor* AddGroupMember(grpc::CallbackServerContext*, const v1::AdminGroupRequest*, v1::AdminEmpty*) override;
  grpc::ServerUnaryReactor* RemoveGroupMember(grpc::CallbackServerContext*, const v1::AdminGroupRequest*, v1::AdminEmpty*) override;
  grpc::ServerUnaryReactor* ListGroups(grpc::CallbackServerContext*, const v1::AdminEmpty*, v1::GroupList*) override;
  grpc::ServerUnaryReactor* GetConf(grpc::CallbackServerContext*, const v1::AdminEmpty*, v1::SignedGlobalConf*) override;
  grpc::ServerUnaryReactor* RotateConfKey(grpc::CallbackServerContext*, const v1::AdminEmpty*, v1::RotateConfKeyResponse*) override;
  grpc::ServerUnaryReactor* History(grpc::CallbackServerContext*, const v1::HistoryRequest*, v1::HistoryList*) override;
  grpc::ServerUnaryReactor* SetAnchorAddresses(grpc::CallbackServerContext*,
                                               const v1::AdminSetAnchorAddressesRequest*,
                                               v1::RotateConfKeyResponse*) override;

 private:
  absl::Status CheckAdmin(grpc::CallbackServerContext* context) const;
  Registry* const registry_;
  const std::string admin_token_;
};

class OpsServiceImpl final : public v1::RegistryOps::CallbackService {
 public:
  // The arguments are not owned and must outlive this.
  OpsServiceImpl(Registry* registry, ConfPublisher* publisher, Clock* clock);
  grpc::ServerUnaryReactor* Metrics(grpc::CallbackServerContext* context,
                                    const v1::MetricsRequest* request,
                                    v1::MetricsText* response) override;
  // The registry's metrics (darvoza_registry_*), also served as GET /metrics.
  MetricsRegistry* metrics() { return &metrics_; }

 private:
  Registry* const registry_;
  ConfPublisher* const publisher_;
  Clock* const clock_;
  MetricsRegistry metrics_;
};

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_SERVICES_H_
