#include "audit/internal/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "common/merkle.h"
#include "common/status_macros.h"

namespace darvoza::audit::internal {
namespace {

void PutU64(std::string* out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out->push_back(static_cast<char>(v >> s));
}
void PutU32(std::string* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<char>(v >> s));
}
void PutString(std::string* out, absl::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}
absl::string_view SV(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }
uint64_t TimeKey(int64_t nanos) { return static_cast<uint64_t>(nanos) ^ (1ull << 63); }
int64_t NanosOf(absl::Time t) {
  if (t == absl::InfinitePast()) return INT64_MIN;
  if (t == absl::InfiniteFuture()) return INT64_MAX;
  return absl::ToUnixNanos(t);
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  if (s.IsNoSpace()) code = absl::StatusCode::kResourceExhausted;
  if (s.IsCorruption()) code = absl::StatusCode::kDataLoss;
  if (s.IsNotFound()) code = absl::StatusCode::kNotFound;
  return Fault(code, faults::kAuditLogFailure, absl::StrCat(what, ": ", s.ToString()));
}

std::string ClientText(const v1::AuditRecord& r) {
  if (!r.has_client() || !ValidateSubsystemId(r.client()).ok()) return "";
  return FormatSubsystemId(r.client());
}
std::string ServiceText(const v1::AuditRecord& r) {
  if (!r.has_service() || !ValidateServiceId(r.service()).ok()) return "";
  return FormatServiceId(r.service());
}

absl::StatusOr<StoredRecord> ParseRecord(uint64_t seq, std::string bytes) {
  StoredRecord out;
  out.seq = seq;
  if (!out.record.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("record ", seq, " does not parse"));
  }
  out.bytes = std::move(bytes);
  return out;
}

}  // namespace

std::string RecordKey(uint64_t seq) {
  std::string k("c");
  PutU64(&k, seq);
  return k;
}
std::string BodyKey(absl::string_view sha256) { return absl::StrCat("b", sha256); }
std::string SealKey(uint64_t index) {
  std::string k("s");
  PutU64(&k, index);
  return k;
}
std::string SealByLastSeqKey(uint64_t last_seq) {
  std::string k("S");
  PutU64(&k, last_seq);
  return k;
}
std::string ReceiptKey(uint64_t index) {
  std::string k("r");
  PutU64(&k, index);
  return k;
}
std::string PurgeMarkerKey() { return "P"; }
std::string CertificateKey(absl::string_view sha256) { return absl::StrCat("C", sha256); }

uint64_t DecodeU64(absl::string_view p) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < p.size(); ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::vector<std::string> IndexKeys(const v1::AuditRecord& r) {
  std::vector<std::string> keys;
  const uint64_t t = TimeKey(r.time_unix_nanos());
  if (!r.message_id().empty()) {
    std::string k("m");
    PutString(&k, r.message_id());
    PutU64(&k, r.seq());
    keys.push_back(std::move(k));
  }
  const std::string client = ClientText(r);
  const std::string service = ServiceText(r);
  if (!client.empty()) {
    std::string k("k");
    PutString(&k, client);
    PutU64(&k, t);
    PutU64(&k, r.seq());
    keys.push_back(std::move(k));
  }
  if (!service.empty()) {
    std::string k("v");
    PutString(&k, service);
    PutU64(&k, t);
    PutU64(&k, r.seq());
    keys.push_back(std::move(k));
  }
  if (!client.empty() && !service.empty()) {
    std::string k("x");
    PutString(&k, client);
    PutString(&k, service);
    PutU64(&k, t);
    PutU64(&k, r.seq());
    keys.push_back(std::move(k));
  }
  std::string k("t");
  PutU64(&k, t);
  PutU64(&k, r.seq());
  keys.push_back(std::move(k));
  return keys;
}

std::string RecordHash(absl::string_view prev_hash, absl::string_view record_bytes) {
  std::string data;
  data.reserve(prev_hash.size() + record_bytes.size());
  data.append(prev_hash.data(), prev_hash.size());
  data.append(record_bytes.data(), record_bytes.size());
  return crypto::Sha256(data);
}

