// Shared helpers for Darvoza's tests: temporary directories that clean up after themselves,
// and the record behind the fault-coverage check.
//
// Fault coverage: every fault code a test reads goes through ObservedFault, which records it
// in <build dir>/fault-coverage/ (one file per test process), and every Catch2 test case
// records that it ran. The CTest entry `faults.coverage` (tests/fault_coverage.sh) fails when a
// code of common/faults.h other than Server.InternalError was never observed, and skips when
// not every test case ran in the same ctest invocation.
//
//   CHECK(ObservedFault(status) == faults::kInvalidRequest);
//   CHECK(ObservedFault(ctx.GetServerTrailingMetadata()) == "Client.NotAuthorized");
#ifndef DARVOZA_TESTS_TEST_SUPPORT_H_
#define DARVOZA_TESTS_TEST_SUPPORT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace darvoza::testing {

// A fresh directory under /tmp (short, so Unix socket paths fit in 107 bytes), mode 0700,
// removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string File(const std::string& name) const;

 private:
  std::string path_;
};

// Reads a whole file; empty string when missing.
std::string ReadFileForTest(const std::string& path);
// Writes a whole file (mode 0600).
void WriteFileForTest(const std::string& path, const std::string& contents);

// Records `fault` (when not empty) for the fault-coverage check and returns it. The one place
// that writes observed faults; thread-safe.
std::string RecordObservedFault(absl::string_view fault);
// Records that the Catch2 test case `name` ran in this process (called by tests/test_main.cc).
void RecordTestCaseRan(absl::string_view name);

// The fault code carried by `status` (FaultCode), recorded.
std::string ObservedFault(const absl::Status& status);

// The fault code of a finished call: its `x-road-error` trailer ("" when none), recorded.
// `trailers` is a multimap of gRPC's string_ref (ClientContext::GetServerTrailingMetadata())
// or of std::string.
template <typename Trailers>
std::string ObservedFault(const Trailers& trailers) {
  auto it = trailers.find("x-road-error");
  if (it == trailers.end()) return "";
  return RecordObservedFault(absl::string_view(it->second.data(), it->second.size()));
}

}  // namespace darvoza::testing

#endif  // DARVOZA_TESTS_TEST_SUPPORT_H_
