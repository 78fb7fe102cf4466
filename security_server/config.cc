#include "security_server/config.h"

#include <sstream>

#include <toml++/toml.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/host_port.h"
#include "common/identifiers.h"
#include "common/files.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "common/toml_config.h"

namespace darvoza::ss {

std::string SsConfig::AnchorPath() const {
  return anchor.empty() ? data_dir + "/anchor.bin" : anchor;
}
std::string SsConfig::AdminSocketPath() const {
  return admin_socket.empty() ? data_dir + "/admin.sock" : admin_socket;
}
std::string SsConfig::AdvertisedAddress() const {
  return ss_address.empty() ? ss_listen : ss_address;
}
std::string SsConfigPath(const std::string& data_dir) { return data_dir + "/ss.toml"; }

absl::StatusOr<SsConfig> ParseSsConfig(absl::string_view toml_text) {
  DARVOZA_ASSIGN_OR_RETURN(
      TomlConfig toml,
      TomlConfig::Parse(toml_text, "ss config",
                        {"data_dir", "server_id", "anchor", "ss_listen", "ss_address",
                         "client_listen", "client_tls_listen", "rest_listen", "rest_tls_listen",
                         "admin_socket", "ops_listen", "metrics_listen",
                         "registry_addresses", "conf_poll_interval_seconds",
                         "renewal_margin_days", "renewal_margin_seconds",
                         "renewal_check_interval_seconds", "expiry_warning_days",
                         "tls_refresh_seconds", "batch_signatures", log::kLogLevelKey,
                         DARVOZA_CONNECTION_LIMIT_KEYS}));
  SsConfig config;
  DARVOZA_RETURN_IF_ERROR(toml.String("data_dir", &config.data_dir));
  DARVOZA_RETURN_IF_ERROR(toml.String("server_id", &config.server_id));
  DARVOZA_RETURN_IF_ERROR(toml.String("anchor", &config.anchor));
  DARVOZA_RETURN_IF_ERROR(toml.String("ss_listen", &config.ss_listen));
  DARVOZA_RETURN_IF_ERROR(toml.String("ss_address", &config.ss_address));
  DARVOZA_RETURN_IF_ERROR(toml.String("client_listen", &config.client_listen));
  DARVOZA_RETURN_IF_ERROR(toml.String("client_tls_listen", &config.client_tls_listen));
  DARVOZA_RETURN_IF_ERROR(toml.String("rest_listen", &config.rest_listen));
  DARVOZA_RETURN_IF_ERROR(toml.String("rest_tls_listen", &config.rest_tls_listen));
  DARVOZA_RETURN_IF_ERROR(toml.String("admin_socket", &config.admin_socket));
  DARVOZA_RETURN_IF_ERROR(toml.String("ops_listen", &config.ops_listen));
  DARVOZA_RETURN_IF_ERROR(toml.String("metrics_listen", &config.metrics_listen));
  DARVOZA_RETURN_IF_ERROR(MetricsListenAddress(config.metrics_listen, config.ops_listen).status());
  DARVOZA_RETURN_IF_ERROR(toml.StringArray("registry_addresses", &config.registry_addresses));
  int64_t poll = 60, margin_days = 30, margin_seconds = 0, check = 3600, warn_days = 45,
          refresh = 5;
  DARVOZA_RETURN_IF_ERROR(toml.Integer("conf_poll_interval_seconds", 1, 86400, &poll));
  DARVOZA_RETURN_IF_ERROR(toml.Integer("renewal_margin_days", 1, 3650, &margin_days));
  DARVOZA_RETURN_IF_ERROR(toml.Integer("renewal_margin_seconds", 0, 3650LL * 86400, &margin_seconds));
  DARVOZA_RETURN_IF_ERROR(toml.Integer("renewal_check_interval_seconds", 1, 86400, &check));
  DARVOZA_RETURN_IF_ERROR(toml.Integer("expiry_warning_days", 1, 3650, &warn_days));
  DARVOZA_RETURN_IF_ERROR(toml.Integer("tls_refresh_seconds", 1, 3600, &refresh));
  DARVOZA_RETURN_IF_ERROR(toml.Bool("batch_signatures", &config.batch_signatures));
  DARVOZA_RETURN_IF_ERROR(ReadConnectionLimits(toml, &config.connection_limits));
  DARVOZA_RETURN_IF_ERROR(log::ReadLogLevel(toml, &config.log_level));
  config.conf_poll_interval = absl::Seconds(poll);
  config.renewal_margin =
      margin_seconds > 0 ? absl::Seconds(margin_seconds) : absl::Hours(24 * margin_days);
  config.renewal_check_interval = absl::Seconds(check);
  config.expiry_warning = absl::Hours(24 * warn_days);
  config.tls_refresh_seconds = static_cast<int>(refresh);
  if (config.data_dir.empty()) return absl::InvalidArgumentError("ss config: 'data_dir' is required");
  if (config.server_id.empty()) {
    return absl::InvalidArgumentError("ss config: 'server_id' is required");
  }
  DARVOZA_RETURN_IF_ERROR(ParseSecurityServerId(config.server_id).status());
  // Addresses are checked here, where the file enters, so that a typo names its key instead
  // of failing later in a listener or a dial.
  for (const auto& [key, address] :
       {std::pair<const char*, const std::string*>{"ss_listen", &config.ss_listen},
        {"client_listen", &config.client_listen},
        {"client_tls_listen", &config.client_tls_listen},
        {"rest_listen", &config.rest_listen},
        {"rest_tls_listen", &config.rest_tls_listen},
        {"ops_listen", &config.ops_listen}}) {
    if (address->empty()) continue;
    if (auto parsed = ParseHostPort(*address); !parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("ss config: ", key, " '",
                                                     absl::CHexEscape(*address),
                                                     "' is not host:port: ",
                                                     parsed.status().message()));
    }
  }
  std::vector<std::pair<const char*, std::string>> dialled;
  for (const auto& a : config.registry_addresses) dialled.emplace_back("registry_addresses", a);
  if (!config.ss_address.empty()) dialled.emplace_back("ss_address", config.ss_address);
  for (const auto& [key, address] : dialled) {
    if (auto parsed = ParseDialAddress(address); !parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("ss config: ", key, " '",
                                                     absl::CHexEscape(address),
                                                     "' is not host:port: ",
                                                     parsed.status().message()));
    }
  }
  if (config.AdminSocketPath().size() > 107) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ss config: the admin socket path ", config.AdminSocketPath(),
        " is longer than the 107 bytes a Unix socket allows; set 'admin_socket'"));
  }
  return config;
}

