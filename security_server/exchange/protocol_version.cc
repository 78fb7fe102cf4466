#include "security_server/exchange/protocol_version.h"

#include "absl/strings/str_cat.h"
#include "common/faults.h"

namespace darvoza::ss::exchange {

absl::Status CheckProtocolVersion(uint32_t version, absl::string_view fault) {
  static_assert(kProtocolVersion >= 1, "the previous version is kProtocolVersion - 1");
  if (version == kProtocolVersion || version == kProtocolVersion - 1) return absl::OkStatus();
  return Fault(absl::StatusCode::kFailedPrecondition, fault,
               absl::StrCat("message protocol version ", version, " is not spoken here (",
                            kProtocolVersion - 1, " and ", kProtocolVersion, " are)"));
}

}  // namespace darvoza::ss::exchange
