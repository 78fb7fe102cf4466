// The consumer side's REST client interface: X-Road's message protocol for REST (PR-REST r1)
// on the consumer SS's REST ports (docs/design.md §5): plaintext on loopback, and TLS with the IS's
// certificate pinned (ClientAuthenticator decides, as for the gRPC client ports).
//
//   METHOD /r1/{instance}/{class}/{member}/{subsystem}/{service}[/path][?query]
//   X-Road-Client: {instance}/{class}/{member}/{subsystem}            (required)
//   X-Road-Id, X-Road-UserId, X-Road-Issue, X-Road-Represented-Party, X-Road-Security-Server
//
// The five service-id parts and the X-Road-Client parts are percent-decoded once and checked
// with the identifier rule (%2F inside a part is refused); the path and query are checked
// (common/outside_values.h) and travel still encoded; every header is checked as outside text
// before anything of it is signed, logged or forwarded, and only IsForwardedHttpHeader ones
// reach the backend. The exchange itself is ConsumerExchange's, as for gRPC calls. The answer
// carries the backend's status, forwarded headers and body, plus X-Road-Client,
// X-Road-Service, X-Road-Id, X-Road-Request-Id and X-Road-Request-Hash set by this SS.
// Refusals are JSON {"type", "message", "detail"} with X-Road-Error: 400 for faults of the
// client (Client.*), 500 for the security servers' (Server.*).
#ifndef DARVOZA_SECURITY_SERVER_EXCHANGE_REST_CONSUMER_H_
#define DARVOZA_SECURITY_SERVER_EXCHANGE_REST_CONSUMER_H_

#include "absl/status/status.h"
#include "common/http_server.h"
#include "security_server/exchange/exchange_core.h"

namespace darvoza::ss::exchange {

// Serves one REST request; `reply` is called once. `core` is not owned and must outlive every
// call (the node stops the REST port before the exchange). Any thread.
void ServeRestRequest(ExchangeCore* core, HttpRequest request, HttpReply reply);

// The REST answer for a refusal: the fault's JSON body, its X-Road-Error header, and status
// 400 (Client.* or no fault: a request the port itself refused) or 500 (Server.*).
HttpResponse RestFaultResponse(const absl::Status& status, absl::string_view message_id);

}  // namespace darvoza::ss::exchange

#endif  // DARVOZA_SECURITY_SERVER_EXCHANGE_REST_CONSUMER_H_
