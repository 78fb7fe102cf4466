#include "common/clock.h"

#include <chrono>

#include "common/check.h"

namespace darvoza {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  absl::Duration MonotonicNow() const override {
    return absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
  }
};

}  // namespace

Clock* Clock::Real() {
  static Clock* const clock = new RealClock();
  return clock;
}

SimulatedClock::SimulatedClock(absl::Time start) : now_(start), monotonic_(absl::ZeroDuration()) {}

absl::Time SimulatedClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

absl::Duration SimulatedClock::MonotonicNow() const {
  absl::MutexLock lock(&mu_);
  return monotonic_;
}

void SimulatedClock::Advance(absl::Duration d) {
  DARVOZA_CHECK(d >= absl::ZeroDuration()) << "SimulatedClock cannot go backwards";
  absl::MutexLock lock(&mu_);
  now_ += d;
  monotonic_ += d;
}

void SimulatedClock::SetNow(absl::Time t) {
  absl::MutexLock lock(&mu_);
  now_ = t;
}

}  // namespace darvoza
