#include "registry/config.h"

#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "common/toml_config.h"

namespace darvoza::registry {

std::string RegistryConfig::AdminSocketPath() const {
  return admin_socket.empty() ? data_dir + "/admin.sock" : admin_socket;
}

absl::StatusOr<RegistryConfig> ParseRegistryConfig(absl::string_view toml_text) {
  DARVOZA_ASSIGN_OR_RETURN(
      TomlConfig toml,
      TomlConfig::Parse(toml_text, "registry config",
                        {"data_dir", "public_listen", "admin_socket", "ops_listen", "metrics_listen",
                         "conf_validity_seconds", "auto_approve", "auto_approve_renewals",
                         "cert_validity_days", "max_request_bytes", "max_pending_requests",
                         log::kLogLevelKey, DARVOZA_CONNECTION_LIMIT_KEYS}));
  RegistryConfig config;
  DARVOZA_RETURN_IF_ERROR(toml.String("data_dir", &config.data_dir));
  DARVOZA_RETURN_IF_ERROR(toml.String("public_listen", &config.public_listen));
  DARVOZA_RETURN_IF_ERROR(toml.String("admin_socket", &config.admin_socket));
  DARVOZA_RETURN_IF_ERROR(toml.String("ops_listen", &config.ops_listen));
  DARVOZA_RETURN_IF_ERROR(toml.String("metrics_listen", &config.metrics_listen));
  DARVOZA_RETURN_IF_ERROR(MetricsListenAddress(config.metrics_listen, config.ops_listen).status());
  DARVOZA_RETURN_IF_ERROR(toml.Bool("auto_approve", &config.auto_approve));
  DARVOZA_RETURN_IF_ERROR(toml.Bool("auto_approve_renewals", &config.auto_approve_renewals));
  int64_t validity = absl::ToInt64Seconds(config.conf_validity);
  DARVOZA_RETURN_IF_ERROR(toml.Integer("conf_validity_seconds", 10, 366 * 86400, &validity));
  config.conf_validity = absl::Seconds(validity);
  int64_t cert_days = 365;
  DARVOZA_RETURN_IF_ERROR(toml.Integer("cert_validity_days", 1, 3650, &cert_days));
  config.cert_validity = absl::Hours(24 * cert_days);
  int64_t max_bytes = config.max_request_bytes;
  DARVOZA_RETURN_IF_ERROR(toml.Integer("max_request_bytes", 4096, 64 << 20, &max_bytes));
  config.max_request_bytes = static_cast<int>(max_bytes);
  DARVOZA_RETURN_IF_ERROR(
      toml.Integer("max_pending_requests", 1, 1000000, &config.max_pending_requests));
  DARVOZA_RETURN_IF_ERROR(ReadConnectionLimits(toml, &config.connection_limits));
  DARVOZA_RETURN_IF_ERROR(log::ReadLogLevel(toml, &config.log_level));
  if (config.data_dir.empty()) {
    return absl::InvalidArgumentError("registry config: 'data_dir' is required");
  }
  if (config.public_listen.empty()) {
    return absl::InvalidArgumentError("registry config: 'public_listen' must not be empty");
  }
  if (config.AdminSocketPath().size() > 107) {
    return absl::InvalidArgumentError(
        absl::StrCat("registry config: admin socket path ", config.AdminSocketPath(),
                     " is longer than 107 bytes; set 'admin_socket' to a shorter path"));
  }
  return config;
}

absl::StatusOr<RegistryConfig> LoadRegistryConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("registry config ", path, " cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseRegistryConfig(ss.str());
}

std::string FormatRegistryConfig(const RegistryConfig& config) {
  std::ostringstream out;
  out << "# darvoza-registry configuration (docs/registry.md)\n";
  out << "data_dir = " << toml::value<std::string>(config.data_dir) << "\n";
  out << "public_listen = " << toml::value<std::string>(config.public_listen) << "\n";
  out << "admin_socket = " << toml::value<std::string>(config.admin_socket) << "\n";
  out << "ops_listen = " << toml::value<std::string>(config.ops_listen) << "\n";
  out << "metrics_listen = " << toml::value<std::string>(config.metrics_listen) << "\n";
  out << "conf_validity_seconds = " << absl::ToInt64Seconds(config.conf_validity) << "\n";
  out << "auto_approve = " << (config.auto_approve ? "true" : "false") << "\n";
  out << "auto_approve_renewals = " << (config.auto_approve_renewals ? "true" : "false") << "\n";
  out << "cert_validity_days = " << absl::ToInt64Hours(config.cert_validity) / 24 << "\n";
  out << "max_request_bytes = " << config.max_request_bytes << "\n";
  out << "max_pending_requests = " << config.max_pending_requests << "\n";
  return out.str();
}

}  // namespace darvoza::registry
