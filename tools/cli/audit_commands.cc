// `darvoza audit ...`: filled in by its issue.
#include "tools/cli/commands.h"

namespace darvoza::cli {

void AddAuditCommands(CLI::App& /*app*/, int* /*exit_code*/) {}

}  // namespace darvoza::cli
