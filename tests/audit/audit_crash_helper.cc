// Test helper for the SIGKILL durability test: appends to an audit log from several threads
// forever and writes "<seq> <message id>\n" to stdout after each append is durable.
//
//   audit_crash_helper DB_PATH THREADS FIRST_N
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "audit/audit_log.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DB_PATH THREADS FIRST_N\n", argv[0]);
    return 2;
  }
  darvoza::audit::AuditLogOptions options;
  options.path = argv[1];
  auto log = darvoza::audit::AuditLog::Open(options);
  if (!log.ok()) {
    std::fprintf(stderr, "%s\n", log.status().ToString().c_str());
    return 1;
  }
  const int threads = std::atoi(argv[2]);
  const uint64_t first_n = std::strtoull(argv[3], nullptr, 10);
  absl::Mutex out_mu;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (uint64_t n = first_n + t;; n += threads) {
        darvoza::audit::AppendRequest request;
        request.record.set_kind(darvoza::v1::REQUEST_IN);
        request.record.set_message_id(absl::StrCat("msg-", n));
        request.body = std::string(512, 'k');
        auto r = (*log)->AppendAndWait(std::move(request));
        if (!r.ok()) continue;
        const std::string line = absl::StrCat(r->seq, " msg-", n, "\n");
        absl::MutexLock l(&out_mu);
        if (write(1, line.data(), line.size()) < 0) std::_Exit(3);
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return 0;
}
