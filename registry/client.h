// Channels to the registry, for security servers, the CLI and tests: the public port's
// channel is common/registry_channel.h's (one definition for every client); the admin socket's
// is here.
//
//   auto channel = MakeRegistryChannel(anchor, "registry.example:4400");
//   auto stub = v1::GlobalConfService::NewStub(channel);
#ifndef DARVOZA_REGISTRY_CLIENT_H_
#define DARVOZA_REGISTRY_CLIENT_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "common/admin_token.h"
#include "common/registry_channel.h"
#include "proto/globalconf.pb.h"

namespace darvoza::registry {

using ::darvoza::MakeRegistryChannel;  // common/registry_channel.h

// A channel to the admin Unix socket `socket_path` (with or without the "unix:" prefix).
std::shared_ptr<grpc::Channel> MakeAdminChannel(const std::string& socket_path);

using ::darvoza::AddAdminToken;  // common/admin_token.h

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_CLIENT_H_
