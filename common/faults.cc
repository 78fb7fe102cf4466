#include "common/faults.h"

#include "absl/strings/cord.h"
#include "common/check.h"

namespace darvoza {

absl::Status Fault(absl::StatusCode code, absl::string_view fault, absl::string_view message) {
  DARVOZA_CHECK(code != absl::StatusCode::kOk) << "a fault needs an error code";
  return WithFault(absl::Status(code, message), fault);
}

std::string FaultCode(const absl::Status& status) {
  auto payload = status.GetPayload(kFaultPayloadUrl);
  return payload.has_value() ? std::string(*payload) : std::string();
}

absl::Status WithFault(absl::Status status, absl::string_view fault) {
  if (!status.ok()) status.SetPayload(kFaultPayloadUrl, absl::Cord(fault));
  return status;
}

}  // namespace darvoza
