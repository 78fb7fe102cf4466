// The `darvoza` command line: each group of commands registers itself on the CLI11 app.
//
// A command's callback stores its process exit status in *exit_code (0 success, 1 failure the
// user can fix, 2 usage). Commands print what they did; errors go to stderr and say how to fix.
#ifndef DARVOZA_TOOLS_CLI_COMMANDS_H_
#define DARVOZA_TOOLS_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>

namespace darvoza::cli {

void AddIdCommands(CLI::App& app, int* exit_code);         // id parse
void AddKeyCommands(CLI::App& app, int* exit_code);        // keygen, cert show
void AddSelfcheckCommand(CLI::App& app, int* exit_code);   // selfcheck
void AddRegistryCommands(CLI::App& app, int* exit_code);   // registry ..., conf ...
void AddAuditCommands(CLI::App& app, int* exit_code);      // audit ...
void AddSecurityServerCommands(CLI::App& app, int* exit_code);  // ss ...
void AddSsTlsCommands(CLI::App& ss, int* exit_code);  // ss tls ... (under the `ss` command)

}  // namespace darvoza::cli

#endif  // DARVOZA_TOOLS_CLI_COMMANDS_H_
