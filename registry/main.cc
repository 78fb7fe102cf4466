// darvoza-registry: the registry daemon. Only wires: config -> RegistryServer -> wait for a
// stop signal (docs/operator.md, "Signals") -> shutdown.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/daemon_signals.h"
#include "common/tls.h"
#include "common/version.h"
#include "registry/config.h"
#include "registry/server.h"

namespace {

// SIGHUP. The registry's anchor lives in its own database and changes only through the admin
// API (`darvoza registry anchor`), so there is no file to re-read yet; logging settings join here.
void Reload() {
  std::fprintf(stderr,
               "darvoza-registry: SIGHUP: nothing to re-read (the anchor changes through "
               "`darvoza registry anchor`)\n");
}

}  // namespace

int main(int argc, char** argv) {
  darvoza::SetUpTlsForProcess();  // first thing (common/tls.h)
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
  CLI11_PARSE(app, argc, argv);

  darvoza::BlockDaemonSignals();  // before any thread starts
  auto config = darvoza::registry::LoadRegistryConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "darvoza-registry: %s\n", config.status().ToString().c_str());
    return 1;
  }
  if (auto_approve) config->auto_approve = true;
  auto server = darvoza::registry::RegistryServer::Start(*config, darvoza::Clock::Real());
  if (!server.ok()) {
    std::fprintf(stderr, "darvoza-registry: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const auto& a = (*server)->addresses();
  std::fprintf(stderr, "darvoza-registry %s: serving public %s, admin %s, ops %s\n",
               darvoza::kDarvozaVersion, a.public_address.c_str(), a.admin_address.c_str(),
               a.ops_address.empty() ? "(off)" : a.ops_address.c_str());
  int sig = darvoza::WaitForStopSignal(Reload);
  std::fprintf(stderr, "darvoza-registry: signal %d, draining calls and shutting down\n", sig);
  (*server)->Shutdown();
  std::fprintf(stderr, "darvoza-registry: stopped\n");
  return 0;
}
