#include "audit/audit_log.h"

#include <rocksdb/db.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <future>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "audit/internal/store.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/merkle.h"
#include "common/seal.h"
#include "common/status_macros.h"

namespace darvoza::audit {

using internal::Store;

namespace {

// Bytes of the regular files under `path`; what cannot be looked at counts 0 (a file RocksDB
// deletes while we walk).
uint64_t DirectoryBytes(const std::string& path) {
  namespace fs = std::filesystem;
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (!it->is_regular_file(size_ec)) continue;
    const uintmax_t size = it->file_size(size_ec);
    if (!size_ec) total += size;
  }
  return total;
}

bool SameOutcome(const absl::Status& a, const absl::Status& b) {
  return a.code() == b.code() && FaultCode(a) == FaultCode(b);
}

}  // namespace

AuditLog::AuditLog(const AuditLogOptions& options)
    : options_(options), statistics_(rocksdb::CreateDBStatistics()) {}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const AuditLogOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("audit log path is empty");
  if (options.clock == nullptr) return absl::InvalidArgumentError("audit log needs a clock");
  std::unique_ptr<AuditLog> log(new AuditLog(options));
  {
    absl::WriterMutexLock l(&log->db_mu_);
    DARVOZA_RETURN_IF_ERROR(log->OpenStore());
  }
  if (absl::Status loaded = log->LoadState(); !loaded.ok()) {
    // Skipping what cannot be read would hide records; failing would take the daemon down
    // with no way to say why. Open refusing appends, and let the caller raise the alarm.
    if (!options.open_damaged || loaded.code() != absl::StatusCode::kDataLoss) return loaded;
    log->damage_ = loaded;
  }
  log->last_seal_mono_ = options.clock->MonotonicNow();
  {
    absl::MutexLock l(&log->witness_mu_);
    absl::ReaderMutexLock dl(&log->db_mu_);
    DARVOZA_ASSIGN_OR_RETURN(log->witnessed_index_, log->store_->LastReceiptIndex());
    auto marker = log->store_->GetPurgeMarker();
    if (marker.ok() && marker->has_value()) {
      log->witnessed_index_ =
          std::max(log->witnessed_index_, (*marker)->first_seal_index() - 1);
    }
    log->witnessed_index_published_ = log->witnessed_index_;
  }
  log->writer_ = std::thread([p = log.get()] { p->WriterLoop(); });
  log->witness_thread_ = std::thread([p = log.get()] { p->WitnessLoop(); });
  return log;
}

AuditLog::~AuditLog() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  {
    absl::MutexLock l(&witness_mu_);
    witness_stop_ = true;
  }
  if (writer_.joinable()) writer_.join();
  if (witness_thread_.joinable()) witness_thread_.join();
  absl::WriterMutexLock l(&db_mu_);
  store_.reset();
}

absl::Status AuditLog::OpenStore() {
  internal::StoreOptions so;
  so.path = options_.path;
  so.write_buffer_bytes = options_.write_buffer_bytes;
  so.env = options_.env;
  so.statistics = statistics_;
  store_.reset();
  DARVOZA_ASSIGN_OR_RETURN(store_, Store::Open(so));
  return absl::OkStatus();
}

absl::Status AuditLog::ReopenStore() {
  absl::Status reopened;
  {
    absl::WriterMutexLock l(&db_mu_);
    reopened = OpenStore();
  }
  if (reopened.ok()) reopened = LoadState();
  store_broken_ = !reopened.ok();
  stored_certificates_.clear();  // a failed batch's certificates may not have reached the disk
  return reopened;
}

void AuditLog::ReopenByWriter() {
  absl::MutexLock l(&mu_);
  reopen_requested_ = true;
  const uint64_t mine = ++control_requested_;
  auto done = [this, mine]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return control_done_ >= mine || stop_;
  };
  mu_.Await(absl::Condition(&done));
}

