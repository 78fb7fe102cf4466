// RegistryConfig: the darvoza-registry daemon's settings, read from a TOML file.
//
//   data_dir = "/var/lib/darvoza-registry"   # required: keys, certificates, database
//   public_listen = "0.0.0.0:4400"           # TLS: registration, configuration, witness
//   admin_socket = ""                        # default <data_dir>/admin.sock (mode 0600)
//   ops_listen = "127.0.0.1:4402"            # health + metrics; "" turns it off
//   metrics_listen = ""                      # HTTP GET /metrics; "" = ops host, next port
//                                            # (4403); "off" = off (common/metrics.h)
//   conf_validity_seconds = 600              # how long a signed configuration lives
//   auto_approve = false                     # demos and tests only; logged loudly
//   auto_approve_renewals = true             # renewals signed with the current auth key
//   cert_validity_days = 365                 # certificates issued to security servers
//   max_request_bytes = 1048576              # largest request the public port accepts
//   max_pending_requests = 1000              # requests waiting for an administrator, at most
//   log_level = "info"                       # debug, info, warn, error; re-read on SIGHUP
#ifndef DARVOZA_REGISTRY_CONFIG_H_
#define DARVOZA_REGISTRY_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "common/grpc_server.h"
#include "common/log.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace darvoza::registry {

// Far more requests than an instance's administrators decide in a day, far fewer than fill a
// disk: the cap that stops anyone reaching the public port from growing the store unbounded.
inline constexpr int64_t kDefaultMaxPendingRequests = 1000;

struct RegistryConfig {
  std::string data_dir;
  std::string public_listen = "0.0.0.0:4400";
  std::string admin_socket;  // Default: <data_dir>/admin.sock
  std::string ops_listen = "127.0.0.1:4402";
  std::string metrics_listen;  // MetricsListenAddress() decides what "" means
  absl::Duration conf_validity = absl::Seconds(600);
  bool auto_approve = false;
  bool auto_approve_renewals = true;
  absl::Duration cert_validity = absl::Hours(24 * 365);
  int max_request_bytes = 1 << 20;
  int64_t max_pending_requests = kDefaultMaxPendingRequests;
  ConnectionLimits connection_limits;  // every port (common/grpc_server.h)
  std::optional<log::Level> log_level;  // absent: info (or --log-level)

  // admin_socket, or its default.
  std::string AdminSocketPath() const;
};

// Parses TOML text. INVALID_ARGUMENT naming the key and what is wrong.
absl::StatusOr<RegistryConfig> ParseRegistryConfig(absl::string_view toml_text);
// Reads and parses a file. NOT_FOUND when missing.
absl::StatusOr<RegistryConfig> LoadRegistryConfig(const std::string& path);

// A TOML text for `config` (what `registry init` writes as <data_dir>/registry.toml).
std::string FormatRegistryConfig(const RegistryConfig& config);

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_CONFIG_H_
