// RegistryStore: the registry's durable state in one RocksDB database (the only RocksDB user
// in registry/). Values are serialized protobuf messages under these keys:
//   state            RegistryState (members, servers, groups, revocations, counters)
//   conf             SignedGlobalConf, the latest published configuration
//   req/<id>         RequestRecord
//   wit/<ss id>      WitnessHead, the latest witnessed head of one security server
//   hist/<seq:020>   HistoryEntry, the hash-chained event history
// Every change is one atomic, synced WriteBatch, so a crash leaves either all or none of it.
//
// Thread-safe (RocksDB is); the Registry serialises writers under its own mutex.
#ifndef DARVOZA_REGISTRY_STORE_H_
#define DARVOZA_REGISTRY_STORE_H_

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

namespace darvoza::registry {

// A set of puts applied atomically by RegistryStore::Write.
class StoreBatch {
 public:
  void Put(std::string key, std::string value) { puts_.emplace_back(std::move(key), std::move(value)); }
  const std::vector<std::pair<std::string, std::string>>& puts() const { return puts_; }
  bool empty() const { return puts_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> puts_;
};

class RegistryStore {
 public:
  // Opens (creating when `create`) the database in directory `path`. NOT_FOUND when it does
  // not exist and !create; UNAVAILABLE when another process holds it open.
  static absl::StatusOr<std::unique_ptr<RegistryStore>> Open(const std::string& path,
                                                             bool create);
  ~RegistryStore();
  RegistryStore(const RegistryStore&) = delete;
  RegistryStore& operator=(const RegistryStore&) = delete;

  // The value under `key`, or nullopt when absent. INTERNAL on a read error.
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key);

  // Every (key, value) whose key starts with `prefix` and is >= `start` (when given), in key
  // order, at most `limit` of them (0: no limit).
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Scan(
      absl::string_view prefix, absl::string_view start = "", size_t limit = 0);

  // Applies `batch` atomically and durably (sync). INTERNAL on failure; nothing applied then.
  absl::Status Write(const StoreBatch& batch);

 private:
  explicit RegistryStore(std::unique_ptr<rocksdb::DB> db);
  const std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_STORE_H_
