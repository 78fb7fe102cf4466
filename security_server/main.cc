// darvoza-ss: the security server daemon. Only wires: config file -> Node (node.h), until a
// stop signal (docs/operator.md, "Signals").
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/daemon_signals.h"
#include "common/tls.h"
#include "common/version.h"
#include "security_server/config.h"
#include "security_server/node.h"

namespace {

// SIGHUP: what can change without a restart. Node::ReloadAnchor logs its own line.
void Reload(darvoza::ss::Node& node) { (void)node.ReloadAnchor(); }

}  // namespace

int main(int argc, char** argv) {
  darvoza::SetUpTlsForProcess();  // first thing (common/tls.h)
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
  CLI11_PARSE(app, argc, argv);

  darvoza::BlockDaemonSignals();  // before any thread starts
  auto config = darvoza::ss::LoadSsConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "darvoza-ss: %s\n", config.status().ToString().c_str());
    return 1;
  }
  auto node = darvoza::ss::Node::Start(*config, darvoza::Clock::Real());
  if (!node.ok()) {
    std::fprintf(stderr, "darvoza-ss: %s\n", node.status().ToString().c_str());
    return 1;
  }
  const auto& a = (*node)->addresses();
  std::fprintf(stderr,
               "darvoza-ss %s: serving ss=%s client=%s client_tls=%s rest=%s admin=%s ops=%s\n",
               darvoza::kDarvozaVersion, a.ss.c_str(), a.client.c_str(), a.client_tls.c_str(),
               a.rest.c_str(), a.admin.c_str(), a.ops.c_str());
  int sig = darvoza::WaitForStopSignal([&] { Reload(**node); });
  std::fprintf(stderr, "darvoza-ss: signal %d, draining calls and shutting down\n", sig);
  (*node)->Shutdown();
  std::fprintf(stderr, "darvoza-ss: stopped\n");
  return 0;
}
