// Fuzz target for common/outside_values: the one check of values from outside.
//
// Properties checked on every input, beyond "does not crash":
//  - an accepted non-binary metadata value holds only bytes 0x20-0x7E (what gRPC 1.51 can send
//    without aborting) and is within its bound; an accepted key only [a-z0-9._-];
//  - an accepted method path round-trips exactly through its service code;
//  - an accepted status message holds no byte below 0x20 except tab, nor 0x7F.
// The first byte picks the key kind; the rest is split at the first 0x00 into key and value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "common/outside_values.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t nul = text.find('\0');
  const std::string key = nul == std::string::npos ? "x-road-id" : text.substr(0, nul);
  const std::string value = nul == std::string::npos ? text : text.substr(nul + 1);
  if (darvoza::ValidateMetadataEntry(key, value).ok()) {
    Require(!key.empty() && key.size() <= darvoza::kMaxMetadataKeyBytes);
    for (char c : key) {
      Require((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.');
    }
    Require(value.size() <= darvoza::kMaxMetadataValueBytes);
    if (absl::StartsWith(key, "x-road-")) Require(value.size() <= darvoza::kMaxProtocolValueBytes);
    if (!absl::EndsWith(key, "-bin")) {
      for (unsigned char c : value) Require(c >= 0x20 && c <= 0x7e);
    }
  }
  auto code = darvoza::ServiceCodeFromMethodPath(text);
  if (code.ok()) {
    auto path = darvoza::MethodPathFromServiceCode(*code);
    Require(path.ok() && *path == text);
    for (char c : text) Require(c == '/' || c == '.' || c == '_' || (c >= '0' && c <= '9') ||
                                (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
  }
  if (darvoza::ValidateStatusMessage(text).ok()) {
    Require(text.size() <= darvoza::kMaxStatusMessageBytes);
    for (unsigned char c : text) Require(c == '\t' || (c >= 0x20 && c != 0x7f));
  }
  return 0;
}
