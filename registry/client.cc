#include "registry/client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace darvoza::registry {

std::shared_ptr<grpc::Channel> MakeAdminChannel(const std::string& socket_path) {
  std::string target =
      absl::StartsWith(socket_path, "unix:") ? socket_path : absl::StrCat("unix:", socket_path);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

}  // namespace darvoza::registry
