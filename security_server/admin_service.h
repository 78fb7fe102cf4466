// The admin and ops gRPC services of the security server (thin final classes: proto -> library
// call -> status mapping). Admin calls must carry the admin token (x-darvoza-admin-token);
// without it they are UNAUTHENTICATED and change nothing. Every change is recorded through the
// AdminRecorder before the call answers.
#ifndef DARVOZA_SECURITY_SERVER_ADMIN_SERVICE_H_
#define DARVOZA_SECURITY_SERVER_ADMIN_SERVICE_H_

#include <functional>
#include <string>

#include "common/admin_token.h"
#include "proto/security_server.grpc.pb.h"

namespace darvoza::ss {

class AdminRecorder;
class LocalState;
class MetricsRegistry;
class RegistryClient;

inline constexpr const char* kAdminTokenHeader = kAdminTokenMetadata;  // common/admin_token.h

struct AdminServiceDeps {
  std::string token;  // the expected admin token
  v1::SecurityServerId self;
  LocalState* state = nullptr;
  RegistryClient* registry = nullptr;
  AdminRecorder* recorder = nullptr;
  std::function<v1::StatusReport()> status;
  std::function<void(bool)> set_maintenance;
};

class AdminServiceImpl final : public v1::SecurityServerAdmin::CallbackService {
 public:
  explicit AdminServiceImpl(AdminServiceDeps deps) : deps_(std::move(deps)) {}

  grpc::ServerUnaryReactor* AddClient(grpc::CallbackServerContext* ctx,
                                      const v1::ClientAddRequest* request,
                                      v1::LocalClient* response) override;
  grpc::ServerUnaryReactor* ListClients(grpc::CallbackServerContext* ctx, const v1::SsEmpty*,
                                        v1::ClientList* response) override;
  grpc::ServerUnaryReactor* AddService(grpc::CallbackServerContext* ctx,
                                       const v1::LocalService* request,
                                       v1::SsEmpty* response) override;
  grpc::ServerUnaryReactor* RemoveService(grpc::CallbackServerContext* ctx,
                                          const v1::ServiceRef* request,
                                          v1::SsEmpty* response) override;
  grpc::ServerUnaryReactor* ListServices(grpc::CallbackServerContext* ctx,
                                         const v1::ServiceListRequest* request,
                                         v1::ServiceList* response) override;
  grpc::ServerUnaryReactor* GrantAccess(grpc::CallbackServerContext* ctx,
                                        const v1::AclRequest* request,
                                        v1::SsEmpty* response) override;
  grpc::ServerUnaryReactor* RevokeAccess(grpc::CallbackServerContext* ctx,
                                         const v1::AclRequest* request,
                                         v1::SsEmpty* response) override;
  grpc::ServerUnaryReactor* ListAccess(grpc::CallbackServerContext* ctx,
                                       const v1::AclListRequest* request,
                                       v1::AclList* response) override;
  grpc::ServerUnaryReactor* AddGroup(grpc::CallbackServerContext* ctx,
                                     const v1::GroupRequest* request,
                                     v1::SsEmpty* response) override;
  grpc::ServerUnaryReactor* AddGroupMember(grpc::CallbackServerContext* ctx,
                                           const v1::GroupRequest* request,
                                           v1::SsEmpty* response) override;
  grpc::ServerUnaryReactor* RemoveGroupMember(grpc::CallbackServerContext* ctx,
                                              const v1::GroupRequest* request,
                                              v1::SsEmpty* response) override;
  grpc::ServerUnaryReactor* ListGroups(grpc::CallbackServerContext* ctx, const v1::SsEmpty*,
                                       v1::LocalGroupList* response) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx, const v1::SsEmpty*,
                                   v1::StatusReport* response) override;
  grpc::ServerUnaryReactor* SetMaintenance(grpc::CallbackServerContext* ctx,
                                           const v1::MaintenanceRequest* request,
                                           v1::SsEmpty* response) override;

 private:
  const AdminServiceDeps deps_;
};

class OpsServiceImpl final : public v1::SecurityServerOps::CallbackService {
 public:
  explicit OpsServiceImpl(MetricsRegistry* metrics) : metrics_(metrics) {}
  grpc::ServerUnaryReactor* Metrics(grpc::CallbackServerContext* ctx,
                                    const v1::SsMetricsRequest*,
                                    v1::SsMetricsText* response) override;

 private:
  MetricsRegistry* const metrics_;
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_ADMIN_SERVICE_H_
