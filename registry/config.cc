#include "registry/config.h"

#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"

namespace darvoza::registry {

std::string RegistryConfig::AdminSocketPath() const {
  return admin_socket.empty() ? data_dir + "/admin.sock" : admin_socket;
}

absl::StatusOr<RegistryConfig> ParseRegistryConfig(absl::string_view toml_text) {
  toml::table table;
  try {
    table = toml::parse(std::string_view(toml_text.data(), toml_text.size()));
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << e.source().begin;
    return absl::InvalidArgumentError(
        absl::StrCat("registry config is not valid TOML (", where.str(), "): ", std::string(e.description())));
  }
  RegistryConfig config;
  static const char* kKnown[] = {"data_dir",          "public_listen",      "admin_socket",
                                 "ops_listen",        "conf_validity_seconds", "auto_approve",
                                 "auto_approve_renewals", "cert_validity_days", "max_request_bytes"};
  for (const auto& [key, value] : table) {
    bool known = false;
    for (const char* k : kKnown) known = known || key.str() == k;
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("registry config: unknown key '", std::string(key.str()), "'"));
    }
  }
  auto str = [&](const char* key, std::string* out) -> absl::Status {
    if (!table.contains(key)) return absl::OkStatus();
    auto v = table[key].value<std::string>();
    if (!v) return absl::InvalidArgumentError(absl::StrCat("registry config: '", key, "' must be a string"));
    *out = *v;
    return absl::OkStatus();
  };
  auto boolean = [&](const char* key, bool* out) -> absl::Status {
    if (!table.contains(key)) return absl::OkStatus();
    auto v = table[key].value<bool>();
    if (!v) return absl::InvalidArgumentError(absl::StrCat("registry config: '", key, "' must be true or false"));
    *out = *v;
    return absl::OkStatus();
  };
  auto integer = [&](const char* key, int64_t min, int64_t max, int64_t* out) -> absl::Status {
    if (!table.contains(key)) return absl::OkStatus();
    auto v = table[key].value<int64_t>();
    if (!v || *v < min || *v > max) {
      return absl::InvalidArgumentError(absl::StrCat("registry config: '", key,
                                                     "' must be an integer in [", min, ", ", max, "]"));
    }
    *out = *v;
    return absl::OkStatus();
  };
  absl::Status s;
  if (!(s = str("data_dir", &config.data_dir)).ok()) return s;
  if (!(s = str("public_listen", &config.public_listen)).ok()) return s;
  if (!(s = str("admin_socket", &config.admin_socket)).ok()) return s;
  if (!(s = str("ops_listen", &config.ops_listen)).ok()) return s;
  if (!(s = boolean("auto_approve", &config.auto_approve)).ok()) return s;
  if (!(s = boolean("auto_approve_renewals", &config.auto_approve_renewals)).ok()) return s;
  int64_t validity = absl::ToInt64Seconds(config.conf_validity);
  if (!(s = integer("conf_validity_seconds", 10, 366 * 86400, &validity)).ok()) return s;
  config.conf_validity = absl::Seconds(validity);
  int64_t cert_days = 365;
  if (!(s = integer("cert_validity_days", 1, 3650, &cert_days)).ok()) return s;
  config.cert_validity = absl::Hours(24 * cert_days);
  int64_t max_bytes = config.max_request_bytes;
  if (!(s = integer("max_request_bytes", 4096, 64 << 20, &max_bytes)).ok()) return s;
  config.max_request_bytes = static_cast<int>(max_bytes);
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
  out << "conf_validity_seconds = " << absl::ToInt64Seconds(config.conf_validity) << "\n";
  out << "auto_approve = " << (config.auto_approve ? "true" : "false") << "\n";
  out << "auto_approve_renewals = " << (config.auto_approve_renewals ? "true" : "false") << "\n";
  out << "cert_validity_days = " << absl::ToInt64Hours(config.cert_validity) / 24 << "\n";
  out << "max_request_bytes = " << config.max_request_bytes << "\n";
  return out.str();
}

}  // namespace darvoza::registry
