#include "registry/store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace darvoza::registry {

absl::StatusOr<std::unique_ptr<RegistryStore>> RegistryStore::Open(const std::string& path,
                                                                   bool create) {
  rocksdb::Options options;
  options.create_if_missing = create;
  options.db_write_buffer_size = 8 << 20;  // the registry's state is small
  options.max_background_jobs = 1;
  options.keep_log_file_num = 3;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && absl::StrContains(s.ToString(), "lock")) {
      return absl::UnavailableError(
          absl::StrCat("registry database ", path, " is in use by another process: ", s.ToString()));
    }
    if (!create && s.IsInvalidArgument()) {
      return absl::NotFoundError(absl::StrCat("no registry database at ", path,
                                              " (run `darvoza registry init` first)"));
    }
    return absl::InternalError(absl::StrCat("cannot open registry database ", path, ": ",
                                            s.ToString()));
  }
  return std::unique_ptr<RegistryStore>(new RegistryStore(std::unique_ptr<rocksdb::DB>(raw)));
}

RegistryStore::RegistryStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

RegistryStore::~RegistryStore() {
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::optional<std::string>> RegistryStore::Get(absl::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()),
                               &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return absl::InternalError(absl::StrCat("registry store read: ", s.ToString()));
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> RegistryStore::Scan(
    absl::string_view prefix, absl::string_view start, size_t limit) {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  std::string first = start.empty() ? std::string(prefix) : std::string(start);
  for (it->Seek(first); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, prefix)) break;
    out.emplace_back(std::string(key), it->value().ToString());
    if (limit != 0 && out.size() >= limit) break;
  }
  if (!it->status().ok()) {
    return absl::InternalError(absl::StrCat("registry store scan: ", it->status().ToString()));
  }
  return out;
}

absl::Status RegistryStore::Write(const StoreBatch& batch) {
  rocksdb::WriteBatch wb;
  for (const auto& [key, value] : batch.puts()) {
    rocksdb::Status s = wb.Put(key, value);
    if (!s.ok()) return absl::InternalError(absl::StrCat("registry store batch: ", s.ToString()));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db_->Write(wo, &wb);
  if (!s.ok()) return absl::InternalError(absl::StrCat("registry store write: ", s.ToString()));
  return absl::OkStatus();
}

}  // namespace darvoza::registry