namespace {

// The families besides the default one (which holds the chain of records), and the first bytes
// of the keys each holds (docs/design.md §7). Keeping the sequential chain apart from the
// random-keyed indexes lets flushed chain files move down the levels without being rewritten;
// only the small index and body families pay for compacting random keys.
struct Family {
  const char* name;
  const char* prefixes;
  // Read by exact key (a bloom filter saves the disk reads of a miss).
  bool point_lookups;
  // New keys land all over the family's key range (a hash, a message id, or one of many
  // clients' or services' time series), so every leveled compaction would rewrite the level
  // below: universal compaction rewrites each key a few times instead of about ten per level.
  bool random_keys;
};
constexpr Family kFamilies[] = {
    {"seals", "sSrP", false, false},       {"bodies", "b", true, true},
    {"certificates", "C", true, true},     {"message_ids", "m", false, true},
    {"clients", "k", false, true},         {"services", "v", false, true},
    {"client_services", "x", false, true}, {"times", "t", false, false},
};

// `family` is null for the default family (and for families this code does not know).
rocksdb::ColumnFamilyOptions FamilyOptions(const StoreOptions& options,
                                           const std::shared_ptr<rocksdb::Cache>& cache,
                                           const Family* family, bool single_family) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = std::max<size_t>(options.write_buffer_bytes / 2, 64 << 10);
  cf.max_write_buffer_number = 2;
  if (single_family) {
    // A log of the previous layout keeps the options it was written with.
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache;
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    return cf;
  }
  // Records hold signatures, hashes and random ids, index keys are prefix-compressed by the
  // block format already: compression would cost CPU for little (docs/performance.md).
  cf.compression = rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (family != nullptr && family->point_lookups) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (family != nullptr && family->random_keys) {
    cf.compaction_style = rocksdb::kCompactionStyleUniversal;
    // A large log already has a sorted run on each of several levels: with the default of 4
    // runs, every small flush was merged into the newest big run again (measured:
    // docs/performance.md). Reads by exact key skip runs by their bloom filters.
    cf.level0_file_num_compaction_trigger = 12;
  } else {
    cf.level_compaction_dynamic_level_bytes = true;
  }
  return cf;
}

}  // namespace

Store::~Store() {
  if (db_ == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = options.create_if_missing && !options.secondary;
  db_options.db_write_buffer_size = options.write_buffer_bytes;
  // A family written rarely (seals, certificates) would otherwise keep old WAL files alive.
  db_options.max_total_wal_size = 4 * options.write_buffer_bytes;
  db_options.keep_log_file_num = 3;
  db_options.statistics = options.statistics;
  if (options.env != nullptr) db_options.env = options.env;
  const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(4u << 20);

  // A log of the previous layout has the default family only, and keeps it: each family handle
  // then points at the default family, where that layout keeps every key.
  std::vector<std::string> existing;
  const bool exists =
      rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing).ok();
  std::unique_ptr<Store> store(new Store());
  store->single_family_ = exists && existing.size() == 1;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName,
                           FamilyOptions(options, cache, nullptr, store->single_family_));
  std::vector<const Family*> opened = {nullptr};
  if (!store->single_family_) {
    for (const Family& family : kFamilies) {
      const bool present =
          std::find(existing.begin(), existing.end(), family.name) != existing.end();
      if (!present && (exists && options.secondary)) continue;  // a secondary cannot create
      descriptors.emplace_back(family.name, FamilyOptions(options, cache, &family, false));
      opened.push_back(&family);
    }
  }
  // Families this code does not know (a later version's) must be opened all the same.
  for (const std::string& name : existing) {
    bool known = name == rocksdb::kDefaultColumnFamilyName;
    for (const auto& d : descriptors) known = known || d.name == name;
    if (!known) {
      descriptors.emplace_back(name, FamilyOptions(options, cache, nullptr, false));
      opened.push_back(nullptr);
    }
  }
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s;
  if (options.secondary) {
    db_options.max_open_files = -1;
    s = rocksdb::DB::OpenAsSecondary(db_options, options.path, options.secondary_path,
                                     descriptors, &handles, &db);
  } else {
    s = rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &db);
  }
  if (!s.ok()) {
    if (s.IsInvalidArgument() && !options.create_if_missing) {
      return absl::NotFoundError(
          absl::StrCat("no audit log at ", options.path, ": ", s.ToString()));
    }
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return absl::UnavailableError(absl::StrCat(
          "audit log ", options.path,
          " is open by another process (a running security server?): ", s.ToString()));
    }
    return FromRocks(s, absl::StrCat("cannot open audit log ", options.path));
  }
  store->db_.reset(db);
  rocksdb::ColumnFamilyHandle* default_family = db->DefaultColumnFamily();
  for (auto& slot : store->by_prefix_) slot = default_family;
  for (size_t i = 0; i < handles.size(); ++i) {
    store->handles_.push_back(handles[i]);
    if (opened[i] == nullptr) continue;
    for (const char* p = opened[i]->prefixes; *p != '\0'; ++p) {
      store->by_prefix_[static_cast<uint8_t>(*p)] = handles[i];
    }
  }
  return store;
}

