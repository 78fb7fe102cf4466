#include "security_server/admin_recorder.h"

namespace darvoza::ss {

void MemoryAdminRecorder::Record(const v1::AdminAction& action,
                                 std::function<void(absl::Status)> done) {
  {
    absl::MutexLock lock(&mu_);
    actions_.push_back(action);
  }
  done(absl::OkStatus());
}

std::vector<v1::AdminAction> MemoryAdminRecorder::actions() const {
  absl::MutexLock lock(&mu_);
  return actions_;
}

}  // namespace darvoza::ss
