// Fuzz target for decoding stored audit records: the bytes under a record key, as the store,
// the index, the verifier and the exporter read them.
//
// Properties checked on every input, beyond "does not crash":
//  - a record that parses serializes to bytes that parse again (a record the log accepted can
//    always be read back, whatever its text fields hold);
//  - the record's hash is 32 bytes and its index keys each start with their kind's letter;
//  - verifying the record as a one-record archive names record 1 (or the record's own seq)
//    whenever it is refused.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "audit/archive.h"
#include "audit/internal/store.h"
#include "proto/audit.pb.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using darvoza::fuzz::Require;

[[maybe_unused]] const bool kQuietProtobuf = darvoza::fuzz::QuietProtobufLog();

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace audit = darvoza::audit;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  darvoza::v1::AuditRecord record;
  const bool parses = record.ParseFromArray(data, static_cast<int>(size));

  darvoza::v1::AuditArchive archive;
  archive.set_first_seq(1);
  archive.set_last_seq(1);
  archive.set_start_prev_hash(audit::internal::ZeroHash());
  archive.add_records(std::string(bytes));
  audit::VerifyOptions options;
  options.allow_unwitnessed_seals = true;
  const audit::VerifyReport report = audit::VerifyArchive(archive, options);
  (void)report.ToText();
  (void)report.ToJson();
  if (!parses) {
    Require(!report.ok);
    Require(report.bad_seq == 1);
    return 0;
  }
  if (!report.ok) Require(report.bad_seq == 1 || report.bad_seq == record.seq());

  std::string again;
  Require(record.SerializeToString(&again));
  darvoza::v1::AuditRecord reparsed;
  Require(reparsed.ParseFromString(again));
  Require(audit::internal::RecordHash(record.prev_hash(), bytes).size() == 32);
  for (const std::string& key : audit::internal::IndexKeys(record)) {
    Require(!key.empty());
    Require(key[0] == 'm' || key[0] == 'k' || key[0] == 'v' || key[0] == 'x' || key[0] == 't');
  }
  return 0;
}
