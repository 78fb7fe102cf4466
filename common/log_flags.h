// The command-line flags every Darvoza daemon shares for its event log (common/log.h), for
// programs that parse their flags with CLI11. Header-only so that common/ does not link CLI11.
//
//   log::LogFlags log_flags;
//   log::AddLogFlags(app, &log_flags);
//   CLI11_PARSE(app, argc, argv);
//   auto options = log::DaemonOptions("darvoza-ss", log_flags.format, log_flags.level);
#ifndef DARVOZA_COMMON_LOG_FLAGS_H_
#define DARVOZA_COMMON_LOG_FLAGS_H_

#include <string>

#include <CLI/CLI.hpp>

namespace darvoza::log {

struct LogFlags {
  std::string format;  // "" when not given
  std::string level;   // "" when not given: the configuration file's log_level, else info
};

inline void AddLogFlags(CLI::App& app, LogFlags* flags) {
  app.add_option("--log-format", flags->format,
                 "text (default): readable lines; json: one JSON object per line")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", flags->level,
                 "debug, info, warn or error (default: log_level in the configuration file, "
                 "else info)")
      ->check(CLI::IsMember({"debug", "info", "warn", "warning", "error"}));
}

}  // namespace darvoza::log

#endif  // DARVOZA_COMMON_LOG_FLAGS_H_
