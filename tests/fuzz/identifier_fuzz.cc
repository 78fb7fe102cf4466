// Fuzz target for identifier parsing (docs/design.md §2: "Parsing is strict and fuzzed").
//
// Properties checked on every input, beyond "does not crash":
//  - every accepted reading formats back to exactly the input text (no normalisation that
//    could let two texts name one identifier);
//  - every accepted part consists of [A-Za-z0-9._-] only and is 1..255 long;
//  - an accepted ACL subject formats back to the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_join.h"
#include "common/identifiers.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

bool PartIsClean(const std::string& part) {
  if (part.empty() || part.size() > darvoza::kMaxIdentifierPartLength) return false;
  if (part == "." || part == "..") return false;
  for (char c : part) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto readings = darvoza::ReadIdentifier(text);
  if (readings.ok()) {
    for (const auto& reading : *readings) {
      for (const auto& part : reading.parts) Require(PartIsClean(part));
      Require(reading.parts.size() == reading.part_names.size());
      std::string joined = absl::StrJoin(reading.parts, "/");
      size_t colon = text.find(':');
      std::string body = colon == std::string::npos ? text : text.substr(colon + 1);
      Require(joined == body);
    }
  }
  auto subject = darvoza::ParseAclSubject(text);
  if (subject.ok()) Require(darvoza::FormatAclSubject(*subject) == text);
  auto service = darvoza::ParseServiceId(text);
  if (service.ok()) {
    Require(darvoza::FormatServiceId(*service) == text);
    Require(darvoza::ValidateServiceId(*service).ok());
  }
  auto member = darvoza::ParseMemberId(text);
  if (member.ok()) Require(darvoza::FormatMemberId(*member) == text);
  return 0;
}
