#include "common/identifiers.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/faults.h"

namespace darvoza {
namespace {

absl::Status Invalid(absl::string_view message) {
  return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidIdentifier, message);
}

bool IsAllowed(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Quotes untrusted text for an error message without echoing control bytes or huge inputs.
std::string Quote(absl::string_view text) {
  std::string out = "\"";
  size_t shown = 0;
  for (unsigned char c : text) {
    if (++shown > 80) {
      absl::StrAppend(&out, "...");
      break;
    }
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  out.push_back('"');
  return out;
}

// Splits `text` into exactly one of the allowed part counts, validating every part.
absl::StatusOr<std::vector<std::string>> SplitParts(absl::string_view text, absl::string_view what,
                                                    size_t min_parts, size_t max_parts) {
  if (text.empty()) return Invalid(absl::StrCat(what, " identifier is empty"));
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  if (parts.size() < min_parts || parts.size() > max_parts) {
    std::string expected = min_parts == max_parts
                               ? absl::StrCat(min_parts)
                               : absl::StrCat(min_parts, " or ", max_parts);
    return Invalid(absl::StrCat(what, " identifier ", Quote(text), " has ", parts.size(),
                                " '/'-separated parts; expected ", expected));
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    absl::Status status = ValidateIdentifierPart(parts[i]);
    if (!status.ok()) {
      return Invalid(absl::StrCat(what, " identifier ", Quote(text), ", part ", i + 1, ": ",
                                  status.message()));
    }
  }
  return parts;
}

void FillMember(const std::vector<std::string>& parts, MemberId* id) {
  id->set_instance(parts[0]);
  id->set_member_class(parts[1]);
  id->set_member_code(parts[2]);
}

struct KindInfo {
  IdentifierKind kind;
  absl::string_view prefix;
};

constexpr KindInfo kKinds[] = {
    {IdentifierKind::kMember, "member"},
    {IdentifierKind::kSubsystem, "subsystem"},
    {IdentifierKind::kService, "service"},
    {IdentifierKind::kSecurityServer, "server"},
    {IdentifierKind::kGlobalGroup, "globalgroup"},
    {IdentifierKind::kLocalGroup, "localgroup"},
};

std::vector<std::string> PartNames(IdentifierKind kind, size_t count) {
  switch (kind) {
    case IdentifierKind::kMember:
      return {"instance", "member class", "member code"};
    case IdentifierKind::kSubsystem:
      return {"instance", "member class", "member code", "subsystem code"};
    case IdentifierKind::kService:
      if (count == 6) {
        return {"instance",       "member class", "member code",
                "subsystem code", "service code", "service version"};
      }
      return {"instance", "member class", "member code", "subsystem code", "service code"};
    case IdentifierKind::kSecurityServer:
      return {"instance", "member class", "member code", "server code"};
    case IdentifierKind::kGlobalGroup:
      return {"instance", "group code"};
    case IdentifierKind::kLocalGroup:
      return {"group code"};
  }
  return {};
}

// Parses `text` (unprefixed) as `kind`; on success returns its parts.
absl::StatusOr<std::vector<std::string>> PartsOfKind(IdentifierKind kind, absl::string_view text) {
  switch (kind) {
    case IdentifierKind::kMember:
      return SplitParts(text, "member", 3, 3);
    case IdentifierKind::kSubsystem:
      return SplitParts(text, "subsystem", 4, 4);
    case IdentifierKind::kService:
      return SplitParts(text, "service", 5, 6);
    case IdentifierKind::kSecurityServer:
      return SplitParts(text, "security server", 4, 4);
    case IdentifierKind::kGlobalGroup:
      return SplitParts(text, "global group", 2, 2);
    case IdentifierKind::kLocalGroup:
      return SplitParts(text, "local group", 1, 1);
  }
  return Invalid("unknown identifier kind");
}

// Splits "kind:rest". Returns false when there is no ':' at all.
absl::StatusOr<std::pair<IdentifierKind, absl::string_view>> SplitPrefix(absl::string_view text) {
  size_t colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return Invalid(absl::StrCat(Quote(text), " has no kind prefix (subsystem:, member:, "
                                             "service:, server:, globalgroup:, localgroup:)"));
  }
  absl::string_view prefix = text.substr(0, colon);
  for (const KindInfo& info : kKinds) {
    if (info.prefix == prefix) return std::make_pair(info.kind, text.substr(colon + 1));
  }
  return Invalid(absl::StrCat("unknown identifier kind prefix ", Quote(prefix),
                              "; expected subsystem, member, service, server, globalgroup or "
                              "localgroup"));
}

}  // namespace

absl::Status ValidateIdentifierPart(absl::string_view part) {
  if (part.empty()) return Invalid("empty part (doubled, leading or trailing '/')");
  if (part.size() > kMaxIdentifierPartLength) {
    return Invalid(absl::StrCat("part is ", part.size(), " characters long; at most ",
                                kMaxIdentifierPartLength, " are allowed"));
  }
  if (part == "." || part == "..") return Invalid(absl::StrCat("part ", Quote(part), " is not allowed"));
  for (size_t i = 0; i < part.size(); ++i) {
    if (!IsAllowed(part[i])) {
      return Invalid(absl::StrFormat("part %s has character 0x%02x at offset %d; only "
                                     "[A-Za-z0-9._-] are allowed",
                                     Quote(part), static_cast<unsigned char>(part[i]), i));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<MemberId> ParseMemberId(absl::string_view text) {
  auto parts = SplitParts(text, "member", 3, 3);
  if (!parts.ok()) return parts.status();
  MemberId id;
  FillMember(*parts, &id);
  return id;
}

absl::StatusOr<SubsystemId> ParseSubsystemId(absl::string_view text) {
  auto parts = SplitParts(text, "subsystem", 4, 4);
  if (!parts.ok()) return parts.status();
  SubsystemId id;
  FillMember(*parts, id.mutable_member());
  id.set_subsystem_code((*parts)[3]);
  return id;
}

absl::StatusOr<ServiceId> ParseServiceId(absl::string_view text) {
  auto parts = SplitParts(text, "service", 5, 6);
  if (!parts.ok()) return parts.status();
  ServiceId id;
  FillMember(*parts, id.mutable_subsystem()->mutable_member());
  id.mutable_subsystem()->set_subsystem_code((*parts)[3]);
  id.set_service_code((*parts)[4]);
  if (parts->size() == 6) id.set_service_version((*parts)[5]);
  return id;
}

absl::StatusOr<SecurityServerId> ParseSecurityServerId(absl::string_view text) {
  auto parts = SplitParts(text, "security server", 4, 4);
  if (!parts.ok()) return parts.status();
  SecurityServerId id;
  FillMember(*parts, id.mutable_owner());
  id.set_server_code((*parts)[3]);
  return id;
}

absl::StatusOr<GlobalGroupId> ParseGlobalGroupId(absl::string_view text) {
  auto parts = SplitParts(text, "global group", 2, 2);
  if (!parts.ok()) return parts.status();
  GlobalGroupId id;
  id.set_instance((*parts)[0]);
  id.set_group_code((*parts)[1]);
  return id;
}

absl::StatusOr<LocalGroupId> ParseLocalGroupId(absl::string_view text) {
  auto parts = SplitParts(text, "local group", 1, 1);
  if (!parts.ok()) return parts.status();
  LocalGroupId id;
  id.set_group_code((*parts)[0]);
  return id;
}

std::string FormatMemberId(const MemberId& id) {
  return absl::StrCat(id.instance(), "/", id.member_class(), "/", id.member_code());
}

std::string FormatSubsystemId(const SubsystemId& id) {
  return absl::StrCat(FormatMemberId(id.member()), "/", id.subsystem_code());
}

std::string FormatServiceId(const ServiceId& id) {
  std::string text = absl::StrCat(FormatSubsystemId(id.subsystem()), "/", id.service_code());
  if (!id.service_version().empty()) absl::StrAppend(&text, "/", id.service_version());
  return text;
}

std::string FormatSecurityServerId(const SecurityServerId& id) {
  return absl::StrCat(FormatMemberId(id.owner()), "/", id.server_code());
}

std::string FormatGlobalGroupId(const GlobalGroupId& id) {
  return absl::StrCat(id.instance(), "/", id.group_code());
}

std::string FormatLocalGroupId(const LocalGroupId& id) { return id.group_code(); }

// Structured ids from peers are validated by formatting and re-parsing: one set of rules.
absl::Status ValidateMemberId(const MemberId& id) {
  return ParseMemberId(FormatMemberId(id)).status();
}
absl::Status ValidateSubsystemId(const SubsystemId& id) {
  return ParseSubsystemId(FormatSubsystemId(id)).status();
}
absl::Status ValidateServiceId(const ServiceId& id) {
  // An empty version would vanish in the text form; anything else must survive a round trip.
  auto parsed = ParseServiceId(FormatServiceId(id));
  if (!parsed.ok()) return parsed.status();
  if (parsed->service_code() != id.service_code()) return Invalid("malformed service code");
  return absl::OkStatus();
}
absl::Status ValidateSecurityServerId(const SecurityServerId& id) {
  return ParseSecurityServerId(FormatSecurityServerId(id)).status();
}
absl::Status ValidateGlobalGroupId(const GlobalGroupId& id) {
  return ParseGlobalGroupId(FormatGlobalGroupId(id)).status();
}

absl::string_view IdentifierKindName(IdentifierKind kind) {
  for (const KindInfo& info : kKinds) {
    if (info.kind == kind) return info.prefix;
  }
  return "unknown";
}

absl::StatusOr<std::vector<IdentifierReading>> ReadIdentifier(absl::string_view text) {
  std::vector<IdentifierReading> readings;
  if (text.find(':') != absl::string_view::npos) {
    auto split = SplitPrefix(text);
    if (!split.ok()) return split.status();
    auto parts = PartsOfKind(split->first, split->second);
    if (!parts.ok()) return parts.status();
    readings.push_back({split->first, PartNames(split->first, parts->size()), *std::move(parts)});
    return readings;
  }
  if (text.empty()) return Invalid("identifier is empty");
  std::vector<absl::string_view> parts = absl::StrSplit(text, '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    absl::Status status = ValidateIdentifierPart(parts[i]);
    if (!status.ok()) {
      return Invalid(absl::StrCat("identifier ", Quote(text), ", part ", i + 1, ": ",
                                  status.message()));
    }
  }
  for (const KindInfo& info : kKinds) {
    auto kind_parts = PartsOfKind(info.kind, text);
    if (kind_parts.ok()) {
      readings.push_back(
          {info.kind, PartNames(info.kind, kind_parts->size()), *std::move(kind_parts)});
    }
  }
  if (readings.empty()) {
    return Invalid(absl::StrCat(Quote(text),
                                " is no identifier: expected 1 (local group), 2 (global group), "
                                "3 (member), 4 (subsystem or security server) or 5-6 (service) "
                                "'/'-separated parts"));
  }
  return readings;
}

absl::StatusOr<AclSubject> ParseAclSubject(absl::string_view text) {
  auto split = SplitPrefix(text);
  if (!split.ok()) return split.status();
  AclSubject subject;
  switch (split->first) {
    case IdentifierKind::kSubsystem: {
      auto id = ParseSubsystemId(split->second);
      if (!id.ok()) return id.status();
      *subject.mutable_subsystem() = *std::move(id);
      break;
    }
    case IdentifierKind::kMember: {
      auto id = ParseMemberId(split->second);
      if (!id.ok()) return id.status();
      *subject.mutable_member() = *std::move(id);
      break;
    }
    case IdentifierKind::kGlobalGroup: {
      auto id = ParseGlobalGroupId(split->second);
      if (!id.ok()) return id.status();
      *subject.mutable_global_group() = *std::move(id);
      break;
    }
    case IdentifierKind::kLocalGroup: {
      auto id = ParseLocalGroupId(split->second);
      if (!id.ok()) return id.status();
      *subject.mutable_local_group() = *std::move(id);
      break;
    }
    case IdentifierKind::kSecurityServer: {
      auto id = ParseSecurityServerId(split->second);
      if (!id.ok()) return id.status();
      *subject.mutable_server() = *std::move(id);
      break;
    }
    case IdentifierKind::kService:
      return Invalid("a service cannot be an access-right subject");
  }
  return subject;
}

std::string FormatAclSubject(const AclSubject& subject) {
  switch (subject.kind_case()) {
    case AclSubject::kSubsystem:
      return absl::StrCat("subsystem:", FormatSubsystemId(subject.subsystem()));
    case AclSubject::kMember:
      return absl::StrCat("member:", FormatMemberId(subject.member()));
    case AclSubject::kGlobalGroup:
      return absl::StrCat("globalgroup:", FormatGlobalGroupId(subject.global_group()));
    case AclSubject::kLocalGroup:
      return absl::StrCat("localgroup:", FormatLocalGroupId(subject.local_group()));
    case AclSubject::kServer:
      return absl::StrCat("server:", FormatSecurityServerId(subject.server()));
    case AclSubject::KIND_NOT_SET:
      break;
  }
  return "";
}

bool SameMember(const MemberId& a, const MemberId& b) {
  return a.instance() == b.instance() && a.member_class() == b.member_class() &&
         a.member_code() == b.member_code();
}

bool SameSubsystem(const SubsystemId& a, const SubsystemId& b) {
  return SameMember(a.member(), b.member()) && a.subsystem_code() == b.subsystem_code();
}

bool SameService(const ServiceId& a, const ServiceId& b) {
  return SameSubsystem(a.subsystem(), b.subsystem()) && a.service_code() == b.service_code() &&
         a.service_version() == b.service_version();
}

bool SameSecurityServer(const SecurityServerId& a, const SecurityServerId& b) {
  return SameMember(a.owner(), b.owner()) && a.server_code() == b.server_code();
}

}  // namespace darvoza