absl::Status AuditLog::LoadState() {
  absl::ReaderMutexLock l(&db_mu_);
  if (store_ == nullptr) return absl::UnavailableError("audit store is closed");
  DARVOZA_ASSIGN_OR_RETURN(auto marker, store_->GetPurgeMarker());
  DARVOZA_ASSIGN_OR_RETURN(auto last, store_->LastRecord());
  if (last.has_value()) {
    head_seq_ = last->seq;
    head_hash_ = internal::RecordHash(last->record.prev_hash(), last->bytes);
  } else if (marker.has_value()) {
    head_seq_ = marker->last_purged_seq();
    head_hash_ = marker->last_purged_hash();
  } else {
    head_seq_ = 0;
    head_hash_ = internal::ZeroHash();
  }
  DARVOZA_ASSIGN_OR_RETURN(auto seal, store_->LastSeal());
  if (seal.has_value()) {
    last_seal_index_ = seal->index;
    last_sealed_seq_ = seal->seal.last_seq();
    last_sealed_head_ = seal->seal.chain_head();
  } else if (marker.has_value() && marker->has_seal()) {
    last_seal_index_ = marker->first_seal_index() - 1;
    last_sealed_seq_ = marker->last_purged_seq();
    last_sealed_head_ = marker->last_purged_hash();
  } else {
    last_seal_index_ = 0;
    last_sealed_seq_ = 0;
    last_sealed_head_.clear();
  }
  if (last_sealed_seq_ > head_seq_) {
    return absl::DataLossError(absl::StrCat("audit log head ", head_seq_,
                                            " is behind its last seal ", last_sealed_seq_));
  }
  auto hashes = store_->RecordHashes(last_sealed_seq_ + 1, head_seq_);
  if (!hashes.ok()) {
    return absl::DataLossError(absl::StrCat("audit log unsealed tail unreadable: ",
                                            hashes.status().message()));
  }
  unsealed_hashes_ = *std::move(hashes);
  absl::MutexLock ml(&mu_);
  head_seq_published_ = head_seq_;
  last_seal_index_published_ = last_seal_index_;
  return absl::OkStatus();
}

void AuditLog::Append(AppendRequest request, AppendCallback done) {
  if (!damage_.ok()) {
    done(Fault(absl::StatusCode::kDataLoss, faults::kAuditLogFailure,
               absl::StrCat("audit log is damaged, nothing is appended: ", damage_.message())));
    return;
  }
  // Protobuf writes a `string` field that is not UTF-8 but refuses to parse it back: such a
  // record could never be read, verified or exported again, and as the newest record it would
  // keep the log from opening. Refuse it before it is in the chain.
  {
    std::string bytes;
    v1::AuditRecord parsed;
    if (!request.record.SerializeToString(&bytes) || !parsed.ParseFromString(bytes)) {
      done(Fault(absl::StatusCode::kInvalidArgument, faults::kAuditLogFailure,
                 "audit record would not parse back (a text field is not valid UTF-8)"));
      return;
    }
  }
  // Certificates are stored once, by SHA-256, and the record references them (docs/design.md
  // §7): hashed here, on the caller's thread, so the writer only looks up what it has not seen.
  std::vector<Certificate> certificates;
  if (request.record.signer_cert_chain_size() > 0) {
    certificates.reserve(request.record.signer_cert_chain_size());
    for (std::string& der : *request.record.mutable_signer_cert_chain()) {
      std::string sha = crypto::Sha256(der);
      request.record.add_signer_cert_sha256(sha);
      certificates.push_back(Certificate{std::move(sha), std::move(der)});
    }
    request.record.clear_signer_cert_chain();
  }
  if (request.body.has_value() && request.body_sha256_checked &&
      request.record.body_sha256().size() == crypto::kSha256Size) {
    request.record.set_body_length(request.body->size());
  } else if (request.body.has_value()) {
    std::string sha = crypto::Sha256(*request.body);
    if (!request.record.body_sha256().empty() && request.record.body_sha256() != sha) {
      done(absl::InvalidArgumentError("body does not match record.body_sha256"));
      return;
    }
    request.record.set_body_sha256(std::move(sha));
    request.record.set_body_length(request.body->size());
  }
  {
    absl::MutexLock l(&mu_);
    if (!stop_) {
      queue_.push_back(Pending{std::move(request), std::move(certificates), std::move(done)});
      return;
    }
  }
  done(absl::CancelledError("audit log is shutting down"));
}

