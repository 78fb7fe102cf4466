// StateStore: the security server's local state in one small RocksDB database
// (<data dir>/state). The original design (docs/design.md §3) had only audit/ and the
// registry's store on RocksDB — docs/design-changes.md records the departure.
//
// Keys are byte strings with a namespace prefix chosen by the caller (LocalState uses "c/",
// "s/", "a/", "g/"...). Writes are atomic batches; `sync` decides whether the WAL is fsynced
// before returning (administrative changes are; a write that may be lost to a power cut need
// not be, since a process crash never loses RocksDB's page-cache writes).
//
// Thread-safe (RocksDB is).
#ifndef DARVOZA_SECURITY_SERVER_STATE_STORE_H_
#define DARVOZA_SECURITY_SERVER_STATE_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class DB;
}

namespace darvoza::ss {

// Puts and deletes applied atomically by StateStore::Write.
class StateBatch {
 public:
  void Put(std::string key, std::string value) {
    ops_.push_back({std::move(key), std::move(value), false});
  }
  void Delete(std::string key) { ops_.push_back({std::move(key), "", true}); }
  bool empty() const { return ops_.empty(); }

  struct Op {
    std::string key;
    std::string value;
    bool is_delete;
  };
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
};

class StateStore {
 public:
  // Opens (creating when missing) the database in directory `path`. UNAVAILABLE when another
  // process holds it open; INTERNAL for other RocksDB errors.
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(const std::string& path);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // The value under `key`, or nullopt when absent. INTERNAL on a read error.
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) const;

  // Every (key, value) whose key starts with `prefix`, in key order, at most `limit` (0: all).
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Scan(
      absl::string_view prefix, size_t limit = 0) const;

  // Applies `batch` atomically. INTERNAL on failure (nothing applied).
  absl::Status Write(const StateBatch& batch, bool sync = true);

 private:
  explicit StateStore(std::unique_ptr<rocksdb::DB> db);
  const std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_STATE_STORE_H_
