// darvoza-ss: the security server daemon. Only wires: config file -> Node (node.h), until
// SIGTERM or SIGINT.
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
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
  CLI11_PARSE(app, argc, argv);

  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

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
               "darvoza-ss: serving ss=%s client=%s client_tls=%s admin=%s ops=%s\n",
               a.ss.c_str(), a.client.c_str(), a.client_tls.c_str(), a.admin.c_str(),
               a.ops.c_str());
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "darvoza-ss: signal %d, shutting down\n", sig);
  (*node)->Shutdown();
  return 0;
}
