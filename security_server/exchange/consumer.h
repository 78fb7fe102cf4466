// The consumer side of the exchange: the gRPC pass-through client interface (docs/design.md §5).
//
// A client IS points its ordinary generated stub at its own security server and adds metadata
// x-road-client (its subsystem) and x-road-service (the provider subsystem, optionally
// /version); gRPC method /pkg.Svc/Method becomes service code pkg.Svc.Method. For each call
// the consumer SS authenticates the IS and builds the envelope; the exchange with the provider
// SS is ConsumerExchange's (consumer_exchange.h), shared with the REST interface. Every value
// from the IS, and from the provider's answer, is checked before it is echoed, signed or
// logged (common/outside_values.h).
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_CONSUMER_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_CONSUMER_H_

#include <functional>

#include <grpcpp/generic/async_generic_service.h>

#include "security_server/exchange/consumer_exchange.h"
#include "security_server/exchange/exchange_core.h"

namespace darvoza::ss::exchange {

// The generic service of one client port. Calls run as callback reactors; no thread per call.
class ConsumerService final : public grpc::CallbackGenericService {
 public:
  // `core` is not owned and must outlive the service. `tls_port`: whether this is the mTLS
  // client port (IS authentication depends on it).
  ConsumerService(ExchangeCore* core, bool tls_port) : core_(core), tls_port_(tls_port) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  ExchangeCore* const core_;
  const bool tls_port_;
};

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_CONSUMER_H_
