// darvoza-audit-bulk: the large-log half of tools/bench.sh (docs/performance.md).
//
// Builds an audit log of N exchange-shaped records (bench_records.h) once, in DIR, and reuses it
// on later runs (it only appends what is missing). With --steady M it then appends M more
// records the way a busy security server does (durable group commits of request/response
// pairs) to that log and to a fresh one in a temporary directory, and prints one JSON line per
// log: RocksDB's compaction bytes read and written per record, WAL syncs per record and this
// process's CPU per record (RocksDB's compaction threads included) over the M appends. The
// issue's target: the large log within 20% of the fresh one.
//
//   darvoza-audit-bulk --path DIR --records N [--body-bytes B] [--steady M]
//
// The bulk build writes with sync off (nothing waits for it, and a crash only means building
// again) and checks at the end that the log's head is record N.
#include <rocksdb/statistics.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/synchronization/mutex.h"
#include "audit/audit_log.h"
#include "bench/bench_records.h"
#include "bench/proc_cpu.h"
#include "common/check.h"
#include "common/tls.h"

namespace {

namespace audit = darvoza::audit;
using SteadyClock = std::chrono::steady_clock;

// Hands `count` records starting at `*next` to the log, `in_flight` at a time; every second
// record is waited for (a response) and the others not (requests), as in an exchange.
void Append(audit::AuditLog& log, uint64_t count, size_t body_bytes, int in_flight,
            uint64_t* next) {
  absl::Mutex mu;
  int pending = 0;
  uint64_t failed = 0;
  for (uint64_t i = 0; i < count; ++i) {
    {
      absl::MutexLock l(&mu);
      auto room = [&pending, in_flight]() { return pending < in_flight; };
      mu.Await(absl::Condition(&room));
      ++pending;
    }
    audit::AppendRequest request = darvoza::bench::ExchangeRecord(*next, body_bytes);
    request.wait_durable = (*next % 2) == 1;
    ++*next;
    log.Append(std::move(request), [&](absl::StatusOr<audit::AppendResult> r) {
      absl::MutexLock l(&mu);
      if (!r.ok()) ++failed;
      --pending;
    });
  }
  absl::MutexLock l(&mu);
  auto drained = [&pending]() { return pending == 0; };
  mu.Await(absl::Condition(&drained));
  DARVOZA_CHECK(failed == 0) << failed << " appends failed";
}

void MeasureSteady(const std::string& name, const std::string& path, uint64_t records,
            size_t body_bytes) {
  audit::AuditLogOptions options;
  options.path = path;
  auto log = audit::AuditLog::Open(options);
  DARVOZA_CHECK(log.ok()) << log.status();
  uint64_t next = (*log)->head_seq();
  const uint64_t head_before = next;
  (*log)->ResetTickers();
  const double cpu_start = darvoza::bench::SelfCpuSeconds();
  const auto start = SteadyClock::now();
  Append(**log, records, body_bytes, /*in_flight=*/64, &next);
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  const double cpu = darvoza::bench::SelfCpuSeconds() - cpu_start;
  const double n = static_cast<double>(records);
  DARVOZA_CHECK((*log)->head_seq() == head_before + records) << "records went missing";
  std::printf(
      "{\"log\": \"%s\", \"records_before\": %llu, \"records_appended\": %llu, "
      "\"records_per_second\": %.0f, \"cpu_us_per_record\": %.1f, "
      "\"compaction_read_bytes_per_record\": %.0f, "
      "\"compaction_write_bytes_per_record\": %.0f, \"wal_syncs_per_record\": %.3f}\n",
      name.c_str(), static_cast<unsigned long long>(head_before),
      static_cast<unsigned long long>(records), n / seconds, cpu / n * 1e6,
      static_cast<double>((*log)->Ticker(rocksdb::COMPACT_READ_BYTES)) / n,
      static_cast<double>((*log)->Ticker(rocksdb::COMPACT_WRITE_BYTES)) / n,
      static_cast<double>((*log)->Ticker(rocksdb::WAL_FILE_SYNCED)) / n);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  darvoza::SetUpTlsForProcess();
  CLI::App app{"darvoza-audit-bulk: build a large audit log once; measure steady-state appends"};
  std::string path;
  uint64_t records = 10'000'000;
  size_t body_bytes = 256;
  uint64_t steady = 0;
  app.add_option("--path", path, "Directory of the large log (built once, then reused)")
      ->required();
  app.add_option("--records", records, "Records the large log must hold");
  app.add_option("--body-bytes", body_bytes, "Body size of each record");
  app.add_option("--steady", steady,
                 "Then append this many to the large log and to a fresh one, and compare");
  CLI11_PARSE(app, argc, argv);

  {
    audit::AuditLogOptions options;
    options.path = path;
    options.sync = false;
    options.write_buffer_bytes = 64u << 20;  // fewer, larger flushes for the one-off build
    auto log = audit::AuditLog::Open(options);
    DARVOZA_CHECK(log.ok()) << log.status();
    uint64_t next = (*log)->head_seq();
    if (next < records) {
      std::fprintf(stderr, "darvoza-audit-bulk: building %s: %llu -> %llu records\n",
                   path.c_str(), static_cast<unsigned long long>(next),
                   static_cast<unsigned long long>(records));
      const auto start = SteadyClock::now();
      Append(**log, records - next, body_bytes, /*in_flight=*/1024, &next);
      std::fprintf(stderr, "darvoza-audit-bulk: built in %.0f s\n",
                   std::chrono::duration<double>(SteadyClock::now() - start).count());
    }
    DARVOZA_CHECK((*log)->head_seq() >= records)
        << "the log holds " << (*log)->head_seq() << " records, not " << records;
  }
  if (steady == 0) return 0;
  MeasureSteady("large", path, steady, body_bytes);
  std::string fresh = std::filesystem::temp_directory_path() / "darvoza-audit-fresh.XXXXXX";
  DARVOZA_CHECK(mkdtemp(fresh.data()) != nullptr) << "mkdtemp";
  MeasureSteady("fresh", fresh, steady, body_bytes);
  std::filesystem::remove_all(fresh);
  return 0;
}
