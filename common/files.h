// Small file helpers for the daemons' data directories (keys, certificates, anchors,
// configurations): whole-file reads and crash-safe writes.
#ifndef DARVOZA_COMMON_FILES_H_
#define DARVOZA_COMMON_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace darvoza {

// Writes `contents` to `path` through a temporary file in the same directory that is fsynced
// and renamed, created with `mode`, then fsyncs the directory: on OK the new file survives a
// power cut. INTERNAL naming the path on failure.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents, int mode);
// The whole file. NOT_FOUND when missing, INTERNAL on other errors.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);
// mkdir -p; the last component gets `mode`.
absl::Status MakeDirectory(const std::string& path, int mode);
bool FileExists(const std::string& path);
// Whether `path` is a directory (symbolic links followed). false when nothing is there;
// INVALID_ARGUMENT naming the path when it cannot be looked at (too long, a symbolic link
// loop, a component that is not searchable).
absl::StatusOr<bool> IsDirectory(const std::string& path);
// rename(2). INTERNAL on failure.
absl::Status RenameFile(const std::string& from, const std::string& to);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_FILES_H_
