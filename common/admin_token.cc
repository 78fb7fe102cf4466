#include "common/admin_token.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/faults.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace darvoza {

absl::StatusOr<std::string> ReadAdminToken(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("admin token ", path, " is missing"));
    return absl::InvalidArgumentError(
        absl::StrCat("cannot look at admin token ", path, ": ", strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("admin token ", path, " is readable by others; chmod 600 it"));
  }
  DARVOZA_ASSIGN_OR_RETURN(std::string token, ReadWholeFile(path));
  std::string stripped(absl::StripAsciiWhitespace(token));
  if (stripped.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("admin token ", path, " is empty"));
  }
  return stripped;
}

absl::Status CheckAdminToken(const grpc::ServerContextBase& context, const std::string& expected) {
  const auto& md = context.client_metadata();
  auto it = md.find(kAdminTokenMetadata);
  if (it == md.end()) {
    return Fault(absl::StatusCode::kUnauthenticated, faults::kNotAuthorized,
                 "admin calls need the admin token (x-darvoza-admin-token; darvoza reads it "
                 "from <data dir>/admin.token)");
  }
  const grpc::string_ref& given = it->second;
  if (expected.empty() || given.size() != expected.size() ||
      CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0) {
    return Fault(absl::StatusCode::kUnauthenticated, faults::kNotAuthorized,
                 "the admin token (x-darvoza-admin-token) is wrong");
  }
  return absl::OkStatus();
}

void AddAdminToken(grpc::ClientContext* context, const std::string& token) {
  context->AddMetadata(kAdminTokenMetadata, token);
}

}  // namespace darvoza
