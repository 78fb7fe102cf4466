// The parts of a PR-REST request (X-Road's message protocol for REST, r1) that the REST client
// interface reads from outside before anything of it is signed, logged or forwarded
// (docs/design.md §5): the request target, header entries, and the headers a Connection
// header names. Each value is checked once, here, with the rules of common/outside_values.h
// and common/identifiers.h.
//
//   DARVOZA_ASSIGN_OR_RETURN(RestTarget t, ParseRestTarget("/r1/UZ/GOV/1/sub/svc/v1/x?a=1"));
//   // t.service is UZ/GOV/1/sub/svc, t.path "/v1/x", t.query "a=1"
#ifndef DARVOZA_COMMON_REST_REQUEST_H_
#define DARVOZA_COMMON_REST_REQUEST_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/identifiers.pb.h"

namespace darvoza {

struct RestTarget {
  v1::ServiceId service;
  std::string path;   // "" or starting with '/'; still percent-encoded; passed ValidateHttpPath
  std::string query;  // after '?', still percent-encoded; passed ValidateHttpQuery
};

// Parses `/r1/{instance}/{class}/{member}/{subsystem}/{service}[/path][?query]`: the five
// service-id parts are percent-decoded once and checked as identifier parts (so "%2F" inside a
// part is refused), the rest is checked as a path and a query and stays encoded.
// INVALID_ARGUMENT with fault Client.InvalidRequest (not /r1/, a bad path or query) or
// Client.InvalidIdentifier (a bad or missing service-id part).
absl::StatusOr<RestTarget> ParseRestTarget(absl::string_view target);

// OK when an HTTP header (name in lower case) of a REST request or of a backend's answer may
// travel: the metadata rule (ValidateMetadataEntry) without its exception for names ending in
// "-bin", which is gRPC's (gRPC base64-encodes those values; HTTP sends header bytes as they
// are), so every value is printable ASCII. INVALID_ARGUMENT with fault Client.InvalidRequest.
absl::Status ValidateHttpHeader(absl::string_view name, absl::string_view value);

// The header names that the Connection headers of `headers` (names in lower case) list, in
// lower case: hop-by-hop for this one message (RFC 9110 §7.6.1), so never forwarded.
std::vector<std::string> ConnectionListedHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_REST_REQUEST_H_
