// `darvoza registry ...`: filled in by its issue.
#include "tools/cli/commands.h"

namespace darvoza::cli {

void AddRegistryCommands(CLI::App& /*app*/, int* /*exit_code*/) {}

}  // namespace darvoza::cli