absl::StatusOr<AppendResult> AuditLog::AppendAndWait(AppendRequest request) {
  std::promise<absl::StatusOr<AppendResult>> promise;
  auto future = promise.get_future();
  Append(std::move(request),
         [&promise](absl::StatusOr<AppendResult> r) { promise.set_value(std::move(r)); });
  return future.get();
}

absl::StatusOr<AppendResult> AuditLog::AppendAdminAction(const v1::AdminAction& action) {
  AppendRequest request;
  request.record.set_kind(v1::ADMIN_ACTION);
  *request.record.mutable_admin() = action;
  return AppendAndWait(std::move(request));
}

void AuditLog::WriterLoop() {
  for (;;) {
    std::vector<Pending> batch;
    bool force = false;
    bool stopping = false;
    uint64_t control = 0;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stop_ || control_requested_ > control_done_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), options_.timer_poll);
      batch.swap(queue_);
      force = force_seal_;
      force_seal_ = false;
      control = control_requested_;
      stopping = stop_;
      if (reopen_requested_) store_broken_ = true;
      reopen_requested_ = false;
    }
    if (!batch.empty()) {
      CommitBatch(batch);
    } else if (store_broken_) {
      ReopenStore().IgnoreError();  // tried again at the next wake-up or append
    }
    absl::Status seal_status = MaybeSeal(force);
    {
      absl::MutexLock l(&mu_);
      head_seq_published_ = head_seq_;
      last_seal_index_published_ = last_seal_index_;
      if (control > control_done_) {
        control_done_ = control;
        control_status_ = seal_status;
      }
      if (stopping && queue_.empty()) return;
    }
  }
}

void AuditLog::CommitBatch(std::vector<Pending>& batch) {
  absl::Status status;
  std::vector<AppendResult> results;
  bool write_failed = false;
  if (store_broken_) {
    // A previous write (an append, a seal or a receipt) failed: RocksDB refuses every write
    // until the database is reopened.
    absl::Status reopened = ReopenStore();
    if (!reopened.ok()) {
      status = Fault(reopened.code() == absl::StatusCode::kResourceExhausted
                         ? absl::StatusCode::kResourceExhausted
                         : absl::StatusCode::kUnavailable,
                     faults::kAuditLogFailure,
                     absl::StrCat("audit log unavailable: ", reopened.message()));
    }
  }
  if (status.ok()) {
    absl::ReaderMutexLock store_lock(&db_mu_);
    rocksdb::WriteBatch wb;
    absl::flat_hash_set<absl::string_view> certificates_in_batch;
    uint64_t seq = head_seq_;
    std::string prev = head_hash_;
    const int64_t now = ToUnixNanosField(options_.clock->Now());
    results.reserve(batch.size());
    bool waited = false;
    for (Pending& p : batch) {
      waited = waited || p.request.wait_durable;
      v1::AuditRecord& r = p.request.record;
      r.set_seq(++seq);
      r.set_prev_hash(prev);
      if (r.time_unix_nanos() == 0) r.set_time_unix_nanos(now);
      std::string bytes;
      r.SerializeToString(&bytes);
      std::string hash = internal::RecordHash(prev, bytes);
      store_->Put(&wb, internal::RecordKey(seq), bytes);
      for (const std::string& k : internal::IndexKeys(r)) store_->Put(&wb, k, "");
      if (p.request.body.has_value() && !p.request.hash_only) {
        store_->Put(&wb, internal::BodyKey(r.body_sha256()), *p.request.body);
      }
      // In the batch of the first record that references it, so no stored record ever
      // references a certificate the log does not hold.
      for (const Certificate& c : p.certificates) {
        if (stored_certificates_.contains(c.sha256) ||
            !certificates_in_batch.insert(c.sha256).second) {
          continue;
        }
        auto stored = store_->Get(internal::CertificateKey(c.sha256));
        if (stored.ok() && stored->has_value()) continue;
        store_->Put(&wb, internal::CertificateKey(c.sha256), c.der);
      }
      results.push_back(AppendResult{seq, hash});
      prev = std::move(hash);
    }
    // A batch of unwaited records only is left to the next waited batch's sync, which
    // covers everything written before it.
    status = store_->Write(&wb, options_.sync && waited);
    if (status.ok()) {
      head_seq_ = seq;
      head_hash_ = prev;
      for (const AppendResult& r : results) unsealed_hashes_.push_back(r.record_hash);
      // A cache, not a record of the store: forgetting only costs a lookup.
      if (stored_certificates_.size() + certificates_in_batch.size() > kCertificateCacheSize) {
        stored_certificates_.clear();
      }
      for (absl::string_view sha : certificates_in_batch) stored_certificates_.emplace(sha);
    } else {
      write_failed = true;
    }
  }
  if (write_failed) {
    status = WithFault(status, faults::kAuditLogFailure);
    // The failed batch may be on disk anyway: reopen and take the head from there.
    ReopenStore().IgnoreError();  // when it fails, the next batch tries again
  }
  {
    absl::MutexLock l(&mu_);
    head_seq_published_ = head_seq_;  // before any waiter learns its seq
    write_status_ = status;
  }
  auto outcome = [&](size_t i) -> absl::StatusOr<AppendResult> {
    if (status.ok()) return results[i];
    return status;
  };
  std::vector<AppendCallback> waited_done;
  std::vector<absl::StatusOr<AppendResult>> waited_outcomes;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (options_.run_completions && batch[i].request.wait_durable) {
      waited_done.push_back(std::move(batch[i].done));
      waited_outcomes.push_back(outcome(i));
    } else {
      batch[i].done(outcome(i));
    }
  }
  if (!waited_done.empty()) {
    options_.run_completions(
        [done = std::move(waited_done), outcomes = std::move(waited_outcomes)]() mutable {
          for (size_t i = 0; i < done.size(); ++i) done[i](std::move(outcomes[i]));
        });
  }
}

