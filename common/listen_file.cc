#include "common/listen_file.h"

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/host_port.h"
#include "common/status_macros.h"

namespace darvoza {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// Reads a JSON string starting at json[*pos] == '"'; advances *pos past it.
bool ReadJsonString(const std::string& json, size_t* pos, std::string* out) {
  if (*pos >= json.size() || json[*pos] != '"') return false;
  out->clear();
  for (++*pos; *pos < json.size(); ++*pos) {
    char c = json[*pos];
    if (c == '"') {
      ++*pos;
      return true;
    }
    if (c == '\\' && *pos + 1 < json.size()) c = json[++*pos];
    out->push_back(c);
  }
  return false;
}

void SkipSpace(const std::string& json, size_t* pos) {
  while (*pos < json.size() && (json[*pos] == ' ' || json[*pos] == '\n')) ++*pos;
}

}  // namespace

std::string WithBoundPort(const std::string& listen, int port) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(listen);
  // Only addresses that were bound reach here, so they parse; keep the text as given if not.
  return parsed.ok() ? FormatHostPort(parsed->host, port) : listen;
}

std::string ListenFilePath(const std::string& data_dir) { return data_dir + "/listen.json"; }

absl::Status WriteListenFile(const std::string& data_dir,
                             const std::vector<std::pair<std::string, std::string>>& addresses) {
  std::string json = "{";
  for (const auto& [name, address] : addresses) {
    absl::StrAppend(&json, json.size() > 1 ? ", " : "", JsonString(name), ": ", JsonString(address));
  }
  json += "}\n";
  return WriteFileAtomically(ListenFilePath(data_dir), json, 0644);
}

absl::StatusOr<std::map<std::string, std::string>> ReadListenFile(const std::string& data_dir) {
  const std::string path = ListenFilePath(data_dir);
  DARVOZA_ASSIGN_OR_RETURN(std::string json, ReadWholeFile(path));
  std::map<std::string, std::string> out;
  size_t pos = 0;
  SkipSpace(json, &pos);
  if (pos >= json.size() || json[pos] != '{') {
    return absl::DataLossError(absl::StrCat(path, " is not a JSON object"));
  }
  ++pos;
  while (true) {
    SkipSpace(json, &pos);
    if (pos < json.size() && json[pos] == '}') return out;
    std::string name, value;
    if (!ReadJsonString(json, &pos, &name)) break;
    SkipSpace(json, &pos);
    if (pos >= json.size() || json[pos] != ':') break;
    ++pos;
    SkipSpace(json, &pos);
    if (!ReadJsonString(json, &pos, &value)) break;
    out[name] = value;
    SkipSpace(json, &pos);
    if (pos < json.size() && json[pos] == ',') ++pos;
  }
  return absl::DataLossError(absl::StrCat(path, " is not a flat JSON object of strings"));
}

}  // namespace darvoza
