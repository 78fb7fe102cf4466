// Two agencies whose security servers speak X-Road's REST protocol: the Ministry of
// Employment's `benefits` IS calls the State Tax Committee's `persons` REST service through the
// consumer SS's REST port and the provider SS, which calls an HTTP backend. Everything is real:
// the federation fixture's daemons (tests/exchange/federation.h), loopback sockets, audit logs,
// and the clients are separate programs (curl, python3's http.client) or a raw socket.
#ifndef DARVOZA_TESTS_REST_REST_FIXTURE_H_
#define DARVOZA_TESTS_REST_REST_FIXTURE_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/http_server.h"
#include "tests/exchange/two_agencies.h"

namespace darvoza::testing {

inline constexpr char kRestService[] = "persons";
inline constexpr char kRestServiceId[] = "UZ/GOV/70000001/tax-registry/persons";
inline constexpr char kSlowService[] = "slow";
inline constexpr char kDeadService[] = "dead";
inline constexpr char kTlsService[] = "tls";

// The provider's HTTP backend, on the process's own HTTP server. By default it answers 200
// with a JSON body naming what it received; Answer() replaces that, Hold() keeps every reply
// until the test ends (a backend that never answers).
class HttpBackend {
 public:
  HttpBackend();
  ~HttpBackend();

  std::string url() const;  // http://127.0.0.1:port
  int hits() const;
  // The last request it received.
  HttpRequest last() const;
  // Every request it received, oldest first.
  std::vector<HttpRequest> requests() const;
  // How many requests it received with X-Road-Id `message_id`.
  int HitsFor(const std::string& message_id) const;
  void Answer(std::function<HttpResponse(const HttpRequest&)> answer);
  void Hold();

 private:
  mutable absl::Mutex mu_;
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::function<HttpResponse(const HttpRequest&)> answer_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<HttpReply> held_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<HttpServer> server_;
};

struct RestAgencies {
  HttpBackend backend;
  TwoAgencies agencies;
  Federation& fed = agencies.fed;
  Federation::SecurityServer& provider = *agencies.provider;
  Federation::SecurityServer& consumer = *agencies.consumer;

  // `persons` at backend.url() + "/base", `slow` (300 ms timeout) at the same backend,
  // `dead` at a port nothing listens on, `tls` as https:// at the (plaintext) backend, so
  // that the TLS handshake fails; benefits may call all four.
  RestAgencies();
  std::string rest_address() const { return consumer.rest_address(); }
  // http://<consumer REST port>/r1/<kRestServiceId><rest>
  std::string Url(const std::string& rest = "") const;
};

// The value of header `name` (lower case) in `request`, or "" when it has none.
std::string HeaderValue(const HttpRequest& request, const std::string& name);
bool HasHeader(const HttpRequest& request, const std::string& name);

// An HTTP response as a client saw it. Header names in lower case.
struct ClientResult {
  int exit_code = -1;  // of the client program; 0 when it got an answer
  int status = 0;
  std::multimap<std::string, std::string> headers;
  std::string body;
  std::string Header(const std::string& name) const;
  // The X-Road-Error header (recorded for the fault-coverage check) or "".
  std::string fault;
};

// curl -sS with `args` (URL included); the response's status, headers and body.
ClientResult Curl(const std::vector<std::string>& args);

// python3's http.client: `method` on `path` at `address` with `headers` and `body`, `repeat`
// times on one connection (keep-alive); the last response.
ClientResult PythonClient(const std::string& address, const std::string& method,
                          const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          const std::string& body, int repeat = 1);

// Writes `bytes` to a fresh connection to `address` and reads until the server closes it or
// `responses` complete responses arrived; each response parsed.
std::vector<ClientResult> RawExchange(const std::string& address, const std::string& bytes,
                                      size_t responses);

// Every record of `ss`'s log, sealed, witnessed and verified offline with the anchor.
void RequireLogVerifies(Federation& fed, Federation::SecurityServer& ss);

// The audit records of `ss` for one message id, by kind.
std::vector<v1::AuditRecord> Records(Federation::SecurityServer& ss, const std::string& message_id);

}  // namespace darvoza::testing

#endif  // DARVOZA_TESTS_REST_REST_FIXTURE_H_
