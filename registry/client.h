// Channels to the registry, for security servers, the CLI and tests.
//
// The public port is trusted through the configuration anchor only: the server's certificate
// must chain to the anchor's root CA (checked by gRPC's TLS handshake) and carry the subject CN
// RegistryTlsCommonName(instance) (checked by our verifier inside the handshake, so an SS
// certificate from the same CA cannot pose as the registry). Host names are not checked: the
// anchor's addresses are often IPs.
//
//   auto channel = MakeRegistryChannel(anchor, "registry.example:4400");
//   auto stub = v1::GlobalConfService::NewStub(channel);
#ifndef DARVOZA_REGISTRY_CLIENT_H_
#define DARVOZA_REGISTRY_CLIENT_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "proto/globalconf.pb.h"

namespace darvoza::registry {

// A TLS channel to the public port at `address` (host:port). REQUIRES: GRPC_SSL_CIPHER_SUITES
// set as DESIGN.md §4 says, before the first credentials in the process.
std::shared_ptr<grpc::Channel> MakeRegistryChannel(const v1::ConfigurationAnchor& anchor,
                                                   const std::string& address);

// A channel to the admin Unix socket `socket_path` (with or without the "unix:" prefix).
std::shared_ptr<grpc::Channel> MakeAdminChannel(const std::string& socket_path);

// Adds the admin token to a call on the admin channel.
void AddAdminToken(grpc::ClientContext* context, const std::string& token);

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_CLIENT_H_
