// darvoza-registry: the registry daemon. Only wires: config -> RegistryServer -> wait for
// SIGTERM/SIGINT -> shutdown.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/tls.h"
#include "registry/config.h"
#include "registry/server.h"

int main(int argc, char** argv) {
  std::string config_path;
  bool auto_approve = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (std::strcmp(argv[i], "--auto-approve") == 0) {
      auto_approve = true;  // demos and tests only; RegistryServer warns loudly
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf("usage: darvoza-registry --config FILE [--auto-approve]\n");
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
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

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
  std::fprintf(stderr, "darvoza-registry: serving public %s, admin %s, ops %s\n",
               a.public_address.c_str(), a.admin_address.c_str(),
               a.ops_address.empty() ? "(off)" : a.ops_address.c_str());
  int sig = 0;
  sigwait(&stop, &sig);
  std::fprintf(stderr, "darvoza-registry: signal %d, shutting down\n", sig);
  (*server)->Shutdown();
  return 0;
}
