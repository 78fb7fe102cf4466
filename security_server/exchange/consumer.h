// The consumer side of the exchange: the gRPC pass-through client interface (DESIGN.md §5).
//
// A client IS points its ordinary generated stub at its own security server and adds metadata
// x-road-client (its subsystem) and x-road-service (the provider subsystem, optionally
// /version); gRPC method /pkg.Svc/Method becomes service code pkg.Svc.Method. For each call
// the consumer SS authenticates the IS, finds the provider SSs in the global configuration,
// signs the envelope with the client member's key, logs the request, sends it over mTLS,
// checks the signed response and its request hash, and answers only once the response record
// is durable. Only an attempt that cannot have reached the provider SS (decided from
// transport-level facts, never from message text or when an x-road-error came back) moves on
// to the next provider SS; a request that may have been sent is never sent again. Every value
// from the IS, and from the provider's answer, is checked before it is echoed, signed or
// logged (common/outside_values.h).
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_CONSUMER_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_CONSUMER_H_

#include <functional>

#include <grpcpp/generic/async_generic_service.h>

#include "security_server/exchange/exchange_core.h"

namespace darvoza::ss::exchange {

// Test-only: `hook` sees (and may change) every signed request this process's consumer SSs
// are about to put on the wire, after it was logged: a stand-in for whatever lies between two
// security servers. Null removes it. Not for production code.
void SetOutgoingRequestHookForTest(std::function<void(v1::SignedMessage&)> hook);

// Test-only: `hook` sees (and may change) every signed response this process's consumer SSs
// receive from a provider SS, with the request envelope it answers, before any check of it:
// a stand-in for a hostile provider SS. Null removes it. Not for production code.
void SetIncomingResponseHookForTest(
    std::function<void(const v1::Envelope&, v1::SignedMessage&)> hook);

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
