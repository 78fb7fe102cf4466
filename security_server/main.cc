// darvoza-ss: the security server daemon. Only wires: config file -> Node (node.h), until a
// stop signal; SIGHUP re-reads the anchor and the log level (docs/operator.md, "Signals").
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
#include "security_server/config.h"
#include "security_server/node.h"

namespace {

namespace log = darvoza::log;

// SIGHUP: what can change without a restart. Each part logs its own line.
void Reload(darvoza::ss::Node& node, const std::string& config_path) {
  (void)node.ReloadAnchor();
  log::ReloadLevelFromConfig(config_path, darvoza::ss::LoadSsConfig);
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
  CLI::App app{"darvoza-ss: a Darvoza security server"};
  app.set_version_flag("--version", std::string("darvoza-ss ") + darvoza::kDarvozaVersion);
  std::string config_path;
  app.add_option("-c,--config", config_path, "ss.toml (written by `darvoza ss init`)")
      ->required();
  log::LogFlags log_flags;
  log::AddLogFlags(app, &log_flags);
  CLI11_PARSE(app, argc, argv);
  darvoza::BlockDaemonSignals();  // before any thread starts
  auto log_options = log::DaemonOptions("darvoza-ss", log_flags.format, log_flags.level);
  if (absl::Status s = log_options.ok() ? log::InitLogging(*log_options) : log_options.status();
      !s.ok()) {
    std::fprintf(stderr, "darvoza-ss: %s\n", s.ToString().c_str());
    return 2;
  }

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
             {{"version", darvoza::kDarvozaVersion}, {"server", config->server_id},
              {"ss", a.ss}, {"client", a.client}, {"client_tls", a.client_tls},
              {"rest", a.rest}, {"rest_tls", a.rest_tls}, {"admin", a.admin}, {"ops", a.ops},
              {"metrics", a.metrics}, {"malloc", darvoza::DescribeMalloc()}});
  // What a burst of large bodies leaves allocated but free goes back to the system.
  darvoza::MemoryReturner memory_returner;
  int sig = darvoza::WaitForStopSignal([&] { Reload(**node, config_path); });
  log::Event(log::Level::kInfo, "stop", "draining calls and shutting down", {{"signal", sig}});
  (*node)->Shutdown();
  log::Event(log::Level::kInfo, "stopped", "");
  return 0;
}
