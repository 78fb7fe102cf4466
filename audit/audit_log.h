// The audit log of a security server (docs/design.md §7): a tamper-evident, group-committed record
// of every message event and administrative action, in one RocksDB per security server.
//
// Each record gets a dense seq (from 1) and record_hash = SHA-256(prev_hash || record bytes),
// where the record bytes (a serialized darvoza.v1.AuditRecord) include prev_hash and seq.
// Bodies are stored beside the chain keyed by their SHA-256 (unless hash-only), so purging or
// dropping bodies never breaks the chain. Appends are group-committed: one writer thread takes
// every waiting append, writes one WriteBatch (with sync=true when any of them is waited for)
// and then completes every waiter; a completion of a waited record therefore means "durable". Every N records or T of Clock time the writer seals the
// unsealed records (Merkle root + chain head, signed with the seal key). Each seal names the
// previous seal's (last_seq, chain_head) as its previous witnessed head ((0, "") for the first):
// a witness thread sends seals to the registry's witness strictly in order, so that is exactly
// the head the witness holds when it receives the seal; receipts are stored beside the seals.
//
//   AuditLogOptions options;
//   options.path = "/var/lib/darvoza/audit";
//   options.server = my_server_id;
//   options.seal_signer = seal_signer.get();
//   options.seal_cert_der = seal_cert->der();
//   options.witness = registry_witness.get();
//   DARVOZA_ASSIGN_OR_RETURN(auto log, AuditLog::Open(options));
//   log->Append(std::move(request), [reactor](absl::StatusOr<AppendResult> r) {
//     reactor->Finish(r.ok() ? grpc::Status::OK : ToGrpc(r.status()));  // durable now
//   });
//
// Other processes read a live log only through AuditReader (a RocksDB secondary instance).
#ifndef DARVOZA_AUDIT_AUDIT_LOG_H_
#define DARVOZA_AUDIT_AUDIT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit/witness.h"
#include "common/clock.h"
#include "common/crypto/signer.h"
#include "proto/archive.pb.h"
#include "proto/audit.pb.h"

namespace rocksdb {
class DB;
class Env;
class Statistics;
}  // namespace rocksdb