absl::Status AuditLog::MaybeSeal(bool force) {
  if (!damage_.ok()) return force ? damage_ : absl::OkStatus();
  if (unsealed_hashes_.empty()) return absl::OkStatus();
  if (options_.seal_signer == nullptr) {
    return force ? absl::FailedPreconditionError("this audit log has no seal key")
                 : absl::OkStatus();
  }
  const absl::Duration now_mono = options_.clock->MonotonicNow();
  const bool due = force || unsealed_hashes_.size() >= options_.seal_every_records ||
                   now_mono - last_seal_mono_ >= options_.seal_interval;
  if (!due || store_broken_) return absl::OkStatus();
  v1::Seal seal;
  *seal.mutable_server() = options_.server;
  seal.set_first_seq(last_sealed_seq_ + 1);
  seal.set_last_seq(head_seq_);
  seal.set_merkle_root(MerkleTree(unsealed_hashes_).Root());
  seal.set_chain_head(head_hash_);
  seal.set_previous_witnessed_seq(last_sealed_seq_);
  seal.set_previous_witnessed_head(last_sealed_seq_ == 0 ? std::string() : last_sealed_head_);
  seal.set_sealed_at_unix_nanos(ToUnixNanosField(options_.clock->Now()));
  DARVOZA_ASSIGN_OR_RETURN(v1::SignedSeal signed_seal,
                           SignSeal(seal, *options_.seal_signer, options_.seal_cert_der));
  const uint64_t index = last_seal_index_ + 1;
  rocksdb::WriteBatch wb;
  std::string index_bytes;
  for (int s = 56; s >= 0; s -= 8) index_bytes.push_back(static_cast<char>(index >> s));
  absl::Status written;
  {
    absl::ReaderMutexLock l(&db_mu_);
    store_->Put(&wb, internal::SealKey(index), signed_seal.SerializeAsString());
    store_->Put(&wb, internal::SealByLastSeqKey(seal.last_seq()), index_bytes);
    written = store_->Write(&wb, /*sync=*/true);
  }
  if (!written.ok()) {
    // The seal may have reached the disk all the same: reload the seal state from there before
    // the next seal point, or the next seal would reuse this index.
    ReopenStore().IgnoreError();
    return written;
  }
  last_seal_index_ = index;
  last_sealed_seq_ = seal.last_seq();
  last_sealed_head_ = seal.chain_head();
  last_seal_mono_ = now_mono;
  unsealed_hashes_.clear();
  {
    absl::MutexLock l(&witness_mu_);
    ++witness_requested_;  // wakes the witness thread
  }
  return absl::OkStatus();
}

