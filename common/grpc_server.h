// Building and starting gRPC servers for Darvoza's daemons (DESIGN.md §9).
//
// Two things every listener of the registry and the security server must get right, and so
// get in one place:
//  - A port in use is an error. gRPC sets SO_REUSEPORT on its listening sockets by default,
//    so a second daemon configured with a port in use would start and take a share of the
//    first one's connections. StartServer() turns SO_REUSEPORT off and fails naming the port.
//  - A port carries only its own services. gRPC adds the health service to every server of a
//    process once one enables it, and merely linking grpc++_reflection adds reflection to
//    every server built. Ports such as the SS-to-SS and client ports must carry neither, so
//    that health and reflection are never confused with pass-through calls.
//
//   grpc::ServerBuilder builder;
//   WithoutHealthOrReflection(builder);
//   builder.RegisterService(&service);
//   DARVOZA_ASSIGN_OR_RETURN(StartedServer started,
//                            StartServer(builder, "public", "0.0.0.0:4400", credentials));
#ifndef DARVOZA_COMMON_GRPC_SERVER_H_
#define DARVOZA_COMMON_GRPC_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace darvoza {

// Removes the reflection plugin from the server being built.
class NoReflectionOption final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override;
};

// `builder` will carry no health service and no reflection: only what is registered on it.
void WithoutHealthOrReflection(grpc::ServerBuilder& builder);

// Before listening on the Unix socket `path`: removes a stale socket file a previous run left,
// so that bind succeeds. UNAVAILABLE naming the path when a process still accepts connections
// on it: removing its socket file would silently take its admin port over (the database lock
// does not exclude two daemons configured with one admin_socket). OK when nothing is there.
absl::Status RemoveStaleUnixSocket(const std::string& path);

struct StartedServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound TCP port (the one chosen when `address` asked for port 0); 0 for unix:
};

// The one way a daemon opens a listener: adds `address` ("host:port" or "unix:PATH") with
// `credentials` to `builder` with SO_REUSEPORT off, then builds and starts the server.
// `what` names the listener in the error ("public", "SS-to-SS", ...).
// On failure (the address is in use by any process, or is not this host's): UNAVAILABLE with a
// message naming `what` and `address`, and nothing is left listening.
// REQUIRES: everything else is already set on `builder`; it is not used again.
absl::StatusOr<StartedServer> StartServer(grpc::ServerBuilder& builder, absl::string_view what,
                                          const std::string& address,
                                          std::shared_ptr<grpc::ServerCredentials> credentials);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_GRPC_SERVER_H_
