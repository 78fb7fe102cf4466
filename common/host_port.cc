#include "common/host_port.h"

#include <arpa/inet.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace darvoza {

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find("]:");
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("an IPv6 address is written [address]:port");
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    if (host.find_first_not_of("0123456789abcdefABCDEF:.") != absl::string_view::npos) {
      return absl::InvalidArgumentError("inside [ ] only an IPv6 address may stand");
    }
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError("expected host:port");
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (absl::StrContains(host, ':')) {
      return absl::InvalidArgumentError("an IPv6 address is written [address]:port");
    }
  }
  if (host.empty()) return absl::InvalidArgumentError("the host is missing before ':port'");
  for (char c : host) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '/' || c == '@' || c == '[' || c == ']') {
      return absl::InvalidArgumentError(
          "the host holds a character no host name or address has (whitespace, a control "
          "character, '/', '@', '[' or ']')");
    }
  }
  HostPort result;
  result.host = std::string(host);
  const bool digits = !port.empty() && port.size() <= 5 &&
                      port.find_first_not_of("0123456789") == absl::string_view::npos;
  if (!digits || !absl::SimpleAtoi(port, &result.port) || result.port > 65535) {
    return absl::InvalidArgumentError("the port is not a number from 0 to 65535");
  }
  return result;
}

absl::StatusOr<HostPort> ParseDialAddress(absl::string_view address) {
  if (address.size() > kMaxDialAddressLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("longer than ", kMaxDialAddressLength, " bytes"));
  }
  absl::StatusOr<HostPort> parsed = ParseHostPort(address);
  if (parsed.ok() && parsed->port == 0) {
    return absl::InvalidArgumentError("port 0 cannot be dialled");
  }
  return parsed;
}

std::string FormatHostPort(absl::string_view host, int port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

bool IsLoopbackHost(absl::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  // A numeric IPv4 address in 127/8, not a name that starts like one ("127.evil.example").
  in_addr v4{};
  const std::string text(host);
  return inet_pton(AF_INET, text.c_str(), &v4) == 1 &&
         (ntohl(v4.s_addr) >> 24) == 127;
}

}  // namespace darvoza
