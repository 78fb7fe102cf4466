// darvoza-ss: the security server daemon. Only wires: config file -> Node (node.h), until
// SIGTERM or SIGINT; SIGHUP re-reads the log level.
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/log_flags.h"
#include "common/tls.h"
#include "security_server/config.h"
#include "security_server/node.h"

int main(int argc, char** argv) {
  darvoza::SetUpTlsForProcess();  // first thing (common/tls.h)
#ifdef NDEBUG
  // Debian's Abseil keeps its mutex deadlock detection on, which serializes every lock through
  // one global graph; tests and Debug builds keep it, a Release daemon does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  CLI::App app{"darvoza-ss: a Darvoza security server"};
  std::string config_path;
  app.add_option("-c,--config", config_path, "ss.toml (written by `darvoza ss init`)")
      ->required();
  darvoza::log::LogFlags log_flags;
  darvoza::log::AddLogFlags(app, &log_flags);
  CLI11_PARSE(app, argc, argv);
  namespace log = darvoza::log;
  auto log_options = log::DaemonOptions("darvoza-ss", log_flags.format, log_flags.level);
  if (absl::Status s = log_options.ok() ? log::InitLogging(*log_options) : log_options.status();
      !s.ok()) {
    std::fprintf(stderr, "darvoza-ss: %s\n", s.ToString().c_str());
    return 2;
  }

  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = darvoza::ss::LoadSsConfig(config_path);
  if (!config.ok()) {
    log::Event(log::Level::kError, "start.failed", "", {{"error", config.status().ToString()}});
    return 1;
  }
  if (log_flags.level.empty() && config->log_level) log::SetLevel(*config->log_level);
  auto node = darvoza::ss::Node::Start(*config, darvoza::Clock::Real());
  if (!node.ok()) {
    log::Event(log::Level::kError, "start.failed", "", {{"error", node.status().ToString()}});
    return 1;
  }
  const auto& a = (*node)->addresses();
  log::Event(log::Level::kInfo, "start", "serving",
             {{"version", DARVOZA_VERSION}, {"server", config->server_id}, {"ss", a.ss},
              {"client", a.client}, {"client_tls", a.client_tls}, {"rest", a.rest},
              {"admin", a.admin}, {"ops", a.ops}});
  int sig = 0;
  // SIGHUP: the log level from the configuration file again.
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    log::ReloadLevelFromConfig(config_path, darvoza::ss::LoadSsConfig);
  }
  log::Event(log::Level::kInfo, "stop", "shutting down", {{"signal", sig}});
  (*node)->Shutdown();
  log::Event(log::Level::kInfo, "stopped", "");
  return 0;
}
