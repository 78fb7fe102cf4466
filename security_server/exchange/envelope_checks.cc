#include "security_server/exchange/envelope_checks.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "common/outside_values.h"
#include "security_server/exchange/exchange_core.h"

namespace darvoza::ss::exchange {

// These run before anything of the envelope is logged or forwarded.
absl::Status ValidateEnvelopeValues(const v1::Envelope& envelope) {
  auto invalid = [](const absl::Status& why) {
    return WithFault(why, faults::kInvalidMessage);
  };
  const std::pair<const char*, const std::string*> protocol_values[] = {
      {kIdHeader, &envelope.message_id()},
      {kUserIdHeader, &envelope.user_id()},
      {kIssueHeader, &envelope.issue()}};
  for (const auto& [key, value] : protocol_values) {
    if (absl::Status valid = ValidateMetadataEntry(key, *value); !valid.ok()) {
      return invalid(valid);
    }
  }
  if (envelope.message_id().empty()) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
                 "the envelope carries no message id");
  }
  if (envelope.grpc().metadata_size() > static_cast<int>(kMaxMetadataEntries)) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
                 absl::StrCat("the envelope carries more than ", kMaxMetadataEntries,
                              " metadata entries"));
  }
  for (const v1::MetadataEntry& entry : envelope.grpc().metadata()) {
    if (absl::Status valid = ValidateMetadataEntry(entry.key(), entry.value()); !valid.ok()) {
      return invalid(valid);
    }
  }
  if (envelope.has_http()) {
    const v1::HttpCall& call = envelope.http();
    for (absl::Status valid : {ValidateHttpMethod(call.method()), ValidateHttpPath(call.path()),
                               ValidateHttpQuery(call.query())}) {
      if (!valid.ok()) return invalid(valid);
    }
    if (call.headers_size() > static_cast<int>(kMaxMetadataEntries)) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
                   absl::StrCat("the envelope carries more than ", kMaxMetadataEntries,
                                " headers"));
    }
    for (const v1::MetadataEntry& entry : call.headers()) {
      if (absl::Status valid = ValidateMetadataEntry(entry.key(), entry.value()); !valid.ok()) {
        return invalid(valid);
      }
    }
  }
  return absl::OkStatus();
}

// A right on pkg.Svc.Public must not reach /pkg.Svc/Secret or another service: the method is
// derived from the checked code, and the envelope's own method must match it exactly.
absl::StatusOr<std::string> AuthorizedMethod(const v1::Envelope& envelope) {
  auto path = MethodPathFromServiceCode(envelope.service().service_code());
  if (!path.ok()) return WithFault(path.status(), faults::kInvalidMessage);
  if (envelope.grpc().method() != *path) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidMessage,
                 absl::StrCat("the envelope's gRPC method is not ", *path,
                              ", the one its signed service code names"));
  }
  return path;
}

}  // namespace darvoza::ss::exchange
