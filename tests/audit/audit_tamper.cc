// audit_tamper: a test-only tool that edits a stopped security server's audit log (a copy of
// its audit directory) or an exported archive the way an attacker with the files would, so
// that the tampering suite can check that `darvoza audit verify` catches each edit and names
// the first bad record. It writes through the store's own key layout (audit/internal/store.h),
// never through AuditLog, which would refuse such edits.
//
//   audit_tamper DIR flip SEQ           change one byte of record SEQ
//   audit_tamper DIR garble SEQ         replace record SEQ with bytes that do not parse
//   audit_tamper DIR delete SEQ         delete record SEQ
//   audit_tamper DIR swap A B           exchange records A and B
//   audit_tamper DIR cut SEQ            delete records SEQ..newest (seals stay)
//   audit_tamper DIR append-forged      append a well-linked record after the newest
//   audit_tamper DIR rewrite-tail       drop the last seal and its receipt, rewrite its records
//   audit_tamper DIR drop-last-seal     delete the last seal and its receipt
//   audit_tamper FILE archive-dup-body SEQ   list a forged body of record SEQ before its own
//   audit_tamper FILE archive-trailing       append protobuf bytes to an archive file
// SEQ may be "newest". Prints the first record the edit makes bad ("first bad record N") on
// stdout; exits 1 with a message on stderr when the edit cannot be made.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "audit/archive.h"
#include "audit/internal/store.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "proto/archive.pb.h"
#include "proto/audit.pb.h"

namespace darvoza::audit {
namespace {

using internal::Store;

class Tamper {
 public:
  static absl::StatusOr<std::unique_ptr<Tamper>> Open(const std::string& dir) {
    internal::StoreOptions options;
    options.path = dir;
    options.create_if_missing = false;
    DARVOZA_ASSIGN_OR_RETURN(auto store, Store::Open(options));
    return std::unique_ptr<Tamper>(new Tamper(std::move(store)));
  }

  absl::StatusOr<uint64_t> Newest() {
    DARVOZA_ASSIGN_OR_RETURN(auto last, store_->LastRecord());
    if (!last.has_value()) return absl::FailedPreconditionError("the log has no records");
    return last->seq;
  }

  // "newest" or a number.
  absl::StatusOr<uint64_t> Seq(const std::string& text) {
    if (text == "newest") return Newest();
    uint64_t seq = 0;
    if (!absl::SimpleAtoi(text, &seq) || seq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("not a record number: ", text));
    }
    return seq;
  }

  absl::StatusOr<std::string> RecordBytes(uint64_t seq) {
    DARVOZA_ASSIGN_OR_RETURN(auto bytes, store_->Get(internal::RecordKey(seq)));
    if (!bytes.has_value()) return absl::NotFoundError(absl::StrCat("no record ", seq));
    return *bytes;
  }

  absl::Status Put(uint64_t seq, const std::string& bytes) {
    rocksdb::WriteBatch batch;
    store_->Put(&batch, internal::RecordKey(seq), bytes);
    return store_->Write(&batch, /*sync=*/true);
  }

  absl::StatusOr<uint64_t> Flip(uint64_t seq) {
    DARVOZA_ASSIGN_OR_RETURN(std::string bytes, RecordBytes(seq));
    bytes[bytes.size() / 2] ^= 0x01;
    DARVOZA_RETURN_IF_ERROR(Put(seq, bytes));
    return seq;
  }

  absl::StatusOr<uint64_t> Garble(uint64_t seq) {
    DARVOZA_RETURN_IF_ERROR(RecordBytes(seq).status());
    // A field tag whose varint never ends: no protobuf parser accepts it.
    DARVOZA_RETURN_IF_ERROR(Put(seq, std::string(12, '\xff')));
    return seq;
  }

  absl::StatusOr<uint64_t> Delete(uint64_t seq) {
    DARVOZA_RETURN_IF_ERROR(RecordBytes(seq).status());
    rocksdb::WriteBatch batch;
    store_->Delete(&batch, internal::RecordKey(seq));
    DARVOZA_RETURN_IF_ERROR(store_->Write(&batch, true));
    return seq;
  }

