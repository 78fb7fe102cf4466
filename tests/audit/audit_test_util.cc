#include "tests/audit/audit_test_util.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <functional>

#include <thread>
#include <utility>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "audit/internal/store.h"
#include "common/crypto/hash.h"
#include "common/identifiers.h"
#include "common/status_macros.h"
#include "proto/envelope.pb.h"
#include "tests/test_support.h"

namespace darvoza::audit::testing {
namespace {

std::shared_ptr<const crypto::Certificate> IssueFor(const crypto::PrivateKey& ca_key,
                                                    const crypto::Certificate* ca_cert,
                                                    const crypto::PrivateKey& subject,
                                                    const std::string& cn, uint64_t serial,
                                                    crypto::CertificateProfile profile) {
  crypto::IssueOptions opts{.serial = serial,
                            .not_before = kTestStart - absl::Hours(24),
                            .not_after = kTestStart + absl::Hours(24 * 3650),
                            .profile = profile};
  auto cert = crypto::IssueCertificate(ca_key, ca_cert, *subject.GetPublicKey(), cn, opts);
  REQUIRE(cert.ok());
  return *std::move(cert);
}

std::unique_ptr<crypto::PrivateKey> NewKey() {
  auto key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  REQUIRE(key.ok());
  return *std::move(key);
}

}  // namespace

TestPki::TestPki() {
  root_key = NewKey();
  root = IssueFor(*root_key, nullptr, *root_key, "Darvoza UZ Test Root", 1,
                  crypto::CertificateProfile::kRootCa);
  auto seal_key = NewKey();
  seal_cert = IssueFor(*root_key, root.get(), *seal_key, absl::StrCat("server:", kServerText), 2,
                       crypto::CertificateProfile::kSigning);
  seal_signer = std::make_unique<crypto::FileKeySigner>(std::move(seal_key));
  auto witness_key = NewKey();
  witness_cert = IssueFor(*root_key, root.get(), *witness_key, "registry:witness", 3,
                          crypto::CertificateProfile::kSigning);
  witness_signer = std::make_unique<crypto::FileKeySigner>(std::move(witness_key));
  auto conf_key = NewKey();
  conf_cert = IssueFor(*root_key, root.get(), *conf_key, "registry:globalconf", 4,
                       crypto::CertificateProfile::kSigning);
  conf_signer = std::make_unique<crypto::FileKeySigner>(std::move(conf_key));
  auto id = ParseSecurityServerId(kServerText);
  REQUIRE(id.ok());
  server = *id;
  anchor.set_instance("UZ");
  anchor.set_root_ca_cert_der(root->der());
  anchor.add_conf_signing_cert_der(conf_cert->der());
}

std::string TestPki::SignedGlobalConfBlob() const {
  v1::GlobalConf conf;
  conf.set_instance("UZ");
  conf.set_serial(1);
  conf.set_witness_cert_der(witness_cert->der());
  v1::SignedGlobalConf signed_conf;
  conf.SerializeToString(signed_conf.mutable_conf());
  auto sig = conf_signer->Sign(crypto::SignatureContext::kGlobalConf, signed_conf.conf());
  REQUIRE(sig.ok());
  signed_conf.set_signature(*sig);
  signed_conf.set_signer_cert_der(conf_cert->der());
  return signed_conf.SerializeAsString();
}

VerifyOptions TestPki::Options() const {
  auto options = VerifyOptionsFromAnchor(anchor, {SignedGlobalConfBlob()});
  REQUIRE(options.ok());
  REQUIRE(options->trust.witness_cert_sha256.size() == 1);
  return *options;
}

FakeWitness::FakeWitness(Clock* clock, crypto::Signer* signer, std::string cert_der,
                         SealTrust trust)
    : clock_(clock), signer_(signer), cert_der_(std::move(cert_der)), trust_(std::move(trust)) {}

absl::StatusOr<v1::SignedWitnessReceipt> FakeWitness::WitnessSeal(const v1::SignedSeal& seal) {
  absl::MutexLock l(&mu_);
  if (!reachable_) return absl::UnavailableError("witness unreachable (test)");
  auto parsed = VerifySignedSeal(seal, trust_);
  if (!parsed.ok()) return parsed.status();
  auto step = CheckWitnessHead(*parsed, SealDigest(seal), held_);
  if (!step.ok()) return step.status();
  auto receipt = SignWitnessReceipt(MakeWitnessReceipt(seal, *parsed, clock_->Now()), *signer_,
                                    cert_der_);
  if (!receipt.ok()) return receipt.status();
  if (*step == WitnessStep::kExtends) {
    held_ = WitnessedHead{parsed->last_seq(), parsed->chain_head(), SealDigest(seal)};
  }
  latest_ = *receipt;
  ++receipts_;
  return receipt;
}

void FakeWitness::set_reachable(bool reachable) {
  absl::MutexLock l(&mu_);
  reachable_ = reachable;
}

v1::SignedWitnessReceipt FakeWitness::LatestReceipt() const {
  absl::MutexLock l(&mu_);
  return latest_;
}

uint64_t FakeWitness::held_seq() const {
  absl::MutexLock l(&mu_);
  return held_.seq;
}

uint64_t FakeWitness::receipts() const {
  absl::MutexLock l(&mu_);
  return receipts_;
}

// ---------------------------------------------------------------------------------------------

namespace {

class TrackedFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(std::unique_ptr<rocksdb::FSWritableFile> target, FaultFs* fs,
              std::shared_ptr<FaultFs::FileState> state)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), state_(std::move(state)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->BeforeWrite();
    if (!s.ok()) return s;
    s = target()->Append(data, options, dbg);
    if (s.ok()) fs_->OnAppend(state_, data.size());
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->BeforeWrite();
    if (!s.ok()) return s;
    s = target()->Append(data, options, info, dbg);
    if (s.ok()) fs_->OnAppend(state_, data.size());
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->BeforeWrite();
    if (!s.ok()) return s;
    s = target()->PositionedAppend(data, offset, options, dbg);
    if (s.ok()) fs_->OnTruncate(state_, offset + data.size());
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->BeforeWrite();
    if (!s.ok()) return s;
    s = target()->PositionedAppend(data, offset, options, info, dbg);
    if (s.ok()) fs_->OnTruncate(state_, offset + data.size());
    return s;
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->BeforeWrite();
    if (!s.ok()) return s;
    s = target()->Truncate(size, options, dbg);
    if (s.ok()) fs_->OnTruncate(state_, size);
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->BeforeWrite();
    if (!s.ok()) return s;
    s = target()->Sync(options, dbg);
    if (s.ok()) s = fs_->OnSync(state_);
    return s;
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->BeforeWrite();
    if (!s.ok()) return s;
    s = target()->Fsync(options, dbg);
    if (s.ok()) s = fs_->OnSync(state_);
    return s;
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    // Closing is not a durability point; after a freeze the data stays unsynced.
    return target()->Close(options, dbg);
  }

