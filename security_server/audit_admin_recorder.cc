// AuditLogAdminRecorder: admin actions as ADMIN_ACTION records in the SS's audit chain.
#include "audit/audit_log.h"
#include "security_server/admin_recorder.h"

namespace darvoza::ss {

void AuditLogAdminRecorder::Record(const v1::AdminAction& action,
                                   std::function<void(absl::Status)> done) {
  audit::AppendRequest request;
  request.record.set_kind(v1::ADMIN_ACTION);
  *request.record.mutable_admin() = action;
  log_->Append(std::move(request),
               [done = std::move(done)](absl::StatusOr<audit::AppendResult> result) {
                 done(result.status());
               });
}

absl::Status AuditLogAdminRecorder::CanRecord() const { return log_->damage(); }

}  // namespace darvoza::ss
