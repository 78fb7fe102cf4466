// The provider side of the exchange (docs/design.md §5 steps 3-4): the SecurityServerExchange
// service on the SS↔SS port.
//
// For each signed request it checks, in order: the TLS peer is the consumer SS the envelope
// names and that SS hosts the client; the target SS is this one; the signature is the client
// member's, by a certificate of an approved CA, not revoked; created_at is inside the replay
// window and the (consumer SS, nonce) pair is new; the service is registered here; an access
// right allows the client (default deny); the envelope's gRPC method is exactly the one the
// signed service code names. Every outside value of the envelope is checked before it is logged
// or forwarded (common/outside_values.h). Then it logs the request, calls the backend with the
// method derived from the service code and the forwarded metadata (IsForwardedMetadataKey; its
// own x-road-* from the verified envelope) through grpc::GenericStub, checks the backend's
// answer, signs the response with the provider member's key (carrying the request hash), and
// answers once the response record is durable.
// The metadata services (darvoza.v1.Metadata.*) are answered here without a backend.
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_PROVIDER_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_PROVIDER_H_

#include <grpcpp/generic/async_generic_service.h>

#include "proto/exchange.grpc.pb.h"
#include "security_server/exchange/exchange_core.h"

namespace darvoza::ss::exchange {

// The method takes raw bytes (parsed in the handler) so that a request that is not a
// SignedMessage gets Server.ServerProxy.InvalidMessage and a refusal record.
class ProviderService final : public v1::SecurityServerExchange::WithRawCallbackMethod_Call<
                                  v1::SecurityServerExchange::Service> {
 public:
  // `core` is not owned and must outlive the service.
  explicit ProviderService(ExchangeCore* core) : core_(core) {}

  grpc::ServerUnaryReactor* Call(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
                                 grpc::ByteBuffer* response) override;

 private:
  ExchangeCore* const core_;
};

// Every other path on the SS↔SS port: refused with Server.ServerProxy.InvalidMessage
// (INVALID_ARGUMENT) and a refusal record, without reading the request.
class ProviderFallbackService final : public grpc::CallbackGenericService {
 public:
  // `core` is not owned and must outlive the service.
  explicit ProviderFallbackService(ExchangeCore* core) : core_(core) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  ExchangeCore* const core_;
};

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_PROVIDER_H_
