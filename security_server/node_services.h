// The seam between the security server node and the exchange
// (security_server/exchange/): what the exchange gets from the node, and what the node asks of
// the exchange.
//
// The node creates the exchange once its services exist and registers what the exchange
// returns: SsToSsService() on the SS↔SS (mTLS) server, ClientGenericService(tls_port) on each
// client port (which carry nothing else, so health and reflection are never confused with
// pass-through calls).
#ifndef DARVOZA_SECURITY_SERVER_NODE_SERVICES_H_
#define DARVOZA_SECURITY_SERVER_NODE_SERVICES_H_

#include <memory>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/impl/codegen/service_type.h>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/http_server.h"
#include "proto/identifiers.pb.h"
#include "security_server/client_auth.h"
#include "security_server/global_conf_client.h"
#include "security_server/key_store.h"
#include "security_server/local_state.h"
#include "security_server/metrics.h"

namespace darvoza::audit {
class AuditLog;
}

namespace darvoza::ss {

// The largest request or response body passed through, and the largest message the SS-to-SS
// and client ports accept (the body plus room for the envelope and certificate chain), so that
// an oversized body gets the consumer's clear refusal rather than gRPC's.
inline constexpr int kMaxPassThroughBodyBytes = 16 << 20;
inline constexpr int kMaxSecurityServerMessageBytes = kMaxPassThroughBodyBytes + (1 << 20);

// What the exchange needs from the node. All pointers outlive the exchange. Thread-safe.
struct NodeServices {
  v1::SecurityServerId self;
  Clock* clock;
  // Current() -> absl::StatusOr<std::shared_ptr<const v1::GlobalConf>> (ConfigurationExpired
  // fault when expired), anchor(), and AddListener(...) for each new configuration.
  GlobalConfClient* conf;
  // Auth cert/key PEM for TLS; SigningSigner(member) -> signer + cert chain DER (leaf first)
  // for each hosted member.
  KeyStore* keys;
  // Services (LookupService), IsAllowed(client, service, conf) per ACL + local/global groups,
  // client subsystems hosted here + their IS auth mode (GetClient).
  LocalState* state;
  audit::AuditLog* audit;  // may be null until wired
  // Authenticate(claimed subsystem, call context, tls_port).
  ClientAuthenticator* client_auth;
  MetricsRegistry* metrics;  // counters/gauges by name, rendered on the ops port
  bool batch_signatures = true;  // SsConfig::batch_signatures
};

// Implemented by security_server/exchange/. A node linked without it gets a default
// that returns nullptrs (and the client ports answer UNIMPLEMENTED).
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual grpc::Service* SsToSsService() = 0;  // registered on the SS↔SS server (may be null)
  // Registered beside SsToSsService(): answers every other path on the SS↔SS server, so that
  // bytes that are not a SecurityServerExchange call get a fault and a log entry rather than
  // gRPC's bare UNIMPLEMENTED. May be null.
  virtual grpc::CallbackGenericService* SsToSsFallbackService() { return nullptr; }
  // The pass-through service for one client port (may be null): call once with
  // tls_port=false for the plaintext port and once with tls_port=true for the mTLS port. Two
  // objects, because gRPC lets a generic service be registered with one server only, and
  // because the handler must know which port a call came in on (IS authentication).
  virtual grpc::CallbackGenericService* ClientGenericService(bool tls_port) = 0;
  // The REST client interface (PR-REST) of the plaintext REST port: serves one request and
  // calls `reply` once.
  virtual void ServeRest(HttpRequest request, HttpReply reply) = 0;
  // The answer to a request the REST port's HTTP server refused itself.
  virtual HttpResponse RestRefusal(const absl::Status& status) = 0;
  virtual void Shutdown() = 0;
};

// Defined in security_server/exchange/exchange.cc.
absl::StatusOr<std::unique_ptr<Exchange>> CreateExchange(const NodeServices& services);

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_NODE_SERVICES_H_
