// SsConfig: the darvoza-ss daemon's settings, read from a TOML file (`ss init` writes
// <data dir>/ss.toml; deploy/ss.toml is an annotated example).
//
//   data_dir = "/var/lib/darvoza-ss"      # required: keys, certificates, state, audit log
//   server_id = "UZ/GOV/70000001/ss1"      # required
//   anchor = ""                           # default <data_dir>/anchor.bin
//   ss_listen = "0.0.0.0:5500"            # SS↔SS mTLS
//   ss_address = ""                       # host:port other SSs dial; default ss_listen
//   client_listen = "127.0.0.1:5580"      # plaintext client port; loopback only; "" = off
//   client_tls_listen = "0.0.0.0:5543"    # client mTLS port; "" = off
//   rest_listen = ""                      # plaintext REST (PR-REST) port, loopback only, e.g.
//                                         # "127.0.0.1:5581"; "" = off (the default)
//   rest_tls_listen = ""                  # REST (PR-REST) over TLS 1.3 with the IS's certificate
//                                         # pinned, serving client_tls_listen's key and
//                                         # certificate, e.g. "0.0.0.0:5582"; "" = off (default)
//   admin_socket = ""                     # default <data_dir>/admin.sock (mode 0600)
//   ops_listen = "127.0.0.1:5590"         # health + metrics; "" = off
//   metrics_listen = ""                   # HTTP GET /metrics; "" = ops host, next port
//                                         # (5591); "off" = off (common/metrics.h)
//   registry_addresses = []               # default: the anchor's
//   conf_poll_interval_seconds = 60       # fallback poll; the watch stream is the fast path
//   renewal_margin_days = 30              # renew certificates this long before they expire
//   renewal_margin_seconds = 0            # (tests) overrides renewal_margin_days when > 0
//   renewal_check_interval_seconds = 3600 # how often (real time) expiry is looked at
//   expiry_warning_days = 45              # status/log warnings this long before expiry
//   tls_refresh_seconds = 5               # how often gRPC re-reads the TLS key/certificate
//   log_level = "info"                    # debug, info, warn, error; re-read on SIGHUP
//   batch_signatures = true               # sign what queued under load with one signature
//                                         # (docs/design.md §8); false: one per message
#ifndef DARVOZA_SECURITY_SERVER_CONFIG_H_
#define DARVOZA_SECURITY_SERVER_CONFIG_H_

#include <optional>
#include <string>
#include <vector>

#include "common/grpc_server.h"
#include "common/log.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace darvoza::ss {

struct SsConfig {
  std::string data_dir;
  std::string server_id;
  std::string anchor;
  std::string ss_listen = "0.0.0.0:5500";
  std::string ss_address;
  std::string client_listen = "127.0.0.1:5580";
  std::string client_tls_listen = "0.0.0.0:5543";
  std::string rest_listen;
  std::string rest_tls_listen;
  std::string admin_socket;
  std::string ops_listen = "127.0.0.1:5590";
  std::string metrics_listen;  // MetricsListenAddress() decides what "" means
  std::vector<std::string> registry_addresses;
  absl::Duration conf_poll_interval = absl::Seconds(60);
  absl::Duration renewal_margin = absl::Hours(24 * 30);
  absl::Duration renewal_check_interval = absl::Hours(1);
  absl::Duration expiry_warning = absl::Hours(24 * 45);
  int tls_refresh_seconds = 5;
  bool batch_signatures = true;
  ConnectionLimits connection_limits;  // every port (common/grpc_server.h)
  std::optional<log::Level> log_level;  // absent: info (or --log-level)

  std::string AnchorPath() const;       // anchor, or its default
  std::string AdminSocketPath() const;  // admin_socket, or its default
  std::string AdvertisedAddress() const;  // ss_address, or ss_listen
};

// Parses TOML text. INVALID_ARGUMENT naming the key and what is wrong (unknown keys too).
absl::StatusOr<SsConfig> ParseSsConfig(absl::string_view toml_text);
// Reads and parses a file. NOT_FOUND when missing.
absl::StatusOr<SsConfig> LoadSsConfig(const std::string& path);
// TOML text for `config` (what `ss init` writes).
std::string FormatSsConfig(const SsConfig& config);
// <data_dir>/ss.toml
std::string SsConfigPath(const std::string& data_dir);

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_CONFIG_H_
