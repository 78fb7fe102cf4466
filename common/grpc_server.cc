#include "common/grpc_server.h"

#include <algorithm>

#include <grpcpp/ext/health_check_service_server_builder_option.h>

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

}  // namespace darvoza