rocksdb::ColumnFamilyHandle* Store::FamilyOf(absl::string_view key) const {
  return key.empty() ? db_->DefaultColumnFamily() : by_prefix_[static_cast<uint8_t>(key[0])];
}

std::unique_ptr<rocksdb::Iterator> Store::NewIterator(char prefix, const rocksdb::ReadOptions& ro) {
  return std::unique_ptr<rocksdb::Iterator>(
      db_->NewIterator(ro, by_prefix_[static_cast<uint8_t>(prefix)]));
}

void Store::Put(rocksdb::WriteBatch* batch, absl::string_view key, absl::string_view value) {
  batch->Put(FamilyOf(key), rocksdb::Slice(key.data(), key.size()),
             rocksdb::Slice(value.data(), value.size()))
      .PermitUncheckedError();
}

void Store::Delete(rocksdb::WriteBatch* batch, absl::string_view key) {
  batch->Delete(FamilyOf(key), rocksdb::Slice(key.data(), key.size())).PermitUncheckedError();
}

absl::Status Store::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, batch), "audit log write failed");
}

absl::StatusOr<std::optional<std::string>> Store::Get(absl::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), FamilyOf(key),
                               rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  DARVOZA_RETURN_IF_ERROR(FromRocks(s, "audit log read failed"));
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<StoredRecord> Store::GetRecord(uint64_t seq) {
  DARVOZA_ASSIGN_OR_RETURN(auto value, Get(RecordKey(seq)));
  if (!value.has_value()) return absl::NotFoundError(absl::StrCat("no record ", seq));
  return ParseRecord(seq, std::move(*value));
}

absl::StatusOr<std::vector<StoredRecord>> Store::FindByMessageId(absl::string_view id) {
  std::string prefix("m");
  PutString(&prefix, id);
  std::string upper = prefix;
  upper.append(8, '\xff');
  upper.push_back('\xff');
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it = NewIterator(prefix[0], ro);
  std::vector<StoredRecord> out;
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() != prefix.size() + 8) continue;
    const uint64_t seq = DecodeU64(absl::string_view(key.data() + prefix.size(), 8));
    DARVOZA_ASSIGN_OR_RETURN(StoredRecord rec, GetRecord(seq));
    out.push_back(std::move(rec));
  }
  DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit index read failed"));
  return out;
}

