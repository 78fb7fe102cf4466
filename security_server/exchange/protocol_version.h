// The version of the message protocol between security servers (docs/design.md §5 "Protocol
// versions"). Both envelopes carry it inside their signed bytes, so no one between the two SSs
// can change which format a message claims to follow.
//
// A federation never upgrades every SS at once, so an SS accepts the current version and the
// previous one (for one release) and answers each request in the version it came in:
//
//   DARVOZA_RETURN_IF_ERROR(CheckProtocolVersion(envelope.protocol_version(),
//                                                faults::kInvalidProtocolVersion));
//   response.set_protocol_version(envelope.protocol_version());
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_PROTOCOL_VERSION_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_PROTOCOL_VERSION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace darvoza::ss::exchange {

// The version this SS sends. 1: the field exists, and messages may carry batch signatures.
// 0 is the format from before the field existed (an envelope without it reads as 0).
inline constexpr uint32_t kProtocolVersion = 1;

// The one rule for a received envelope's version: OK for kProtocolVersion and the version
// before it; FAILED_PRECONDITION carrying `fault` for anything newer or older. Pure.
absl::Status CheckProtocolVersion(uint32_t version, absl::string_view fault);

// Whether a peer that speaks `version` can check a batch signature (version 1 and later):
// an SS of the previous release verifies only ordinary signatures.
constexpr bool AcceptsBatchSignatures(uint32_t version) { return version >= 1; }

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_PROTOCOL_VERSION_H_
