#include "security_server/state_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace darvoza::ss {

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.db_write_buffer_size = 4 << 20;  // the state is small; keep the SS small too
  options.keep_log_file_num = 2;
  options.max_log_file_size = 1 << 20;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && absl::StrContains(s.ToString(), "lock")) {
      return absl::UnavailableError(
          absl::StrCat("state database ", path, " is in use by another process: ", s.ToString()));
    }
    return absl::InternalError(absl::StrCat("opening state database ", path, ": ", s.ToString()));
  }
  return std::unique_ptr<StateStore>(new StateStore(std::unique_ptr<rocksdb::DB>(raw)));
}

StateStore::StateStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
StateStore::~StateStore() = default;

absl::StatusOr<std::optional<std::string>> StateStore::Get(absl::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()),
                               &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return absl::InternalError(absl::StrCat("state read: ", s.ToString()));
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> StateStore::Scan(
    absl::string_view prefix, size_t limit) const {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, prefix)) break;
    out.emplace_back(std::string(key), it->value().ToString());
    if (limit != 0 && out.size() >= limit) break;
  }
  if (!it->status().ok()) {
    return absl::InternalError(absl::StrCat("state scan: ", it->status().ToString()));
  }
  return out;
}

absl::Status StateStore::Write(const StateBatch& batch, bool sync) {
  rocksdb::WriteBatch wb;
  for (const auto& op : batch.ops()) {
    if (op.is_delete) {
      wb.Delete(op.key);
    } else {
      wb.Put(op.key, op.value);
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = db_->Write(wo, &wb);
  if (!s.ok()) return absl::InternalError(absl::StrCat("state write: ", s.ToString()));
  return absl::OkStatus();
}

}  // namespace darvoza::ss
