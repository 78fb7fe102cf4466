#include "tools/cli/cli_util.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/faults.h"

namespace darvoza::cli {

int PrintFailure(const absl::Status& status, absl::string_view unreachable_hint) {
  std::string text = absl::StrCat("error: ", status.message());
  const std::string fault = FaultCode(status);
  if (!fault.empty()) absl::StrAppend(&text, " [", fault, "]");
  std::cerr << text << "\n";
  if (status.code() == absl::StatusCode::kUnavailable && !unreachable_hint.empty()) {
    std::cerr << "hint: " << unreachable_hint << "\n";
  }
  return 1;
}

absl::StatusOr<std::shared_ptr<const crypto::Certificate>> LoadClientCertificate(
    const std::string& path, absl::Time now) {
  auto cert = crypto::Certificate::LoadFromFile(path);
  if (!cert.ok()) {
    return absl::Status(cert.status().code(),
                        absl::StrCat(path, ": not a readable X.509 certificate (PEM or DER): ",
                                     cert.status().message()));
  }
  auto when = [](absl::Time t) {
    return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
  };
  if ((*cert)->not_after() <= now) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the certificate expired at ", when((*cert)->not_after()),
        "; the information system needs a current one"));
  }
  if ((*cert)->not_before() > now) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the certificate is not valid before ", when((*cert)->not_before())));
  }
  return cert;
}

}  // namespace darvoza::cli
