// RegistryServer: the darvoza-registry daemon as a library — the Registry behind its three
// ports (docs/design.md §9), each its own grpc::Server with only its own services:
//   public  TLS (server-auth, certificate from the instance root CA): Registration,
//           GlobalConfService (Get, Watch), Witness
//   admin   Unix socket (mode 0600, in the 0700 data directory) + admin token: RegistryAdmin,
//           and server reflection (so grpcurl works)
//   ops     plaintext, read-only: gRPC health and RegistryOps.Metrics (optional)
//   metrics plain HTTP/1.1, read-only: GET /metrics, the same text (optional)
// Once all are serving it writes <data dir>/listen.json:
//   {"public": "127.0.0.1:40123", "admin": "unix:/tmp/x/admin.sock", "ops": "127.0.0.1:40124",
//    "metrics": "127.0.0.1:40125"}
// A background thread re-signs the configuration before it expires.
//
// Start/Shutdown from one thread; everything else is driven by gRPC.
//
//   DARVOZA_ASSIGN_OR_RETURN(auto server, RegistryServer::Start(config, Clock::Real()));
//   ...
//   server->Shutdown();
#ifndef DARVOZA_REGISTRY_SERVER_H_
#define DARVOZA_REGISTRY_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "registry/config.h"

namespace grpc {
class Server;
}

namespace darvoza {
class HttpServer;
}  // namespace darvoza

namespace darvoza::registry {

class Registry;
class ConfPublisher;
class DecisionWaiters;
class RegistrationServiceImpl;
class GlobalConfServiceImpl;
class WitnessServiceImpl;
class AdminServiceImpl;
class OpsServiceImpl;

struct ListenAddresses {
  std::string public_address;  // host:port
  std::string admin_address;   // unix:/path
  std::string ops_address;     // host:port, or "" when off
  std::string metrics_address;  // host:port of GET /metrics, or "" when off
};

// Reads <data dir>/listen.json. NOT_FOUND until the daemon is serving.
absl::StatusOr<ListenAddresses> ReadListenFile(const std::string& data_dir);

class RegistryServer {
 public:
  // Opens the registry in config.data_dir and starts serving. `clock` is not owned and must
  // outlive the server (Clock::Real() in the daemon). Logs a loud warning when auto_approve.
  // UNAVAILABLE when a port cannot be bound.
  static absl::StatusOr<std::unique_ptr<RegistryServer>> Start(const RegistryConfig& config,
                                                               Clock* clock);
  ~RegistryServer();  // Shuts down if still running.
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  // Ends Watch streams, stops the servers (waiting up to 5 s for calls in flight) and closes
  // the store. Idempotent.
  void Shutdown();

  const ListenAddresses& addresses() const { return addresses_; }
  // For in-process tests: the registry behind the services.
  Registry* registry() { return registry_.get(); }

 private:
  RegistryServer(const RegistryConfig& config, Clock* clock);
  absl::Status StartServers();
  void RefreshLoop();

  const RegistryConfig config_;
  Clock* const clock_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<ConfPublisher> publisher_;
  std::unique_ptr<DecisionWaiters> waiters_;
  std::unique_ptr<RegistrationServiceImpl> registration_service_;
  std::unique_ptr<GlobalConfServiceImpl> conf_service_;
  std::unique_ptr<WitnessServiceImpl> witness_service_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<OpsServiceImpl> ops_service_;
  std::unique_ptr<grpc::Server> public_server_;
  std::unique_ptr<grpc::Server> admin_server_;
  std::unique_ptr<grpc::Server> ops_server_;
  std::unique_ptr<HttpServer> metrics_server_;
  std::unique_ptr<ConnectionListener> public_listener_;
  std::unique_ptr<ConnectionListener> ops_listener_;
  ListenAddresses addresses_;
  std::thread refresher_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ = false;
  // Whether this server wrote listen.json: a start refused (e.g. by another registry's database
  // lock on the same data directory) must not remove the running one's.
  bool wrote_listen_file_ = false;
};

}  // namespace darvoza::registry

#endif  // DARVOZA_REGISTRY_SERVER_H_
