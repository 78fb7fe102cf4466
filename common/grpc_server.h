// Building and starting gRPC servers for Darvoza's daemons (docs/design.md §9).
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
//  - Connections cannot exhaust the daemon. Every port closes idle connections and
//    connections that never finish their handshake, bounds streams per connection and the
//    memory gRPC may use for it (ConnectionLimits). gRPC 1.51's own TCP listener stops
//    accepting for good after one accept4() EMFILE, so TCP ports are accepted by our own
//    ConnectionListener (see below) and handed to gRPC as descriptors.
//
//   grpc::ServerBuilder builder;
//   WithoutHealthOrReflection(builder);
//   builder.RegisterService(&service);
//   DARVOZA_ASSIGN_OR_RETURN(StartedServer started,
//                            StartServer(builder, "public", "0.0.0.0:4400", credentials, limits));
//   // keep both started.server and started.listener for the server's lifetime
#ifndef DARVOZA_COMMON_GRPC_SERVER_H_
#define DARVOZA_COMMON_GRPC_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace darvoza {

class TomlConfig;
class ConnectionListener;

// What one listener lets a peer hold. The same keys in both daemons' configuration files
// (docs/configuration.md); the defaults suit a daemon with the default descriptor limit.
struct ConnectionLimits {
  // A connection with no call in flight for this long is closed (GOAWAY, then close).
  // Default: 300 s. Key: idle_connection_timeout_seconds.
  absl::Duration idle_timeout = absl::Seconds(300);
  // A connection that has not finished TLS and the HTTP/2 preface by then is closed.
  // Default: 10 s. Key: handshake_timeout_seconds.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Concurrent streams (calls) one connection may open. Default: 1000: a client's long-lived
  // Watch streams share one connection. Key: max_concurrent_streams.
  int max_concurrent_streams = 1000;
  // Connections one TCP listener keeps open at once; more are accepted and closed at once.
  // Default: 1000. Key: max_connections_per_port.
  int max_connections = 1000;
  // Memory gRPC may use for one listener's connections and calls (grpc::ResourceQuota).
  // Default: 256 MiB. Key: connection_memory_mib.
  int64_t memory_bytes = int64_t{256} << 20;
};

// The configuration keys ReadConnectionLimits reads, for a daemon's list of known keys.
#define DARVOZA_CONNECTION_LIMIT_KEYS                                                  \
  "idle_connection_timeout_seconds", "handshake_timeout_seconds", "max_concurrent_streams", \
      "max_connections_per_port", "connection_memory_mib"

// Reads the keys above from `toml` into *limits, leaving absent ones as they are.
// INVALID_ARGUMENT naming the key for a value out of range.
absl::Status ReadConnectionLimits(const TomlConfig& toml, ConnectionLimits* limits);

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

// Accepts a TCP port's connections itself and hands each descriptor to gRPC
// (ServerBuilder::experimental().AddExternalConnectionAcceptor). Why: after one accept4()
// EMFILE, gRPC 1.51's listener never accepts again while health still says SERVING. This one
// keeps a reserve descriptor: on EMFILE/ENFILE it closes the reserve, accepts the waiting
// connection, closes it (the peer sees the refusal at once instead of hanging in the backlog)
// and reopens the reserve, so the listener keeps going and accepts again as soon as
// descriptors are free. It also caps the connections gRPC holds for this port.
// One thread per listener; the destructor stops it. Not copyable.
class ConnectionListener {
 public:
  ~ConnectionListener();
  ConnectionListener(const ConnectionListener&) = delete;
  ConnectionListener& operator=(const ConnectionListener&) = delete;

  // Binds and listens on "host:port" (no SO_REUSEPORT). UNAVAILABLE naming `what` and the
  // address when the port is in use or the address is not this host's.
  static absl::StatusOr<std::unique_ptr<ConnectionListener>> Listen(absl::string_view what,
                                                                    const std::string& address,
                                                                    int max_connections);
  // Starts accepting, handing each connection to `acceptor`. Call once, after the server
  // that owns `acceptor` has started.
  void Start(std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor);

  int port() const { return port_; }
  // The address the socket is bound to, numeric, as "ip:port" ("[ip6]:port"): "0.0.0.0:41234"
  // for a listen address "0.0.0.0:0", "127.0.0.1:4400" for "localhost:4400".
  const std::string& bound_address() const { return bound_address_; }

 private:
  ConnectionListener(std::string what, int listen_fd, int wake_fd, int port,
                     std::string bound_address, int max_connections);
  void Loop();
  // Whether fewer than max_connections_ handed descriptors are still open in gRPC.
  bool BelowCap();
  // Refuses the connection waiting on a full descriptor table; false when no reserve is left.
  bool ShedWithReserve();

  const std::string what_;
  const int listen_fd_;
  const int wake_fd_;  // an eventfd the destructor writes to stop Loop
  const int port_;
  const std::string bound_address_;
  const size_t max_connections_;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::thread thread_;
  // Only Loop's thread touches these.
  int reserve_fd_ = -1;
  bool logged_exhaustion_ = false;
  bool logged_cap_ = false;
  // Descriptors handed to gRPC, with the socket's inode: gRPC closes them without telling us,
  // and a descriptor number is reused by later sockets, so a handed connection counts as open
  // while its number still names the same socket.
  std::vector<std::pair<int, uint64_t>> handed_;
};

struct StartedServer {
  std::unique_ptr<grpc::Server> server;
  // Accepts the TCP port's connections (null for unix:). Destroy it before `server`.
  std::unique_ptr<ConnectionListener> listener;
  int port = 0;  // the bound TCP port (the one chosen when `address` asked for port 0); 0 for unix:
  // What to report (listen.json, the start line): the listener's bound_address(), or the
  // "unix:PATH" address itself.
  std::string address;
};

// The one way a daemon opens a listener: listens on `address` ("host:port" through a
// ConnectionListener, or "unix:PATH" through gRPC's own listener: a local 0600 socket) with
// `credentials` and `limits`, then builds and starts the server.
// `what` names the listener in the error ("public", "SS-to-SS", ...).
// On failure (the address is in use by any process, or is not this host's): UNAVAILABLE with a
// message naming `what` and `address`, and nothing is left listening.
// REQUIRES: everything else is already set on `builder`; it is not used again.
absl::StatusOr<StartedServer> StartServer(grpc::ServerBuilder& builder, absl::string_view what,
                                          const std::string& address,
                                          std::shared_ptr<grpc::ServerCredentials> credentials,
                                          const ConnectionLimits& limits);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_GRPC_SERVER_H_
