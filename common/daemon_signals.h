// The signals a Darvoza daemon answers (docs/operator.md, "Signals"):
//   SIGTERM, SIGINT  stop: drain calls in flight, remove listen.json, exit 0
//   SIGHUP           re-read what can change without a restart (the daemon's reload hook)
//
//   BlockDaemonSignals();            // first, before any thread starts: all inherit the mask
//   ... start the daemon ...
//   int sig = WaitForStopSignal([&] { node->Reload(); });
//   node->Shutdown();
#ifndef DARVOZA_COMMON_DAEMON_SIGNALS_H_
#define DARVOZA_COMMON_DAEMON_SIGNALS_H_

#include <functional>

namespace darvoza {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread. Threads started afterwards inherit
// the mask, so only WaitForStopSignal ever sees them.
void BlockDaemonSignals();

// Waits for the signals BlockDaemonSignals blocked: calls `on_reload` (on the calling thread)
// for each SIGHUP and keeps waiting; returns the number of the first SIGTERM or SIGINT.
int WaitForStopSignal(const std::function<void()>& on_reload);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_DAEMON_SIGNALS_H_
