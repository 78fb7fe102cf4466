#include "common/outside_values.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/faults.h"
#include "common/identifiers.h"

namespace darvoza {
namespace {

absl::Status Invalid(absl::string_view message) {
  return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest, message);
}

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

bool IsPrintable(unsigned char c) { return c >= 0x20 && c <= 0x7e; }

// One part of a method path: protobuf's identifier rule.
bool IsProtoIdentifier(absl::string_view part) {
  if (part.empty()) return false;
  const char first = part[0];
  if (!((first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z') || first == '_')) {
    return false;
  }
  for (char c : part) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '_')) {
      return false;
    }
  }
  return true;
}

bool IsDottedProtoName(absl::string_view name) {
  for (absl::string_view part : absl::StrSplit(name, '.')) {
    if (!IsProtoIdentifier(part)) return false;
  }
  return true;
}

}  // namespace

size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

namespace {

bool IsTokenChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes once; false on a malformed escape.
bool PercentDecode(absl::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// Printable ASCII without space and without any of `refused`; escapes well formed.
absl::Status ValidateUriText(absl::string_view what, absl::string_view text,
                             absl::string_view refused) {
  if (text.size() > kMaxHttpTargetBytes) {
    return Invalid(absl::StrCat("the ", what, " is longer than ", kMaxHttpTargetBytes, " bytes"));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c <= 0x20 || c >= 0x7f || refused.find(text[i]) != absl::string_view::npos) {
      return Invalid(absl::StrCat("the ", what, " holds a character that is not allowed there "
                                  "at offset ", i));
    }
    if (c == '%' && (i + 2 >= text.size() || HexValue(text[i + 1]) < 0 ||
                     HexValue(text[i + 2]) < 0)) {
      return Invalid(absl::StrCat("the ", what, " holds a malformed %-escape at offset ", i));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateMetadataEntry(absl::string_view key, absl::string_view value) {
  if (key.empty() || key.size() > kMaxMetadataKeyBytes) {
    return Invalid(absl::StrCat("a metadata key is empty or longer than ", kMaxMetadataKeyBytes,
                                " bytes"));
  }
  for (char c : key) {
    // The key is not quoted: it failed the check that would make it safe to show.
    if (!IsKeyChar(c)) return Invalid("a metadata key holds a character outside [a-z0-9._-]");
  }
  const bool protocol = absl::StartsWith(key, "x-road-");
  const size_t max_value = protocol ? kMaxProtocolValueBytes : kMaxMetadataValueBytes;
  if (value.size() > max_value) {
    return Invalid(absl::StrCat("metadata ", key, " is longer than ", max_value, " bytes"));
  }
  if (absl::EndsWith(key, "-bin")) return absl::OkStatus();
  for (size_t i = 0; i < value.size(); ++i) {
    if (!IsPrintable(static_cast<unsigned char>(value[i]))) {
      return Invalid(absl::StrCat("metadata ", key, " holds a byte outside printable ASCII "
                                  "(0x20-0x7E) at offset ", i));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ServiceCodeFromMethodPath(absl::string_view path) {
  static constexpr char kShape[] = "the gRPC method path is not /package.Service/Method";
  if (path.size() > kMaxMethodPathBytes) {
    return Invalid(absl::StrCat("the gRPC method path is longer than ", kMaxMethodPathBytes,
                                " bytes"));
  }
  if (path.size() < 4 || path[0] != '/') return Invalid(kShape);
  absl::string_view rest = path.substr(1);
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) return Invalid(kShape);
  absl::string_view service = rest.substr(0, slash);
  absl::string_view method = rest.substr(slash + 1);
  if (!IsDottedProtoName(service) || !IsProtoIdentifier(method)) {
    return Invalid(absl::StrCat(kShape, " (each part [A-Za-z_][A-Za-z0-9_]*)"));
  }
  return absl::StrCat(service, ".", method);
}

absl::StatusOr<std::string> MethodPathFromServiceCode(absl::string_view service_code) {
  const size_t dot = service_code.rfind('.');
  if (dot == absl::string_view::npos) {
    return Invalid("the service code is not package.Service.Method");
  }
  std::string path =
      absl::StrCat("/", service_code.substr(0, dot), "/", service_code.substr(dot + 1));
  // The round trip applies the one path rule to what we are about to call.
  auto back = ServiceCodeFromMethodPath(path);
  if (!back.ok()) return back.status();
  return path;
}

absl::Status ValidateStatusMessage(absl::string_view message) {
  if (message.size() > kMaxStatusMessageBytes) {
    return Invalid(absl::StrCat("the status message is longer than ", kMaxStatusMessageBytes,
                                " bytes"));
  }
  for (size_t i = 0; i < message.size();) {
    const size_t n = Utf8SequenceLength(message, i);
    if (n == 0) {
      return Invalid(absl::StrCat("the status message is not valid UTF-8 at offset ", i));
    }
    const unsigned char c = static_cast<unsigned char>(message[i]);
    if (n == 1 && ((c < 0x20 && c != '\t') || c == 0x7f)) {
      return Invalid(absl::StrCat("the status message holds a control character at offset ", i));
    }
    i += n;
  }
  return absl::OkStatus();
}

absl::Status ValidateHttpMethod(absl::string_view method) {
  if (method.empty() || method.size() > kMaxHttpMethodBytes) {
    return Invalid(absl::StrCat("the HTTP method is empty or longer than ", kMaxHttpMethodBytes,
                                " bytes"));
  }
  for (char c : method) {
    if (!IsTokenChar(c)) return Invalid("the HTTP method holds a character outside tchar");
  }
  return absl::OkStatus();
}

absl::Status ValidateHttpPath(absl::string_view path) {
  if (!path.empty() && path[0] != '/') return Invalid("the request path does not start with /");
  if (absl::Status text = ValidateUriText("request path", path, "?#\\"); !text.ok()) return text;
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    std::string decoded;
    if (!PercentDecode(segment, &decoded)) return Invalid("the request path is malformed");
    // Decoded too ("%2E%2E", "..%2F"): a backend that decodes before resolving must not
    // climb out of its base.
    for (absl::string_view part : absl::StrSplit(decoded, absl::ByAnyChar("/\\"))) {
      if (part == "." || part == "..") {
        return Invalid("the request path holds a . or .. segment");
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateHttpQuery(absl::string_view query) {
  return ValidateUriText("query", query, "#");
}

absl::StatusOr<std::string> DecodeIdentifierPart(absl::string_view encoded) {
  std::string decoded;
  if (encoded.size() > 3 * 255 || !PercentDecode(encoded, &decoded)) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidIdentifier,
                 "an identifier part is too long or holds a malformed %-escape");
  }
  if (absl::Status valid = ValidateIdentifierPart(decoded); !valid.ok()) return valid;
  return decoded;
}

absl::StatusOr<std::string> DecodeIdentifierText(absl::string_view encoded) {
  std::string out;
  for (absl::string_view part : absl::StrSplit(encoded, '/')) {
    auto decoded = DecodeIdentifierPart(part);
    if (!decoded.ok()) return decoded.status();
    absl::StrAppend(&out, out.empty() ? "" : "/", *decoded);
  }
  return out;
}

}  // namespace darvoza