 private:
  FaultFs* const fs_;
  const std::shared_ptr<FaultFs::FileState> state_;
};

}  // namespace

FaultFs::FaultFs(const std::shared_ptr<rocksdb::FileSystem>& base)
    : rocksdb::FileSystemWrapper(base) {}

rocksdb::IOStatus FaultFs::BeforeWrite() const {
  if (frozen_) return rocksdb::IOStatus::IOError("power cut (test)");
  if (no_space_) return rocksdb::IOStatus::NoSpace("disk full (test)");
  return rocksdb::IOStatus::OK();
}

void FaultFs::OnAppend(const std::shared_ptr<FileState>& state, uint64_t n) {
  absl::MutexLock l(&mu_);
  state->written += n;
}

void FaultFs::OnTruncate(const std::shared_ptr<FileState>& state, uint64_t n) {
  absl::MutexLock l(&mu_);
  state->written = n;
  if (state->synced > n) state->synced = n;
}

rocksdb::IOStatus FaultFs::OnSync(const std::shared_ptr<FileState>& state) {
  const int64_t delay = sync_delay_us_;
  if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay));  // deliberate
  absl::MutexLock l(&mu_);
  if (frozen_) return rocksdb::IOStatus::IOError("power cut (test)");
  if (fail_sync_) return rocksdb::IOStatus::IOError("fsync failed (test)");
  state->synced = state->written;
  ++syncs_;
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus FaultFs::Wrap(const std::string& fname, uint64_t initial_size,
                                std::unique_ptr<rocksdb::FSWritableFile>* result) {
  auto state = std::make_shared<FileState>();
  state->written = initial_size;
  state->synced = initial_size;
  {
    absl::MutexLock l(&mu_);
    files_[fname] = state;
  }
  *result = std::make_unique<TrackedFile>(std::move(*result), this, std::move(state));
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus FaultFs::NewWritableFile(const std::string& fname,
                                           const rocksdb::FileOptions& opts,
                                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                                           rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = BeforeWrite();
  if (!s.ok()) return s;
  s = target()->NewWritableFile(fname, opts, result, dbg);
  if (!s.ok()) return s;
  return Wrap(fname, 0, result);
}

rocksdb::IOStatus FaultFs::ReopenWritableFile(const std::string& fname,
                                              const rocksdb::FileOptions& opts,
                                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                                              rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = BeforeWrite();
  if (!s.ok()) return s;
  uint64_t size = 0;
  if (!target()->GetFileSize(fname, rocksdb::IOOptions(), &size, dbg).ok()) size = 0;
  s = target()->ReopenWritableFile(fname, opts, result, dbg);
  if (!s.ok()) return s;
  return Wrap(fname, size, result);
}

rocksdb::IOStatus FaultFs::ReuseWritableFile(const std::string& fname,
                                             const std::string& old_fname,
                                             const rocksdb::FileOptions& opts,
                                             std::unique_ptr<rocksdb::FSWritableFile>* result,
                                             rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = BeforeWrite();
  if (!s.ok()) return s;
  s = target()->ReuseWritableFile(fname, old_fname, opts, result, dbg);
  if (!s.ok()) return s;
  {
    absl::MutexLock l(&mu_);
    files_.erase(old_fname);
  }
  return Wrap(fname, 0, result);
}

rocksdb::IOStatus FaultFs::RenameFile(const std::string& src, const std::string& target_name,
                                      const rocksdb::IOOptions& opts,
                                      rocksdb::IODebugContext* dbg) {
  if (frozen_) return rocksdb::IOStatus::IOError("power cut (test)");
  rocksdb::IOStatus s = target()->RenameFile(src, target_name, opts, dbg);
  if (!s.ok()) return s;
  absl::MutexLock l(&mu_);
  auto it = files_.find(src);
  if (it != files_.end()) {
    files_[target_name] = it->second;
    files_.erase(it);
  } else {
    files_.erase(target_name);
  }
  return s;
}

rocksdb::IOStatus FaultFs::DeleteFile(const std::string& fname, const rocksdb::IOOptions& opts,
                                      rocksdb::IODebugContext* dbg) {
  if (frozen_) return rocksdb::IOStatus::IOError("power cut (test)");
  rocksdb::IOStatus s = target()->DeleteFile(fname, opts, dbg);
  if (s.ok()) {
    absl::MutexLock l(&mu_);
    files_.erase(fname);
  }
  return s;
}

void FaultFs::Freeze() {
  absl::MutexLock l(&mu_);
  frozen_ = true;
}

void FaultFs::ApplyCut() {
  absl::MutexLock l(&mu_);
  for (const auto& [name, state] : files_) {
    if (::truncate(name.c_str(), static_cast<off_t>(state->synced)) != 0) {
      // The file may be gone (deleted before the cut): nothing to drop then.
    }
  }
  files_.clear();
  frozen_ = false;
}

// ---------------------------------------------------------------------------------------------

LogFixture::LogFixture() {
  auto temp = std::make_shared<darvoza::testing::TempDir>();
  dir = temp->path();
  path = temp->File("audit");
  temp_ = temp;
  SealTrust trust;
  trust.roots = {pki.root};
  witness = std::make_unique<FakeWitness>(&clock, pki.witness_signer.get(),
                                          pki.witness_cert->der(), trust);
}

AuditLogOptions LogFixture::Options() const {
  AuditLogOptions options;
  options.path = path;
  options.server = pki.server;
  options.clock = const_cast<SimulatedClock*>(&clock);
  options.seal_signer = pki.seal_signer.get();
  options.seal_cert_der = pki.seal_cert->der();
  options.witness = witness.get();
  options.seal_every_records = 10;
  options.seal_interval = absl::Hours(1);
  options.timer_poll = absl::Milliseconds(50);
  options.witness_retry = absl::Milliseconds(50);
  return options;
}

AppendRequest MakeRequest(uint64_t n, const std::string& body) {
  AppendRequest request;
  v1::AuditRecord& r = request.record;
  r.set_kind(n % 2 == 0 ? v1::REQUEST_OUT : v1::RESPONSE_IN);
  r.set_message_id(absl::StrCat("msg-", n));
  auto client = ParseSubsystemId(absl::StrCat("UZ/GOV/7000000", n % 7, "/client-app"));
  auto service = ParseServiceId(absl::StrCat("UZ/GOV/80000001/tax-registry/svc", n % 5));
  REQUIRE(client.ok());
  REQUIRE(service.ok());
  *r.mutable_client() = *client;
  *r.mutable_service() = *service;
  v1::Envelope envelope;
  envelope.set_message_id(r.message_id());
  *envelope.mutable_client() = *client;
  *envelope.mutable_service() = *service;
  envelope.set_nonce(absl::StrCat("nonce-", n));
  r.set_envelope(envelope.SerializeAsString());
  r.set_signature(absl::StrCat("sig-", n));
  // A signer chain as an exchange records it: the same few certificates in many records.
  r.add_signer_cert_chain(absl::StrCat("leaf certificate of signer ", n % 3));
  r.add_signer_cert_chain("issuing CA certificate");
  if (!body.empty()) request.body = body;
  return request;
}

namespace {

absl::Status WriteRaw(const std::string& path,
                      const std::function<void(internal::Store&, rocksdb::WriteBatch&)>& edit) {
  internal::StoreOptions options;
  options.path = path;
  options.create_if_missing = false;
  DARVOZA_ASSIGN_OR_RETURN(auto store, internal::Store::Open(options));
  rocksdb::WriteBatch batch;
  edit(*store, batch);
  return store->Write(&batch, /*sync=*/true);
}

}  // namespace

absl::Status PutRaw(const std::string& path, const std::string& key, const std::string& value) {
  return WriteRaw(path, [&](internal::Store& store, rocksdb::WriteBatch& batch) {
    store.Put(&batch, key, value);
  });
}

absl::Status DeleteRaw(const std::string& path, const std::string& key) {
  return WriteRaw(path, [&](internal::Store& store, rocksdb::WriteBatch& batch) {
    store.Delete(&batch, key);
  });
}

void WritePreviousLayoutLog(const std::string& path, uint64_t records) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::Open(options, path, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string prev = internal::ZeroHash();
  for (uint64_t seq = 1; seq <= records; ++seq) {
    AppendRequest request = MakeRequest(seq, absl::StrCat("body of record ", seq));
    v1::AuditRecord& r = request.record;  // the chain stays inline, as it was then
    r.set_seq(seq);
    r.set_prev_hash(prev);
    r.set_time_unix_nanos(absl::ToUnixNanos(kTestStart) + static_cast<int64_t>(seq));
    r.set_body_sha256(crypto::Sha256(*request.body));
    r.set_body_length(request.body->size());
    const std::string bytes = r.SerializeAsString();
    rocksdb::WriteBatch batch;
    REQUIRE(batch.Put(internal::RecordKey(seq), bytes).ok());
    for (const std::string& k : internal::IndexKeys(r)) REQUIRE(batch.Put(k, "").ok());
    REQUIRE(batch.Put(internal::BodyKey(r.body_sha256()), *request.body).ok());
    REQUIRE(db->Write(rocksdb::WriteOptions(), &batch).ok());
    prev = internal::RecordHash(prev, bytes);
  }
  REQUIRE(db->Close().ok());
}

Appenders::Appenders(AuditLog* log, int threads, uint64_t first_n) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, log, t, threads, first_n] {
        for (uint64_t n = first_n + t;; n += threads) {
          if (stop_) return;
          AppendRequest request = MakeRequest(n, absl::StrCat("body-", n));
          auto r = log->AppendAndWait(std::move(request));
          if (!r.ok()) {
            if (stop_) return;
            continue;
          }
          absl::MutexLock l(&mu_);
          acked_.push_back(Acked{r->seq, absl::StrCat("msg-", n)});
        }
      });
    }
}

