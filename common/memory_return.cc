#include "common/memory_return.h"

#include <malloc.h>

#include <algorithm>
#include <thread>

namespace darvoza {

namespace {

// Returns the arenas' free memory to the system when more than `threshold_bytes` is free.
void ReturnFreeMemoryAbove(size_t threshold_bytes) {
  const struct mallinfo2 info = mallinfo2();
  if (info.fordblks > threshold_bytes) malloc_trim(0);
}

}  // namespace

void LimitMallocArenas() {
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  mallopt(M_ARENA_MAX, std::max(2, cpus));
}

MemoryReturner::MemoryReturner(Options options)
    : options_(options), thread_([this] { Loop(); }) {}

MemoryReturner::~MemoryReturner() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void MemoryReturner::Loop() {
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.period)) {
    mu_.Unlock();
    ReturnFreeMemoryAbove(options_.threshold_bytes);
    mu_.Lock();
  }
}

}  // namespace darvoza