namespace darvoza::audit {

namespace internal {
class Store;
}  // namespace internal

struct AuditLogOptions {
  // Directory of the RocksDB database; created when missing.
  std::string path;
  // The security server whose log this is (named in seals).
  v1::SecurityServerId server;
  // Source of record times and seal intervals. Not owned; must outlive the log.
  Clock* clock = Clock::Real();
  // Signs seals. Null: the log never seals (a read/purge tool, or a test). Not owned.
  crypto::Signer* seal_signer = nullptr;
  // DER of the seal certificate (CN "server:<server id>").
  std::string seal_cert_der;
  // Receives seals in order. Null: seals stay unwitnessed. Not owned.
  Witness* witness = nullptr;
  // Seal when this many records are unsealed. Default: 1000.
  uint64_t seal_every_records = 1000;
  // Seal unsealed records when this much Clock time passed since the last seal. Default: 1 s.
  absl::Duration seal_interval = absl::Seconds(1);
  // How often (real time) the background threads wake to look at the Clock, and how long the
  // witness thread waits before re-sending after a failure. Default: 200 ms / 1 s.
  absl::Duration timer_poll = absl::Milliseconds(200);
  absl::Duration witness_retry = absl::Seconds(1);
  // fsync each group commit. Default true; false only for test setup and the power-cut
  // control round (acknowledged appends may then be lost).
  bool sync = true;
  // Upper bound of all memtables (RocksDB db_write_buffer_size). Default: 8 MiB.
  size_t write_buffer_bytes = 8u << 20;
  // RocksDB environment for fault injection in tests. Null: the default Env. Not owned.
  rocksdb::Env* env = nullptr;
  // When the state read at open is unreadable (DATA_LOSS: the newest record, the unsealed
  // tail, the last seal or the purge marker does not parse or is missing), open anyway and
  // refuse every append and seal with DATA_LOSS instead of failing Open; Health().damage says
  // why. Reads and exports still work, so an operator can inspect and archive the log. A daemon
  // sets this to stay up and say what is wrong; a tool leaves it false. Default: false.
  bool open_damaged = false;
  // Where the callbacks of waited appends run: handed one function per group commit that runs
  // that commit's waited callbacks in order. Null: on the writer thread. A daemon hands them
  // to gRPC's threads (RunOnGrpcThread), so that the writer goes on to the next group commit
  // instead of finishing calls one by one. Unwaited appends' callbacks stay on the writer.
  std::function<void(std::function<void()>)> run_completions;
  // Called on the witness thread whenever the status of a witness attempt differs (code or
  // fault) from the previous attempt's; not called while it stays the same. It has run when
  // the WitnessNow that waited for that attempt returns. Must be quick.
  std::function<void(const absl::Status&)> on_witness_status_change;
};

// One event to log. The log fills record.seq, record.prev_hash, and record.time_unix_nanos
// when it is 0; when `body` is given it sets body_sha256 and body_length from it. A
// record.signer_cert_chain is stored once per certificate: the record keeps their SHA-256s
// (signer_cert_sha256) instead, and GetCertificate returns them.
struct AppendRequest {
  v1::AuditRecord record;
  std::optional<std::string> body;
  // Keep only the body's hash (the subsystem is configured hash-only).
  bool hash_only = false;
  // Whether the caller waits for this record to be durable. false: the callback runs once the
  // record is written (in the page cache, so it survives the process being killed), and the
  // record becomes durable with the next group commit that holds a waited record (the WAL is
  // synced in order); a power cut before that loses it. Only batches holding a waited record
  // are synced. Default: true.
  bool wait_durable = true;
  // The caller computed record.body_sha256 from `body` itself (or checked it against it): the
  // log takes it instead of hashing the body again. Default: false (the log hashes the body
  // and refuses a record whose body_sha256 differs).
  bool body_sha256_checked = false;
};

struct AppendResult {
  uint64_t seq = 0;
  std::string record_hash;  // 32 bytes
};

// Called once after the record is durable (or, when not wait_durable, written), or has failed:
// on the log's writer thread, or where AuditLogOptions::run_completions puts it. Must be quick
// and must not wait for another append of the same log.
using AppendCallback = std::function<void(absl::StatusOr<AppendResult>)>;

// A stored record with the exact bytes that were hashed.
struct StoredRecord {
  uint64_t seq = 0;
  std::string bytes;
  v1::AuditRecord record;
};

// Index query. At least one of client/service may be empty; times are inclusive/exclusive.
struct AuditQuery {
  std::string client;   // subsystem text form, e.g. UZ/GOV/70000001/tax; "" = any
  std::string service;  // service text form; "" = any
  absl::Time from = absl::InfinitePast();
  absl::Time to = absl::InfiniteFuture();  // exclusive
  size_t limit = 0;                        // 0 = no limit
};

struct ExportOptions {
  uint64_t first_seq = 0;  // 0 = the first record kept
  uint64_t last_seq = 0;   // 0 = the last record
  bool include_bodies = true;
  // Opaque blobs (serialized SignedGlobalConf) to carry in the archive.
  std::vector<std::string> global_configurations;
  // Extra certificates (DER) to carry, e.g. the issuers of the seal certificates.
  std::vector<std::string> certificates_der;
};

// What an operator watches: `darvoza ss status` and the darvoza_ss_audit_* metrics.
struct AuditLogHealth {
  // OK, or DATA_LOSS naming what was unreadable at open (see AuditLogOptions::open_damaged).
  absl::Status damage;
  // Status of the last witness attempt (OK when receipts are current).
  absl::Status witness;
  uint64_t head_seq = 0;
  uint64_t last_seal_seq = 0;  // 0: nothing sealed yet
  absl::Time last_sealed_at = absl::InfinitePast();
  // Seals without a witness receipt, and the Clock time since the oldest of them was made
  // (zero when there is none).
  uint64_t unwitnessed_seals = 0;
  absl::Duration unwitnessed_age = absl::ZeroDuration();
  uint64_t disk_bytes = 0;  // the files under AuditLogOptions::path
};

struct LogStats {
  uint64_t first_seq = 0;  // first record kept (after purges)
  uint64_t head_seq = 0;
  uint64_t seals = 0;
  uint64_t receipts = 0;
  uint64_t last_sealed_seq = 0;
  uint64_t last_witnessed_seq = 0;
  uint64_t purged_through_seq = 0;
};

// Read operations shared by the writer (AuditLog) and secondary readers (AuditReader).
// Thread-safe.
class AuditQueries {
 public:
  virtual ~AuditQueries() = default;

