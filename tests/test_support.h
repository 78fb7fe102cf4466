// Shared helpers for Darvoza's tests: temporary directories that clean up after themselves.
#ifndef DARVOZA_TESTS_TEST_SUPPORT_H_
#define DARVOZA_TESTS_TEST_SUPPORT_H_

#include <string>

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

}  // namespace darvoza::testing

#endif  // DARVOZA_TESTS_TEST_SUPPORT_H_