absl::StatusOr<std::vector<StoredRecord>> Store::Find(const AuditQuery& query) {
  std::string prefix;
  if (!query.client.empty()) {
    DARVOZA_ASSIGN_OR_RETURN(SubsystemId client, ParseSubsystemId(query.client));
    if (!query.service.empty()) {
      DARVOZA_ASSIGN_OR_RETURN(ServiceId service, ParseServiceId(query.service));
      prefix = "x";
      PutString(&prefix, FormatSubsystemId(client));
      PutString(&prefix, FormatServiceId(service));
    } else {
      prefix = "k";
      PutString(&prefix, FormatSubsystemId(client));
    }
  } else if (!query.service.empty()) {
    DARVOZA_ASSIGN_OR_RETURN(ServiceId service, ParseServiceId(query.service));
    prefix = "v";
    PutString(&prefix, FormatServiceId(service));
  } else {
    prefix = "t";
  }
  std::string start = prefix;
  PutU64(&start, TimeKey(NanosOf(query.from)));
  std::string upper = prefix;
  const int64_t to = NanosOf(query.to);
  if (to == INT64_MAX) {
    upper.append(17, '\xff');
  } else {
    PutU64(&upper, TimeKey(to));  // exclusive
  }
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it = NewIterator(prefix[0], ro);
  std::vector<StoredRecord> out;
  for (it->Seek(start); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() != prefix.size() + 16) continue;
    const uint64_t seq = DecodeU64(absl::string_view(key.data() + prefix.size() + 8, 8));
    DARVOZA_ASSIGN_OR_RETURN(StoredRecord rec, GetRecord(seq));
    out.push_back(std::move(rec));
    if (query.limit != 0 && out.size() >= query.limit) break;
  }
  DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit index read failed"));
  return out;
}

absl::StatusOr<std::string> Store::GetBody(absl::string_view sha256) {
  DARVOZA_ASSIGN_OR_RETURN(auto value, Get(BodyKey(sha256)));
  if (!value.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no body ", crypto::HexEncode(sha256), " (hash-only or purged)"));
  }
  return std::move(*value);
}

absl::StatusOr<std::string> Store::GetCertificate(absl::string_view sha256) {
  DARVOZA_ASSIGN_OR_RETURN(auto value, Get(CertificateKey(sha256)));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("no certificate ", crypto::HexEncode(sha256)));
  }
  return std::move(*value);
}

absl::StatusOr<std::optional<StoredRecord>> Store::LastRecord() {
  DARVOZA_ASSIGN_OR_RETURN(std::optional<uint64_t> seq, LastRecordSeq());
  if (!seq.has_value()) return std::optional<StoredRecord>();
  DARVOZA_ASSIGN_OR_RETURN(StoredRecord rec, GetRecord(*seq));
  return std::optional<StoredRecord>(std::move(rec));
}

absl::StatusOr<std::optional<uint64_t>> Store::LastRecordSeq() {
  std::unique_ptr<rocksdb::Iterator> it = NewIterator('c', rocksdb::ReadOptions());
  it->SeekForPrev(RecordKey(UINT64_MAX));
  if (!it->Valid()) {
    DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit log read failed"));
    return std::optional<uint64_t>();
  }
  const rocksdb::Slice key = it->key();
  if (key.size() != 9 || key[0] != 'c') return std::optional<uint64_t>();
  return std::optional<uint64_t>(DecodeU64(absl::string_view(key.data() + 1, 8)));
}

absl::StatusOr<std::optional<Store::SealEntry>> Store::GetSeal(uint64_t index) {
  DARVOZA_ASSIGN_OR_RETURN(auto value, Get(SealKey(index)));
  if (!value.has_value()) return std::optional<SealEntry>();
  SealEntry e;
  e.index = index;
  if (!e.signed_seal.ParseFromString(*value) || !e.seal.ParseFromString(e.signed_seal.seal())) {
    return absl::DataLossError(absl::StrCat("seal ", index, " does not parse"));
  }
  return std::optional<SealEntry>(std::move(e));
}

absl::StatusOr<std::optional<Store::SealEntry>> Store::LastSeal() {
  std::unique_ptr<rocksdb::Iterator> it = NewIterator('s', rocksdb::ReadOptions());
  it->SeekForPrev(SealKey(UINT64_MAX));
  if (!it->Valid() || it->key().size() != 9 || it->key()[0] != 's') {
    DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit log read failed"));
    return std::optional<SealEntry>();
  }
  return GetSeal(DecodeU64(absl::string_view(it->key().data() + 1, 8)));
}

absl::StatusOr<std::optional<Store::SealEntry>> Store::SealCovering(uint64_t seq) {
  std::unique_ptr<rocksdb::Iterator> it = NewIterator('S', rocksdb::ReadOptions());
  it->Seek(SealByLastSeqKey(seq));
  if (!it->Valid() || it->key().size() != 9 || it->key()[0] != 'S') {
    DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit log read failed"));
    return std::optional<SealEntry>();
  }
  DARVOZA_ASSIGN_OR_RETURN(auto seal, GetSeal(DecodeU64(SV(it->value()))));
  if (!seal.has_value() || seal->seal.first_seq() > seq) return std::optional<SealEntry>();
  return seal;
}

