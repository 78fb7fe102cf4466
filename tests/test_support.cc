#include "tests/test_support.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/check.h"
#include "common/faults.h"

namespace darvoza::testing {

TempDir::TempDir() {
  char templ[] = "/tmp/dvz-XXXXXX";
  char* made = mkdtemp(templ);
  DARVOZA_CHECK(made != nullptr) << "mkdtemp failed";
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::File(const std::string& name) const { return path_ + "/" + name; }

std::string ReadFileForTest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFileForTest(const std::string& path, const std::string& contents) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << contents;
  }
  chmod(path.c_str(), 0600);
}

namespace {

// Appends "<kind>\t<value>\n" to this process's file under <build dir>/fault-coverage/. One
// file per process, so parallel test processes never interleave; one write per line under a
// mutex, so threads of one process do not either. Outside the build tree (no
// DARVOZA_BUILD_DIR) nothing is recorded.
void AppendCoverageRecord(absl::string_view kind, absl::string_view value) {
  static absl::Mutex mu(absl::kConstInit);
  const char* build_dir = getenv("DARVOZA_BUILD_DIR");
  if (build_dir == nullptr || *build_dir == '\0') return;
  // A value that came from a server may hold any byte; the record stays one line.
  std::string line = absl::StrCat(kind, "\t");
  for (char c : value) line.push_back(absl::ascii_isprint(static_cast<unsigned char>(c)) ? c : '?');
  line.push_back('\n');
  const std::string dir = absl::StrCat(build_dir, "/fault-coverage");
  absl::MutexLock lock(&mu);
  mkdir(dir.c_str(), 0755);  // EEXIST is the usual case
  const std::string path = absl::StrCat(dir, "/", getpid(), ".txt");
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  DARVOZA_CHECK(fd >= 0) << "cannot open " << path;
  DARVOZA_CHECK(write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()))
      << "short write to " << path;
  close(fd);
}

}  // namespace

std::string RecordObservedFault(absl::string_view fault) {
  if (!fault.empty()) AppendCoverageRecord("fault", fault);
  return std::string(fault);
}

void RecordTestCaseRan(absl::string_view name) { AppendCoverageRecord("ran", name); }

std::string ObservedFault(const absl::Status& status) {
  return RecordObservedFault(FaultCode(status));
}

}  // namespace darvoza::testing
