// ReplayGuard: the provider side's replay window (docs/design.md §5 step 3).
//
// A request is accepted only when its created_at lies within `window` of the provider's Clock
// and its (consumer SS, nonce) pair was not seen before. Seen pairs are kept in memory, not in
// a store: the provider writes each accepted request's REQUEST_IN record to the audit log
// before it calls the backend (ExchangeCore::Audit, AuditWait::kWritten), so at start Restore()
// reads the pairs back from the log and a restart, even after SIGKILL, does not reopen the
// window. Pairs older than the window are pruned (a request that old is refused by its time
// anyway).
//
// Memory is bounded: at most `max_entries` pairs, 24 bytes each plus the hash table's slack.
// When the window is full of live pairs a new request is refused with
// Server.ServerProxy.ServiceFailed (RESOURCE_EXHAUSTED) rather than remembered nowhere.
//
// Thread-safe; the pairs are spread over shards with a lock each, so concurrent requests
// rarely wait for one another.
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_REPLAY_GUARD_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_REPLAY_GUARD_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "proto/identifiers.pb.h"

namespace darvoza::audit {
class AuditQueries;
}

namespace darvoza::ss::exchange {

class ReplayGuard {
 public:
  // Default bound: 6,600 accepted requests a second sustained over a 5-minute window, about
  // 60 MiB when full.
  static constexpr size_t kDefaultMaxEntries = 2'000'000;

  // `clock` is not owned and must outlive this.
  ReplayGuard(Clock* clock, absl::Duration window, size_t max_entries = kDefaultMaxEntries);
  ReplayGuard(const ReplayGuard&) = delete;
  ReplayGuard& operator=(const ReplayGuard&) = delete;

  // OK and remembers the pair when the request is fresh and new. Otherwise UNAUTHENTICATED with
  // fault Server.ServerProxy.ReplayedMessage ("outside the replay window" or "nonce already
  // seen"); INVALID_ARGUMENT for a nonce that is not 16 bytes; RESOURCE_EXHAUSTED when the
  // window holds max_entries live pairs.
  absl::Status CheckAndRecord(const v1::SecurityServerId& consumer, absl::string_view nonce,
                              absl::Time created_at);

  // Remembers the pairs of the REQUEST_IN records `log` holds from the last two windows (a
  // record is stamped when it is accepted, at most one window after its created_at). Call
  // before the first request. Returns how many pairs were loaded. When the log cannot be read
  // (a damaged record), returns that error and refuses every request from then on (UNAVAILABLE,
  // Server.AuditLog.WriteFailed): an incomplete window would let a replay through.
  absl::StatusOr<size_t> Restore(audit::AuditQueries& log);

  // Forgets pairs whose created_at is older than the window. Returns how many were removed.
  size_t Prune();

  size_t size() const { return size_.load(std::memory_order_relaxed); }
  absl::Duration window() const { return window_; }

 private:
  // The pair, reduced to 16 bytes of SHA-256 over (consumer SS, nonce): fixed-size entries,
  // and a consumer cannot make its pair collide with another's.
  using Key = std::array<uint8_t, 16>;
  static constexpr size_t kShards = 16;
  struct Shard {
    absl::Mutex mu;
    // key -> created_at (Unix nanos)
    absl::flat_hash_map<Key, int64_t> seen ABSL_GUARDED_BY(mu);
  };

  // The 16-byte key of a pair. REQUIRES: nonce.size() == 16.
  static Key KeyOf(const v1::SecurityServerId& consumer, absl::string_view nonce);
  Shard& ShardOf(const Key& key) { return shards_[key[0] % kShards]; }
  absl::StatusOr<size_t> RestoreFrom(audit::AuditQueries& log);
  // Inserts when absent: whether it was inserted. Refuses (RESOURCE_EXHAUSTED) when full.
  absl::StatusOr<bool> Insert(const Key& key, int64_t created_at_nanos);

  Clock* const clock_;
  const absl::Duration window_;
  const size_t max_entries_;
  std::atomic<size_t> size_{0};
  // Set once by a failed Restore, before requests arrive.
  absl::Mutex restore_mu_;
  absl::Status restore_error_ ABSL_GUARDED_BY(restore_mu_);
  std::atomic<bool> restore_failed_{false};
  std::array<Shard, kShards> shards_;
};

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_REPLAY_GUARD_H_
