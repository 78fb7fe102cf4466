#include "common/log.h"

#include <grpc/support/log.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <memory>
#include <utility>

#include <spdlog/logger.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/outside_values.h"
#include "common/status_macros.h"
#include "common/toml_config.h"

namespace darvoza::log {
namespace {

struct Logger {
  std::shared_ptr<spdlog::logger> sink;
  std::string program;
  Format format = Format::kText;
  Clock* clock = nullptr;
};

// Never destroyed: threads (gRPC's among them) may log while the process exits.
struct Global {
  absl::Mutex mu;
  // Replaced whole by InitLogging; an Event copies the pointer and writes without the lock.
  std::shared_ptr<const Logger> logger ABSL_GUARDED_BY(mu);
};
Global& G() {
  static Global* const global = new Global;
  return *global;
}
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

std::shared_ptr<spdlog::logger> MakeSpdlogger(std::shared_ptr<spdlog::sinks::sink> sink) {
  auto logger = std::make_shared<spdlog::logger>("darvoza", std::move(sink));
  // The whole line is ours (FormatLine); spdlog serializes writers and flushes each line, so
  // a line is never interleaved with another thread's and is on disk when the process dies.
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

std::shared_ptr<const Logger> CurrentLogger() {
  Global& g = G();
  absl::MutexLock lock(&g.mu);
  if (g.logger == nullptr) {
    auto logger = std::make_shared<Logger>();
    logger->sink = MakeSpdlogger(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->program = "darvoza";
    logger->clock = Clock::Real();
    g.logger = std::move(logger);
  }
  return g.logger;
}

void AppendHex(unsigned char c, absl::string_view prefix, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append(prefix.data(), prefix.size());
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 0xf]);
}

// A JSON string body: quotes, backslashes and control characters escaped; valid UTF-8 copied;
// each byte that is not part of valid UTF-8 becomes U+FFFD, so the line is always valid JSON
// in valid UTF-8 (RFC 8259 §8.1).
void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          AppendHex(c, "\\u00", out);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

// Text: printable ASCII and valid UTF-8 as they are; a line break, a tab, any other control
// byte and any byte that is not valid UTF-8 as an escape, so one event stays one line.
// `quote` also escapes '"' (inside a quoted value).
void AppendTextEscaped(absl::string_view s, bool quote, std::string* out) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        AppendHex(c, "\\x", out);
        ++i;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (c < 0x20 || c == 0x7f) {
      AppendHex(c, "\\x", out);
    } else if (quote && (c == '"' || c == '\\')) {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else {
      out->push_back(static_cast<char>(c));
    }
    ++i;
  }
}

// A value is quoted when it is empty or holds anything but [A-Za-z0-9._:/@+-], so a reader can
// always tell where it ends.
bool NeedsQuotes(absl::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       (c >= '0' && c <= '9') || absl::string_view("._:/@+-[]").find(c) !=
                                                     absl::string_view::npos;
    if (!plain) return true;
  }
  return false;
}

spdlog::level::level_enum SpdlogLevel(Level level) {
  switch (level) {
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
  }
  return spdlog::level::err;
}

// gRPC messages that every normal connection can produce and that say nothing is wrong: our
// clients send no SNI name the servers hold a certificate for (peers are checked by
// fingerprint, docs/design.md §4), and a client may close a connection during its handshake.
bool IsConnectionNoise(absl::string_view message) {
  static constexpr absl::string_view kNoise[] = {
      "No match found for server name",
      "Handshake read failed",
  };
  for (absl::string_view n : kNoise) {
    if (absl::StrContains(message, n)) return true;
  }
  return false;
}

void GrpcLogFunction(gpr_log_func_args* args) {
  const absl::string_view message = args->message == nullptr ? "" : args->message;
  const Level level = args->severity == GPR_LOG_SEVERITY_ERROR && !IsConnectionNoise(message)
                          ? Level::kWarn
                          : Level::kDebug;
  Event(level, "grpc", message,
        {{"file", args->file == nullptr ? "" : args->file}, {"line", args->line}});
}

}  // namespace

absl::StatusOr<Level> ParseLevel(absl::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  return absl::InvalidArgumentError("log level must be one of debug, info, warn, error");
}

absl::StatusOr<Format> ParseFormat(absl::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return absl::InvalidArgumentError("log format must be text or json");
}

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "error";
}

absl::Status ReadLogLevel(const TomlConfig& toml, std::optional<Level>* level) {
  std::string name;
  DARVOZA_RETURN_IF_ERROR(toml.String(kLogLevelKey, &name));
  if (name.empty()) return absl::OkStatus();
  absl::StatusOr<Level> parsed = ParseLevel(name);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kLogLevelKey, ": ", parsed.status().message()));
  }
  *level = *parsed;
  return absl::OkStatus();
}

