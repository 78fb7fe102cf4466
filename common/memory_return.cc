#include "common/memory_return.h"

#include <malloc.h>

#include <algorithm>
#include <thread>

namespace darvoza {

void LimitMallocArenas() {
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  mallopt(M_ARENA_MAX, std::max(2, cpus));
}

size_t MallocFreeBytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.fordblks;
}

bool ReturnFreeMemoryAbove(size_t threshold_bytes) {
  if (MallocFreeBytes() <= threshold_bytes) return false;
  malloc_trim(0);
  return true;
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
