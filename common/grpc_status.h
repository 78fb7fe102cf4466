// Mapping between absl::Status (with a Darvoza fault code) and grpc::Status (with the fault in
// the `x-road-error` trailing metadata), docs/design.md §5.
// Shared by every gRPC service and client.
//
//   // server side, in a handler:
//   return ToGrpcStatus(registry_->AddMember(id, name), context);
//   // client side, after the call:
//   absl::Status s = FromGrpcStatus(grpc_status, client_context);
//   if (FaultCode(s) == faults::kUnknownMember) { ... }
#ifndef DARVOZA_COMMON_GRPC_STATUS_H_
#define DARVOZA_COMMON_GRPC_STATUS_H_

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace darvoza {

// The trailing metadata key that carries a fault code.
inline constexpr absl::string_view kFaultTrailer = "x-road-error";

// The grpc::Status with the same code and message as `status`. When `status` carries a fault
// code and `context` is not null, the fault is added to the call's trailing metadata. A non-OK
// status without a fault gets Server.InternalError for INTERNAL/UNKNOWN/DATA_LOSS codes only.
// REQUIRES: called before the call is finished (the trailer must still be open).
grpc::Status ToGrpcStatus(const absl::Status& status, grpc::ServerContextBase* context);

// The absl::Status for a finished call: same code and message, and the fault code from the
// `x-road-error` trailer when present. OK stays OK.
absl::Status FromGrpcStatus(const grpc::Status& status, const grpc::ClientContext& context);

// Code conversions (the numeric values are the same by design of both libraries).
grpc::StatusCode ToGrpcCode(absl::StatusCode code);
absl::StatusCode FromGrpcCode(grpc::StatusCode code);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_GRPC_STATUS_H_