absl::StatusOr<Options> DaemonOptions(absl::string_view program, absl::string_view format,
                                      absl::string_view level) {
  Options options;
  options.program = std::string(program);
  if (!format.empty()) {
    DARVOZA_ASSIGN_OR_RETURN(options.format, ParseFormat(format));
  }
  if (!level.empty()) {
    DARVOZA_ASSIGN_OR_RETURN(options.level, ParseLevel(level));
  }
  return options;
}

absl::Status InitLogging(const Options& options) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (options.path.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    // spdlog reports a file it cannot open by throwing; nothing else here throws.
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.path, false);
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot open the log file ", options.path, ": ", e.what()));
    }
  }
  auto logger = std::make_shared<Logger>();
  logger->sink = MakeSpdlogger(std::move(sink));
  logger->program = options.program;
  logger->format = options.format;
  logger->clock = options.clock != nullptr ? options.clock : Clock::Real();
  {
    Global& g = G();
    absl::MutexLock lock(&g.mu);
    g.logger = std::move(logger);
  }
  SetLevel(options.level);
  gpr_set_log_function(&GrpcLogFunction);
  return absl::OkStatus();
}

void SetLevel(Level level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
  // gRPC formats a message only at or above its own verbosity: its info messages cost
  // something on every connection, so it makes them only when they would be written.
  gpr_set_log_verbosity(level == Level::kDebug ? GPR_LOG_SEVERITY_INFO : GPR_LOG_SEVERITY_ERROR);
}

Level CurrentLevel() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

void ApplyReloadedLevel(const absl::StatusOr<Level>& level, absl::string_view source) {
  if (!level.ok()) {
    Event(Level::kWarn, "log.reload_failed", "the log level stays as it was",
          {{"file", source}, {"error", level.status().ToString()}});
    return;
  }
  const Level old = CurrentLevel();
  SetLevel(*level);
  // Written at warn so that it is seen whatever the new level is.
  Event(Level::kWarn, "log.level", "", {{"file", source}, {"old", LevelName(old)},
                                         {"new", LevelName(*level)}});
}

void Event(Level level, absl::string_view event, absl::string_view message,
           std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  std::shared_ptr<const Logger> logger = CurrentLogger();
  const std::string line =
      FormatLine(logger->format, logger->clock->Now(), level, logger->program, event, message,
                 absl::MakeConstSpan(fields.begin(), fields.size()));
  logger->sink->log(SpdlogLevel(level), spdlog::string_view_t(line.data(), line.size()));
}

std::string FormatLine(Format format, absl::Time time, Level level, absl::string_view program,
                       absl::string_view event, absl::string_view message,
                       absl::Span<const Field> fields) {
  const std::string stamp =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
  std::string out;
  out.reserve(128 + message.size());
  if (format == Format::kJson) {
    out.append("{\"time\":\"").append(stamp).append("\",\"level\":\"");
    out.append(LevelName(level).data(), LevelName(level).size());
    out.append("\",\"program\":");
    AppendJsonString(program, &out);
    out.append(",\"event\":");
    AppendJsonString(event, &out);
    if (!message.empty()) {
      out.append(",\"msg\":");
      AppendJsonString(message, &out);
    }
    for (const Field& f : fields) {
      out.push_back(',');
      AppendJsonString(f.key(), &out);
      out.push_back(':');
      if (f.is_number()) {
        out.append(f.value().data(), f.value().size());
      } else {
        AppendJsonString(f.value(), &out);
      }
    }
    out.push_back('}');
    return out;
  }
  out.append(stamp).push_back(' ');
  for (char c : LevelName(level)) out.push_back(static_cast<char>(c - 'a' + 'A'));
  out.push_back(' ');
  AppendTextEscaped(program, false, &out);
  out.push_back(' ');
  AppendTextEscaped(event, false, &out);
  if (!message.empty()) {
    out.append(": ");
    AppendTextEscaped(message, false, &out);
  }
  for (const Field& f : fields) {
    out.push_back(' ');
    AppendTextEscaped(f.key(), false, &out);
    out.push_back('=');
    if (NeedsQuotes(f.value())) {
      out.push_back('"');
      AppendTextEscaped(f.value(), true, &out);
      out.push_back('"');
    } else {
      out.append(f.value().data(), f.value().size());
    }
  }
  return out;
}

}  // namespace darvoza::log
