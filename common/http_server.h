// HttpServer: the one HTTP/1.1 server of a Darvoza process (Boost.Beast over Asio), for the
// REST client port now and for /metrics and web pages later. Beast stays inside http_server.cc
// so that its templates compile in one translation unit; callers see plain structs.
//
// Each connection runs on its own strand and handles one request at a time: the next request
// is read only after the previous response was written, so pipelined requests are answered in
// order and keep-alive works. The server itself refuses, without calling the handler and then
// closing the connection: a malformed request, a request line and headers over
// max_header_bytes, a target over max_target_bytes, a body over max_body_bytes, and the request
// smuggling shapes (Content-Length together with Transfer-Encoding; any Transfer-Encoding other
// than a single "chunked", which Beast 1.74 would otherwise take as a request without a body).
// `Expect: 100-continue` is answered locally.
//
// With HttpServerOptions::tls set the port speaks TLS 1.3 only (common/tls.h), serving the key
// and certificate files named there; they are looked at (two stat calls) on each new connection
// and re-read when they changed, so a renewed certificate is served without a restart. The
// client's certificate is requested, never verified: the handler gets it in
// HttpRequest::peer_certificate_pem and decides.
//
//   auto server = HttpServer::Start("127.0.0.1:0", HttpServerOptions(),
//       [](HttpRequest request, HttpReply reply) { reply({200, {}, "hello"}); },
//       [](const absl::Status& why) { return HttpResponse{400, {}, std::string(why.message())}; });
//   int port = (*server)->port();
#ifndef DARVOZA_COMMON_HTTP_SERVER_H_
#define DARVOZA_COMMON_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace darvoza {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;
  std::string target;   // as sent: path and query, still percent-encoded
  HttpHeaders headers;  // names in lower case, in the order received
  std::string body;
  bool tls = false;                  // the request came over TLS
  std::string peer_certificate_pem;  // TLS: the client's certificate; "" when it sent none
  // The client's address as gRPC names its peers ("ipv4:127.0.0.1:53412", "ipv6:[::1]:53412"),
  // for logs; "" when the socket no longer knows it.
  std::string peer;
};

struct HttpResponse {
  int status = 200;
  HttpHeaders headers;  // Content-Length, Connection and Server are set by the server
  std::string body;
};

// Called once per request; answers by calling `reply` exactly once, from any thread.
using HttpReply = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(HttpRequest, HttpReply)>;
// The response to a request the server refuses itself (INVALID_ARGUMENT saying why).
using HttpRefusal = std::function<HttpResponse(const absl::Status&)>;

struct HttpServerTlsOptions {
  // PEM files: the private key and the certificate (leaf first, then any intermediates).
  std::string key_path;
  std::string cert_path;
  // Ask the client for a certificate (neither required nor verified). Default: true.
  bool request_client_certificate = true;
};

struct HttpServerOptions {
  // Request line plus headers. Default: 16 KiB.
  size_t max_header_bytes = 16 << 10;
  // The request target (path and query). Default: 4 KiB.
  size_t max_target_bytes = 4 << 10;
  // Request body. Default: 16 MiB.
  size_t max_body_bytes = 16 << 20;
  // A connection that sends nothing for this long is closed. Default: 60 s.
  absl::Duration idle_timeout = absl::Seconds(60);
  // Connections beyond this are closed at once. Default: 1024.
  size_t max_connections = 1024;
  // Threads running the connections. Default: 2.
  int threads = 2;
  // TLS on this port. Default: none (plaintext HTTP).
  std::optional<HttpServerTlsOptions> tls;
};

class HttpServer {
 public:
  // Binds `listen` (host:port; port 0 picks one) and serves. UNAVAILABLE when it cannot bind,
  // INVALID_ARGUMENT when `listen` is not host:port or, with TLS, the key or certificate file
  // is unreadable or they do not match.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen,
                                                           HttpServerOptions options,
                                                           HttpHandler handler,
                                                           HttpRefusal refusal);
  virtual ~HttpServer() = default;

  // The bound port.
  virtual int port() const = 0;
  // Stops accepting, waits up to `grace` for handlers that have not replied yet, and stops
  // the threads. A reply after this is dropped. Idempotent.
  virtual void Shutdown(absl::Duration grace = absl::Seconds(5)) = 0;
};

}  // namespace darvoza

#endif  // DARVOZA_COMMON_HTTP_SERVER_H_