absl::Status AuditLog::SealNow() {
  absl::MutexLock l(&mu_);
  force_seal_ = true;
  const uint64_t mine = ++control_requested_;
  auto done = [this, mine]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return control_done_ >= mine;
  };
  mu_.Await(absl::Condition(&done));
  return control_status_;
}

absl::Status AuditLog::Tick() {
  absl::MutexLock l(&mu_);
  const uint64_t mine = ++control_requested_;
  auto done = [this, mine]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return control_done_ >= mine;
  };
  mu_.Await(absl::Condition(&done));
  return control_status_;
}

void AuditLog::WitnessLoop() {
  for (;;) {
    uint64_t target = 0;
    {
      absl::MutexLock l(&witness_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(witness_mu_) {
        return witness_stop_ || witness_requested_ > witness_done_;
      };
      witness_mu_.AwaitWithTimeout(absl::Condition(&ready), options_.witness_retry);
      if (witness_stop_) return;
      target = witness_requested_;
    }
    absl::Status status = WitnessPending();
    bool changed = false;
    {
      absl::MutexLock l(&witness_mu_);
      changed = !SameOutcome(witness_status_, status);
      witness_status_ = status;
      witnessed_index_published_ = witnessed_index_;
    }
    // Before the attempt counts as done: whoever waits for it (WitnessNow) then sees the
    // callback's effects too. Without the lock: the callback may read the log's status.
    if (changed && options_.on_witness_status_change) options_.on_witness_status_change(status);
    absl::MutexLock l(&witness_mu_);
    witness_done_ = std::max(witness_done_, target);
  }
}

absl::Status AuditLog::WitnessPending() {
  if (options_.witness == nullptr) return absl::OkStatus();
  uint64_t last_index = 0;
  {
    absl::MutexLock l(&mu_);
    last_index = last_seal_index_published_;
  }
  bool reopened = false;
  while (witnessed_index_ < last_index) {
    const uint64_t index = witnessed_index_ + 1;
    std::optional<Store::SealEntry> entry;
    bool open = false;
    {
      absl::ReaderMutexLock l(&db_mu_);
      open = store_ != nullptr;
      if (open) {
        DARVOZA_ASSIGN_OR_RETURN(entry, store_->GetSeal(index));
      }
    }
    if (!open) {
      if (reopened) return absl::UnavailableError("audit store is closed");
      // Closed after a failed write and not reopened yet: the writer thread reopens it.
      reopened = true;
      ReopenByWriter();
      continue;
    }
    if (!entry.has_value()) return absl::DataLossError(absl::StrCat("seal ", index, " missing"));
    auto receipt = options_.witness->WitnessSeal(entry->signed_seal);
    if (!receipt.ok()) return receipt.status();
    v1::WitnessReceipt parsed;
    if (!parsed.ParseFromString(receipt->receipt())) {
      return absl::DataLossError("witness returned a receipt that does not parse");
    }
    DARVOZA_RETURN_IF_ERROR(CheckReceiptMatchesSeal(parsed, entry->signed_seal, entry->seal));
    absl::Status stored = StoreReceipt(index, *receipt);
    if (!stored.ok() && !reopened) {
      // A failed write leaves RocksDB refusing writes until reopened. The witness has already
      // taken this seal; sending it again later would get the same receipt (a repeat), but
      // storing it now keeps the log's witnessed state current.
      reopened = true;
      ReopenByWriter();
      stored = StoreReceipt(index, *receipt);
    }
    if (!stored.ok()) {
      absl::MutexLock l(&mu_);
      reopen_requested_ = true;  // by the writer's next wake-up; this seal is sent again then
      return stored;
    }
    witnessed_index_ = index;
  }
  return absl::OkStatus();
}

absl::Status AuditLog::StoreReceipt(uint64_t index, const v1::SignedWitnessReceipt& receipt) {
  rocksdb::WriteBatch wb;
  absl::ReaderMutexLock l(&db_mu_);
  if (store_ == nullptr) return absl::UnavailableError("audit store is closed");
  store_->Put(&wb, internal::ReceiptKey(index), receipt.SerializeAsString());
  return store_->Write(&wb, /*sync=*/true);
}

absl::Status AuditLog::WitnessNow() {
  absl::MutexLock l(&witness_mu_);
  const uint64_t mine = ++witness_requested_;
  auto done = [this, mine]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(witness_mu_) {
    return witness_done_ >= mine || witness_stop_;
  };
  witness_mu_.Await(absl::Condition(&done));
  return witness_status_;
}

absl::Status AuditLog::write_status() const {
  absl::MutexLock l(&mu_);
  return write_status_;
}

absl::Status AuditLog::witness_status() const {
  absl::MutexLock l(&witness_mu_);
  return witness_status_;
}

absl::StatusOr<AuditLogHealth> AuditLog::Health() {
  AuditLogHealth health;
  health.damage = damage_;
  uint64_t witnessed_index = 0;
  {
    absl::MutexLock l(&witness_mu_);
    health.witness = witness_status_;
    witnessed_index = witnessed_index_published_;
  }
  uint64_t last_index = 0;
  {
    absl::MutexLock l(&mu_);
    health.head_seq = head_seq_published_;
    last_index = last_seal_index_published_;
  }
  {
    absl::ReaderMutexLock l(&db_mu_);
    if (store_ == nullptr) {
      return Fault(absl::StatusCode::kUnavailable, faults::kAuditLogFailure,
                   "audit store is closed after a failed write");
    }
    // A damaged log may not read its last seal: report what can be read.
    auto last = store_->LastSeal();
    if (!last.ok() && damage_.ok()) return last.status();
    if (last.ok() && last->has_value()) {
      health.last_seal_seq = (*last)->seal.last_seq();
      health.last_sealed_at = FromUnixNanosField((*last)->seal.sealed_at_unix_nanos());
    }
    if (witnessed_index < last_index) {
      health.unwitnessed_seals = last_index - witnessed_index;
      DARVOZA_ASSIGN_OR_RETURN(auto oldest, store_->GetSeal(witnessed_index + 1));
      if (oldest.has_value()) {
        const absl::Time sealed_at = FromUnixNanosField(oldest->seal.sealed_at_unix_nanos());
        health.unwitnessed_age = std::max(absl::ZeroDuration(), options_.clock->Now() - sealed_at);
      }
    }
  }
  health.disk_bytes = DirectoryBytes(options_.path);
  return health;
}

uint64_t AuditLog::head_seq() const {
  absl::MutexLock l(&mu_);
  return head_seq_published_;
}

absl::StatusOr<uint64_t> AuditLog::Purge(absl::Time older_than, const v1::AuditArchive& archive) {
  const uint64_t archived_through_seq = archive.records_size() > 0 ? archive.last_seq() : 0;
  absl::ReaderMutexLock l(&db_mu_);
  if (store_ == nullptr) return absl::UnavailableError("audit store is closed");
  // The newest witnessed seal that ends within the archive and whose last record is old enough.
  DARVOZA_ASSIGN_OR_RETURN(uint64_t last_receipt, store_->LastReceiptIndex());
  for (uint64_t index = last_receipt; index > 0; --index) {
    DARVOZA_ASSIGN_OR_RETURN(auto seal, store_->GetSeal(index));
    if (!seal.has_value()) break;
    if (seal->seal.last_seq() > archived_through_seq) continue;
    DARVOZA_ASSIGN_OR_RETURN(StoredRecord last, store_->GetRecord(seal->seal.last_seq()));
    if (FromUnixNanosField(last.record.time_unix_nanos()) >= older_than) continue;
    DARVOZA_ASSIGN_OR_RETURN(auto receipt, store_->GetReceipt(index));
    if (!receipt.has_value()) continue;
    DARVOZA_RETURN_IF_ERROR(store_->PurgeThrough(*seal, &*receipt,
                                                 ToUnixNanosField(options_.clock->Now()), archive));
    return seal->seal.last_seq();
  }
  return uint64_t{0};
}

#define DARVOZA_WITH_STORE(expr)                                           \
  absl::ReaderMutexLock l(&db_mu_);                                        \
  if (store_ == nullptr) {                                                 \
    return Fault(absl::StatusCode::kUnavailable, faults::kAuditLogFailure, \
                 "audit store is closed after a failed write");            \
  }                                                                        \
  return store_->expr

absl::StatusOr<StoredRecord> AuditLog::GetRecord(uint64_t seq) {
  DARVOZA_WITH_STORE(GetRecord(seq));
}
absl::StatusOr<std::vector<StoredRecord>> AuditLog::FindByMessageId(absl::string_view id) {
  DARVOZA_WITH_STORE(FindByMessageId(id));
}
absl::StatusOr<std::vector<StoredRecord>> AuditLog::Find(const AuditQuery& query) {
  DARVOZA_WITH_STORE(Find(query));
}
absl::StatusOr<std::string> AuditLog::GetBody(absl::string_view sha256) {
  DARVOZA_WITH_STORE(GetBody(sha256));
}
absl::StatusOr<std::string> AuditLog::GetCertificate(absl::string_view sha256) {
  DARVOZA_WITH_STORE(GetCertificate(sha256));
}
absl::StatusOr<v1::AuditArchive> AuditLog::Export(const ExportOptions& options) {
  DARVOZA_WITH_STORE(Export(options, &options_.server));
}
absl::StatusOr<v1::AuditInclusionProof> AuditLog::Prove(uint64_t seq) {
  DARVOZA_WITH_STORE(Prove(seq));
}
absl::StatusOr<LogStats> AuditLog::Stats() { DARVOZA_WITH_STORE(Stats()); }
#undef DARVOZA_WITH_STORE

uint64_t AuditLog::Ticker(uint32_t ticker) const { return statistics_->getTickerCount(ticker); }
void AuditLog::ResetTickers() { statistics_->Reset().PermitUncheckedError(); }

// ---------------------------------------------------------------------------------------------

AuditReader::AuditReader(std::shared_ptr<rocksdb::Statistics> statistics,
                         std::unique_ptr<internal::Store> store)
    : statistics_(std::move(statistics)), store_(std::move(store)) {}
AuditReader::~AuditReader() = default;

absl::StatusOr<std::unique_ptr<AuditReader>> AuditReader::Open(
    const std::string& path, const std::string& secondary_path) {
  internal::StoreOptions so;
  so.path = path;
  so.secondary = true;
  so.secondary_path = secondary_path;
  so.create_if_missing = false;
  so.statistics = rocksdb::CreateDBStatistics();
  auto store = Store::Open(so);
  if (!store.ok()) {
    if (store.status().code() == absl::StatusCode::kUnavailable ||
        store.status().code() == absl::StatusCode::kInvalidArgument) {
      return absl::NotFoundError(absl::StrCat("cannot open audit log at ", path, ": ",
                                              store.status().message()));
    }
    return store.status();
  }
  std::unique_ptr<AuditReader> reader(new AuditReader(so.statistics, *std::move(store)));
  DARVOZA_RETURN_IF_ERROR(reader->Refresh());
  return reader;
}

absl::Status AuditReader::Refresh() {
  rocksdb::Status s = store_->db()->TryCatchUpWithPrimary();
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("catching up: ", s.ToString()));
  return absl::OkStatus();
}

