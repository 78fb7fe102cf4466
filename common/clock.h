// Clock: the only source of time for Darvoza's libraries.
//
// Certificate expiry, configuration expiry, seal intervals and replay windows are decided
// with an injected Clock so that tests move time instead of sleeping (CONVENTIONS.md rule 5).
//
//   SimulatedClock clock(absl::FromUnixSeconds(1'700'000'000));
//   clock.Advance(absl::Hours(25));   // the certificate is now expired
#ifndef DARVOZA_COMMON_CLOCK_H_
#define DARVOZA_COMMON_CLOCK_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace darvoza {

// Thread-safe: every implementation may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;

  // Wall-clock time: what certificates, configurations and audit records are stamped with.
  virtual absl::Time Now() const = 0;

  // Monotonic time since an arbitrary origin, for measuring intervals; never goes back.
  virtual absl::Duration MonotonicNow() const = 0;

  // The process-wide real clock. Never null, never deleted.
  static Clock* Real();
};

// A clock that moves only when told to. Monotonic time advances with every Advance().
class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(absl::Time start);
  SimulatedClock(const SimulatedClock&) = delete;
  SimulatedClock& operator=(const SimulatedClock&) = delete;

  absl::Time Now() const override;
  absl::Duration MonotonicNow() const override;

  // REQUIRES: d >= 0.
  void Advance(absl::Duration d);
  // Sets wall time (may go backwards, as a badly set system clock can); monotonic time is kept.
  void SetNow(absl::Time t);

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  absl::Duration monotonic_ ABSL_GUARDED_BY(mu_);
};

// Unix nanoseconds, the form time takes in Darvoza's protobuf messages.
inline int64_t ToUnixNanosField(absl::Time t) { return absl::ToUnixNanos(t); }
inline absl::Time FromUnixNanosField(int64_t n) { return absl::FromUnixNanos(n); }

}  // namespace darvoza

#endif  // DARVOZA_COMMON_CLOCK_H_
