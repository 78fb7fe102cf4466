// The main() of every Catch2 test executable. It sets what each test process needs before
// anything else runs, so a test behaves the same under CTest, by hand, or in a debugger
// (CTest's per-test ENVIRONMENT does not survive catch_discover_tests' list handling).
#define CATCH_CONFIG_RUNNER
#include <stdlib.h>

#include <catch2/catch.hpp>

#include "common/tls.h"
#include "tests/test_support.h"

namespace {

// Marks each test case that starts, so the fault-coverage check can tell a full run from a
// subset (tests/test_support.h).
class RanRecorder final : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    darvoza::testing::RecordTestCaseRan(info.name);
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(RanRecorder)

// Read by the sanitizer runtimes at start-up, before main(). The leak suppressions list
// third-party frames only (tests/lsan.supp says why for each).
extern "C" const char* __asan_default_options() { return "quarantine_size_mb=4:detect_leaks=1"; }
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }
extern "C" const char* __lsan_default_options() {
  return "suppressions=" DARVOZA_LSAN_SUPPRESSIONS ":print_suppressions=0";
}

int main(int argc, char** argv) {
  darvoza::SetUpTlsForProcess();  // first thing (common/tls.h)
  setenv("DARVOZA_BUILD_DIR", DARVOZA_BUILD_DIR_DEFAULT, 0);
  setenv("DARVOZA_SOURCE_DIR", DARVOZA_SOURCE_DIR_DEFAULT, 0);
  return Catch::Session().run(argc, argv);
}
