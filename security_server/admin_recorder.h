// AdminRecorder: where the security server records its administrative changes. The
// daemon wires an implementation that appends ADMIN_ACTION records to the SS's
// audit::AuditLog; tests may use a recorder that keeps them in memory.
#ifndef DARVOZA_SECURITY_SERVER_ADMIN_RECORDER_H_
#define DARVOZA_SECURITY_SERVER_ADMIN_RECORDER_H_

#include <functional>
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
  // Records `action` and calls `done` once it is durable (or could not be recorded), possibly
  // on another thread and possibly before Record returns; never blocks on the disk. Callers
  // made the change already and report an error to the administrator (it is not undone).
  virtual void Record(const v1::AdminAction& action,
                      std::function<void(absl::Status)> done) = 0;
  // OK unless Record is known to fail now (e.g. the audit log is damaged), then why. Callers
  // check it before making a change, so that a change that cannot be recorded is not made.
  virtual absl::Status CanRecord() const { return absl::OkStatus(); }
};

// Appends ADMIN_ACTION records to an audit log and waits until each is durable.
class AuditLogAdminRecorder final : public AdminRecorder {
 public:
  // `log` is not owned and must outlive the recorder.
  explicit AuditLogAdminRecorder(audit::AuditLog* log) : log_(log) {}
  void Record(const v1::AdminAction& action, std::function<void(absl::Status)> done) override;
  absl::Status CanRecord() const override;

 private:
  audit::AuditLog* const log_;
};

// Keeps the actions in memory (tests, and the daemon before its audit log opens).
class MemoryAdminRecorder final : public AdminRecorder {
 public:
  void Record(const v1::AdminAction& action, std::function<void(absl::Status)> done) override;
  std::vector<v1::AdminAction> actions() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<v1::AdminAction> actions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_ADMIN_RECORDER_H_
