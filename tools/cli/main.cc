// darvoza: the administrators' and auditors' command line. Only wires command groups.
#include <CLI/CLI.hpp>

#include "tools/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"darvoza: administer and audit a Darvoza data exchange federation"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "darvoza 0.1.0");
  int exit_code = 0;
  darvoza::cli::AddIdCommands(app, &exit_code);
  darvoza::cli::AddKeyCommands(app, &exit_code);
  darvoza::cli::AddSelfcheckCommand(app, &exit_code);
  darvoza::cli::AddRegistryCommands(app, &exit_code);
  darvoza::cli::AddAuditCommands(app, &exit_code);
  darvoza::cli::AddSecurityServerCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
