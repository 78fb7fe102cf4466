// audit_bench: how much group commit buys. Prints durable appends per second of 1 KiB records
// at 1, 16 and 128 concurrent appenders, beside a same-run baseline of one-at-a-time RocksDB
// Put with sync=true (what a log without group commit would get), and WAL syncs per append.
//
//   audit_bench [--dir DIR] [--seconds S]
//
// DIR must be on the disk under test (not tmpfs); default: a fresh directory in the current
// directory. Build in Release mode for numbers worth quoting.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "common/clock.h"
#include "common/identifiers.h"

namespace {

using Steady = std::chrono::steady_clock;

double Seconds(Steady::time_point a, Steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// One-at-a-time Put with sync=true: every write waits for its own fsync.
double BaselinePutsPerSecond(const std::string& path, double seconds, uint64_t* syncs) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.db_write_buffer_size = 8u << 20;
  options.statistics = rocksdb::CreateDBStatistics();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) {
    std::fprintf(stderr, "baseline open: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  const std::string value(1024, 'v');
  uint64_t n = 0;
  const auto start = Steady::now();
  auto now = start;
  while (Seconds(start, now) < seconds) {
    db->Put(wo, absl::StrCat("k", n++), value).PermitUncheckedError();
    now = Steady::now();
  }
  *syncs = options.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  return n / Seconds(start, now);
}

struct Result {
  double per_second = 0;
  uint64_t appends = 0;
  uint64_t syncs = 0;
};

Result AuditAppendsPerSecond(const std::string& path, int appenders, double seconds) {
  darvoza::audit::AuditLogOptions options;
  options.path = path;
  auto log = darvoza::audit::AuditLog::Open(options);
  if (!log.ok()) {
    std::fprintf(stderr, "audit open: %s\n", log.status().ToString().c_str());
    std::exit(1);
  }
  auto client = darvoza::ParseSubsystemId("UZ/GOV/70000001/bench-client");
  auto service = darvoza::ParseServiceId("UZ/GOV/70000002/bench-service/echo");
  (*log)->ResetTickers();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  std::vector<std::thread> threads;
  const auto start = Steady::now();
  for (int t = 0; t < appenders; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; !stop; ++i) {
        darvoza::audit::AppendRequest request;
        request.record.set_kind(darvoza::v1::REQUEST_IN);
        request.record.set_message_id(absl::StrCat("bench-", t, "-", i));
        *request.record.mutable_client() = *client;
        *request.record.mutable_service() = *service;
        request.body = std::string(1024, 'b');
        if ((*log)->AppendAndWait(std::move(request)).ok()) ++done;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : threads) t.join();
  const auto end = Steady::now();
  Result r;
  r.appends = done;
  r.per_second = done / Seconds(start, end);
  r.syncs = (*log)->Ticker(rocksdb::WAL_FILE_SYNCED);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  double seconds = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--dir DIR] [--seconds S]\n", argv[0]);
      return 2;
    }
  }
  if (dir.empty()) {
    char templ[] = "audit-bench-XXXXXX";
    if (mkdtemp(templ) == nullptr) return 1;
    dir = templ;
  }
  std::filesystem::create_directories(dir);
  uint64_t base_syncs = 0;
  const double baseline = BaselinePutsPerSecond(dir + "/baseline", seconds, &base_syncs);
  std::printf("audit_bench: 1 KiB records, durable (fsync before completion), %.1f s each, dir %s\n",
              seconds, dir.c_str());
  std::printf("%-44s %12s %10s %14s\n", "case", "ops/s", "ratio", "WAL syncs/op");
  std::printf("%-44s %12.0f %10s %14.3f\n", "baseline: RocksDB Put sync=true, one at a time",
              baseline, "1.00x", 1.0 * base_syncs / std::max<double>(1, baseline * seconds));
  for (int appenders : {1, 16, 128}) {
    const std::string path = absl::StrCat(dir, "/audit-", appenders);
    Result r = AuditAppendsPerSecond(path, appenders, seconds);
    std::printf("%-44s %12.0f %9.2fx %14.3f\n",
                absl::StrCat("audit log, ", appenders, " appender(s)").c_str(), r.per_second,
                r.per_second / baseline, r.appends ? 1.0 * r.syncs / r.appends : 0.0);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak RSS of the whole run: %.1f MiB (memtables capped at 8 MiB per log)\n",
              usage.ru_maxrss / 1024.0);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
