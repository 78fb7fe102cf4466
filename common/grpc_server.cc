#include "common/grpc_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <grpc/grpc.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace darvoza {

void NoReflectionOption::UpdatePlugins(
    std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) {
  plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                  return p->name() == "proto_server_reflection";
                                }),
                 plugins->end());
}

void WithoutHealthOrReflection(grpc::ServerBuilder& builder) {
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.SetOption(std::make_unique<NoReflectionOption>());
}

absl::Status RemoveStaleUnixSocket(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();  // nothing there (or unreachable: bind says)
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; remove it or choose another admin_socket"));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", path, " is too long"));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  const bool live = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  if (live) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on the admin socket ", path,
        ": a running process accepts connections on it (another daemon with the same admin_socket?)"));
  }
  unlink(path.c_str());  // a stale socket of a previous run
  return absl::OkStatus();
}

absl::StatusOr<StartedServer> StartServer(grpc::ServerBuilder& builder, absl::string_view what,
                                          const std::string& address,
                                          std::shared_ptr<grpc::ServerCredentials> credentials) {
  // Without this a bind to a port another process listens on succeeds, and the kernel splits
  // the connections between the two processes.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  StartedServer started;
  builder.AddListeningPort(address, std::move(credentials), &started.port);
  started.server = builder.BuildAndStart();
  const bool is_unix = absl::StartsWith(address, "unix:");
  if (started.server == nullptr || (!is_unix && started.port == 0)) {
    if (started.server != nullptr) started.server->Shutdown();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on the ", what, " address ", address,
                     ": the port is in use (by another process, or another listener of this "
                     "one) or the address is not one of this host's"));
  }
  if (is_unix) started.port = 0;
  return started;
}

}  // namespace darvoza
