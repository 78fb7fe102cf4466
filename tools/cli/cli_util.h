// Helpers shared by the `darvoza` command groups.
#ifndef DARVOZA_TOOLS_CLI_CLI_UTIL_H_
#define DARVOZA_TOOLS_CLI_CLI_UTIL_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/crypto/x509.h"

namespace darvoza::cli {

// Prints "error: <message> [<fault code>]" to stderr and, when the daemon could not be reached
// (UNAVAILABLE), `unreachable_hint` (how to start it). Returns 1, the exit status of a failure
// the user can fix.
int PrintFailure(const absl::Status& status, absl::string_view unreachable_hint);

// The certificate an information system presents on the client mTLS port, read from `path`
// (PEM or DER) to be pinned. It must parse and be valid at `now`: a pin of anything else would
// only fail later, at the IS's first call. Self-signed certificates are fine (openssl marks
// them CA:TRUE by default): only the pin counts. NOT_FOUND or INVALID_ARGUMENT naming the file
// and what is wrong.
absl::StatusOr<std::shared_ptr<const crypto::Certificate>> LoadClientCertificate(
    const std::string& path, absl::Time now);

}  // namespace darvoza::cli

#endif  // DARVOZA_TOOLS_CLI_CLI_UTIL_H_