  absl::StatusOr<uint64_t> Swap(uint64_t a, uint64_t b) {
    DARVOZA_ASSIGN_OR_RETURN(std::string bytes_a, RecordBytes(a));
    DARVOZA_ASSIGN_OR_RETURN(std::string bytes_b, RecordBytes(b));
    rocksdb::WriteBatch batch;
    store_->Put(&batch, internal::RecordKey(a), bytes_b);
    store_->Put(&batch, internal::RecordKey(b), bytes_a);
    DARVOZA_RETURN_IF_ERROR(store_->Write(&batch, true));
    return std::min(a, b);
  }

  absl::StatusOr<uint64_t> Cut(uint64_t from) {
    DARVOZA_ASSIGN_OR_RETURN(uint64_t newest, Newest());
    if (from > newest) return absl::InvalidArgumentError("nothing to cut");
    rocksdb::WriteBatch batch;
    for (uint64_t seq = from; seq <= newest; ++seq) {
      store_->Delete(&batch, internal::RecordKey(seq));
    }
    DARVOZA_RETURN_IF_ERROR(store_->Write(&batch, true));
    return from;
  }

  absl::StatusOr<uint64_t> AppendForged() {
    DARVOZA_ASSIGN_OR_RETURN(auto last, store_->LastRecord());
    if (!last.has_value()) return absl::FailedPreconditionError("the log has no records");
    v1::AuditRecord forged;
    forged.set_seq(last->seq + 1);
    forged.set_prev_hash(internal::RecordHash(last->record.prev_hash(), last->bytes));
    forged.set_time_unix_nanos(last->record.time_unix_nanos() + 1);
    forged.set_kind(v1::ADMIN_ACTION);
    forged.set_detail("forged after the last seal");
    rocksdb::WriteBatch batch;
    store_->Put(&batch, internal::RecordKey(forged.seq()), forged.SerializeAsString());
    for (const std::string& key : internal::IndexKeys(forged)) store_->Put(&batch, key, "");
    DARVOZA_RETURN_IF_ERROR(store_->Write(&batch, true));
    return forged.seq();
  }

  // Deletes the last seal with its receipt; returns the seal's first record.
  absl::StatusOr<uint64_t> DropLastSeal(rocksdb::WriteBatch& batch) {
    DARVOZA_ASSIGN_OR_RETURN(auto seal, store_->LastSeal());
    if (!seal.has_value()) return absl::FailedPreconditionError("the log has no seal");
    store_->Delete(&batch, internal::SealKey(seal->index));
    store_->Delete(&batch, internal::SealByLastSeqKey(seal->seal.last_seq()));
    store_->Delete(&batch, internal::ReceiptKey(seal->index));
    return seal->seal.first_seq();
  }

  absl::StatusOr<uint64_t> DropLastSeal() {
    rocksdb::WriteBatch batch;
    DARVOZA_ASSIGN_OR_RETURN(uint64_t first, DropLastSeal(batch));
    DARVOZA_RETURN_IF_ERROR(store_->Write(&batch, true));
    return first;
  }

  // What an attacker who can write the files but not sign seals does to hide a change: drop
  // the seal over it and re-link the records, so the chain alone verifies.
  absl::StatusOr<uint64_t> RewriteTail() {
    rocksdb::WriteBatch batch;
    DARVOZA_ASSIGN_OR_RETURN(uint64_t first, DropLastSeal(batch));
    DARVOZA_ASSIGN_OR_RETURN(uint64_t newest, Newest());
    std::string prev;
    for (uint64_t seq = first; seq <= newest; ++seq) {
      DARVOZA_ASSIGN_OR_RETURN(StoredRecord stored, store_->GetRecord(seq));
      if (seq == first) prev = stored.record.prev_hash();
      stored.record.set_prev_hash(prev);
      stored.record.set_detail(absl::StrCat("rewritten ", seq));
      const std::string bytes = stored.record.SerializeAsString();
      store_->Put(&batch, internal::RecordKey(seq), bytes);
      prev = internal::RecordHash(prev, bytes);
    }
    DARVOZA_RETURN_IF_ERROR(store_->Write(&batch, true));
    return first;
  }

