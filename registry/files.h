// Small file helpers for the registry's data directory.
#ifndef DARVOZA_REGISTRY_FILES_H_
#define DARVOZA_REGISTRY_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace darvoza::registry {

// Writes `contents` to `path` through a temporary file in the same directory that is fsynced
// and renamed, created with `mode`. INTERNAL naming the path on failure.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents,
                                 int mode);
// The whole file. NOT_FOUND when missing.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);
// mkdir -p with `mode` for the last component.
absl::Status MakeDirectory(const std::string& path, int mode);

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_FILES_H_