  // NOT_FOUND when no record has that seq (never written or purged).
  virtual absl::StatusOr<StoredRecord> GetRecord(uint64_t seq) = 0;
  // Every record of one message id, by seq. Index lookups only.
  virtual absl::StatusOr<std::vector<StoredRecord>> FindByMessageId(
      absl::string_view message_id) = 0;
  // Records matching the query, by time. Uses the client, service, client+service or time
  // index: k results cost one seek, k+1 index steps and k point reads.
  virtual absl::StatusOr<std::vector<StoredRecord>> Find(const AuditQuery& query) = 0;
  // The body stored under its SHA-256; NOT_FOUND when hash-only or purged.
  virtual absl::StatusOr<std::string> GetBody(absl::string_view sha256) = 0;
  // A certificate a record references (AuditRecord.signer_cert_sha256); NOT_FOUND when the log
  // does not hold it.
  virtual absl::StatusOr<std::string> GetCertificate(absl::string_view sha256) = 0;
  // A self-contained archive of whole seals around [first_seq, last_seq] (see archive.h).
  virtual absl::StatusOr<v1::AuditArchive> Export(const ExportOptions& options) = 0;
  // An inclusion proof of record `seq` in its seal. FAILED_PRECONDITION when not sealed yet.
  virtual absl::StatusOr<v1::AuditInclusionProof> Prove(uint64_t seq) = 0;
  virtual absl::StatusOr<LogStats> Stats() = 0;
  // RocksDB statistics ticker (rocksdb::Tickers value) and its reset; for tests and metrics.
  virtual uint64_t Ticker(uint32_t ticker) const = 0;
  virtual void ResetTickers() = 0;
};

// The writing side. One per database and process (RocksDB's lock refuses a second writer).
// Append/AppendAndWait/SealNow/... may be called from any thread.
class AuditLog final : public AuditQueries {
 public:
  // Opens (creating when missing) the log, loads the chain head and starts the writer and
  // witness threads. UNAVAILABLE when the database cannot be opened (e.g. locked by another
  // process), DATA_LOSS when the stored head cannot be read.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const AuditLogOptions& options);
  // Completes every accepted append, stops the threads and closes the database.
  ~AuditLog() override;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Queues one record; `done` runs (see AppendCallback) once the record is durable, or with an
  // error: INVALID_ARGUMENT (a body that contradicts record.body_sha256, or a record that
  // would not parse back: a text field that is not valid UTF-8), UNAVAILABLE or
  // RESOURCE_EXHAUSTED (disk full) with fault Server.AuditLog.WriteFailed when the write
  // failed (nothing of the batch is acknowledged; the log reopens its store), CANCELLED after
  // shutdown began. Never blocks on the disk or the witness.
  void Append(AppendRequest request, AppendCallback done);

  // Append and wait for durability. Not to be called from a gRPC callback reactor.
  absl::StatusOr<AppendResult> AppendAndWait(AppendRequest request);

  // Logs an administrative action (kind ADMIN_ACTION) in the same chain and waits.
  absl::StatusOr<AppendResult> AppendAdminAction(const v1::AdminAction& action);

