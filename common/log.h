// The daemons' event log: one line per event on stderr, readable text by default or one JSON
// object per line (`--log-format=json`), written through spdlog. An event has a name that
// tools can match ("registry.unreachable"), an optional sentence for a person, and key/value
// fields (member, service, fault code, peer address, ...). Values may come from outside
// (a peer's status message, an administrator's reason): the formatter escapes them so that no
// value can end a line, break the JSON, or smuggle bytes that are not UTF-8 into it.
// gRPC's own log is routed through the same logger (see InitLogging).
//
//   log::Options options;
//   options.program = "darvoza-ss";
//   options.format = log::Format::kJson;
//   DARVOZA_RETURN_IF_ERROR(log::InitLogging(options));
//   log::Event(log::Level::kWarn, "call.refused", "",
//              {{"fault", FaultCode(status)}, {"peer", ctx->peer()}, {"seq", 42}});
//
// Text:  2026-12-01T06:00:00.123456Z WARN darvoza-ss call.refused fault=Server.X peer=ipv4:...
// JSON:  {"time":"2026-...Z","level":"warn","program":"darvoza-ss","event":"call.refused",
//         "fault":"Server.X","peer":"ipv4:...","seq":42}
//
// Thread-safety: Event, SetLevel and CurrentLevel may be called from any thread; InitLogging
// once, early in main (before threads that log start). Before InitLogging, events go to stderr
// as text at level info under the program name "darvoza" (libraries and tests log that way).
#ifndef DARVOZA_COMMON_LOG_H_
#define DARVOZA_COMMON_LOG_H_

#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace darvoza {
class Clock;
class TomlConfig;
}  // namespace darvoza

namespace darvoza::log {

// Ordered: an event is written when its level is at least the logger's level.
enum class Level { kDebug, kInfo, kWarn, kError };
enum class Format { kText, kJson };

// "debug", "info", "warn" (or "warning"), "error". INVALID_ARGUMENT naming the choices otherwise.
absl::StatusOr<Level> ParseLevel(absl::string_view name);
// "text" or "json". INVALID_ARGUMENT naming the choices otherwise.
absl::StatusOr<Format> ParseFormat(absl::string_view name);
// "debug", "info", "warn", "error".
absl::string_view LevelName(Level level);

// One key/value of an event. Keys are the program's own constants (lower_snake_case); values
// are any bytes. Integers are written as JSON numbers, everything else as strings.
class Field {
 public:
  Field(absl::string_view key, absl::string_view value) : key_(key), value_(value) {}
  Field(absl::string_view key, const std::string& value) : key_(key), value_(value) {}
  Field(absl::string_view key, const char* value) : key_(key), value_(value) {}
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Field(absl::string_view key, T value) : key_(key), value_(absl::StrCat(value)), number_(true) {}

  absl::string_view key() const { return key_; }
  absl::string_view value() const { return value_; }
  bool is_number() const { return number_; }

 private:
  absl::string_view key_;
  std::string value_;
  bool number_ = false;
};

struct Options {
  // Names the process in every line ("darvoza-registry").
  std::string program = "darvoza";
  Format format = Format::kText;
  Level level = Level::kInfo;
  // Empty: stderr. Otherwise lines are appended to this file (tests, tools).
  std::string path;
  // Time stamps of the lines. Default: Clock::Real(). Not owned; must outlive the logger.
  Clock* clock = nullptr;
};

// The daemons' configuration key "log_level" (a ParseLevel name): *level is set when the key
// is present, left as it is otherwise. INVALID_ARGUMENT naming the key for any other value.
inline constexpr char kLogLevelKey[] = "log_level";
absl::Status ReadLogLevel(const TomlConfig& toml, std::optional<Level>* level);

// The logger options of a daemon from its command line (common/log_flags.h): `format` and
// `level` as given ("" when absent: text, info). INVALID_ARGUMENT for a name ParseFormat or
// ParseLevel refuses.
absl::StatusOr<Options> DaemonOptions(absl::string_view program, absl::string_view format,
                                      absl::string_view level);

// Replaces the process's logger with one made from `options`, and routes gRPC's log
// (gpr_set_log_function) through it: gRPC's errors become warn events named "grpc", except
// messages that every normal connection produces (a client that sends an SNI name the server
// has no certificate for, a peer that closes during the handshake), which become debug, as do
// gRPC's info and debug messages. INVALID_ARGUMENT when `options.path` cannot be opened (the
// previous logger stays).
absl::Status InitLogging(const Options& options);

// Changes the level of the current logger (e.g. from `--log-level` or on SIGHUP) and tells
// gRPC to produce its info messages only when the level is debug.
void SetLevel(Level level);
Level CurrentLevel();

// After a configuration file was read again (SIGHUP): sets the level it names and logs
// "log.level" with the old and new level, or, when `level` is an error, logs
// "log.reload_failed" and keeps the current level. `source` names the file in the event.
void ApplyReloadedLevel(const absl::StatusOr<Level>& level, absl::string_view source);

// For SIGHUP: loads `config_path` again with `load` (a daemon's config loader returning
// StatusOr of a struct with `std::optional<Level> log_level`) and applies its level, info when
// the file names none (ApplyReloadedLevel).
template <typename Load>
void ReloadLevelFromConfig(const std::string& config_path, Load load) {
  auto config = load(config_path);
  ApplyReloadedLevel(config.ok() ? absl::StatusOr<Level>(config->log_level.value_or(Level::kInfo))
                                 : absl::StatusOr<Level>(config.status()),
                     config_path);
}

// Writes one event line when `level` is at least the current level. `event` is a dotted name
// from the program's own vocabulary (docs/operator.md lists them); `message` is a sentence for
// a person, or empty.
void Event(Level level, absl::string_view event, absl::string_view message,
           std::initializer_list<Field> fields = {});

// The line Event writes (without the trailing newline), for `format`. Exposed for tests.
std::string FormatLine(Format format, absl::Time time, Level level, absl::string_view program,
                       absl::string_view event, absl::string_view message,
                       absl::Span<const Field> fields);

}  // namespace darvoza::log

#endif  // DARVOZA_COMMON_LOG_H_
