// darvoza: the administrators' and auditors' command line. Only wires command groups.
#include <cstring>
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "common/log.h"
#include "common/log_flags.h"
#include "common/tls.h"
#include "common/version.h"
#include "tools/cli/commands.h"

namespace {

const std::string kVersion = std::string("darvoza ") + darvoza::kDarvozaVersion;

// The exit status of a command line that is not understood (as CLI11 uses for its errors).
constexpr int kUsageError = 2;

}  // namespace

int main(int argc, char** argv) {
  darvoza::SetUpTlsForProcess();  // first thing (common/tls.h)
  // CLI11 answers --version as soon as it meets it, before it looks at the rest of the line, so
  // `darvoza --version --bogus` would print the version and exit 0: --version stands alone.
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--version") != 0) continue;
    if (argc == 2) {
      std::cout << kVersion << "\n";
      return 0;
    }
    std::cerr << "error: --version takes no other arguments\n";
    return kUsageError;
  }
  CLI::App app{"darvoza: administer and audit a Darvoza data exchange federation"};
  app.require_subcommand(1);
  bool version = false;  // answered above; listed here for --help
  app.add_flag("--version", version, "print the version and exit (alone)");
  // Commands print their results on stdout/stderr as before; the event log (offline registry
  // changes, gRPC's own messages) shows warnings and errors unless asked for more.
  darvoza::log::LogFlags log_flags;
  darvoza::log::AddLogFlags(app, &log_flags);
  app.parse_complete_callback([&log_flags] {
    auto options = darvoza::log::DaemonOptions(
        "darvoza", log_flags.format, log_flags.level.empty() ? "warn" : log_flags.level);
    if (options.ok()) (void)darvoza::log::InitLogging(*options);  // the flags were checked
  });
  int exit_code = 0;
  darvoza::cli::AddIdCommands(app, &exit_code);
  darvoza::cli::AddKeyCommands(app, &exit_code);
  darvoza::cli::AddSelfcheckCommand(app, &exit_code);
  darvoza::cli::AddRegistryCommands(app, &exit_code);
  darvoza::cli::AddAuditCommands(app, &exit_code);
  darvoza::cli::AddSecurityServerCommands(app, &exit_code);
  // The one boundary where anything a library or the standard library throws (a
  // std::filesystem::filesystem_error on a path too long or a symbolic link loop, bad_alloc,
  // ...) becomes a clear message and a failure status, instead of std::terminate and rc 134.
  // Commands report their own errors as absl::Status; this is the backstop.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << "error: an unexpected failure (unknown exception)\n";
    return 1;
  }
  return exit_code;
}
