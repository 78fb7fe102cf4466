// Stable fault codes in X-Road's style (docs/design.md §5), carried on an absl::Status.
//
// A refusal is an absl::Status with the most specific code plus a fault code that clients can
// match on; gRPC handlers return the code as grpc::Status and the fault in the `x-road-error`
// trailer. Every code is listed in docs/faults.md.
//
//   return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidIdentifier,
//                "member class is empty");
//   ...
//   if (FaultCode(status) == faults::kInvalidIdentifier) { ... }
#ifndef DARVOZA_COMMON_FAULTS_H_
#define DARVOZA_COMMON_FAULTS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace darvoza {
namespace faults {

inline constexpr absl::string_view kInvalidIdentifier = "Client.InvalidIdentifier";
inline constexpr absl::string_view kInvalidRequest = "Client.InvalidRequest";
inline constexpr absl::string_view kUnknownMember = "Client.UnknownMember";
inline constexpr absl::string_view kUnknownService = "Client.UnknownService";
inline constexpr absl::string_view kInvalidCsr = "Client.InvalidCertificateRequest";
inline constexpr absl::string_view kNotAuthorized = "Client.NotAuthorized";
inline constexpr absl::string_view kNetworkError = "Server.ClientProxy.NetworkError";
inline constexpr absl::string_view kSslAuthenticationFailed =
    "Server.ClientProxy.SslAuthenticationFailed";
inline constexpr absl::string_view kConfigurationExpired =
    "Server.ClientProxy.ConfigurationExpired";
inline constexpr absl::string_view kInvalidConfiguration =
    "Server.ClientProxy.InvalidConfiguration";
inline constexpr absl::string_view kClientInvalidSignature = "Server.ClientProxy.InvalidSignature";
inline constexpr absl::string_view kUnsupportedCall = "Client.UnsupportedCall";
inline constexpr absl::string_view kAccessDenied = "Server.ServerProxy.AccessDenied";
inline constexpr absl::string_view kServerSslAuthenticationFailed =
    "Server.ServerProxy.SslAuthenticationFailed";
inline constexpr absl::string_view kWrongTargetServer = "Server.ServerProxy.WrongTargetServer";
inline constexpr absl::string_view kInvalidMessage = "Server.ServerProxy.InvalidMessage";
inline constexpr absl::string_view kInvalidSignature = "Server.ServerProxy.InvalidSignature";
inline constexpr absl::string_view kReplayedMessage = "Server.ServerProxy.ReplayedMessage";
inline constexpr absl::string_view kServiceFailed = "Server.ServerProxy.ServiceFailed";
inline constexpr absl::string_view kTimeout = "Server.ServerProxy.Timeout";
inline constexpr absl::string_view kInvalidProtocolVersion =
    "Server.ServerProxy.InvalidProtocolVersion";
inline constexpr absl::string_view kClientInvalidProtocolVersion =
    "Server.ClientProxy.InvalidProtocolVersion";
inline constexpr absl::string_view kWitnessHeadMismatch = "Server.Registry.WitnessHeadMismatch";
inline constexpr absl::string_view kTooManyPendingRequests =
    "Server.Registry.TooManyPendingRequests";
inline constexpr absl::string_view kAuditLogFailure = "Server.AuditLog.WriteFailed";
inline constexpr absl::string_view kInternalError = "Server.InternalError";

// Every code above, once: what a fault from elsewhere (a peer's `x-road-error`) is checked
// against before it becomes, say, a metric label. A new code goes here too (the CTest
// faults.coverage checks that each one above is listed).
inline constexpr absl::string_view kAll[] = {
    kInvalidIdentifier, kInvalidRequest, kUnknownMember, kUnknownService, kInvalidCsr,
    kNotAuthorized, kNetworkError, kSslAuthenticationFailed, kConfigurationExpired,
    kInvalidConfiguration, kClientInvalidSignature, kUnsupportedCall, kAccessDenied,
    kServerSslAuthenticationFailed, kWrongTargetServer, kInvalidMessage, kInvalidSignature,
    kReplayedMessage, kServiceFailed, kTimeout, kInvalidProtocolVersion,
    kClientInvalidProtocolVersion, kWitnessHeadMismatch, kTooManyPendingRequests,
    kAuditLogFailure, kInternalError};

// Whether `fault` is one of kAll.
constexpr bool IsKnown(absl::string_view fault) {
  for (absl::string_view known : kAll) {
    if (known == fault) return true;
  }
  return false;
}

}  // namespace faults

// The payload URL under which the fault code travels inside an absl::Status.
inline constexpr absl::string_view kFaultPayloadUrl = "darvoza.v1/fault";

// Returns a non-OK status carrying `fault`. REQUIRES: code != kOk.
absl::Status Fault(absl::StatusCode code, absl::string_view fault, absl::string_view message);

// The fault code carried by `status`, or "" when it carries none.
std::string FaultCode(const absl::Status& status);

// Returns `status` with `fault` attached (replacing any). OK stays OK.
absl::Status WithFault(absl::Status status, absl::string_view fault);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_FAULTS_H_
