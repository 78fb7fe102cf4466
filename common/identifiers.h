// Identifiers of a Darvoza instance (docs/design.md §2): strict parsing and formatting of the text
// forms, and conversion to and from the structured protobuf forms.
//
// Text forms are '/'-separated: member UZ/GOV/70000001, subsystem UZ/GOV/70000001/tax-registry,
// service UZ/GOV/70000001/tax-registry/getTaxDebt[/v1], security server UZ/GOV/70000001/ss1,
// global group UZ/health-agencies, local group a single name. Where the kind is not clear from
// context the text carries a prefix: subsystem:, member:, service:, server:, globalgroup:,
// localgroup:. Each part is 1-255 characters of [A-Za-z0-9._-] and is neither "." nor "..".
// Every rejection is INVALID_ARGUMENT with fault Client.InvalidIdentifier.
//
//   DARVOZA_ASSIGN_OR_RETURN(SubsystemId client, ParseSubsystemId("UZ/GOV/70000001/tax"));
//   std::string text = FormatSubsystemId(client);
//   DARVOZA_ASSIGN_OR_RETURN(AclSubject subject, ParseAclSubject("member:UZ/GOV/70000001"));
#ifndef DARVOZA_COMMON_IDENTIFIERS_H_
#define DARVOZA_COMMON_IDENTIFIERS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/identifiers.pb.h"

namespace darvoza {

using v1::AclSubject;
using v1::GlobalGroupId;
using v1::LocalGroupId;
using v1::MemberId;
using v1::SecurityServerId;
using v1::ServiceId;
using v1::SubsystemId;

inline constexpr size_t kMaxIdentifierPartLength = 255;

// OK when `part` is one valid identifier part; otherwise INVALID_ARGUMENT saying why.
absl::Status ValidateIdentifierPart(absl::string_view part);

// Strict parsers of the plain (unprefixed) text forms.
absl::StatusOr<MemberId> ParseMemberId(absl::string_view text);
absl::StatusOr<SubsystemId> ParseSubsystemId(absl::string_view text);
// Four parts without version or five with: instance/class/code/subsystem/service[/version].
absl::StatusOr<ServiceId> ParseServiceId(absl::string_view text);
absl::StatusOr<SecurityServerId> ParseSecurityServerId(absl::string_view text);
absl::StatusOr<GlobalGroupId> ParseGlobalGroupId(absl::string_view text);
absl::StatusOr<LocalGroupId> ParseLocalGroupId(absl::string_view text);

// Plain text forms. REQUIRES: the id is valid (Validate* below); formatting never fails.
std::string FormatMemberId(const MemberId& id);
std::string FormatSubsystemId(const SubsystemId& id);
std::string FormatServiceId(const ServiceId& id);
std::string FormatSecurityServerId(const SecurityServerId& id);
std::string FormatGlobalGroupId(const GlobalGroupId& id);
std::string FormatLocalGroupId(const LocalGroupId& id);

// Checks of structured ids that arrive in protobuf messages from peers.
absl::Status ValidateMemberId(const MemberId& id);
absl::Status ValidateSubsystemId(const SubsystemId& id);
absl::Status ValidateServiceId(const ServiceId& id);
absl::Status ValidateSecurityServerId(const SecurityServerId& id);
absl::Status ValidateGlobalGroupId(const GlobalGroupId& id);

// The kinds a text can be.
enum class IdentifierKind {
  kMember,
  kSubsystem,
  kService,
  kSecurityServer,
  kGlobalGroup,
  kLocalGroup,
};

// "member", "subsystem", "service", "server", "globalgroup", "localgroup": the prefixes.
absl::string_view IdentifierKindName(IdentifierKind kind);

// One reading of a text.
struct IdentifierReading {
  IdentifierKind kind;
  std::vector<std::string> part_names;  // e.g. {"instance", "member class", ...}
  std::vector<std::string> parts;
};

// Every kind `text` can be. A prefixed text ("server:UZ/GOV/1/ss1") has one reading. An
// unprefixed text has each reading whose shape fits (a 4-part text is a subsystem or a
// security server). INVALID_ARGUMENT when it fits none, with the reason.
absl::StatusOr<std::vector<IdentifierReading>> ReadIdentifier(absl::string_view text);

// ACL subjects always carry a prefix: subsystem:, member:, globalgroup:, localgroup:, server:.
absl::StatusOr<AclSubject> ParseAclSubject(absl::string_view text);
std::string FormatAclSubject(const AclSubject& subject);

// Equality of structured ids (protobuf messages have no operator==).
bool SameMember(const MemberId& a, const MemberId& b);
bool SameSubsystem(const SubsystemId& a, const SubsystemId& b);
bool SameService(const ServiceId& a, const ServiceId& b);
bool SameSecurityServer(const SecurityServerId& a, const SecurityServerId& b);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_IDENTIFIERS_H_
