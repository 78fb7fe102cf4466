// Helpers shared by the `darvoza` command groups.
#ifndef DARVOZA_TOOLS_CLI_CLI_UTIL_H_
#define DARVOZA_TOOLS_CLI_CLI_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace darvoza::cli {

// Prints "error: <message> [<fault code>]" to stderr and, when the daemon could not be reached
// (UNAVAILABLE), `unreachable_hint` (how to start it). Returns 1, the exit status of a failure
// the user can fix.
int PrintFailure(const absl::Status& status, absl::string_view unreachable_hint);

}  // namespace darvoza::cli

#endif  // DARVOZA_TOOLS_CLI_CLI_UTIL_H_