absl::StatusOr<std::optional<v1::SignedWitnessReceipt>> Store::GetReceipt(uint64_t index) {
  DARVOZA_ASSIGN_OR_RETURN(auto value, Get(ReceiptKey(index)));
  if (!value.has_value()) return std::optional<v1::SignedWitnessReceipt>();
  v1::SignedWitnessReceipt r;
  if (!r.ParseFromString(*value)) {
    return absl::DataLossError(absl::StrCat("receipt ", index, " does not parse"));
  }
  return std::optional<v1::SignedWitnessReceipt>(std::move(r));
}

absl::StatusOr<uint64_t> Store::LastReceiptIndex() {
  std::unique_ptr<rocksdb::Iterator> it = NewIterator('r', rocksdb::ReadOptions());
  it->SeekForPrev(ReceiptKey(UINT64_MAX));
  if (!it->Valid() || it->key().size() != 9 || it->key()[0] != 'r') {
    DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit log read failed"));
    return uint64_t{0};
  }
  return DecodeU64(absl::string_view(it->key().data() + 1, 8));
}

absl::StatusOr<std::optional<v1::PurgeMarker>> Store::GetPurgeMarker() {
  DARVOZA_ASSIGN_OR_RETURN(auto value, Get(PurgeMarkerKey()));
  if (!value.has_value()) return std::optional<v1::PurgeMarker>();
  v1::PurgeMarker m;
  if (!m.ParseFromString(*value)) return absl::DataLossError("purge marker does not parse");
  return std::optional<v1::PurgeMarker>(std::move(m));
}

absl::StatusOr<std::vector<std::string>> Store::RecordHashes(uint64_t first, uint64_t last) {
  std::vector<std::string> hashes;
  if (first > last) return hashes;
  hashes.reserve(last - first + 1);
  std::string upper = RecordKey(last + 1);
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it = NewIterator('c', ro);
  uint64_t expect = first;
  for (it->Seek(RecordKey(first)); it->Valid(); it->Next()) {
    const uint64_t seq = DecodeU64(absl::string_view(it->key().data() + 1, 8));
    if (seq != expect) return absl::DataLossError(absl::StrCat("record ", expect, " is missing"));
    v1::AuditRecord rec;
    if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("record ", seq, " does not parse"));
    }
    hashes.push_back(RecordHash(rec.prev_hash(), SV(it->value())));
    ++expect;
  }
  DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit log read failed"));
  if (expect != last + 1) return absl::DataLossError(absl::StrCat("record ", expect, " is missing"));
  return hashes;
}

