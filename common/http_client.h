// HttpClient: calls HTTP/1.1 backends (libcurl) for the provider side of the REST interface.
//
// Each request runs on one of a fixed set of worker threads (blocking libcurl easy calls), so
// callers on gRPC's threads never block; a request waits in a queue when every worker is busy.
// Redirects are never followed, no proxy from the environment is used, only http and https
// are spoken, and a body over the limit ends the call. Failures are statuses whose code says
// what happened, for the caller to turn into its fault:
//   DEADLINE_EXCEEDED   connecting or the whole exchange took longer than allowed
//   UNAVAILABLE         the connection was refused, reset, or the host is unknown
//   UNAUTHENTICATED     the TLS handshake or the server's certificate check failed (a
//                       server that refuses the client's certificate, or its absence, after
//                       a TLS 1.3 handshake is seen as a reset: UNAVAILABLE)
//   RESOURCE_EXHAUSTED  the answer's body is over max_response_bytes
//   INVALID_ARGUMENT    the request cannot be sent (bad URL, header text)
//
//   auto client = HttpClient::Create(8);
//   client->Send(std::move(request), [](absl::StatusOr<HttpClientResponse> answer) { ... });
#ifndef DARVOZA_COMMON_HTTP_CLIENT_H_
#define DARVOZA_COMMON_HTTP_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/http_server.h"

namespace darvoza {

struct HttpClientRequest {
  std::string method;
  std::string url;       // http:// or https://
  HttpHeaders headers;   // sent as they are; nothing else is added (no Accept, no User-Agent)
  std::string body;
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(30);  // the whole exchange
  size_t max_response_bytes = 16 << 20;
  std::string ca_file;  // https: trusted CAs (PEM); "" = the system's
  // https, given in memory (libcurl's *_BLOB options) so that nothing is written to disk:
  std::string ca_pem;           // trusted CAs (PEM); when set, instead of ca_file
  std::string client_cert_pem;  // client certificate (PEM) for mutual TLS; "" = none
  std::string client_key_pem;   // its private key (PEM); with client_cert_pem
};

struct HttpClientResponse {
  int status = 0;
  HttpHeaders headers;  // of the final response; names in lower case
  std::string body;
};

class HttpClient {
 public:
  // `threads` workers (at least 1).
  static std::unique_ptr<HttpClient> Create(int threads);
  virtual ~HttpClient() = default;

  // Sends `request` and calls `done` once, on a worker thread. After Shutdown `done` gets
  // UNAVAILABLE at once.
  virtual void Send(HttpClientRequest request,
                    std::function<void(absl::StatusOr<HttpClientResponse>)> done) = 0;

  // Finishes the requests under way, fails the queued ones, joins the workers. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace darvoza

#endif  // DARVOZA_COMMON_HTTP_CLIENT_H_
