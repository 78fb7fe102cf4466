// The daemons' memory allocator and how it gives memory back (docs/performance.md "Memory and
// the allocator").
//
// A Release daemon links jemalloc (Debian's libjemalloc2), configured here: one arena (the
// exchange's threads mostly take turns on a CPU; more arenas only hold more free memory),
// small per-thread caches, and a background thread that returns pages freed for a second to
// the system. Measured against glibc's malloc in the same runs it cut the security servers'
// CPU per exchange by about a seventh (malloc and free were 14% of their CPU, mostly glibc's
// free-list consolidation on every body-sized allocation) at about the same resident size.
//
// A build without it (sanitizers replace malloc; or -DDARVOZA_JEMALLOC=OFF) keeps glibc's
// malloc, limited to one arena per CPU, and a thread that once a second hands the arenas' free
// memory back (malloc_trim) when more than a threshold is free: glibc otherwise keeps what a
// burst of large bodies freed.
//
//   ConfigureDaemonMalloc();   // first thing in main, before threads start
//   MemoryReturner returner;   // a daemon's lifetime
//
// Thread-safe; the destructor stops the thread, if any.
#ifndef DARVOZA_COMMON_MEMORY_RETURN_H_
#define DARVOZA_COMMON_MEMORY_RETURN_H_

#include <cstddef>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace darvoza {

// glibc: at most one malloc arena per CPU (at least 2). jemalloc: nothing to do (its settings
// are read at its start). Call before the process starts threads.
void ConfigureDaemonMalloc();

// The allocator in use and its settings, for the daemon's start event: "jemalloc narenas:1
// ..." or "glibc".
std::string DescribeMalloc();

class MemoryReturner {
 public:
  struct Options {
    absl::Duration period = absl::Seconds(1);
    size_t threshold_bytes = 1u << 20;
  };
  MemoryReturner() : MemoryReturner(Options()) {}
  // With jemalloc no thread starts: jemalloc's own background thread returns the memory.
  explicit MemoryReturner(Options options);
  ~MemoryReturner();
  MemoryReturner(const MemoryReturner&) = delete;
  MemoryReturner& operator=(const MemoryReturner&) = delete;

 private:
  void Loop();

  const Options options_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace darvoza

#endif  // DARVOZA_COMMON_MEMORY_RETURN_H_
