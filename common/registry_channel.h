// The one channel to a registry's public port, for security servers, the CLI and tests.
//
// The public port is trusted through the configuration anchor only: the server's certificate
// must chain to the anchor's root CA (checked by gRPC's TLS handshake) and carry the subject CN
// RegistryTlsCommonName(instance) (checked by our verifier inside the handshake, so an SS
// certificate from the same CA cannot pose as the registry). Host names are not checked: the
// anchor's addresses are often IPs.
//
//   auto channel = MakeRegistryChannel(anchor, "registry.example:4400");
//   auto stub = v1::GlobalConfService::NewStub(channel);
#ifndef DARVOZA_COMMON_REGISTRY_CHANNEL_H_
#define DARVOZA_COMMON_REGISTRY_CHANNEL_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "proto/globalconf.pb.h"

namespace darvoza {

// The largest response a registry client accepts: a federation's signed configuration grows
// with its members and servers, and gRPC's default 4 MiB would cut off a large federation.
inline constexpr int kMaxRegistryResponseBytes = 64 << 20;

// A TLS channel to the public port at `address` (host:port), reconnecting within a second
// after the registry comes back. REQUIRES: GRPC_SSL_CIPHER_SUITES set as common/tls.h says,
// before the first credentials in the process.
std::shared_ptr<grpc::Channel> MakeRegistryChannel(const v1::ConfigurationAnchor& anchor,
                                                   const std::string& address);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_REGISTRY_CHANNEL_H_