 private:
  explicit Tamper(std::unique_ptr<Store> store) : store_(std::move(store)) {}
  std::unique_ptr<Store> store_;
};

absl::StatusOr<uint64_t> ArchiveDupBody(const std::string& path, uint64_t seq) {
  DARVOZA_ASSIGN_OR_RETURN(v1::AuditArchive archive, ReadArchiveFile(path, nullptr));
  if (seq < archive.first_seq() || seq - archive.first_seq() >=
                                       static_cast<uint64_t>(archive.records_size())) {
    return absl::InvalidArgumentError(absl::StrCat("record ", seq, " is not in the archive"));
  }
  v1::AuditRecord record;
  if (!record.ParseFromString(archive.records(static_cast<int>(seq - archive.first_seq())))) {
    return absl::InvalidArgumentError(absl::StrCat("record ", seq, " does not parse"));
  }
  if (record.body_sha256().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("record ", seq, " has no body"));
  }
  v1::ArchivedBody forged;
  forged.set_sha256(record.body_sha256());
  forged.set_body("a forged body, listed before the genuine one");
  auto* bodies = archive.mutable_bodies();
  bodies->Add(std::move(forged));
  for (int i = bodies->size() - 1; i > 0; --i) bodies->SwapElements(i, i - 1);
  DARVOZA_RETURN_IF_ERROR(WriteArchiveFile(path, archive, nullptr));
  return seq;
}

absl::Status ArchiveTrailing(const std::string& path) {
  DARVOZA_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(path));
  // Appended fields override what protobuf parsed first: here, the range the archive claims.
  v1::AuditArchive extra;
  extra.set_last_seq(1);
  bytes += extra.SerializeAsString();
  return WriteFileAtomically(path, bytes, 0644);
}

int Usage() {
  std::cerr << "usage: audit_tamper DIR flip|garble|delete|cut SEQ | swap A B | append-forged |"
               " rewrite-tail | drop-last-seal\n"
               "       audit_tamper FILE archive-dup-body SEQ | archive-trailing\n";
  return 2;
}

int Report(const absl::StatusOr<uint64_t>& first_bad) {
  if (!first_bad.ok()) {
    std::cerr << "audit_tamper: " << first_bad.status() << "\n";
    return 1;
  }
  std::cout << "first bad record " << *first_bad << "\n";
  return 0;
}

int Main(const std::vector<std::string>& args) {
  if (args.size() < 2) return Usage();
  const std::string& target = args[0];
  const std::string& op = args[1];
  if (op == "archive-trailing") {
    absl::Status s = ArchiveTrailing(target);
    if (!s.ok()) {
      std::cerr << "audit_tamper: " << s << "\n";
      return 1;
    }
    std::cout << "appended bytes to " << target << "\n";
    return 0;
  }
  if (op == "archive-dup-body") {
    uint64_t seq = 0;
    if (args.size() != 3 || !absl::SimpleAtoi(args[2], &seq)) return Usage();
    return Report(ArchiveDupBody(target, seq));
  }
  auto tamper = Tamper::Open(target);
  if (!tamper.ok()) return Report(tamper.status());
  Tamper& t = **tamper;
  auto seq_arg = [&](size_t i) -> absl::StatusOr<uint64_t> {
    if (args.size() <= i) return absl::InvalidArgumentError(op + " needs a record number");
    return t.Seq(args[i]);
  };
  auto with_seq = [&](auto edit) -> absl::StatusOr<uint64_t> {
    DARVOZA_ASSIGN_OR_RETURN(uint64_t seq, seq_arg(2));
    return edit(seq);
  };
  if (op == "flip") return Report(with_seq([&](uint64_t s) { return t.Flip(s); }));
  if (op == "garble") return Report(with_seq([&](uint64_t s) { return t.Garble(s); }));
  if (op == "delete") return Report(with_seq([&](uint64_t s) { return t.Delete(s); }));
  if (op == "cut") return Report(with_seq([&](uint64_t s) { return t.Cut(s); }));
  if (op == "swap") {
    return Report(with_seq([&](uint64_t a) -> absl::StatusOr<uint64_t> {
      DARVOZA_ASSIGN_OR_RETURN(uint64_t b, seq_arg(3));
      return t.Swap(a, b);
    }));
  }
  if (op == "append-forged") return Report(t.AppendForged());
  if (op == "rewrite-tail") return Report(t.RewriteTail());
  if (op == "drop-last-seal") return Report(t.DropLastSeal());
  return Usage();
}

}  // namespace
}  // namespace darvoza::audit

int main(int argc, char** argv) {
  return darvoza::audit::Main(std::vector<std::string>(argv + 1, argv + argc));
}
