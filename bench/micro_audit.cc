// Micro-benchmark of durable audit appends by group-commit batch size: B exchange-shaped
// records (bench_records.h) handed to a real AuditLog on RocksDB at once, timed until the last
// one is durable. The counters say how many WAL syncs and group commits that took per record.
// The log lives in a fresh directory under $TMPDIR (put that on the disk under test).
#include <rocksdb/statistics.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "audit/audit_log.h"
#include "bench/bench_records.h"
#include "benchmark/benchmark.h"
#include "common/check.h"

namespace darvoza::audit {
namespace {

std::string FreshDir() {
  const char* tmp = getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/darvoza-micro-audit.XXXXXX";
  DARVOZA_CHECK(mkdtemp(pattern.data()) != nullptr) << "mkdtemp " << pattern;
  return pattern;
}

// Appends `batch` records (`waited` of which are waited for; the rest are the unwaited request
// records an exchange writes) and waits until every one has completed.
void AppendBatch(AuditLog& log, int64_t batch, int64_t waited, uint64_t* next) {
  absl::Mutex mu;
  int64_t pending = batch;
  for (int64_t i = 0; i < batch; ++i) {
    AppendRequest request = bench::ExchangeRecord((*next)++, 1024);
    request.wait_durable = i >= batch - waited;
    log.Append(std::move(request), [&mu, &pending](absl::StatusOr<AppendResult> r) {
      DARVOZA_CHECK(r.ok()) << r.status();
      absl::MutexLock l(&mu);
      --pending;
    });
  }
  absl::MutexLock l(&mu);
  mu.Await(absl::Condition(+[](int64_t* p) { return *p == 0; }, &pending));
}

void RunAppends(benchmark::State& state, int64_t batch, int64_t waited) {
  const std::string dir = FreshDir();
  {
    AuditLogOptions options;
    options.path = dir;
    auto log = AuditLog::Open(options);
    DARVOZA_CHECK(log.ok()) << log.status();
    uint64_t next = 0;
    (*log)->ResetTickers();
    for (auto _ : state) AppendBatch(**log, batch, waited, &next);
    const double records = static_cast<double>(next);
    state.counters["records_per_s"] = benchmark::Counter(records, benchmark::Counter::kIsRate);
    state.counters["wal_syncs_per_record"] =
        static_cast<double>((*log)->Ticker(rocksdb::WAL_FILE_SYNCED)) / records;
    state.counters["bytes_written_per_record"] =
        static_cast<double>((*log)->Ticker(rocksdb::BYTES_WRITTEN)) / records;
  }
  std::filesystem::remove_all(dir);
}

// Every record waited for: a batch of B synchronous callers.
void BM_AuditAppendBatch(benchmark::State& state) {
  RunAppends(state, state.range(0), state.range(0));
}
BENCHMARK(BM_AuditAppendBatch)->RangeMultiplier(4)->Range(1, 64)->UseRealTime();

// As in an exchange: the request record is not waited for, the response record is; each pair
// is one exchange per side. Batch = exchanges in flight.
void BM_AuditAppendExchangePairs(benchmark::State& state) {
  const int64_t exchanges = state.range(0);
  RunAppends(state, 2 * exchanges, exchanges);
}
BENCHMARK(BM_AuditAppendExchangePairs)->RangeMultiplier(4)->Range(1, 64)->UseRealTime();

// Unwaited records alone: with sync only for waited records these cost no fsync.
void BM_AuditAppendUnwaited(benchmark::State& state) {
  RunAppends(state, state.range(0), 0);
}
BENCHMARK(BM_AuditAppendUnwaited)->Arg(1)->Arg(16)->UseRealTime();

}  // namespace
}  // namespace darvoza::audit
