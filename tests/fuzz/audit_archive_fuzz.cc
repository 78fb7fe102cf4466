// Fuzz target for reading audit archives (audit/archive.h): ParseArchive, then VerifyArchive in
// strict and lenient mode. An auditor runs these on files from anywhere.
//
// Properties checked on every input, beyond "does not crash":
//  - an accepted archive serializes back to as many bytes as were read (nothing appended or
//    repeated can hide behind a parse that protobuf accepts), and re-reads to the same bytes;
//  - a verdict that is not OK names a reason, and a bad record inside the archive's range;
//  - strict mode never accepts what lenient mode refuses.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "audit/archive.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using darvoza::fuzz::Require;

[[maybe_unused]] const bool kQuietProtobuf = darvoza::fuzz::QuietProtobufLog();

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using darvoza::audit::ParseArchive;
  using darvoza::audit::VerifyArchive;
  using darvoza::audit::VerifyOptions;
  using darvoza::audit::VerifyReport;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto archive = ParseArchive(bytes, nullptr);
  if (!archive.ok()) return 0;
  Require(bytes.substr(0, darvoza::audit::kArchiveMagic.size()) ==
          darvoza::audit::kArchiveMagic);
  // What the reader accepted is exactly what it would write again: re-reading the archive's
  // own serialization gives the same size and the same bytes once more.
  std::string again(darvoza::audit::kArchiveMagic);
  Require(archive->AppendToString(&again));
  Require(again.size() == bytes.size());
  auto reread = ParseArchive(again, nullptr);
  Require(reread.ok());
  std::string third(darvoza::audit::kArchiveMagic);
  Require(reread->AppendToString(&third));
  Require(third == again);

  // No trust: every seal fails its signature check, but records, links, bodies, Merkle roots and
  // the seal bookkeeping are all read first.
  VerifyOptions strict;
  VerifyOptions lenient;
  lenient.allow_unwitnessed_seals = true;
  const VerifyReport s = VerifyArchive(*archive, strict);
  const VerifyReport l = VerifyArchive(*archive, lenient);
  for (const VerifyReport* r : {&s, &l}) {
    (void)r->ToText();
    (void)r->ToJson();
    if (!r->ok) Require(!r->reason.empty());
  }
  if (!l.ok) Require(!s.ok);
  return 0;
}