  // Seals every committed, unsealed record now and waits until the seal is stored (not until it
  // is witnessed). OK when nothing was unsealed. FAILED_PRECONDITION without a seal signer.
  // SealNow, Tick and WitnessNow wait for the log's threads: never call them from an
  // AppendCallback (it runs on the writer thread).
  absl::Status SealNow();
  // Lets the writer look at the Clock now (seal interval) and waits for it: tests move a
  // SimulatedClock and call this instead of waiting for the background poll.
  absl::Status Tick();
  // Sends every pending seal to the witness now and waits. The witness's error, if any.
  absl::Status WitnessNow();

  // Removes records up to the last witnessed seal ending within `archive` whose records are all
  // older than `older_than`, with their index entries, seals, receipts and the bodies no kept
  // record names, and leaves a PurgeMarker so the chain verifies across the cut. Returns the
  // last purged seq (0 when nothing could be purged). REQUIRES: `archive` was verified against
  // the federation's trust (VerifyArchive). FAILED_PRECONDITION, purging nothing, when the
  // archive does not hold, byte for byte, every record from the log's first kept one on that
  // would go, or a body that would go.
  absl::StatusOr<uint64_t> Purge(absl::Time older_than, const v1::AuditArchive& archive);

  uint64_t head_seq() const;
  // Status of the last witness attempt (OK when receipts are current).
  absl::Status witness_status() const;
  // The log's health now. Reads the last seals from the store and the directory's size: cheap
  // enough for every status call and metrics scrape. UNAVAILABLE when the store is closed
  // after a failed write.
  absl::StatusOr<AuditLogHealth> Health();
  // OK, or why every append is refused (AuditLogOptions::open_damaged). Cheap; never changes
  // after Open.
  absl::Status damage() const { return damage_; }
  // OK, or the error of the last batch of appends when writing it failed (the log cannot
  // write now: disk full, I/O error); OK again once a batch is written. Cheap.
  absl::Status write_status() const ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<StoredRecord> GetRecord(uint64_t seq) override;
  absl::StatusOr<std::vector<StoredRecord>> FindByMessageId(absl::string_view id) override;
  absl::StatusOr<std::vector<StoredRecord>> Find(const AuditQuery& query) override;
  absl::StatusOr<std::string> GetBody(absl::string_view sha256) override;
  absl::StatusOr<std::string> GetCertificate(absl::string_view sha256) override;
  absl::StatusOr<v1::AuditArchive> Export(const ExportOptions& options) override;
  absl::StatusOr<v1::AuditInclusionProof> Prove(uint64_t seq) override;
  absl::StatusOr<LogStats> Stats() override;
  uint64_t Ticker(uint32_t ticker) const override;
  void ResetTickers() override;

 private:
  // A certificate of a record's signer chain, stored once under its SHA-256.
  struct Certificate {
    std::string sha256;
    std::string der;
  };
  struct Pending {
    AppendRequest request;
    std::vector<Certificate> certificates;
    AppendCallback done;
  };
  // Fingerprints the writer remembers as stored before it looks them up again.
  static constexpr size_t kCertificateCacheSize = 4096;

  explicit AuditLog(const AuditLogOptions& options);
  absl::Status OpenStore() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::Status LoadState();  // writer state from disk; writer thread or Open only
  // Writer thread: reopens the store and reloads the chain and seal state from what reached
  // the disk; sets or clears store_broken_.
  absl::Status ReopenStore();
  // Any other thread whose write failed: has the writer thread reopen the store, and waits.
  void ReopenByWriter() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status StoreReceipt(uint64_t index, const v1::SignedWitnessReceipt& receipt);
  void WriterLoop();
  void WitnessLoop();
  void CommitBatch(std::vector<Pending>& batch);
  absl::Status MaybeSeal(bool force);
  absl::Status WitnessPending();

  const AuditLogOptions options_;
  std::shared_ptr<rocksdb::Statistics> statistics_;

