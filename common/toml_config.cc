#include "common/toml_config.h"

#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"

namespace darvoza {

struct TomlConfig::Table {
  toml::table table;
};

TomlConfig::TomlConfig(std::string what, std::shared_ptr<const Table> table)
    : what_(std::move(what)), table_(std::move(table)) {}

absl::StatusOr<TomlConfig> TomlConfig::Parse(absl::string_view text, std::string what,
                                             std::initializer_list<const char*> known) {
  auto table = std::make_shared<Table>();
  // toml++ reports errors by exception; none leaves this function.
  try {
    table->table = toml::parse(std::string_view(text.data(), text.size()));
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << e.source().begin;
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid TOML (", where.str(),
                                                   "): ", std::string(e.description())));
  }
  for (const auto& [key, value] : table->table) {
    bool is_known = false;
    for (const char* k : known) is_known = is_known || key.str() == k;
    if (!is_known) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": unknown key '", std::string(key.str()), "'"));
    }
  }
  return TomlConfig(std::move(what), std::move(table));
}

absl::Status TomlConfig::Invalid(const char* key, absl::string_view must) const {
  return absl::InvalidArgumentError(absl::StrCat(what_, ": '", key, "' must ", must));
}

absl::Status TomlConfig::String(const char* key, std::string* out) const {
  if (!table_->table.contains(key)) return absl::OkStatus();
  auto v = table_->table[key].value<std::string>();
  if (!v) return Invalid(key, "be a string");
  *out = *v;
  return absl::OkStatus();
}

absl::Status TomlConfig::Bool(const char* key, bool* out) const {
  if (!table_->table.contains(key)) return absl::OkStatus();
  auto v = table_->table[key].value<bool>();
  if (!v) return Invalid(key, "be true or false");
  *out = *v;
  return absl::OkStatus();
}

absl::Status TomlConfig::Integer(const char* key, int64_t min, int64_t max, int64_t* out) const {
  if (!table_->table.contains(key)) return absl::OkStatus();
  auto v = table_->table[key].value<int64_t>();
  if (!v || *v < min || *v > max) {
    return Invalid(key, absl::StrCat("be an integer in [", min, ", ", max, "]"));
  }
  *out = *v;
  return absl::OkStatus();
}

absl::Status TomlConfig::StringArray(const char* key, std::vector<std::string>* out) const {
  if (!table_->table.contains(key)) return absl::OkStatus();
  const toml::array* array = table_->table[key].as_array();
  if (array == nullptr) return Invalid(key, "be an array of strings");
  std::vector<std::string> values;
  for (const auto& item : *array) {
    auto v = item.value<std::string>();
    if (!v) return Invalid(key, "be an array of strings");
    values.push_back(*v);
  }
  *out = std::move(values);
  return absl::OkStatus();
}

}  // namespace darvoza
