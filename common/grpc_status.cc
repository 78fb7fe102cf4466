#include "common/grpc_status.h"

#include <string>

#include "common/faults.h"

namespace darvoza {

grpc::StatusCode ToGrpcCode(absl::StatusCode code) {
  return static_cast<grpc::StatusCode>(static_cast<int>(code));
}

absl::StatusCode FromGrpcCode(grpc::StatusCode code) {
  return static_cast<absl::StatusCode>(static_cast<int>(code));
}

grpc::Status ToGrpcStatus(const absl::Status& status, grpc::ServerContextBase* context) {
  if (status.ok()) return grpc::Status::OK;
  std::string fault = FaultCode(status);
  if (fault.empty() && (status.code() == absl::StatusCode::kInternal ||
                        status.code() == absl::StatusCode::kUnknown ||
                        status.code() == absl::StatusCode::kDataLoss)) {
    fault = std::string(faults::kInternalError);
  }
  if (!fault.empty() && context != nullptr) {
    context->AddTrailingMetadata(std::string(kFaultTrailer), fault);
  }
  return grpc::Status(ToGrpcCode(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status, const grpc::ClientContext& context) {
  if (status.ok()) return absl::OkStatus();
  absl::Status result(FromGrpcCode(status.error_code()), status.error_message());
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(grpc::string_ref(kFaultTrailer.data(), kFaultTrailer.size()));
  if (it != trailers.end()) {
    result = WithFault(std::move(result), absl::string_view(it->second.data(), it->second.size()));
  }
  return result;
}

}  // namespace darvoza
