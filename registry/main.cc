// darvoza-registry: the registry daemon. Only wires: config -> RegistryServer -> wait for
// SIGTERM/SIGINT -> shutdown; SIGHUP re-reads the log level.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/tls.h"
#include "registry/config.h"
#include "registry/server.h"

namespace {

// Matches "--name VALUE" (consuming the next argument) and "--name=VALUE".
bool FlagValue(const char* name, int argc, char** argv, int* i, std::string* value) {
  const size_t n = std::strlen(name);
  if (std::strncmp(argv[*i], name, n) != 0) return false;
  if (argv[*i][n] == '=') {
    *value = argv[*i] + n + 1;
    return true;
  }
  if (argv[*i][n] != '\0' || *i + 1 >= argc) return false;
  *value = argv[++*i];
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::string log_format;
  std::string log_level;
  bool auto_approve = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (FlagValue("--log-format", argc, argv, &i, &log_format) ||
               FlagValue("--log-level", argc, argv, &i, &log_level)) {
    } else if (std::strcmp(argv[i], "--auto-approve") == 0) {
      auto_approve = true;  // demos and tests only; RegistryServer warns loudly
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf("usage: darvoza-registry --config FILE [--auto-approve] [--log-format text|json]"
                  " [--log-level debug|info|warn|error]\n");
      return 0;
    } else {
      std::fprintf(stderr, "darvoza-registry: unknown argument '%s' (usage: --config FILE)\n", argv[i]);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "darvoza-registry: --config FILE is required\n");
    return 2;
  }
  darvoza::SetUpTlsForProcess();  // first thing (common/tls.h)
  namespace log = darvoza::log;
  auto log_options = log::DaemonOptions("darvoza-registry", log_format, log_level);
  if (absl::Status s = log_options.ok() ? log::InitLogging(*log_options) : log_options.status();
      !s.ok()) {
    std::fprintf(stderr, "darvoza-registry: %s\n", s.ToString().c_str());
    return 2;
  }
#ifdef NDEBUG
  // Debian's Abseil keeps its mutex deadlock detection on, which serializes every lock through
  // one global graph; tests and Debug builds keep it, a Release daemon does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif

  // Block the stop signals before any thread starts, then wait for one of them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto config = darvoza::registry::LoadRegistryConfig(config_path);
  if (!config.ok()) {
    log::Event(log::Level::kError, "start.failed", "", {{"error", config.status().ToString()}});
    return 1;
  }
  if (log_level.empty() && config->log_level) log::SetLevel(*config->log_level);
  if (auto_approve) config->auto_approve = true;
  auto server = darvoza::registry::RegistryServer::Start(*config, darvoza::Clock::Real());
  if (!server.ok()) {
    log::Event(log::Level::kError, "start.failed", "", {{"error", server.status().ToString()}});
    return 1;
  }
  const auto& a = (*server)->addresses();
  log::Event(log::Level::kInfo, "start", "serving",
             {{"version", DARVOZA_VERSION}, {"public", a.public_address},
              {"admin", a.admin_address}, {"ops", a.ops_address.empty() ? "off" : a.ops_address}});
  int sig = 0;
  // SIGHUP: the log level from the configuration file again.
  while (sigwait(&stop, &sig) == 0 && sig == SIGHUP) {
    log::ReloadLevelFromConfig(config_path, darvoza::registry::LoadRegistryConfig);
  }
  log::Event(log::Level::kInfo, "stop", "shutting down", {{"signal", sig}});
  (*server)->Shutdown();
  log::Event(log::Level::kInfo, "stopped", "");
  return 0;
}
