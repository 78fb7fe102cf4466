// The checks a provider security server makes on a request envelope's own values, apart from
// the signature (signed_message.h) and access rights: what it would hand to gRPC or store as
// text, and the backend method the signed service code allows. Kept apart from the provider's
// reactor so that the envelope fuzz target (tests/fuzz/envelope_fuzz.cc) runs the same code.
//
//   DARVOZA_RETURN_IF_ERROR(ValidateEnvelopeValues(envelope));
//   DARVOZA_ASSIGN_OR_RETURN(std::string method, AuthorizedMethod(envelope));
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_ENVELOPE_CHECKS_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_ENVELOPE_CHECKS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/envelope.pb.h"

namespace darvoza::ss::exchange {

// OK when the message id, user id, issue and every gRPC metadata entry of `envelope` are
// values gRPC can carry (common/outside_values.h), the message id is not empty, and an HTTP
// call's method, path, query and headers pass the same checks the REST port applies.
// INVALID_ARGUMENT with fault Server.ServerProxy.InvalidMessage otherwise. Pure; thread-safe.
absl::Status ValidateEnvelopeValues(const v1::Envelope& envelope);

// The backend method path derived from the envelope's signed service code, when the
// envelope's gRPC method is exactly that path. INVALID_ARGUMENT with fault
// Server.ServerProxy.InvalidMessage otherwise. Pure; thread-safe.
absl::StatusOr<std::string> AuthorizedMethod(const v1::Envelope& envelope);

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_ENVELOPE_CHECKS_H_
