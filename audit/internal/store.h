// Private: the RocksDB layout of an audit log, and the reads shared by writer and readers.
//
// Keys (every integer big-endian, so keys sort numerically), by column family
// (docs/design.md §7):
//   default (the chain, sequential keys only):
//     'c' seq                              -> serialized AuditRecord (the hashed bytes)
//   "seals" (sequential, about one a second):
//     's' seal_index                       -> serialized SignedSeal (dense from 1)
//     'S' last_seq                         -> seal_index
//     'r' seal_index                       -> serialized SignedWitnessReceipt
//     'P'                                  -> serialized PurgeMarker
//   "bodies":        'b' sha256            -> body
//   "certificates":  'C' sha256            -> DER certificate a record references
//   "message_ids":   'm' len message_id seq -> ""
//   "clients":       'k' len client time seq -> ""
//   "services":      'v' len service time seq -> ""
//   "client_services": 'x' len client len service time seq -> ""
//   "times":         't' time seq          -> ""
// Times are int64 Unix nanos with the sign bit flipped. Each key's first byte names its family,
// so a log of the previous layout (every key in the default family) is read and written with
// every family handle pointing at the default family.
#ifndef DARVOZA_AUDIT_INTERNAL_STORE_H_
#define DARVOZA_AUDIT_INTERNAL_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "audit/audit_log.h"
#include "proto/archive.pb.h"
#include "proto/audit.pb.h"

namespace rocksdb {
class Iterator;
struct ReadOptions;
class ColumnFamilyHandle;
class DB;
class Env;
class Statistics;
class WriteBatch;
}  // namespace rocksdb

namespace darvoza::audit::internal {

std::string RecordKey(uint64_t seq);
std::string BodyKey(absl::string_view sha256);
std::string SealKey(uint64_t index);
std::string SealByLastSeqKey(uint64_t last_seq);
std::string ReceiptKey(uint64_t index);
std::string PurgeMarkerKey();
std::string CertificateKey(absl::string_view sha256);
// Index keys of one record (empty strings are skipped by the caller).
std::vector<std::string> IndexKeys(const v1::AuditRecord& record);
uint64_t DecodeU64(absl::string_view eight_bytes);

// SHA-256(prev_hash || record_bytes).
std::string RecordHash(absl::string_view prev_hash, absl::string_view record_bytes);
inline std::string ZeroHash() { return std::string(32, '\0'); }

struct StoreOptions {
  std::string path;
  bool secondary = false;
  std::string secondary_path;
  bool create_if_missing = true;
  size_t write_buffer_bytes = 8u << 20;
  rocksdb::Env* env = nullptr;
  std::shared_ptr<rocksdb::Statistics> statistics;
};

// Owns one open RocksDB. Thread-safe (RocksDB is).
class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();
  rocksdb::DB* db() { return db_.get(); }
  // True for a log of the previous layout: one column family holds every key.
  bool single_family() const { return single_family_; }

  // Adds a put or delete of `key` to `batch`, in the family the key's first byte names.
  void Put(rocksdb::WriteBatch* batch, absl::string_view key, absl::string_view value);
  void Delete(rocksdb::WriteBatch* batch, absl::string_view key);
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync);
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key);
  // Compaction and flushes of every family have settled (benchmarks and tests).
  absl::Status WaitForCompactions();

  absl::StatusOr<StoredRecord> GetRecord(uint64_t seq);
  absl::StatusOr<std::vector<StoredRecord>> FindByMessageId(absl::string_view id);
  absl::StatusOr<std::vector<StoredRecord>> Find(const AuditQuery& query);
  absl::StatusOr<std::string> GetBody(absl::string_view sha256);
  // The DER certificate stored under its SHA-256; NOT_FOUND when none is.
  absl::StatusOr<std::string> GetCertificate(absl::string_view sha256);

  // The last record (seq, bytes), if any.
  absl::StatusOr<std::optional<StoredRecord>> LastRecord();
  // The seq of the last record, if any, without parsing it: an export carries a record that
  // does not parse as stored, for the verifier to name.
  absl::StatusOr<std::optional<uint64_t>> LastRecordSeq();
  // The last seal (index, signed seal, parsed seal), if any.
  struct SealEntry {
    uint64_t index = 0;
    v1::SignedSeal signed_seal;
    v1::Seal seal;
  };
  absl::StatusOr<std::optional<SealEntry>> LastSeal();
  absl::StatusOr<std::optional<SealEntry>> GetSeal(uint64_t index);
  // The seal whose range contains `seq`, if any.
  absl::StatusOr<std::optional<SealEntry>> SealCovering(uint64_t seq);
  absl::StatusOr<std::optional<v1::SignedWitnessReceipt>> GetReceipt(uint64_t index);
  // Highest seal index that has a receipt (0 = none).
  absl::StatusOr<uint64_t> LastReceiptIndex();
  absl::StatusOr<std::optional<v1::PurgeMarker>> GetPurgeMarker();
  // Record hashes of [first, last], recomputed from the stored bytes. DATA_LOSS on a gap.
  absl::StatusOr<std::vector<std::string>> RecordHashes(uint64_t first, uint64_t last);

  absl::StatusOr<v1::AuditArchive> Export(const ExportOptions& options,
                                          const v1::SecurityServerId* server);
  absl::StatusOr<v1::AuditInclusionProof> Prove(uint64_t seq);
  absl::StatusOr<LogStats> Stats();
  // Deletes the records from the first kept one through `seal`'s last (a witnessed seal), their
  // index entries, seals and receipts, and the bodies no kept record names; leaves a marker.
  // FAILED_PRECONDITION, deleting nothing, unless `archive` (verified by the caller) holds
  // every record that goes, byte for byte, and every body that goes.
  absl::Status PurgeThrough(const SealEntry& seal, const v1::SignedWitnessReceipt* receipt,
                            int64_t now_nanos, const v1::AuditArchive& archive);

 private:
  Store() = default;
  rocksdb::ColumnFamilyHandle* FamilyOf(absl::string_view key) const;
  std::unique_ptr<rocksdb::Iterator> NewIterator(char prefix, const rocksdb::ReadOptions& ro);

  std::unique_ptr<rocksdb::DB> db_;
  bool single_family_ = false;
  // Handles of the families other than the default, owned (closed before db_).
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  // Family handle by a key's first byte (the default family for unknown bytes).
  rocksdb::ColumnFamilyHandle* by_prefix_[256] = {};
};

}  // namespace darvoza::audit::internal

#endif  // DARVOZA_AUDIT_INTERNAL_STORE_H_