absl::StatusOr<SsConfig> LoadSsConfig(const std::string& path) {
  DARVOZA_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseSsConfig(text);
}

std::string FormatSsConfig(const SsConfig& c) {
  auto q = [](const std::string& s) {
    toml::value<std::string> v(s);
    std::ostringstream out;
    out << v;
    return out.str();
  };
  std::vector<std::string> registries;
  for (const auto& r : c.registry_addresses) registries.push_back(q(r));
  std::string out = absl::StrCat(
      "# darvoza-ss configuration (docs/operator.md)\n", "data_dir = ", q(c.data_dir), "\n",
      "server_id = ", q(c.server_id), "\n", "anchor = ", q(c.anchor), "\n",
      "ss_listen = ", q(c.ss_listen), "\n", "ss_address = ", q(c.ss_address), "\n",
      "client_listen = ", q(c.client_listen), "\n", "client_tls_listen = ",
      q(c.client_tls_listen), "\n", "rest_listen = ", q(c.rest_listen), "\n",
      "rest_tls_listen = ", q(c.rest_tls_listen), "\n",
      "admin_socket = ", q(c.admin_socket), "\n",
      "ops_listen = ", q(c.ops_listen), "\n", "metrics_listen = ", q(c.metrics_listen), "\n",
      "registry_addresses = [",
      absl::StrJoin(registries, ", "), "]\n", "conf_poll_interval_seconds = ",
      absl::ToInt64Seconds(c.conf_poll_interval), "\n");
  if (c.renewal_margin < absl::Hours(24) ||
      c.renewal_margin % absl::Hours(24) != absl::ZeroDuration()) {
    absl::StrAppend(&out, "renewal_margin_seconds = ", absl::ToInt64Seconds(c.renewal_margin),
                    "\n");
  } else {
    absl::StrAppend(&out, "renewal_margin_days = ", absl::ToInt64Hours(c.renewal_margin) / 24,
                    "\n");
  }
  absl::StrAppend(&out, "renewal_check_interval_seconds = ",
                  absl::ToInt64Seconds(c.renewal_check_interval), "\n",
                  "expiry_warning_days = ", absl::ToInt64Hours(c.expiry_warning) / 24, "\n",
                  "tls_refresh_seconds = ", c.tls_refresh_seconds, "\n");
  if (!c.batch_signatures) absl::StrAppend(&out, "batch_signatures = false\n");
  if (c.log_level) {
    absl::StrAppend(&out, log::kLogLevelKey, " = ", q(std::string(log::LevelName(*c.log_level))),
                    "\n");
  }
  return out;
}

}  // namespace darvoza::ss
