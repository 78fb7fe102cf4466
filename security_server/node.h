// Node: the darvoza-ss daemon as a library (docs/design.md §9). It opens the keys, the
// local state, the audit log and the global configuration client of one security server
// (set up by `ss init` and `ss register`), creates the exchange, and serves each
// port as its own grpc::Server with only its own services:
//   ss          SS↔SS mutual TLS; the peer is checked in the handshake against the global
//               configuration (peer_check.h); the exchange's SS↔SS service
//   client      plaintext, loopback only: the exchange's generic pass-through service only
//   client_tls  mutual TLS (IS pins checked per call): the same generic service only
//   rest        plaintext HTTP/1.1, loopback only: the REST client interface (PR-REST)
//   rest_tls    HTTP/1.1 over TLS 1.3 with the client TLS port's key and certificate (IS pins
//               checked per request): the same REST client interface
//   admin       Unix socket 0600 + admin token: SecurityServerAdmin, server reflection
//   ops         no client authentication, read only: gRPC health (NOT_SERVING for the
//               reasons NotServingReasons() gives) and SecurityServerOps.Metrics
//   metrics     plain HTTP/1.1, no client authentication, read only: GET /metrics
// Once serving it writes the bound addresses to <data dir>/listen.json:
//   {"ss": "...", "client": "...", "client_tls": "...", "rest": "...", "rest_tls": "...",
//    "admin": "unix:...", "ops": "...", "metrics": "..."}
// It renews certificates before they expire (renewal.h) and switches the TLS identity over
// without a restart once a configuration lists the new fingerprint.
//
// Start/Shutdown from one thread; everything else is driven by gRPC and background threads.
//
//   DARVOZA_ASSIGN_OR_RETURN(SsConfig config, LoadSsConfig(path));
//   DARVOZA_ASSIGN_OR_RETURN(auto node, Node::Start(config, Clock::Real()));
//   ...
//   node->Shutdown();
#ifndef DARVOZA_SECURITY_SERVER_NODE_H_
#define DARVOZA_SECURITY_SERVER_NODE_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "proto/security_server.pb.h"
#include "security_server/config.h"
#include "security_server/node_services.h"

