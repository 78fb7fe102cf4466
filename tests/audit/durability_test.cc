// Durability of acknowledged appends: simulated power cuts (unsynced writes dropped), a
// sync=false control round that must lose data, SIGKILLed child processes, group commit under
// slow syncs, and a full disk.
#include <fcntl.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/statistics.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "common/grpc_thread.h"
#include "common/faults.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_support.h"

namespace darvoza::audit {
namespace {

using testing::Acked;
using testing::Appenders;
using testing::CountLost;
using testing::FaultFs;
using testing::PowerCutRound;
using testing::LogFixture;
using testing::MakeRequest;

TEST_CASE("Acknowledged appends survive power cuts at random points", "[audit][durability]") {
  LogFixture f;
  auto fs = std::make_shared<FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  std::mt19937 rng(20261126);
  uint64_t next_n = 1;
  for (int round = 0; round < 6; ++round) {
    const size_t cut_after = 20 + rng() % 150;
    bool verified = false;
    const size_t lost = PowerCutRound(f, *fs, env.get(), /*sync=*/true, /*seal=*/true,
                                      cut_after, next_n, &verified);
    INFO("round " << round << " cut after " << cut_after);
    CHECK(lost == 0);
    CHECK(verified);
    next_n += 100000;
  }
}

TEST_CASE("Control: with sync=false a power cut loses acknowledged appends",
          "[audit][durability]") {
  LogFixture f;
  auto fs = std::make_shared<FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  bool verified = false;
  const size_t lost = PowerCutRound(f, *fs, env.get(), /*sync=*/false, /*seal=*/false, 200, 1,
                                    &verified);
  CHECK(lost > 0);  // the simulation bites: unsynced data is really dropped
  CHECK(verified);  // what is left is still a consistent chain
}

TEST_CASE("Group commit: 128 appenders with 2 ms syncs need few WAL syncs",
          "[audit][durability]") {
  LogFixture f;
  auto fs = std::make_shared<FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  AuditLogOptions options = f.Options();
  options.env = env.get();
  options.seal_signer = nullptr;
  options.witness = nullptr;
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  fs->set_sync_delay(absl::Milliseconds(2));
  (*log)->ResetTickers();
  constexpr int kThreads = 128;
  constexpr int kPerThread = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!(*log)->AppendAndWait(MakeRequest(t * 1000 + i, std::string(1024, 'b'))).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const uint64_t appends = kThreads * kPerThread;
  const uint64_t syncs = (*log)->Ticker(rocksdb::WAL_FILE_SYNCED);
  INFO("WAL syncs: " << syncs << " for " << appends << " appends");
  CHECK(failures == 0);
  CHECK((*log)->head_seq() == appends);
  CHECK(syncs >= 1);
  CHECK(syncs <= appends / 8);
}

// Only a batch that holds a waited record is synced (docs/design.md §7). An unwaited record
// completes once written; the next waited record's sync makes it durable too, because the WAL
// is synced in order. The first section is the control: without a waited record after them,
// unwaited records are really not synced, so a power cut takes them.
TEST_CASE("Unwaited records are synced by the next waited batch, and only then",
          "[audit][durability]") {
  LogFixture f;
  auto fs = std::make_shared<FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  AuditLogOptions options = f.Options();
  options.env = env.get();
  options.seal_signer = nullptr;  // seals sync on their own; this is about appends only
  options.witness = nullptr;
  const bool waited_last = GENERATE(false, true);
  INFO((waited_last ? "a waited record after them" : "unwaited records only"));
  constexpr uint64_t kUnwaited = 12;
  std::vector<Acked> acked;
  {
    auto log = AuditLog::Open(options);
    REQUIRE(log.ok());
    (*log)->ResetTickers();
    for (uint64_t n = 1; n <= kUnwaited; ++n) {
      AppendRequest request = MakeRequest(n, "body");
      request.wait_durable = false;
      auto result = (*log)->AppendAndWait(std::move(request));
      REQUIRE(result.ok());
      acked.push_back(Acked{result->seq, absl::StrCat("msg-", n)});
    }
    CHECK((*log)->Ticker(rocksdb::WAL_FILE_SYNCED) == 0);
    if (waited_last) {
      auto result = (*log)->AppendAndWait(MakeRequest(kUnwaited + 1, "body"));
      REQUIRE(result.ok());
      acked.push_back(Acked{result->seq, absl::StrCat("msg-", kUnwaited + 1)});
      CHECK((*log)->Ticker(rocksdb::WAL_FILE_SYNCED) >= 1);
    }
    fs->Freeze();  // the power goes out
    log->reset();
  }
  fs->ApplyCut();
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  if (waited_last) {
    CHECK(CountLost(**log, acked) == 0);
    CHECK((*log)->head_seq() == kUnwaited + 1);
  } else {
    CHECK(CountLost(**log, acked) > 0);
  }
}

// What a security server does (docs/design.md §7): the callbacks of waited appends, which
// answer calls, are handed to gRPC's threads so the writer goes on to the next group commit.
// Answered still means durable: 8 callers each wait for their answer and then append again
// (a call each), the power goes out after a random number of answers, and every answered
// record is there after recovery; no answer ran on the writer thread.
TEST_CASE("Appends answered on gRPC threads were durable when answered, under concurrency",
          "[audit][durability]") {
  LogFixture f;
  auto fs = std::make_shared<FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  std::mt19937 rng(20261201);
  uint64_t next_n = 1;
  for (int round = 0; round < 4; ++round) {
    const size_t cut_after = 30 + rng() % 200;
    INFO("round " << round << " cut after " << cut_after);
    std::atomic<uint64_t> handed{0};
    AuditLogOptions options = f.Options();
    options.env = env.get();
    options.run_completions = [&handed](std::function<void()> completions) {
      ++handed;
      RunOnGrpcThread(std::move(completions));
    };
    absl::Mutex mu;
    std::vector<Acked> acked;
    std::thread::id writer;
    std::atomic<int> on_writer{0};
    {
      auto log = AuditLog::Open(options);
      REQUIRE(log.ok());
      {
        // An unwaited append's callback runs on the writer thread: learn which thread it is.
        AppendRequest probe = MakeRequest(next_n++);
        probe.wait_durable = false;
        absl::Notification seen;
        bool probe_ok = false;
        (*log)->Append(std::move(probe), [&](absl::StatusOr<AppendResult> r) {
          probe_ok = r.ok();
          writer = std::this_thread::get_id();
          seen.Notify();
        });
        seen.WaitForNotification();
        REQUIRE(probe_ok);
      }
      std::atomic<bool> stop{false};
      std::vector<std::thread> callers;
      for (int t = 0; t < 8; ++t) {
        callers.emplace_back([&, first = next_n + t] {
          for (uint64_t n = first; !stop; n += 8) {
            absl::Notification answered;
            (*log)->Append(MakeRequest(n, absl::StrCat("body-", n)),
                           [&, n](absl::StatusOr<AppendResult> r) {
                             if (std::this_thread::get_id() == writer) ++on_writer;
                             if (r.ok()) {
                               absl::MutexLock l(&mu);
                               acked.push_back(Acked{r->seq, absl::StrCat("msg-", n)});
                             }
                             answered.Notify();
                           });
            answered.WaitForNotification();
          }
        });
      }
      {
        absl::MutexLock l(&mu);
        auto enough = [&]() { return acked.size() >= cut_after; };
        mu.Await(absl::Condition(&enough));
      }
      fs->Freeze();  // the power goes out
      stop = true;
      for (std::thread& t : callers) t.join();  // each waited for its last answer
      log->reset();
    }
    next_n += 100000;
    fs->ApplyCut();
    AuditLogOptions recover = f.Options();
    recover.env = env.get();
    auto log = AuditLog::Open(recover);
    REQUIRE(log.ok());
    std::vector<Acked> answered;
    {
      absl::MutexLock l(&mu);
      answered = acked;
    }
    CHECK(answered.size() >= cut_after);
    CHECK(CountLost(**log, answered) == 0);
    CHECK(on_writer.load() == 0);
    CHECK(handed.load() > 0);
    VerifyOptions verify = f.pki.Options();
    verify.allow_unwitnessed_seals = true;
    VerifyReport report = testing::VerifyStore(**log, verify);
    INFO(report.ToText());
    CHECK(report.ok);
  }
}

TEST_CASE("Disk full fails appends clearly, loses nothing, and recovers", "[audit][durability]") {
  LogFixture f;
  auto fs = std::make_shared<FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  AuditLogOptions options = f.Options();
  options.env = env.get();
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  std::vector<Acked> acked;
  for (uint64_t n = 1; n <= 15; ++n) {
    auto r = (*log)->AppendAndWait(MakeRequest(n, "body"));
    REQUIRE(r.ok());
    acked.push_back(Acked{r->seq, absl::StrCat("msg-", n)});
  }
  fs->set_no_space(true);
  for (uint64_t n = 16; n <= 18; ++n) {
    auto r = (*log)->AppendAndWait(MakeRequest(n, "body"));
    REQUIRE_FALSE(r.ok());
    INFO(r.status().ToString());
    CHECK(darvoza::testing::ObservedFault(r.status()) == faults::kAuditLogFailure);
    CHECK((r.status().code() == absl::StatusCode::kResourceExhausted ||
           r.status().code() == absl::StatusCode::kUnavailable));
  }
  fs->set_no_space(false);
  for (uint64_t n = 19; n <= 25; ++n) {
    auto r = (*log)->AppendAndWait(MakeRequest(n, "body"));
    REQUIRE(r.ok());
    acked.push_back(Acked{r->seq, absl::StrCat("msg-", n)});
  }
  CHECK(CountLost(**log, acked) == 0);
  REQUIRE((*log)->SealNow().ok());
  REQUIRE((*log)->WitnessNow().ok());
  VerifyReport report = testing::VerifyStore(**log, f.pki.Options());
  INFO(report.ToText());
  CHECK(report.ok);
  // Across a restart too.
  log->reset();
  log = AuditLog::Open(options);
  REQUIRE(log.ok());
  CHECK(CountLost(**log, acked) == 0);
}

// The race behind a one-in-five failure of the test above: the witness thread sent seal 1 while
// the disk was filling, the witness took it, and the receipt could not be stored. Every resend
// of seal 1 then met a witness whose head had already moved past it. Here the same order is
// forced: the witness takes the seal, the disk is full when the receipt is stored.
TEST_CASE("A receipt that could not be stored is asked for again and the witness repeats it",
          "[audit][durability]") {
  LogFixture f;
  auto fs = std::make_shared<FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  AuditLogOptions options = f.Options();
  options.env = env.get();
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  f.witness->set_reachable(false);
  for (uint64_t n = 1; n <= 5; ++n) REQUIRE((*log)->AppendAndWait(MakeRequest(n)).ok());
  REQUIRE((*log)->SealNow().ok());
  fs->set_no_space(true);
  f.witness->set_reachable(true);
  absl::Status full = (*log)->WitnessNow();
  INFO(full.ToString());
  CHECK_FALSE(full.ok());
  CHECK(f.witness->held_seq() == 5);  // the witness took the seal; the log has no receipt
  fs->set_no_space(false);
  // No append in between: the witness path itself has the store reopened.
  absl::Status retried = (*log)->WitnessNow();
  INFO(retried.ToString());
  REQUIRE(retried.ok());
  auto stats = (*log)->Stats();
  REQUIRE(stats.ok());
  CHECK(stats->receipts == 1);
  CHECK(stats->last_witnessed_seq == 5);
  CHECK(f.witness->receipts() >= 2);  // the receipt was signed again, not refused as a fork
  // The log goes on and the next seal extends the witnessed head.
  for (uint64_t n = 6; n <= 8; ++n) REQUIRE((*log)->AppendAndWait(MakeRequest(n)).ok());
  REQUIRE((*log)->SealNow().ok());
  REQUIRE((*log)->WitnessNow().ok());
  CHECK(f.witness->held_seq() == 8);
  VerifyReport report = testing::VerifyStore(**log, f.pki.Options());
  INFO(report.ToText());
  CHECK(report.ok);
}

TEST_CASE("A seal that could not be written does not fail the appends after it",
          "[audit][durability]") {
  LogFixture f;
  auto fs = std::make_shared<FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  AuditLogOptions options = f.Options();
  options.env = env.get();
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  for (uint64_t n = 1; n <= 4; ++n) REQUIRE((*log)->AppendAndWait(MakeRequest(n)).ok());
  fs->set_no_space(true);
  CHECK_FALSE((*log)->SealNow().ok());
  fs->set_no_space(false);
  // RocksDB refuses every write after a failed one until it is reopened: the log must have
  // reopened it, not let this client's append pay for the failed seal.
  auto next = (*log)->AppendAndWait(MakeRequest(5));
  INFO(next.status().ToString());
  REQUIRE(next.ok());
  CHECK(next->seq == 5);
  REQUIRE((*log)->SealNow().ok());
  REQUIRE((*log)->WitnessNow().ok());
  CHECK(f.witness->held_seq() == 5);
  VerifyReport report = testing::VerifyStore(**log, f.pki.Options());
  INFO(report.ToText());
  CHECK(report.ok);
}

TEST_CASE("A batch whose fsync failed may be on disk: the head is reloaded from there",
          "[audit][durability]") {
  LogFixture f;
  auto fs = std::make_shared<FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  AuditLogOptions options = f.Options();
  options.env = env.get();
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  for (uint64_t n = 1; n <= 5; ++n) REQUIRE((*log)->AppendAndWait(MakeRequest(n)).ok());
  fs->set_fail_sync(true);
  auto failed = (*log)->AppendAndWait(MakeRequest(6));
  REQUIRE_FALSE(failed.ok());
  CHECK(darvoza::testing::ObservedFault(failed.status()) == faults::kAuditLogFailure);
  fs->set_fail_sync(false);
  auto next = (*log)->AppendAndWait(MakeRequest(7));
  REQUIRE(next.ok());
  // The failed record reached the WAL and came back with the reopen: the chain goes on after
  // it rather than forking at seq 6.
  auto six = (*log)->GetRecord(6);
  if (six.ok()) {
    CHECK(six->record.message_id() == "msg-6");
    CHECK(next->seq == 7);
  } else {
    CHECK(next->seq == 6);
  }
  REQUIRE((*log)->SealNow().ok());
  REQUIRE((*log)->WitnessNow().ok());
  VerifyReport report = testing::VerifyStore(**log, f.pki.Options());
  INFO(report.ToText());
  CHECK(report.ok);
}

#ifdef AUDIT_CRASH_HELPER
TEST_CASE("Acknowledged appends survive SIGKILL of the writing process", "[audit][durability]") {
  darvoza::testing::TempDir dir;
  const std::string path = dir.File("audit");
  std::mt19937 rng(4242);
  uint64_t first_n = 1;
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      const std::string first = std::to_string(first_n);
      execl(AUDIT_CRASH_HELPER, AUDIT_CRASH_HELPER, path.c_str(), "4", first.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    const size_t kill_after = 10 + rng() % 60;
    std::string data;
    std::vector<Acked> acked;
    char buf[4096];
    bool killed = false;
    for (;;) {
      const ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;
      data.append(buf, static_cast<size_t>(n));
      size_t lines = std::count(data.begin(), data.end(), '\n');
      if (!killed && lines >= kill_after) {
        kill(pid, SIGKILL);
        killed = true;
      }
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(killed);
    REQUIRE(WIFSIGNALED(status));
    for (absl::string_view line : absl::StrSplit(data, '\n', absl::SkipEmpty())) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() != 2) continue;  // a line cut by the kill
      uint64_t seq = 0;
      if (!absl::SimpleAtoi(parts[0], &seq)) continue;
      acked.push_back(Acked{seq, parts[1]});
    }
    REQUIRE(acked.size() >= kill_after);
    AuditLogOptions options;
    options.path = path;
    auto log = AuditLog::Open(options);
    REQUIRE(log.ok());
    INFO("round " << round);
    CHECK(CountLost(**log, acked) == 0);
    VerifyOptions verify;
    verify.allow_unwitnessed_seals = true;  // the helper has no seal key: the chain is checked
    VerifyReport report = testing::VerifyStore(**log, verify);
    INFO(report.ToText());
    CHECK(report.ok);
    first_n += 1000000;
  }
}
#endif

}  // namespace
}  // namespace darvoza::audit
