// Strict reading of a daemon's TOML configuration file: an unknown key, or a value of the wrong
// type or out of range, is refused with a message that names the key (a typo in a security
// setting must never be silently ignored).
//
//   DARVOZA_ASSIGN_OR_RETURN(TomlConfig toml,
//                            TomlConfig::Parse(text, "ss config", {"data_dir", "ss_listen"}));
//   DARVOZA_RETURN_IF_ERROR(toml.String("data_dir", &config.data_dir));
#ifndef DARVOZA_COMMON_TOML_CONFIG_H_
#define DARVOZA_COMMON_TOML_CONFIG_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace darvoza {

class TomlConfig {
 public:
  // Parses `text`. `what` begins every message ("registry config"). INVALID_ARGUMENT for text
  // that is not TOML (with the position) or a top-level key not in `known`.
  static absl::StatusOr<TomlConfig> Parse(absl::string_view text, std::string what,
                                          std::initializer_list<const char*> known);

  // Each reads one top-level key into *out, leaving *out as it is when the key is absent.
  // INVALID_ARGUMENT naming the key when the value has the wrong type or range.
  absl::Status String(const char* key, std::string* out) const;
  absl::Status Bool(const char* key, bool* out) const;
  absl::Status Integer(const char* key, int64_t min, int64_t max, int64_t* out) const;
  absl::Status StringArray(const char* key, std::vector<std::string>* out) const;

 private:
  struct Table;
  TomlConfig(std::string what, std::shared_ptr<const Table> table);
  absl::Status Invalid(const char* key, absl::string_view must) const;

  std::string what_;
  std::shared_ptr<const Table> table_;
};

}  // namespace darvoza

#endif  // DARVOZA_COMMON_TOML_CONFIG_H_
