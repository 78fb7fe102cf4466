// One rule for "host:port" addresses (listen addresses, registry and security server addresses
// in configurations and anchors): where the host ends, how an IPv6 host is written, what a
// port is. Callers add their own policy (port 0 allowed for a listener, a loopback-only port).
//
//   DARVOZA_ASSIGN_OR_RETURN(HostPort a, ParseHostPort("[::1]:5500"));  // a.host == "::1"
//   FormatHostPort(a.host, 41234);                                      // "[::1]:41234"
#ifndef DARVOZA_COMMON_HOST_PORT_H_
#define DARVOZA_COMMON_HOST_PORT_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace darvoza {

struct HostPort {
  std::string host;  // an IPv6 address without its brackets
  int port = 0;      // 0..65535
};

// "host:port" or "[IPv6 address]:port". The host is not empty and holds no whitespace, control
// character, '/', '@' or '[' ']' (a ':' only inside brackets); the port is decimal digits,
// 0..65535. INVALID_ARGUMENT saying which part is wrong otherwise (the address itself is not
// repeated: callers name the setting and quote it).
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

// An address that other machines dial, published to the federation (a registry address in the
// anchor, a security server's SS-to-SS address in the global configuration): ParseHostPort, a
// port other than 0, at most kMaxDialAddressLength bytes. INVALID_ARGUMENT saying why.
inline constexpr size_t kMaxDialAddressLength = 300;
absl::StatusOr<HostPort> ParseDialAddress(absl::string_view address);

// "host:port", with brackets around an IPv6 host.
std::string FormatHostPort(absl::string_view host, int port);

// A numeric IPv4 address in 127.0.0.0/8, ::1 or "localhost".
bool IsLoopbackHost(absl::string_view host);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_HOST_PORT_H_
