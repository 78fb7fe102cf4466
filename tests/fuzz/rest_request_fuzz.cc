// Fuzz target for what the REST client interface reads from outside (common/rest_request.h and
// the REST parts of common/outside_values.h): the PR-REST request target, identifier headers
// (X-Road-Client, X-Road-Security-Server, X-Road-Represented-Party), header entries and the
// Connection header's list.
//
// The input is a request head without the method: the first line is the target, each further
// line a header "Name: value" (names lower-cased, as the HTTP server hands them over).
// Properties checked on every input, beyond "does not crash":
//  - an accepted target names a five-part service id of identifier characters, its path is ""
//    or starts with '/' and holds no "." or ".." segment (also after decoding), and the
//    canonical target made from the result parses to the same result;
//  - an accepted identifier header decodes to '/'-separated identifier parts, and a subsystem
//    parsed from it formats back to the same text;
//  - an accepted header entry is printable ASCII within its bound, also when its name ends in
//    "-bin" (gRPC's exception to that rule, which the first version of this target showed
//    the REST interface had inherited);
//  - every name the Connection headers list is lower case, without ',' or blanks.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/identifiers.h"
#include "common/outside_values.h"
#include "common/rest_request.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using darvoza::fuzz::Require;

bool IsIdentifierChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

void CheckTarget(absl::string_view target) {
  auto parsed = darvoza::ParseRestTarget(target);
  if (!parsed.ok()) return;
  const std::string service = darvoza::FormatServiceId(parsed->service);
  Require(std::count(service.begin(), service.end(), '/') == 4);
  for (char c : service) Require(c == '/' || IsIdentifierChar(c));
  Require(parsed->path.empty() || parsed->path[0] == '/');
  Require(darvoza::ValidateHttpPath(parsed->path).ok());
  Require(darvoza::ValidateHttpQuery(parsed->query).ok());
  for (absl::string_view segment : absl::StrSplit(parsed->path, '/')) {
    Require(segment != "." && segment != ".." && !absl::EqualsIgnoreCase(segment, "%2e%2e"));
  }
  const std::string canonical =
      absl::StrCat("/r1/", service, parsed->path, parsed->query.empty() ? "" : "?",
                   parsed->query);
  auto again = darvoza::ParseRestTarget(canonical);
  Require(again.ok());
  Require(darvoza::FormatServiceId(again->service) == service);
  Require(again->path == parsed->path);
  Require(again->query == parsed->query);
}

void CheckIdentifierHeader(absl::string_view value) {
  auto decoded = darvoza::DecodeIdentifierText(value);
  if (!decoded.ok()) return;
  for (absl::string_view part : absl::StrSplit(*decoded, '/')) {
    Require(!part.empty());
    for (char c : part) Require(IsIdentifierChar(c));
  }
  auto subsystem = darvoza::ParseSubsystemId(*decoded);
  if (subsystem.ok()) Require(darvoza::FormatSubsystemId(*subsystem) == *decoded);
  auto server = darvoza::ParseSecurityServerId(*decoded);
  if (server.ok()) Require(darvoza::FormatSecurityServerId(*server) == *decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  CheckTarget(lines[0]);
  std::vector<std::pair<std::string, std::string>> headers;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (darvoza::ValidateHttpHeader(name, value).ok()) {
      Require(darvoza::ValidateMetadataEntry(name, value).ok());
      Require(value.size() <= darvoza::kMaxMetadataValueBytes);
      for (unsigned char c : value) Require(c >= 0x20 && c <= 0x7e);
    }
    CheckIdentifierHeader(value);
    headers.emplace_back(std::move(name), std::move(value));
  }
  for (const std::string& listed : darvoza::ConnectionListedHeaders(headers)) {
    Require(!listed.empty());
    Require(listed == absl::AsciiStrToLower(listed));
    Require(listed.find(',') == std::string::npos);
    Require(listed.front() != ' ' && listed.back() != ' ' && listed.front() != '\t' &&
            listed.back() != '\t');
  }
  return 0;
}
