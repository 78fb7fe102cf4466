// `darvoza ss ...`: filled in by its issue.
#include "tools/cli/commands.h"

namespace darvoza::cli {

void AddSecurityServerCommands(CLI::App& /*app*/, int* /*exit_code*/) {}

}  // namespace darvoza::cli