absl::StatusOr<v1::AuditArchive> Store::Export(const ExportOptions& options,
                                               const v1::SecurityServerId* server) {
  v1::AuditArchive archive;
  archive.set_format("darvoza.audit.archive.v1");
  DARVOZA_ASSIGN_OR_RETURN(auto marker, GetPurgeMarker());
  DARVOZA_ASSIGN_OR_RETURN(std::optional<uint64_t> last_record, LastRecordSeq());
  const uint64_t kept_first = marker.has_value() ? marker->last_purged_seq() + 1 : 1;
  uint64_t head = last_record.has_value() ? *last_record : kept_first - 1;
  // Records cut off after they were sealed: the archive claims the sealed range, so that the
  // verifier names the first missing record instead of accepting the shorter log.
  DARVOZA_ASSIGN_OR_RETURN(auto last_seal, LastSeal());
  if (last_seal.has_value()) head = std::max(head, last_seal->seal.last_seq());
  uint64_t first = std::max(options.first_seq, kept_first);
  uint64_t last = options.last_seq == 0 ? head : std::min(options.last_seq, head);
  // Whole seals only, so every seal in the archive can be checked.
  if (first > kept_first && first <= head) {
    DARVOZA_ASSIGN_OR_RETURN(auto s, SealCovering(first));
    if (s.has_value()) first = s->seal.first_seq();
  }
  if (last >= first && last <= head) {
    DARVOZA_ASSIGN_OR_RETURN(auto s, SealCovering(last));
    if (s.has_value()) last = s->seal.last_seq();
  }
  archive.set_first_seq(first);
  archive.set_last_seq(last);
  archive.set_bodies_excluded(!options.include_bodies);
  absl::flat_hash_set<std::string> certs;
  auto add_cert = [&](const std::string& der) {
    if (!der.empty() && certs.insert(der).second) archive.add_certificates_der(der);
  };
  // What authenticates the start of the archive.
  if (first == 1) {
    archive.set_start_prev_hash(ZeroHash());
  } else if (marker.has_value() && first == marker->last_purged_seq() + 1) {
    archive.set_start_prev_hash(marker->last_purged_hash());
    *archive.mutable_start_marker() = *marker;
  } else {
    DARVOZA_ASSIGN_OR_RETURN(auto before, SealCovering(first - 1));
    if (before.has_value() && before->seal.last_seq() == first - 1) {
      v1::PurgeMarker* m = archive.mutable_start_marker();
      m->set_last_purged_seq(first - 1);
      m->set_last_purged_hash(before->seal.chain_head());
      *m->mutable_seal() = before->signed_seal;
      DARVOZA_ASSIGN_OR_RETURN(auto receipt, GetReceipt(before->index));
      if (receipt.has_value()) *m->mutable_receipt() = *receipt;
      m->set_first_seal_index(before->index + 1);
      archive.set_start_prev_hash(before->seal.chain_head());
    }
  }
  if (archive.start_marker().has_seal()) {
    add_cert(archive.start_marker().seal().signer_cert_der());
    add_cert(archive.start_marker().receipt().signer_cert_der());
  }
  // Records, exactly as stored (gaps and all: the verifier reports them).
  absl::flat_hash_set<std::string> bodies;
  if (first <= last) {
    std::string upper = RecordKey(last + 1);
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it = NewIterator('c', ro);
    absl::flat_hash_set<std::string> signer_certs;
    for (it->Seek(RecordKey(first)); it->Valid(); it->Next()) {
      archive.add_records(it->value().ToString());
      v1::AuditRecord rec;
      if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
      // The certificates the records reference, each once, as stored: the verifier checks
      // each against its reference and names a record whose certificate is gone or changed.
      for (const std::string& sha : rec.signer_cert_sha256()) {
        if (!signer_certs.insert(sha).second) continue;
        DARVOZA_ASSIGN_OR_RETURN(auto der, Get(CertificateKey(sha)));
        if (der.has_value()) archive.add_signer_certificates_der(std::move(*der));
      }
      if (!options.include_bodies) continue;
      if (rec.body_sha256().empty() || !bodies.insert(rec.body_sha256()).second) continue;
      DARVOZA_ASSIGN_OR_RETURN(auto body, Get(BodyKey(rec.body_sha256())));
      if (!body.has_value()) continue;
      v1::ArchivedBody* b = archive.add_bodies();
      b->set_sha256(rec.body_sha256());
      b->set_body(std::move(*body));
    }
    DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit log read failed"));
  }
  if (archive.start_prev_hash().empty() && archive.records_size() > 0) {
    v1::AuditRecord rec;
    if (rec.ParseFromString(archive.records(0))) archive.set_start_prev_hash(rec.prev_hash());
  }
  // Seals inside the range, with their receipts.
  {
    std::unique_ptr<rocksdb::Iterator> it = NewIterator('s', rocksdb::ReadOptions());
    bool first_seal = true;
    for (it->Seek(SealKey(0)); it->Valid() && it->key()[0] == 's'; it->Next()) {
      v1::SignedSeal ss;
      v1::Seal seal;
      const uint64_t index = DecodeU64(absl::string_view(it->key().data() + 1, 8));
      if (!ss.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) ||
          !seal.ParseFromString(ss.seal())) {
        return absl::DataLossError(absl::StrCat("seal ", index, " does not parse"));
      }
      if (seal.last_seq() < first || seal.first_seq() > last) continue;
      if (first_seal) archive.set_first_seal_index(index);
      first_seal = false;
      add_cert(ss.signer_cert_der());
      *archive.add_seals() = std::move(ss);
      DARVOZA_ASSIGN_OR_RETURN(auto receipt, GetReceipt(index));
      if (receipt.has_value()) {
        add_cert(receipt->signer_cert_der());
        *archive.add_receipts() = std::move(*receipt);
      }
    }
    DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit log read failed"));
  }
  for (const std::string& der : options.certificates_der) add_cert(der);
  for (const std::string& conf : options.global_configurations) {
    archive.add_global_configurations(conf);
  }
  if (server != nullptr) {
    *archive.mutable_server() = *server;
  } else if (archive.seals_size() > 0) {
    v1::Seal seal;
    if (seal.ParseFromString(archive.seals(0).seal())) *archive.mutable_server() = seal.server();
  }
  return archive;
}

