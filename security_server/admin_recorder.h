// AdminRecorder: where the security server records its administrative changes (issue 5 item
// 6). The daemon wires an implementation that appends ADMIN_ACTION records to the SS's
// audit::AuditLog; tests may use a recorder that keeps them in memory.
#ifndef DARVOZA_SECURITY_SERVER_ADMIN_RECORDER_H_
#define DARVOZA_SECURITY_SERVER_ADMIN_RECORDER_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "proto/audit.pb.h"

namespace darvoza::audit {
class AuditLog;
}

namespace darvoza::ss {

// Thread-safe.
class AdminRecorder {
 public:
  virtual ~AdminRecorder() = default;
  // Records `action` durably. Returns an error when it could not be recorded; callers made the
  // change already and report the error to the administrator (the change is not undone).
  virtual absl::Status Record(const v1::AdminAction& action) = 0;
};

// Appends ADMIN_ACTION records to an audit log and waits until each is durable.
class AuditLogAdminRecorder final : public AdminRecorder {
 public:
  // `log` is not owned and must outlive the recorder.
  explicit AuditLogAdminRecorder(audit::AuditLog* log) : log_(log) {}
  absl::Status Record(const v1::AdminAction& action) override;

 private:
  audit::AuditLog* const log_;
};

// Keeps the actions in memory (tests, and the daemon before its audit log opens).
class MemoryAdminRecorder final : public AdminRecorder {
 public:
  absl::Status Record(const v1::AdminAction& action) override;
  std::vector<v1::AdminAction> actions() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<v1::AdminAction> actions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_ADMIN_RECORDER_H_
