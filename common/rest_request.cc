#include "common/rest_request.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "common/outside_values.h"
#include "common/status_macros.h"

namespace darvoza {
namespace {

constexpr absl::string_view kProtocolPrefix = "/r1/";
constexpr size_t kServiceIdParts = 5;

}  // namespace

absl::StatusOr<RestTarget> ParseRestTarget(absl::string_view target) {
  absl::string_view query;
  if (const size_t q = target.find('?'); q != absl::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  if (!absl::ConsumePrefix(&target, kProtocolPrefix)) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                 "the request path is not /r1/{instance}/{class}/{member}/{subsystem}/"
                 "{service}[/path]");
  }
  // The five service-id parts, then whatever follows is the backend path.
  std::vector<absl::string_view> pieces =
      absl::StrSplit(target, absl::MaxSplits('/', kServiceIdParts));
  if (pieces.size() < kServiceIdParts) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidIdentifier,
                 "the service id in the path has fewer than five parts");
  }
  std::vector<std::string> parts;
  for (size_t i = 0; i < kServiceIdParts; ++i) {
    DARVOZA_ASSIGN_OR_RETURN(std::string decoded, DecodeIdentifierPart(pieces[i]));
    parts.push_back(std::move(decoded));
  }
  RestTarget out;
  if (pieces.size() > kServiceIdParts) out.path = absl::StrCat("/", pieces[kServiceIdParts]);
  DARVOZA_RETURN_IF_ERROR(ValidateHttpPath(out.path));
  DARVOZA_RETURN_IF_ERROR(ValidateHttpQuery(query));
  out.query = std::string(query);
  DARVOZA_ASSIGN_OR_RETURN(out.service, ParseServiceId(absl::StrJoin(parts, "/")));
  return out;
}

absl::Status ValidateHttpHeader(absl::string_view name, absl::string_view value) {
  DARVOZA_RETURN_IF_ERROR(ValidateMetadataEntry(name, value));
  for (unsigned char c : value) {
    if (c < 0x20 || c > 0x7e) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                   absl::StrCat("the value of header ", name,
                                " holds a byte that is not printable ASCII"));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> ConnectionListedHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<std::string> listed;
  for (const auto& [name, value] : headers) {
    if (name != "connection") continue;
    for (absl::string_view option : absl::StrSplit(value, ',')) {
      option = absl::StripAsciiWhitespace(option);
      if (!option.empty()) listed.push_back(absl::AsciiStrToLower(option));
    }
  }
  return listed;
}

}  // namespace darvoza
