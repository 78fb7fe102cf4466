#include "security_server/admin_service.h"

#include "absl/strings/str_cat.h"
#include "common/admin_token.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/grpc_status.h"
#include "common/identifiers.h"
#include "common/status_macros.h"
#include "security_server/admin_recorder.h"
#include "security_server/local_state.h"
#include "security_server/metrics.h"
#include "security_server/registry_client.h"

namespace darvoza::ss {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const absl::Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status, ctx));
  return reactor;
}

#define DARVOZA_ADMIN_AUTH(ctx)                                                \
  if (absl::Status _admin = CheckAdminToken(*(ctx), deps_.token); !_admin.ok()) { \
    return Done(ctx, _admin);                                                    \
  }

}  // namespace

namespace {

// Applies a change, then records it and answers once the record is durable.
template <typename Change>
grpc::ServerUnaryReactor* ChangeAndRecord(grpc::CallbackServerContext* ctx,
                                          AdminRecorder* recorder, absl::string_view action,
                                          std::string subject, std::string detail,
                                          Change change) {
  if (absl::Status recordable = recorder->CanRecord(); !recordable.ok()) {
    return Done(ctx, absl::Status(recordable.code(),
                                  absl::StrCat("nothing was changed: ", recordable.message())));
  }
  absl::Status s = change();
  if (!s.ok()) return Done(ctx, s);
  auto* reactor = ctx->DefaultReactor();
  v1::AdminAction record;
  record.set_actor("admin");
  record.set_action(std::string(action));
  record.set_subject(std::move(subject));
  record.set_detail(std::move(detail));
  recorder->Record(record, [reactor, ctx](absl::Status recorded) {
    if (!recorded.ok()) {
      recorded = absl::Status(recorded.code(),
                              absl::StrCat("the change was made but could not be recorded in "
                                           "the audit log: ",
                                           recorded.message()));
    }
    reactor->Finish(ToGrpcStatus(recorded, ctx));
  });
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* AdminServiceImpl::AddClient(grpc::CallbackServerContext* ctx,
                                                      const v1::ClientAddRequest* request,
                                                      v1::LocalClient* response) {
  DARVOZA_ADMIN_AUTH(ctx);
  v1::LocalClient client;
  *client.mutable_id() = request->id();
  client.set_auth_mode(request->auth_mode());
  *client.mutable_cert_sha256() = request->cert_sha256();
  if (auto existing = deps_.state->GetClient(request->id()); existing.ok()) {
    client.set_hosting_request_id(existing->hosting_request_id());
    client.set_hosting_state(existing->hosting_state());
  }
  return ChangeAndRecord(
      ctx, deps_.recorder, "client.add", absl::StrCat("subsystem:", FormatSubsystemId(request->id())),
      absl::StrCat("auth_mode=", v1::IsAuthMode_Name(request->auth_mode())), [&]() -> absl::Status {
        DARVOZA_RETURN_IF_ERROR(ValidateSubsystemId(request->id()));
        // Validate locally first so that a bad request never reaches the registry.
        if (client.auth_mode() == v1::IS_AUTH_MODE_UNSPECIFIED) {
          return absl::InvalidArgumentError("auth mode must be plaintext or tls");
        }
        if (client.auth_mode() == v1::IS_AUTH_TLS && client.cert_sha256().empty()) {
          return absl::InvalidArgumentError("tls mode needs the IS certificate (--cert)");
        }
        if (!request->skip_registry() && client.hosting_state() != "APPROVED" &&
            client.hosting_request_id().empty()) {
          v1::SubmitRequest submit;
          *submit.mutable_hosting()->mutable_server() = deps_.self;
          *submit.mutable_hosting()->mutable_subsystem() = request->id();
          DARVOZA_ASSIGN_OR_RETURN(v1::RequestRecord record,
                                   deps_.registry->Submit(submit, absl::Seconds(10)));
          client.set_hosting_request_id(record.id());
          client.set_hosting_state(v1::RequestState_Name(record.state()));
        } else if (request->skip_registry() && client.hosting_state().empty()) {
          client.set_hosting_state("LOCAL");
        }
        DARVOZA_RETURN_IF_ERROR(deps_.state->PutClient(client));
        *response = client;
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListClients(grpc::CallbackServerContext* ctx,
                                                        const v1::SsEmpty*,
                                                        v1::ClientList* response) {
  DARVOZA_ADMIN_AUTH(ctx);
  for (v1::LocalClient client : deps_.state->ListClients()) {
    if (client.hosting_state() == "PENDING" && !client.hosting_request_id().empty()) {
      // Learn the registry's decision (best effort: the registry may be down).
      auto record = deps_.registry->GetStatus(client.hosting_request_id(), absl::Seconds(3));
      if (record.ok() && record->state() != v1::PENDING) {
        client.set_hosting_state(v1::RequestState_Name(record->state()));
        (void)deps_.state->PutClient(client);
      }
    }
    *response->add_clients() = std::move(client);
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminServiceImpl::AddService(grpc::CallbackServerContext* ctx,
                                                       const v1::LocalService* request,
                                                       v1::SsEmpty*) {
  DARVOZA_ADMIN_AUTH(ctx);
  return ChangeAndRecord(ctx, deps_.recorder, "service.add",
                         absl::StrCat("service:", FormatServiceId(request->id())),
                         absl::StrCat("backend=", request->backend(),
                                      " description=", request->description_kind(),
                                      request->backend_ca_pem().empty() ? "" : " backend_ca",
                                      request->backend_cert_pem().empty() ? ""
                                                                          : " backend_cert"),
                         [&] { return deps_.state->AddService(*request); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RemoveService(grpc::CallbackServerContext* ctx,
                                                          const v1::ServiceRef* request,
                                                          v1::SsEmpty*) {
  DARVOZA_ADMIN_AUTH(ctx);
  return ChangeAndRecord(ctx, deps_.recorder, "service.remove",
                         absl::StrCat("service:", FormatServiceId(request->id())), "",
                         [&] { return deps_.state->RemoveService(request->id()); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListServices(grpc::CallbackServerContext* ctx,
                                                         const v1::ServiceListRequest* request,
                                                         v1::ServiceList* response) {
  DARVOZA_ADMIN_AUTH(ctx);
  for (auto& s : deps_.state->ListServices(request->has_subsystem() ? &request->subsystem()
                                                                    : nullptr)) {
    s.clear_backend_key_pem();  // the client key stays in the SS's state
    *response->add_services() = std::move(s);
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminServiceImpl::GrantAccess(grpc::CallbackServerContext* ctx,
                                                        const v1::AclRequest* request,
                                                        v1::SsEmpty*) {
  DARVOZA_ADMIN_AUTH(ctx);
  return ChangeAndRecord(ctx, deps_.recorder, "acl.grant",
                         FormatAclSubject(request->entry().subject()),
                         absl::StrCat("service:", FormatServiceId(request->entry().service())),
                         [&] { return deps_.state->Grant(request->entry()); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeAccess(grpc::CallbackServerContext* ctx,
                                                         const v1::AclRequest* request,
                                                         v1::SsEmpty*) {
  DARVOZA_ADMIN_AUTH(ctx);
  return ChangeAndRecord(ctx, deps_.recorder, "acl.revoke",
                         FormatAclSubject(request->entry().subject()),
                         absl::StrCat("service:", FormatServiceId(request->entry().service())),
                         [&] { return deps_.state->Revoke(request->entry()); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListAccess(grpc::CallbackServerContext* ctx,
                                                       const v1::AclListRequest* request,
                                                       v1::AclList* response) {
  DARVOZA_ADMIN_AUTH(ctx);
  for (auto& e : deps_.state->ListAcl(request->has_service() ? &request->service() : nullptr)) {
    *response->add_entries() = std::move(e);
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminServiceImpl::AddGroup(grpc::CallbackServerContext* ctx,
                                                     const v1::GroupRequest* request,
                                                     v1::SsEmpty*) {
  DARVOZA_ADMIN_AUTH(ctx);
  return ChangeAndRecord(ctx, deps_.recorder, "group.add",
                         absl::StrCat("localgroup:", request->id().group_code()),
                         request->description(),
                         [&] { return deps_.state->AddGroup(request->id(), request->description()); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::AddGroupMember(grpc::CallbackServerContext* ctx,
                                                           const v1::GroupRequest* request,
                                                           v1::SsEmpty*) {
  DARVOZA_ADMIN_AUTH(ctx);
  return ChangeAndRecord(ctx, deps_.recorder, "group.add-member",
                         absl::StrCat("localgroup:", request->id().group_code()),
                         absl::StrCat("subsystem:", FormatSubsystemId(request->member())),
                         [&] { return deps_.state->AddGroupMember(request->id(), request->member()); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RemoveGroupMember(grpc::CallbackServerContext* ctx,
                                                              const v1::GroupRequest* request,
                                                              v1::SsEmpty*) {
  DARVOZA_ADMIN_AUTH(ctx);
  return ChangeAndRecord(
      ctx, deps_.recorder, "group.remove-member",
      absl::StrCat("localgroup:", request->id().group_code()),
      absl::StrCat("subsystem:", FormatSubsystemId(request->member())),
      [&] { return deps_.state->RemoveGroupMember(request->id(), request->member()); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListGroups(grpc::CallbackServerContext* ctx,
                                                       const v1::SsEmpty*,
                                                       v1::LocalGroupList* response) {
  DARVOZA_ADMIN_AUTH(ctx);
  for (auto& g : deps_.state->ListGroups()) *response->add_groups() = std::move(g);
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminServiceImpl::Status(grpc::CallbackServerContext* ctx,
                                                   const v1::SsEmpty*,
                                                   v1::StatusReport* response) {
  DARVOZA_ADMIN_AUTH(ctx);
  *response = deps_.status();
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetMaintenance(grpc::CallbackServerContext* ctx,
                                                           const v1::MaintenanceRequest* request,
                                                           v1::SsEmpty*) {
  DARVOZA_ADMIN_AUTH(ctx);
  return ChangeAndRecord(ctx, deps_.recorder, "maintenance.set", "",
                         request->on() ? "on" : "off", [&] {
                           deps_.set_maintenance(request->on());
                           return absl::OkStatus();
                         });
}

grpc::ServerUnaryReactor* OpsServiceImpl::Metrics(grpc::CallbackServerContext* ctx,
                                                  const v1::SsMetricsRequest*,
                                                  v1::SsMetricsText* response) {
  response->set_text(metrics_->RenderText());
  return Done(ctx, absl::OkStatus());
}

}  // namespace darvoza::ss
