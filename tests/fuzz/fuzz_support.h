// Helpers shared by fuzz targets that check properties, not only the absence of crashes.
#ifndef DARVOZA_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define DARVOZA_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <cstdlib>

#include "google/protobuf/stubs/logging.h"

namespace darvoza::fuzz {

// A property that must hold: aborting is how libFuzzer (and the corpus replay) report it.
inline void Require(bool condition) {
  if (!condition) std::abort();
}

// Protobuf logs every string field that is not UTF-8; targets that feed it such bytes on
// purpose call this once, or the log line per input slows the fuzzer several times.
inline bool QuietProtobufLog() {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}

}  // namespace darvoza::fuzz

#endif  // DARVOZA_TESTS_FUZZ_FUZZ_SUPPORT_H_
