// Building gRPC servers that carry only their own services (DESIGN.md §9).
//
// gRPC adds the health service to every server of a process once one enables it, and merely
// linking grpc++_reflection adds reflection to every server built. Ports such as the SS-to-SS
// and client ports must carry neither, so that health and reflection are never confused with
// pass-through calls.
//
//   grpc::ServerBuilder builder;
//   WithoutHealthOrReflection(builder);
//   builder.RegisterService(&service);
#ifndef DARVOZA_COMMON_GRPC_SERVER_H_
#define DARVOZA_COMMON_GRPC_SERVER_H_

#include <memory>
#include <vector>

#include <grpcpp/server_builder.h>

namespace darvoza {

// Removes the reflection plugin from the server being built.
class NoReflectionOption final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override;
};

// `builder` will carry no health service and no reflection: only what is registered on it.
void WithoutHealthOrReflection(grpc::ServerBuilder& builder);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_GRPC_SERVER_H_
