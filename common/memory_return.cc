#include "common/memory_return.h"

#include <malloc.h>

#include <algorithm>
#include <thread>

#ifdef DARVOZA_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>

// jemalloc reads this at its start (before main); the executable's definition takes the place
// of the library's empty one. Of the settings measured (docs/performance.md), one arena and
// thread caches for objects up to 4 KiB gave the lowest CPU per exchange at glibc's resident
// size. Freed pages go back to the system within about a second (the background thread's
// decay) and are not kept afterwards as "muzzy" pages.
extern "C" {
const char* malloc_conf =
    "narenas:1,tcache_max:4096,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
#endif

namespace darvoza {

namespace {

#ifndef DARVOZA_WITH_JEMALLOC
// Returns the arenas' free memory to the system when more than `threshold_bytes` is free.
void ReturnFreeMemoryAbove(size_t threshold_bytes) {
  const struct mallinfo2 info = mallinfo2();
  if (info.fordblks > threshold_bytes) malloc_trim(0);
}
#endif

}  // namespace

void ConfigureDaemonMalloc() {
#ifndef DARVOZA_WITH_JEMALLOC
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  mallopt(M_ARENA_MAX, std::max(2, cpus));
#endif
}

std::string DescribeMalloc() {
#ifdef DARVOZA_WITH_JEMALLOC
  // What jemalloc took in, not what we asked for: MALLOC_CONF in the environment can change it.
  unsigned narenas = 0;
  size_t size = sizeof(narenas);
  bool background = false;
  size_t bsize = sizeof(background);
  if (mallctl("opt.narenas", &narenas, &size, nullptr, 0) != 0 ||
      mallctl("opt.background_thread", &background, &bsize, nullptr, 0) != 0) {
    return "jemalloc";
  }
  return "jemalloc narenas:" + std::to_string(narenas) +
         " background_thread:" + (background ? "true" : "false");
#else
  return "glibc";
#endif
}

MemoryReturner::MemoryReturner(Options options) : options_(options) {
#ifndef DARVOZA_WITH_JEMALLOC
  thread_ = std::thread([this] { Loop(); });
#endif
}

MemoryReturner::~MemoryReturner() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void MemoryReturner::Loop() {
#ifndef DARVOZA_WITH_JEMALLOC
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.period)) {
    mu_.Unlock();
    ReturnFreeMemoryAbove(options_.threshold_bytes);
    mu_.Lock();
  }
#endif
}

}  // namespace darvoza
