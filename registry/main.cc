// darvoza-registry: the registry daemon. Only wires: config -> RegistryServer -> wait for a
// stop signal -> shutdown; SIGHUP re-reads the log level (docs/operator.md, "Signals").
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/daemon_signals.h"
#include "common/log.h"
#include "common/log_flags.h"
#include "common/memory_return.h"
#include "common/tls.h"
#include "common/version.h"
#include "registry/config.h"
#include "registry/server.h"

namespace {

namespace log = darvoza::log;

// SIGHUP. The registry's anchor lives in its own database and changes only through the admin
// API (`darvoza registry anchor`), so the log level is all there is to re-read.
void Reload(const std::string& config_path) {
  log::ReloadLevelFromConfig(config_path, darvoza::registry::LoadRegistryConfig);
}

}  // namespace

int main(int argc, char** argv) {
  darvoza::SetUpTlsForProcess();  // first thing (common/tls.h)
  darvoza::ConfigureDaemonMalloc();
#ifdef NDEBUG
  // Debian's Abseil keeps its mutex deadlock detection on, which serializes every lock through
  // one global graph; tests and Debug builds keep it, a Release daemon does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  CLI::App app{"darvoza-registry: the registry of a Darvoza instance"};
  app.set_version_flag("--version", std::string("darvoza-registry ") + darvoza::kDarvozaVersion);
  std::string config_path;
  bool auto_approve = false;
  app.add_option("-c,--config", config_path,
                 "registry.toml (written by `darvoza registry init`)")
      ->required();
  app.add_flag("--auto-approve", auto_approve,
               "approve every request (demos and tests only; logged loudly)");
  log::LogFlags log_flags;
  log::AddLogFlags(app, &log_flags);
  CLI11_PARSE(app, argc, argv);
  darvoza::BlockDaemonSignals();  // before any thread starts
  auto log_options = log::DaemonOptions("darvoza-registry", log_flags.format, log_flags.level);
  if (absl::Status s = log_options.ok() ? log::InitLogging(*log_options) : log_options.status();
      !s.ok()) {
    std::fprintf(stderr, "darvoza-registry: %s\n", s.ToString().c_str());
    return 2;
  }

  auto config = darvoza::registry::LoadRegistryConfig(config_path);
  if (!config.ok()) {
    log::Event(log::Level::kError, "start.failed", "", {{"error", config.status().ToString()}});
    return 1;
  }
  if (log_flags.level.empty() && config->log_level) log::SetLevel(*config->log_level);
  if (auto_approve) config->auto_approve = true;
  auto server = darvoza::registry::RegistryServer::Start(*config, darvoza::Clock::Real());
  if (!server.ok()) {
    log::Event(log::Level::kError, "start.failed", "", {{"error", server.status().ToString()}});
    return 1;
  }
  const auto& a = (*server)->addresses();
  log::Event(log::Level::kInfo, "start", "serving",
             {{"version", darvoza::kDarvozaVersion}, {"public", a.public_address},
              {"admin", a.admin_address}, {"ops", a.ops_address.empty() ? "off" : a.ops_address},
              {"metrics", a.metrics_address.empty() ? "off" : a.metrics_address},
              {"malloc", darvoza::DescribeMalloc()}});
  // What a burst of large bodies leaves allocated but free goes back to the system.
  darvoza::MemoryReturner memory_returner;
  int sig = darvoza::WaitForStopSignal([&] { Reload(config_path); });
  log::Event(log::Level::kInfo, "stop", "draining calls and shutting down", {{"signal", sig}});
  (*server)->Shutdown();
  log::Event(log::Level::kInfo, "stopped", "");
  return 0;
}