absl::StatusOr<v1::AuditInclusionProof> Store::Prove(uint64_t seq) {
  DARVOZA_ASSIGN_OR_RETURN(StoredRecord rec, GetRecord(seq));
  DARVOZA_ASSIGN_OR_RETURN(auto seal, SealCovering(seq));
  if (!seal.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("record ", seq, " is not sealed yet; try again after the next seal"));
  }
  DARVOZA_ASSIGN_OR_RETURN(std::vector<std::string> hashes,
                           RecordHashes(seal->seal.first_seq(), seal->seal.last_seq()));
  MerkleTree tree(hashes);
  const uint64_t index = seq - seal->seal.first_seq();
  v1::AuditInclusionProof proof;
  proof.set_record(rec.bytes);
  proof.set_record_hash(hashes[index]);
  proof.set_leaf_index(index);
  for (std::string& p : tree.InclusionProof(index)) proof.add_path(std::move(p));
  *proof.mutable_seal() = seal->signed_seal;
  DARVOZA_ASSIGN_OR_RETURN(auto receipt, GetReceipt(seal->index));
  if (receipt.has_value()) *proof.mutable_receipt() = *receipt;
  return proof;
}

absl::StatusOr<LogStats> Store::Stats() {
  LogStats stats;
  DARVOZA_ASSIGN_OR_RETURN(auto marker, GetPurgeMarker());
  DARVOZA_ASSIGN_OR_RETURN(auto last, LastRecord());
  stats.purged_through_seq = marker.has_value() ? marker->last_purged_seq() : 0;
  stats.first_seq = stats.purged_through_seq + 1;
  stats.head_seq = last.has_value() ? last->seq : stats.purged_through_seq;
  std::unique_ptr<rocksdb::Iterator> it = NewIterator('s', rocksdb::ReadOptions());
  for (it->Seek(SealKey(0)); it->Valid() && it->key()[0] == 's'; it->Next()) ++stats.seals;
  it = NewIterator('r', rocksdb::ReadOptions());
  for (it->Seek(ReceiptKey(0)); it->Valid() && it->key()[0] == 'r'; it->Next()) ++stats.receipts;
  DARVOZA_ASSIGN_OR_RETURN(auto last_seal, LastSeal());
  if (last_seal.has_value()) stats.last_sealed_seq = last_seal->seal.last_seq();
  DARVOZA_ASSIGN_OR_RETURN(uint64_t last_receipt, LastReceiptIndex());
  if (last_receipt != 0) {
    DARVOZA_ASSIGN_OR_RETURN(auto s, GetSeal(last_receipt));
    if (s.has_value()) stats.last_witnessed_seq = s->seal.last_seq();
  }
  return stats;
}

namespace {

// The archive's copy of record `seq`, or nullptr when the archive does not hold it.
const std::string* ArchivedRecord(const v1::AuditArchive& archive, uint64_t seq) {
  if (seq < archive.first_seq() || seq > archive.last_seq()) return nullptr;
  const uint64_t i = seq - archive.first_seq();
  if (i >= static_cast<uint64_t>(archive.records_size())) return nullptr;
  return &archive.records(static_cast<int>(i));
}

}  // namespace

