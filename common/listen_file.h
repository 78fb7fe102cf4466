// <data dir>/listen.json: the addresses a running daemon bound (port 0 resolved), written once
// it serves and removed at a clean shutdown, so that the CLI, tests and scripts find its ports.
// One flat JSON object of strings, the same for the registry and the security server:
//
//   {"public": "127.0.0.1:41234", "admin": "unix:/var/lib/darvoza-registry/admin.sock", ...}
#ifndef DARVOZA_COMMON_LISTEN_FILE_H_
#define DARVOZA_COMMON_LISTEN_FILE_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace darvoza {

std::string ListenFilePath(const std::string& data_dir);

// The address as bound, for a listener that knows only its port (the HTTP servers):
// "0.0.0.0:0" with port 41234 chosen -> "0.0.0.0:41234" (the host stays as configured).
std::string WithBoundPort(const std::string& listen, int port);

// Writes `addresses` (name, address), in order, atomically, mode 0644. INTERNAL on failure.
absl::Status WriteListenFile(const std::string& data_dir,
                             const std::vector<std::pair<std::string, std::string>>& addresses);

// Every (name, address) in the file. NOT_FOUND when the daemon is not running (no file).
absl::StatusOr<std::map<std::string, std::string>> ReadListenFile(const std::string& data_dir);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_LISTEN_FILE_H_
