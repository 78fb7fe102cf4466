// `darvoza audit ...` end to end: the real binary on a sealed, witnessed log, as an auditor
// would run it (docs/auditor.md).
#include <rocksdb/db.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "audit/internal/store.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_support.h"

namespace darvoza::audit {
namespace {

using darvoza::testing::WriteFileForTest;
using testing::LogFixture;
using testing::MakeRequest;

struct Run {
  int exit_code;
  std::string output;  // stdout and stderr
};

Run Darvoza(const std::string& args) {
  const std::string command = absl::StrCat(DARVOZA_CLI, " ", args, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  return Run{WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_CASE("darvoza audit: show, find, export, verify, prove, check-proof, purge", "[audit][cli]") {
  LogFixture f;
  {
    auto log = AuditLog::Open(f.Options());
    REQUIRE(log.ok());
    for (uint64_t i = 1; i <= 30; ++i) {
      REQUIRE((*log)->AppendAndWait(MakeRequest(i, absl::StrCat("body ", i))).ok());
      f.clock.Advance(absl::Minutes(1));
    }
    REQUIRE((*log)->SealNow().ok());
    REQUIRE((*log)->WitnessNow().ok());
  }
  const std::string d = f.dir;
  WriteFileForTest(d + "/anchor.pb", f.pki.anchor.SerializeAsString());
  WriteFileForTest(d + "/gc.signed", f.pki.SignedGlobalConfBlob());
  const std::string db = f.path;

  Run show = Darvoza(absl::StrCat("audit show --db ", db, " 7"));
  INFO(show.output);
  CHECK(show.exit_code == 0);
  CHECK(absl::StrContains(show.output, "message id   msg-7"));
  CHECK(Darvoza(absl::StrCat("audit show --db ", db, " --message-id msg-9 --json")).output.find(
            "\"seq\":9") != std::string::npos);
  CHECK(Darvoza(absl::StrCat("audit show --db ", db, " 99")).exit_code == 1);
  CHECK(Darvoza(absl::StrCat("audit show --db ", db)).exit_code == 2);

  Run find = Darvoza(absl::StrCat("audit find --db ", db,
                                  " --client UZ/GOV/70000003/client-app"));
  INFO(find.output);
  CHECK(find.exit_code == 0);
  CHECK(absl::StrContains(find.output, "4 record(s)"));  // 3, 10, 17, 24

  Run verify = Darvoza(absl::StrCat("audit verify ", db, " --anchor ", d, "/anchor.pb"));
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK(absl::StartsWith(verify.output, "OK: records 1..30 (30 records, 30 bodies), 3 seals"));

  Run key = Darvoza(absl::StrCat("audit auditor-key --out ", d, "/aud.key --public ", d,
                                 "/aud.pub"));
  CHECK(key.exit_code == 0);
  Run exported = Darvoza(absl::StrCat("audit export --db ", db, " --out ", d,
                                      "/a.dvza --encrypt-to ", d, "/aud.pub --global-conf ", d,
                                      "/gc.signed"));
  INFO(exported.output);
  CHECK(exported.exit_code == 0);
  CHECK(Darvoza(absl::StrCat("audit verify ", d, "/a.dvza --anchor ", d, "/anchor.pb"))
            .exit_code == 1);  // encrypted: needs the key
  Run archived = Darvoza(absl::StrCat("audit verify ", d, "/a.dvza --anchor ", d,
                                      "/anchor.pb --key ", d, "/aud.key --json"));
  INFO(archived.output);
  CHECK(archived.exit_code == 0);
  CHECK(absl::StrContains(archived.output, "\"ok\":true"));

  Run prove = Darvoza(absl::StrCat("audit prove --db ", db, " --message-id msg-12 --out ", d,
                                   "/p.proof --global-conf ", d, "/gc.signed"));
  INFO(prove.output);
  CHECK(prove.exit_code == 0);
  Run check = Darvoza(absl::StrCat("audit check-proof ", d, "/p.proof --anchor ", d,
                                   "/anchor.pb"));
  INFO(check.output);
  CHECK(check.exit_code == 0);
  CHECK(absl::StrContains(check.output, "OK: record 12"));

  Run purge = Darvoza(absl::StrCat("audit purge --db ", db, " --archive ", d, "/a.dvza --key ",
                                   d, "/aud.key --anchor ", d, "/anchor.pb --older-than 1d"));
  INFO(purge.output);
  CHECK(purge.exit_code == 0);
  CHECK(absl::StrContains(purge.output, "purged records through seq 30"));
  CHECK(Darvoza(absl::StrCat("audit show --db ", db, " 7")).exit_code == 1);

  // Tampering makes verify fail with the record named.
  {
    auto log = AuditLog::Open(f.Options());
    REQUIRE(log.ok());
    for (uint64_t i = 31; i <= 40; ++i) REQUIRE((*log)->AppendAndWait(MakeRequest(i)).ok());
    REQUIRE((*log)->SealNow().ok());
    REQUIRE((*log)->WitnessNow().ok());
  }
  {
    REQUIRE(testing::DeleteRaw(db, internal::RecordKey(35)).ok());
  }
  Run bad = Darvoza(absl::StrCat("audit verify ", db, " --anchor ", d, "/anchor.pb"));
  INFO(bad.output);
  CHECK(bad.exit_code == 1);
  CHECK(absl::StartsWith(bad.output, "FAILED at record 35: record 35: missing"));
}

}  // namespace
}  // namespace darvoza::audit
