// ReplayGuard: the provider side's replay window (docs/design.md §5 step 3).
//
// A request is accepted only when its created_at lies within `window` of the provider's Clock
// and its (consumer SS, nonce) pair was not seen before. Seen pairs are kept in the security
// server's state store, so a restart does not reopen the window; pairs older than the window
// are pruned (a request that old is refused by its time anyway).
//
// Thread-safe.
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_REPLAY_GUARD_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_REPLAY_GUARD_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "proto/identifiers.pb.h"

namespace darvoza::ss {
class LocalState;
}

namespace darvoza::ss::exchange {

class ReplayGuard {
 public:
  // `state` and `clock` are not owned and must outlive this.
  ReplayGuard(LocalState* state, Clock* clock, absl::Duration window);
  ReplayGuard(const ReplayGuard&) = delete;
  ReplayGuard& operator=(const ReplayGuard&) = delete;

  // OK and remembers the pair when the request is fresh and new. Otherwise UNAUTHENTICATED with
  // fault Server.ServerProxy.ReplayedMessage ("outside the replay window" or "nonce already
  // seen"); INVALID_ARGUMENT for a nonce that is not 16 bytes; the store's error if it fails.
  absl::Status CheckAndRecord(const v1::SecurityServerId& consumer, absl::string_view nonce,
                              absl::Time created_at);

  // Forgets pairs whose created_at is older than the window. Returns how many were removed.
  size_t Prune();

  absl::Duration window() const { return window_; }

 private:
  LocalState* const state_;
  Clock* const clock_;
  const absl::Duration window_;
};

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_REPLAY_GUARD_H_