  // The store; replaced (under the writer lock) when a failed write reopens it.
  mutable absl::Mutex db_mu_;
  std::unique_ptr<internal::Store> store_ ABSL_GUARDED_BY(db_mu_);

  // Appends and control requests, handed from callers to the writer thread.
  mutable absl::Mutex mu_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t control_requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t control_done_ ABSL_GUARDED_BY(mu_) = 0;
  bool force_seal_ ABSL_GUARDED_BY(mu_) = false;
  // Another thread's write failed: the writer reopens the store before its next write.
  bool reopen_requested_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status control_status_ ABSL_GUARDED_BY(mu_);
  uint64_t head_seq_published_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status write_status_ ABSL_GUARDED_BY(mu_);
  uint64_t last_seal_index_published_ ABSL_GUARDED_BY(mu_) = 0;

  // Writer-thread state (touched only by the writer thread, or by Open before it starts).
  uint64_t head_seq_ = 0;
  std::string head_hash_;
  std::vector<std::string> unsealed_hashes_;  // record hashes of (last sealed, head]
  uint64_t last_seal_index_ = 0;
  uint64_t last_sealed_seq_ = 0;
  std::string last_sealed_head_;
  absl::Duration last_seal_mono_;
  bool store_broken_ = false;  // a write failed and the store was not reopened since
  // Certificates known to be stored (a cache: cleared when full or after a failed write).
  absl::flat_hash_set<std::string> stored_certificates_;

  // Witness thread hand-off.
  mutable absl::Mutex witness_mu_;
  bool witness_stop_ ABSL_GUARDED_BY(witness_mu_) = false;
  uint64_t witness_requested_ ABSL_GUARDED_BY(witness_mu_) = 0;
  uint64_t witness_done_ ABSL_GUARDED_BY(witness_mu_) = 0;
  absl::Status witness_status_ ABSL_GUARDED_BY(witness_mu_);
  uint64_t witnessed_index_published_ ABSL_GUARDED_BY(witness_mu_) = 0;
  uint64_t witnessed_index_ = 0;  // witness thread only

  // Set by Open before the threads start, constant after.
  absl::Status damage_;

  std::thread writer_;
  std::thread witness_thread_;
};

// A read-only view of a log another process may be writing: a RocksDB secondary instance.
class AuditReader final : public AuditQueries {
 public:
  // Opens `path` as a secondary, keeping its own files in `secondary_path` (created; the caller
  // removes it). NOT_FOUND when there is no log at `path`.
  static absl::StatusOr<std::unique_ptr<AuditReader>> Open(const std::string& path,
                                                           const std::string& secondary_path);
  ~AuditReader() override;
  AuditReader(const AuditReader&) = delete;
  AuditReader& operator=(const AuditReader&) = delete;

  // Catches up with the primary's latest writes.
  absl::Status Refresh();

  absl::StatusOr<StoredRecord> GetRecord(uint64_t seq) override;
  absl::StatusOr<std::vector<StoredRecord>> FindByMessageId(absl::string_view id) override;
  absl::StatusOr<std::vector<StoredRecord>> Find(const AuditQuery& query) override;
  absl::StatusOr<std::string> GetBody(absl::string_view sha256) override;
  absl::StatusOr<std::string> GetCertificate(absl::string_view sha256) override;
  absl::StatusOr<v1::AuditArchive> Export(const ExportOptions& options) override;
  absl::StatusOr<v1::AuditInclusionProof> Prove(uint64_t seq) override;
  absl::StatusOr<LogStats> Stats() override;
  uint64_t Ticker(uint32_t ticker) const override;
  void ResetTickers() override;

 private:
  AuditReader(std::shared_ptr<rocksdb::Statistics> statistics,
              std::unique_ptr<internal::Store> store);
  std::shared_ptr<rocksdb::Statistics> statistics_;
  std::unique_ptr<internal::Store> store_;
};

}  // namespace darvoza::audit

#endif  // DARVOZA_AUDIT_AUDIT_LOG_H_
