// The one check of text that arrives from outside a security server before it is echoed,
// forwarded, signed, stored or logged: gRPC metadata (from a client IS, from a peer SS's
// envelope, from a backend's answer), gRPC method paths, gRPC status messages, and the parts of
// an HTTP request on the REST interface (method, percent-encoded identifier parts, path, query).
//
// Why it exists: gRPC 1.51 aborts the whole process when a metadata value handed to it holds a
// byte outside 0x20-0x7E (keys ending in "-bin" excepted), and protobuf `string` fields that
// hold invalid UTF-8 cannot be parsed back. Identifiers have their own strict parsers
// (common/identifiers.h); everything else goes through here.
//
// Every refusal is INVALID_ARGUMENT with fault Client.InvalidRequest; callers that receive the
// value from a peer or a backend replace the fault (WithFault) with the one that names who
// sent it. Messages never quote the refused value, only which key or position was wrong.
//
//   DARVOZA_RETURN_IF_ERROR(ValidateMetadataEntry(key, value));
//   DARVOZA_ASSIGN_OR_RETURN(std::string code, ServiceCodeFromMethodPath("/pkg.Svc/Method"));
//   // code == "pkg.Svc.Method"; MethodPathFromServiceCode(code) == "/pkg.Svc/Method"
#ifndef DARVOZA_COMMON_OUTSIDE_VALUES_H_
#define DARVOZA_COMMON_OUTSIDE_VALUES_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace darvoza {

// Bounds. gRPC refuses a header block over its own limit (8 KiB by default) before any
// handler runs; these are tighter so that what we accept also fits when we add our own.
inline constexpr size_t kMaxMetadataKeyBytes = 128;
inline constexpr size_t kMaxMetadataValueBytes = 4096;
inline constexpr size_t kMaxMetadataEntries = 64;
// x-road-id, x-road-userid, x-road-issue: these are stored in every audit record.
inline constexpr size_t kMaxProtocolValueBytes = 255;
inline constexpr size_t kMaxMethodPathBytes = 255;
inline constexpr size_t kMaxStatusMessageBytes = 4096;
// An HTTP method token; the request path after the service id; the query. PR-REST suggests
// limiting the whole URI to about 2000 characters, as most clients do.
inline constexpr size_t kMaxHttpMethodBytes = 32;
inline constexpr size_t kMaxHttpTargetBytes = 2048;

// OK when `key` is a gRPC metadata key (1-128 bytes of [a-z0-9._-], not starting with ':') and
// `value` may be handed to gRPC as it is: for a key ending in "-bin" any bytes (gRPC
// base64-encodes them), otherwise only printable ASCII 0x20-0x7E; at most
// kMaxMetadataValueBytes (kMaxProtocolValueBytes for keys starting with "x-road-").
absl::Status ValidateMetadataEntry(absl::string_view key, absl::string_view value);

// The service code "pkg.Svc.Method" of a gRPC method path "/pkg.Svc/Method". The service is
// one or more dot-separated parts and the method one part, each part [A-Za-z_][A-Za-z0-9_]*
// (protobuf's identifier rule: no '-', no empty part, no "." or ".."); at most
// kMaxMethodPathBytes in all.
absl::StatusOr<std::string> ServiceCodeFromMethodPath(absl::string_view path);

// The gRPC method path of a service code: the inverse of ServiceCodeFromMethodPath. The
// provider calls its backend with this, never with a path a peer sent.
absl::StatusOr<std::string> MethodPathFromServiceCode(absl::string_view service_code);

// Length of the UTF-8 sequence at `text[i]` (1-4), or 0 when it is not a valid one (overlong
// forms, surrogates and code points above U+10FFFF are invalid). REQUIRES: i < text.size().
size_t Utf8SequenceLength(absl::string_view text, size_t i);

// OK when `message` (a gRPC status message from a peer or a backend) is valid UTF-8 without
// control characters other than tab, and at most kMaxStatusMessageBytes.
absl::Status ValidateStatusMessage(absl::string_view message);

// OK when `method` is an HTTP method token (1-32 bytes of RFC 9110 tchar).
absl::Status ValidateHttpMethod(absl::string_view method);

// OK when `path` (the part of a REST request path after the service id, still
// percent-encoded, "" or starting with '/') is at most kMaxHttpTargetBytes of printable ASCII
// without space, '?', '#' or '\\', has only well-formed %XX escapes, and has no segment that
// is "." or ".." before or after decoding: a path must stay under the backend's base (SSRF).
absl::Status ValidateHttpPath(absl::string_view path);

// OK when `query` (after '?', still percent-encoded) is at most kMaxHttpTargetBytes of
// printable ASCII without space or '#', with only well-formed %XX escapes. It is passed on
// unmodified, as PR-REST asks.
absl::Status ValidateHttpQuery(absl::string_view query);

// One identifier part of a REST URI or an X-Road-* header: percent-decoded once, then checked
// with the identifier rule (common/identifiers.h). An encoded '/' ("%2F") decodes to a
// character the rule refuses, so it cannot split or join parts. INVALID_ARGUMENT with fault
// Client.InvalidIdentifier.
absl::StatusOr<std::string> DecodeIdentifierPart(absl::string_view encoded);

// A '/'-separated identifier whose parts are percent-encoded (X-Road-Client: UZ/GOV/1/sub),
// each part decoded once and checked (DecodeIdentifierPart); the decoded parts joined by '/'.
absl::StatusOr<std::string> DecodeIdentifierText(absl::string_view encoded);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_OUTSIDE_VALUES_H_