namespace grpc {
class Server;
class HealthCheckServiceInterface;
}  // namespace grpc

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace darvoza::ss {

class AdminRecorder;
class AdminServiceImpl;
class OpsServiceImpl;
class RegistryClient;
class RegistryWitness;
class Renewer;
class StateStore;

struct NodeAddresses {
  std::string ss;          // host:port
  std::string client;      // host:port, "" when off
  std::string client_tls;  // host:port, "" when off
  std::string rest;        // host:port, "" when off
  std::string rest_tls;    // host:port, "" when off
  std::string admin;       // unix:/path
  std::string ops;         // host:port, "" when off
  std::string metrics;     // host:port of GET /metrics, "" when off
};

// Reads <data dir>/listen.json. NOT_FOUND until the daemon is serving.
absl::StatusOr<NodeAddresses> ReadListenFile(const std::string& data_dir);

class Node {
 public:
  // Opens everything in config.data_dir and starts serving. `clock` is not owned and must
  // outlive the node. FAILED_PRECONDITION when the SS is not initialised or has no auth
  // certificate yet (run `ss register`); UNAVAILABLE when a port cannot be bound;
  // INVALID_ARGUMENT when client_listen is not a loopback address.
  static absl::StatusOr<std::unique_ptr<Node>> Start(const SsConfig& config, Clock* clock);
  // Start, with the audit log on `audit_env` (not owned; outlives the node) to inject faults.
  static absl::StatusOr<std::unique_ptr<Node>> StartForTest(const SsConfig& config, Clock* clock,
                                                            rocksdb::Env* audit_env);
  ~Node();  // Shuts down if still running.
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Stops the exchange, the servers (waiting up to 5 s for calls in flight), the background
  // threads, and closes the stores. Idempotent.
  void Shutdown();

  const NodeAddresses& addresses() const { return addresses_; }
  // What the exchange got. Valid until Shutdown.
  const NodeServices& services() const { return services_; }

  // The status report of `darvoza ss status`.
  v1::StatusReport Status();
  // Maintenance mode: the ops port's health answers NOT_SERVING.
  void SetMaintenance(bool on);

  // Why the ops port's health is NOT_SERVING now; empty when SERVING. Each entry starts with
  // its key: "no_configuration", "configuration_expired", "audit_log_cannot_write" (damaged
  // at open, or the last write failed, until a write succeeds), "maintenance"; then ": " and
  // the detail. The health service follows within kHealthRecheck, and at once on maintenance
  // changes and new configurations.
  std::vector<std::string> NotServingReasons();
  static constexpr absl::Duration kHealthRecheck = absl::Seconds(1);

  // SIGHUP: re-reads <data dir>/anchor.bin (e.g. after the registry moved and the operator
  // installed its new anchor) and logs one line saying what it read and which registry
  // addresses are used now. The error, logged, and nothing changes when the file is unreadable,
  // for another instance, or does not verify the configuration held now.
  absl::Status ReloadAnchor();

  // One renewal step now (renewal.h), instead of waiting for the check interval: tests move
  // a SimulatedClock and call this.
  absl::Status CheckRenewalForTest();

 private:
  Node(const SsConfig& config, Clock* clock);
  absl::Status Open();
  absl::Status StartServers();
  absl::Status WriteListenFile();
  // Which registry addresses are dialled and why: ss.toml's registry_addresses override the
  // anchor's. For the start line, SIGHUP's line and the status report.
  std::string RegistryChoice() const;
  void RenewalLoop();
  // Sets the ops port's health and the darvoza_ss_serving gauges from NotServingReasons().
  void RefreshHealth();
  void HealthLoop();
  // The audit part of the status report, and its warnings.
  void FillAuditStatus(v1::StatusReport& report);

  const SsConfig config_;
  Clock* const clock_;
  v1::SecurityServerId self_;

  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<LocalState> state_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<RegistryClient> registry_;
  std::unique_ptr<RegistryWitness> witness_;
  std::unique_ptr<GlobalConfClient> conf_;
  std::shared_ptr<crypto::Signer> seal_signer_;  // what the audit log seals with
  std::string seal_cert_sha256_;                 // and the certificate it names
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<AdminRecorder> recorder_;
  std::unique_ptr<ClientAuthenticator> client_auth_;
  std::unique_ptr<Renewer> renewer_;
  NodeServices services_{};
  std::unique_ptr<Exchange> exchange_;
  std::unique_ptr<HttpServer> rest_server_;  // after exchange_: stops before it goes
  std::unique_ptr<HttpServer> rest_tls_server_;  // the same
  std::unique_ptr<HttpServer> metrics_server_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<OpsServiceImpl> ops_service_;
  std::unique_ptr<grpc::Server> ss_server_;
  std::unique_ptr<grpc::Server> client_server_;
  std::unique_ptr<grpc::Server> client_tls_server_;
  std::unique_ptr<grpc::Server> admin_server_;
  std::unique_ptr<grpc::Server> ops_server_;
  std::unique_ptr<ConnectionListener> ss_listener_;
  std::unique_ptr<ConnectionListener> client_listener_;
  std::unique_ptr<ConnectionListener> client_tls_listener_;
  std::unique_ptr<ConnectionListener> ops_listener_;
  NodeAddresses addresses_;
  std::atomic<bool> maintenance_{false};
  rocksdb::Env* audit_env_ = nullptr;  // null: the default
  // Why the audit log refuses appends (set by Open, constant after); OK when it does not.
  absl::Status audit_damage_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread renewal_thread_;
  std::thread health_thread_;
  bool shut_down_ = false;
  bool wrote_listen_file_ = false;
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_NODE_H_