absl::StatusOr<StoredRecord> AuditReader::GetRecord(uint64_t seq) {
  return store_->GetRecord(seq);
}
absl::StatusOr<std::vector<StoredRecord>> AuditReader::FindByMessageId(absl::string_view id) {
  return store_->FindByMessageId(id);
}
absl::StatusOr<std::vector<StoredRecord>> AuditReader::Find(const AuditQuery& query) {
  return store_->Find(query);
}
absl::StatusOr<std::string> AuditReader::GetBody(absl::string_view sha256) {
  return store_->GetBody(sha256);
}
absl::StatusOr<std::string> AuditReader::GetCertificate(absl::string_view sha256) {
  return store_->GetCertificate(sha256);
}
absl::StatusOr<v1::AuditArchive> AuditReader::Export(const ExportOptions& options) {
  return store_->Export(options, nullptr);
}
absl::StatusOr<v1::AuditInclusionProof> AuditReader::Prove(uint64_t seq) {
  return store_->Prove(seq);
}
absl::StatusOr<LogStats> AuditReader::Stats() { return store_->Stats(); }
uint64_t AuditReader::Ticker(uint32_t ticker) const {
  return statistics_->getTickerCount(ticker);
}
void AuditReader::ResetTickers() { statistics_->Reset().PermitUncheckedError(); }

}  // namespace darvoza::audit
