// Test doubles for the audit log: a PKI (root CA, seal, witness and configuration-signing keys),
// a fake witness with the registry's head rule, and a RocksDB FileSystemWrapper that injects
// power cuts (unsynced writes dropped), ENOSPC and slow syncs.
#ifndef DARVOZA_TESTS_AUDIT_AUDIT_TEST_UTIL_H_
#define DARVOZA_TESTS_AUDIT_AUDIT_TEST_UTIL_H_

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "audit/witness.h"
#include "common/clock.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/seal.h"
#include "proto/globalconf.pb.h"

namespace darvoza::audit::testing {

inline const absl::Time kTestStart = absl::FromUnixSeconds(1'780'000'000);
inline constexpr char kServerText[] = "UZ/GOV/70000001/ss1";

// Keys and certificates of a small federation. Valid from kTestStart - 1 day for 10 years.
struct TestPki {
  TestPki();
  std::unique_ptr<crypto::PrivateKey> root_key;
  std::shared_ptr<const crypto::Certificate> root;
  std::unique_ptr<crypto::FileKeySigner> seal_signer;
  std::shared_ptr<const crypto::Certificate> seal_cert;
  std::unique_ptr<crypto::FileKeySigner> witness_signer;
  std::shared_ptr<const crypto::Certificate> witness_cert;
  std::unique_ptr<crypto::FileKeySigner> conf_signer;
  std::shared_ptr<const crypto::Certificate> conf_cert;
  v1::SecurityServerId server;
  v1::ConfigurationAnchor anchor;

  // A SignedGlobalConf naming the witness certificate.
  std::string SignedGlobalConfBlob() const;
  // Trust rooted at `root` with the witness pinned.
  VerifyOptions Options() const;
};

// A witness with the registry's rule (common/seal.h CheckWitnessHead): a seal must name the
// head it holds, or be the seal it holds (a lost receipt is signed again).
class FakeWitness final : public Witness {
 public:
  FakeWitness(Clock* clock, crypto::Signer* signer, std::string cert_der, SealTrust trust);
  absl::StatusOr<v1::SignedWitnessReceipt> WitnessSeal(const v1::SignedSeal& seal) override;
  void set_reachable(bool reachable);
  // The latest receipt issued (what the registry would hand an auditor).
  v1::SignedWitnessReceipt LatestReceipt() const;
  uint64_t held_seq() const;
  // Receipts issued, repeats included.
  uint64_t receipts() const;

 private:
  Clock* const clock_;
  crypto::Signer* const signer_;
  const std::string cert_der_;
  const SealTrust trust_;
  mutable absl::Mutex mu_;
  bool reachable_ ABSL_GUARDED_BY(mu_) = true;
  WitnessedHead held_ ABSL_GUARDED_BY(mu_);
  uint64_t receipts_ ABSL_GUARDED_BY(mu_) = 0;
  v1::SignedWitnessReceipt latest_ ABSL_GUARDED_BY(mu_);
};

// Tracks, per file written through it, the bytes written and the bytes made durable by
// Sync/Fsync. Freeze() simulates the moment of a power cut (every later file operation fails);
// ApplyCut() then truncates each tracked file to its synced length and thaws.
class FaultFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultFs(const std::shared_ptr<rocksdb::FileSystem>& base);
  const char* Name() const override { return "DarvozaFaultFs"; }

  void Freeze();
  // REQUIRES: the database is closed.
  void ApplyCut();
  void set_no_space(bool on) { no_space_ = on; }
  // Syncs fail with an I/O error after the data was written (it may survive in the page cache).
  void set_fail_sync(bool on) { fail_sync_ = on; }
  void set_sync_delay(absl::Duration d) { sync_delay_us_ = absl::ToInt64Microseconds(d); }
  uint64_t syncs() const { return syncs_; }

  struct FileState {
    uint64_t written = 0;
    uint64_t synced = 0;
  };
  // Called by the file wrappers.
  rocksdb::IOStatus BeforeWrite() const;
  rocksdb::IOStatus OnSync(const std::shared_ptr<FileState>& state);
  void OnAppend(const std::shared_ptr<FileState>& state, uint64_t n);
  void OnTruncate(const std::shared_ptr<FileState>& state, uint64_t n);

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& opts,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& opts,
                               rocksdb::IODebugContext* dbg) override;

 private:
  rocksdb::IOStatus Wrap(const std::string& fname, uint64_t initial_size,
                         std::unique_ptr<rocksdb::FSWritableFile>* result);
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<FileState>> files_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> frozen_{false};
  std::atomic<bool> no_space_{false};
  std::atomic<bool> fail_sync_{false};
  std::atomic<int64_t> sync_delay_us_{0};
  std::atomic<uint64_t> syncs_{0};
};

// A PKI, a simulated clock, a fake witness and a temporary directory for one log.
struct LogFixture {
  LogFixture();
  AuditLogOptions Options() const;
  TestPki pki;
  SimulatedClock clock{kTestStart};
  std::unique_ptr<FakeWitness> witness;
  std::string dir;
  std::string path;

 private:
  std::shared_ptr<void> temp_;
};

// A request record with a distinct message id, client and service, and a body.
AppendRequest MakeRequest(uint64_t n, const std::string& body = "");

// An acknowledged append: where it must be after any crash.
struct Acked {
  uint64_t seq;
  std::string message_id;
};

// Appends from `threads` threads (AppendAndWait) until stopped; records what was acknowledged.
class Appenders {
 public:
  Appenders(AuditLog* log, int threads, uint64_t first_n);
  ~Appenders();
  void WaitForAcks(size_t n);
  void Stop();
  std::vector<Acked> acked();

 private:
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::vector<Acked> acked_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

// How many acknowledged appends are missing (or different) in `log`.
size_t CountLost(AuditQueries& log, const std::vector<Acked>& acked);

// One power-cut round on the log of `f` through `fs`: 4 appenders, the cut after `cut_after`
// acknowledgements, recovery. Returns how many acknowledged appends were lost; *verified says
// whether the recovered log verifies.
size_t PowerCutRound(LogFixture& f, FaultFs& fs, rocksdb::Env* env, bool sync, bool seal,
                     size_t cut_after, uint64_t first_n, bool* verified);

// Writes or deletes one key of a closed log through the store's own layout (as an attacker
// with the files would).
absl::Status PutRaw(const std::string& path, const std::string& key, const std::string& value);
absl::Status DeleteRaw(const std::string& path, const std::string& key);

// Writes, at `path`, the records 1..`records` (MakeRequest's, with bodies) of a log in the layout
// before column families and certificate references, as that code wrote them: every key in the
// default column family, the signer chain inline in each record. Seals and receipts have the
// same keys and format in both layouts: the test has AuditLog make them.
void WritePreviousLayoutLog(const std::string& path, uint64_t records);

// Export everything the log (or reader) holds and verify it.
VerifyReport VerifyStore(AuditQueries& queries, const VerifyOptions& options);

}  // namespace darvoza::audit::testing

#endif  // DARVOZA_TESTS_AUDIT_AUDIT_TEST_UTIL_H_