Appenders::~Appenders() { Stop(); }

void Appenders::WaitForAcks(size_t n) {
  absl::MutexLock l(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return acked_.size() >= n; };
  mu_.Await(absl::Condition(&enough));
}

void Appenders::Stop() {
  stop_ = true;
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::vector<Acked> Appenders::acked() {
  absl::MutexLock l(&mu_);
  return acked_;
}

// How many acknowledged appends are missing (or different) after reopening.
size_t CountLost(AuditQueries& log, const std::vector<Acked>& acked) {
  size_t lost = 0;
  for (const Acked& a : acked) {
    auto r = log.GetRecord(a.seq);
    if (!r.ok() || r->record.message_id() != a.message_id) ++lost;
  }
  return lost;
}

// One round: append concurrently, cut power after `cut_after` acks, recover; returns lost.
size_t PowerCutRound(LogFixture& f, FaultFs& fs, rocksdb::Env* env, bool sync, bool seal,
                     size_t cut_after, uint64_t first_n, bool* verified) {
  AuditLogOptions options = f.Options();
  options.env = env;
  options.sync = sync;
  if (!seal) {
    options.seal_signer = nullptr;
    options.witness = nullptr;
  }
  std::vector<Acked> acked;
  {
    auto log = AuditLog::Open(options);
    REQUIRE(log.ok());
    Appenders appenders(log->get(), 4, first_n);
    appenders.WaitForAcks(cut_after);
    fs.Freeze();  // the power goes out: nothing written from now on reaches the disk
    appenders.Stop();
    acked = appenders.acked();
    log->reset();
  }
  fs.ApplyCut();
  auto log = AuditLog::Open(options);
  REQUIRE(log.ok());
  const size_t lost = CountLost(**log, acked);
  VerifyOptions verify = f.pki.Options();
  verify.allow_unwitnessed_seals = true;
  VerifyReport report = testing::VerifyStore(**log, verify);
  INFO(report.ToText());
  *verified = report.ok;
  return lost;
}

VerifyReport VerifyStore(AuditQueries& queries, const VerifyOptions& options) {
  auto archive = queries.Export(ExportOptions{});
  REQUIRE(archive.ok());
  return VerifyArchive(*archive, options);
}

}  // namespace darvoza::audit::testing
