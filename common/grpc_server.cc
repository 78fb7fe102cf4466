#include "common/grpc_server.h"

#include <algorithm>

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