absl::Status Store::PurgeThrough(const SealEntry& seal, const v1::SignedWitnessReceipt* receipt,
                                 int64_t now_nanos, const v1::AuditArchive& archive) {
  DARVOZA_ASSIGN_OR_RETURN(auto marker, GetPurgeMarker());
  const uint64_t from = marker.has_value() ? marker->last_purged_seq() + 1 : 1;
  const uint64_t through = seal.seal.last_seq();
  if (through < from) return absl::OkStatus();
  // The archive must hold every record that goes, exactly as this log holds it: the first and
  // the last are compared byte for byte, and the (verified) chain between them holds the rest.
  for (uint64_t seq : {from, through}) {
    const std::string* archived = ArchivedRecord(archive, seq);
    if (archived == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the archive holds records ", archive.first_seq(), "..", archive.last_seq(),
          " but purging needs ", from, "..", through, ": record ", seq,
          " would be lost (export the archive from the log's first record)"));
    }
    DARVOZA_ASSIGN_OR_RETURN(StoredRecord stored, GetRecord(seq));
    if (stored.bytes != *archived) {
      return absl::FailedPreconditionError(absl::StrCat(
          "record ", seq, " of the archive differs from the log's: not this log's archive"));
    }
  }
  rocksdb::WriteBatch batch;
  absl::flat_hash_set<std::string> bodies;  // of the records that go, by hash
  std::vector<std::pair<uint64_t, std::string>> body_owner;  // first record naming each body
  {
    std::string upper = RecordKey(through + 1);
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it = NewIterator('c', ro);
    for (it->Seek(RecordKey(from)); it->Valid(); it->Next()) {
      v1::AuditRecord rec;
      if (rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        for (const std::string& k : IndexKeys(rec)) Delete(&batch, k);
        if (!rec.body_sha256().empty() && bodies.insert(rec.body_sha256()).second) {
          body_owner.emplace_back(rec.seq(), rec.body_sha256());
        }
      }
      Delete(&batch, SV(it->key()));
    }
    DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit log read failed"));
  }
  // Bodies are stored once per hash and shared: one that a kept record names stays.
  {
    std::unique_ptr<rocksdb::Iterator> it = NewIterator('c', rocksdb::ReadOptions());
    const std::string prefix = RecordKey(0).substr(0, 1);
    for (it->Seek(RecordKey(through + 1)); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      v1::AuditRecord rec;
      if (rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        bodies.erase(rec.body_sha256());
      }
    }
    DARVOZA_RETURN_IF_ERROR(FromRocks(it->status(), "audit log read failed"));
  }
  absl::flat_hash_set<std::string> archived_bodies;
  for (const v1::ArchivedBody& b : archive.bodies()) archived_bodies.insert(b.sha256());
  for (const auto& [seq, sha] : body_owner) {
    if (!bodies.contains(sha)) continue;
    DARVOZA_ASSIGN_OR_RETURN(auto stored, Get(BodyKey(sha)));
    if (!stored.has_value()) continue;  // hash-only, or already gone
    if (!archived_bodies.contains(sha)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the body of record ", seq, " is not in the archive (exported without bodies?): "
          "purging would lose it"));
    }
    Delete(&batch, BodyKey(sha));
  }
  const uint64_t first_index = marker.has_value() ? marker->first_seal_index() : 1;
  for (uint64_t i = std::max<uint64_t>(first_index, 1); i <= seal.index; ++i) {
    DARVOZA_ASSIGN_OR_RETURN(auto s, GetSeal(i));
    if (s.has_value()) Delete(&batch, SealByLastSeqKey(s->seal.last_seq()));
    Delete(&batch, SealKey(i));
    Delete(&batch, ReceiptKey(i));
  }
  v1::PurgeMarker m;
  m.set_last_purged_seq(through);
  m.set_last_purged_hash(seal.seal.chain_head());
  *m.mutable_seal() = seal.signed_seal;
  if (receipt != nullptr) *m.mutable_receipt() = *receipt;
  m.set_purged_at_unix_nanos(now_nanos);
  m.set_first_seal_index(seal.index + 1);
  Put(&batch, PurgeMarkerKey(), m.SerializeAsString());
  return Write(&batch, /*sync=*/true);
}

}  // namespace darvoza::audit::internal
