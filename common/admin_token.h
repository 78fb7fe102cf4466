// The admin token: the credential every call on the registry's and the security server's
// admin Unix socket carries (besides the socket's 0600 mode), in one place for both daemons
// and the CLI: where it travels, how its file is read, and how a call is checked.
//
//   DARVOZA_ASSIGN_OR_RETURN(std::string token, ReadAdminToken(data_dir + "/admin.token"));
//   ...
//   DARVOZA_RETURN_IF_ERROR(CheckAdminToken(*context, token));   // in each admin handler
#ifndef DARVOZA_COMMON_ADMIN_TOKEN_H_
#define DARVOZA_COMMON_ADMIN_TOKEN_H_

#include <string>

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace darvoza {

// The metadata key that carries the admin token.
inline constexpr char kAdminTokenMetadata[] = "x-darvoza-admin-token";

// The token in the file at `path`, surrounding whitespace removed. NOT_FOUND when missing;
// PERMISSION_DENIED when group or others may read it (chmod 600); INVALID_ARGUMENT when it is
// empty or the path cannot be looked at (too long, a symbolic link loop); each naming the path.
absl::StatusOr<std::string> ReadAdminToken(const std::string& path);

// OK when the call carries `expected` (compared in constant time). Otherwise
// UNAUTHENTICATED + Client.NotAuthorized, whether the token is missing or wrong: neither
// caller has shown who it is. An empty `expected` matches nothing.
absl::Status CheckAdminToken(const grpc::ServerContextBase& context, const std::string& expected);

// Adds the admin token to a call on an admin socket.
void AddAdminToken(grpc::ClientContext* context, const std::string& token);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_ADMIN_TOKEN_H_
