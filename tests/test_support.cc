#include "tests/test_support.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/check.h"

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

}  // namespace darvoza::testing
