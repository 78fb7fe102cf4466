// MemoryReturner: hands the memory malloc keeps after a burst back to the system, so that a
// daemon's resident size after a load falls back near its idle size (docs/performance.md).
//
// glibc's malloc keeps freed memory in its arenas for reuse, and by default makes up to eight
// arenas per CPU (one per busy thread); after a load of large bodies at high concurrency that is
// hundreds of MiB nobody uses. A daemon limits the arenas to one per CPU at start (gRPC's
// threads then share them; measured in docs/performance.md, no loss of throughput), and once a
// period a thread looks at how much of the arenas is free (mallinfo2) and, above a threshold,
// returns it (malloc_trim).
//
//   LimitMallocArenas();       // first thing in main, before threads start
//   MemoryReturner returner;   // a daemon's lifetime
//
// Thread-safe; the destructor stops the thread.
#ifndef DARVOZA_COMMON_MEMORY_RETURN_H_
#define DARVOZA_COMMON_MEMORY_RETURN_H_

#include <cstddef>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace darvoza {

// At most one malloc arena per CPU (at least 2). Call before the process starts threads.
void LimitMallocArenas();

class MemoryReturner {
 public:
  struct Options {
    absl::Duration period = absl::Seconds(1);
    size_t threshold_bytes = 1u << 20;
  };
  MemoryReturner() : MemoryReturner(Options()) {}
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
