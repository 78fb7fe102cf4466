// The REST interface (X-Road PR-REST r1) through two security servers: curl and python3's
// http.client as the client IS, an HTTP backend behind the provider SS.
#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "proto/envelope.pb.h"
#include "security_server/exchange/consumer_exchange.h"
#include "security_server/exchange/signed_message.h"
#include "tests/rest/rest_fixture.h"
#include "tests/test_support.h"

namespace darvoza::testing {
namespace {

const std::string kClient = absl::StrCat("X-Road-Client: ", kBenefitsSubsystem);

std::string HeaderValue(const HttpRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "";
}

bool HasHeader(const HttpRequest& request, const std::string& name) {
  for (const auto& entry : request.headers) {
    if (entry.first == name) return true;
  }
  return false;
}

TEST_CASE("REST: a call reaches the HTTP backend under its base, and the answer comes back",
          "[rest]") {
  RestAgencies a;
  a.backend.Answer([](const HttpRequest&) {
    return HttpResponse{200,
                        {{"Content-Type", "application/json; charset=utf-8"},
                         {"Cache-Control", "no-store"},
                         {"X-Powered-By", "tax-backend"},
                         {"X-Road-Id", "forged-by-backend"},
                         {"X-Road-Request-Hash", "forged"},
                         {"Server", "secret-host.internal"}},
                        "{\"debt\":0}"};
  });
  ClientResult r = Curl({a.Url("/v1/persons/42?full=1&lang=uz"), "-H", kClient, "-H",
                         "X-Road-Id: rest-msg-1", "-H", "X-Road-UserId: UZ12345678",
                         "-H", "X-Road-Issue: case-7", "-H", "Accept: application/json",
                         "-H", "X-Trace: abc", "-H", "Cache-Control: no-cache"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.status == 200);
  CHECK(r.body == "{\"debt\":0}");
  CHECK(r.fault.empty());

  // What the backend got: the path under its base, the query as sent, the user's headers,
  // this SS's X-Road-* headers, and nothing that names the client's host or program.
  REQUIRE(a.backend.hits() == 1);
  HttpRequest seen = a.backend.last();
  CHECK(seen.method == "GET");
  CHECK(seen.target == "/base/v1/persons/42?full=1&lang=uz");
  CHECK(HeaderValue(seen, "x-road-client") == kBenefitsSubsystem);
  CHECK(HeaderValue(seen, "x-road-service") == kRestServiceId);
  CHECK(HeaderValue(seen, "x-road-id") == "rest-msg-1");
  CHECK(HeaderValue(seen, "x-road-userid") == "UZ12345678");
  CHECK(HeaderValue(seen, "x-road-issue") == "case-7");
  CHECK(HeaderValue(seen, "accept") == "application/json");
  CHECK(HeaderValue(seen, "x-trace") == "abc");
  CHECK(HeaderValue(seen, "cache-control") == "no-cache");
  CHECK_FALSE(HasHeader(seen, "user-agent"));
  CHECK(HeaderValue(seen, "host") != a.rest_address());

  // What the client got: the backend's headers, this SS's X-Road-* ones replacing the
  // backend's, and no Server header from the backend.
  CHECK(r.Header("content-type") == "application/json; charset=utf-8");
  CHECK(r.Header("cache-control") == "no-store");
  CHECK(r.Header("x-powered-by") == "tax-backend");
  CHECK(r.headers.count("server") == 0);
  CHECK(r.Header("x-road-client") == kBenefitsSubsystem);
  CHECK(r.Header("x-road-service") == kRestServiceId);
  CHECK(r.Header("x-road-id") == "rest-msg-1");
  CHECK(r.headers.count("x-road-id") == 1);
  CHECK(r.Header("x-road-request-id").size() == 32);
  CHECK(r.Header("x-road-request-id") == HeaderValue(seen, "x-road-request-id"));

  // The request hash: base64 SHA-512(SHA-512(envelope) + SHA-512(body)) of the request the
  // consumer SS logged (no body here: SHA-512(envelope)).
  std::vector<v1::AuditRecord> consumer_records = Records(a.consumer, "rest-msg-1");
  std::vector<v1::AuditRecord> provider_records = Records(a.provider, "rest-msg-1");
  REQUIRE(consumer_records.size() == 2);
  REQUIRE(provider_records.size() == 2);
  CHECK(consumer_records[0].kind() == v1::REQUEST_OUT);
  CHECK(consumer_records[1].kind() == v1::RESPONSE_IN);
  CHECK(provider_records[0].kind() == v1::REQUEST_IN);
  CHECK(provider_records[1].kind() == v1::RESPONSE_OUT);
  const std::string& envelope_bytes = consumer_records[0].envelope();
  CHECK(r.Header("x-road-request-hash") ==
        absl::Base64Escape(crypto::Sha512(envelope_bytes)));
  CHECK(r.Header("x-road-request-hash") ==
        absl::Base64Escape(ss::exchange::RestRequestHash(envelope_bytes, "")));
  v1::Envelope envelope;
  REQUIRE(envelope.ParseFromString(envelope_bytes));
  REQUIRE(envelope.has_http());
  CHECK(envelope.http().method() == "GET");
  CHECK(envelope.http().path() == "/v1/persons/42");
  CHECK(envelope.http().query() == "full=1&lang=uz");
  CHECK(consumer_records[1].detail() == "HTTP 200");

  RequireLogVerifies(a.fed, a.consumer);
  RequireLogVerifies(a.fed, a.provider);
}

TEST_CASE("REST: a request body is hashed into the request hash", "[rest]") {
  RestAgencies a;
  ClientResult r = Curl({a.Url("/v1/persons"), "-X", "POST", "-H", kClient, "-H",
                         "X-Road-Id: rest-body-1", "-H", "Content-Type: application/json",
                         "--data-binary", "{\"name\":\"Aziz\"}"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.status == 200);
  CHECK(a.backend.last().body == "{\"name\":\"Aziz\"}");
  CHECK(HeaderValue(a.backend.last(), "content-type") == "application/json");
  std::vector<v1::AuditRecord> records = Records(a.consumer, "rest-body-1");
  REQUIRE(!records.empty());
  CHECK(r.Header("x-road-request-hash") ==
        absl::Base64Escape(crypto::Sha512(absl::StrCat(
            crypto::Sha512(records[0].envelope()), crypto::Sha512("{\"name\":\"Aziz\"}")))));
}

TEST_CASE("REST: a request hash that does not match is caught by the consumer SS", "[rest]") {
  RestAgencies a;
  ss::exchange::SetIncomingResponseHookForTest(
      [](const v1::Envelope&, v1::SignedMessage& response) {
        v1::ResponseEnvelope envelope;
        if (!envelope.ParseFromString(response.envelope())) return;
        std::string hash = envelope.request_hash();
        if (!hash.empty()) hash[0] = static_cast<char>(hash[0] ^ 1);
        envelope.set_request_hash(hash);
        response.set_envelope(envelope.SerializeAsString());
      });
  ClientResult r = Curl({a.Url("/v1/persons/1"), "-H", kClient});
  ss::exchange::SetIncomingResponseHookForTest(nullptr);
  REQUIRE(r.exit_code == 0);
  CHECK(r.status == 500);
  CHECK(r.fault == faults::kClientInvalidSignature);
  CHECK(absl::StrContains(r.body, "request hash"));
  CHECK(r.Header("content-type") == "application/json;charset=utf-8");
  RequireLogVerifies(a.fed, a.consumer);
}

TEST_CASE("REST: a backend's errors and redirects pass through as they are", "[rest]") {
  RestAgencies a;
  a.backend.Answer([](const HttpRequest& request) {
    if (absl::StrContains(request.target, "moved")) {
      return HttpResponse{302, {{"Location", "http://elsewhere.example/x"}}, ""};
    }
    return HttpResponse{404, {{"Content-Type", "text/plain"}}, "no such person"};
  });
  ClientResult missing = Curl({a.Url("/v1/persons/999"), "-H", kClient});
  REQUIRE(missing.exit_code == 0);
  CHECK(missing.status == 404);
  CHECK(missing.body == "no such person");
  CHECK(missing.fault.empty());  // the service's own error, not the security servers'

  ClientResult moved = Curl({a.Url("/v1/moved"), "-H", kClient});
  REQUIRE(moved.exit_code == 0);
  CHECK(moved.status == 302);
  CHECK(moved.Header("location") == "http://elsewhere.example/x");
  CHECK(a.backend.hits() == 2);  // the redirect was not followed
}

TEST_CASE("REST: a 16 MiB body travels intact both ways and one byte more is refused",
          "[rest]") {
  RestAgencies a;
  a.backend.Answer([](const HttpRequest& request) {
    return HttpResponse{200, {{"Content-Type", "application/octet-stream"}}, request.body};
  });
  TempDir dir;
  std::string big(16 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 5);
  WriteFileForTest(dir.File("big"), big);
  ClientResult r = Curl({a.Url("/upload"), "-X", "PUT", "-H", kClient, "-H",
                         "Content-Type: application/octet-stream", "--data-binary",
                         "@" + dir.File("big")});
  REQUIRE(r.exit_code == 0);
  CHECK(r.status == 200);
  CHECK(r.body.size() == big.size());
  CHECK(crypto::Sha256(r.body) == crypto::Sha256(big));
  CHECK(a.backend.last().body.size() == big.size());

  WriteFileForTest(dir.File("over"), big + "x");
  const int hits = a.backend.hits();
  ClientResult over = Curl({a.Url("/upload"), "-X", "PUT", "-H", kClient, "--data-binary",
                            "@" + dir.File("over")});
  REQUIRE(over.exit_code == 0);
  CHECK(over.status == 400);
  CHECK(over.fault == faults::kInvalidRequest);
  CHECK(a.backend.hits() == hits);
}

TEST_CASE("REST: keep-alive and pipelined requests are answered in order", "[rest]") {
  RestAgencies a;
  a.backend.Answer([](const HttpRequest& request) {
    return HttpResponse{200, {}, request.target};
  });
  const std::string path = absl::StrCat("/r1/", kRestServiceId);
  std::string pipelined;
  for (int i = 1; i <= 3; ++i) {
    absl::StrAppend(&pipelined, "GET ", path, "/item/", i, " HTTP/1.1\r\nHost: ss\r\n", kClient,
                    "\r\nX-Road-Id: pipelined-", i, "\r\n\r\n");
  }
  std::vector<ClientResult> answers = RawExchange(a.rest_address(), pipelined, 3);
  REQUIRE(answers.size() == 3);
  for (int i = 1; i <= 3; ++i) {
    CHECK(answers[i - 1].status == 200);
    CHECK(answers[i - 1].Header("x-road-id") == absl::StrCat("pipelined-", i));
    CHECK(answers[i - 1].body == absl::StrCat("/base/item/", i));
  }

  // An independent client: python3's http.client, three calls on one connection.
  ClientResult python = PythonClient(a.rest_address(), "PUT", path + "/v1/persons/5",
                                     {{"X-Road-Client", kBenefitsSubsystem},
                                      {"Content-Type", "application/json"}},
                                     "{\"a\":1}", /*repeat=*/3);
  REQUIRE(python.exit_code == 0);
  CHECK(python.status == 200);
  CHECK(python.body == "/base/v1/persons/5");
  CHECK(a.backend.last().method == "PUT");
  CHECK(a.backend.last().body == "{\"a\":1}");
  CHECK(a.backend.hits() == 6);
}

TEST_CASE("REST: slow, dead and TLS-failing backends give their faults", "[rest]") {
  RestAgencies a;
  a.backend.Hold();
  struct Case {
    const char* service;
    absl::string_view fault;
    const char* says;
  };
  for (const Case& c : {Case{kSlowService, faults::kTimeout, "did not answer in time"},
                        Case{kDeadService, faults::kServiceFailed, "cannot be reached"},
                        Case{kTlsService, faults::kServiceFailed, "TLS handshake"}}) {
    INFO(c.service);
    ClientResult r = Curl({absl::StrCat("http://", a.rest_address(), "/r1/", kTaxSubsystem, "/",
                                        c.service, "/x"),
                           "-H", kClient});
    REQUIRE(r.exit_code == 0);
    CHECK(r.status == 500);
    CHECK(r.fault == c.fault);
    CHECK(absl::StrContains(r.body, absl::StrCat("\"type\":\"", c.fault, "\"")));
    CHECK(absl::StrContains(r.body, c.says));
  }
  CHECK(a.backend.hits() == 1);  // the slow one; the TLS handshake never became a request
  RequireLogVerifies(a.fed, a.consumer);
  RequireLogVerifies(a.fed, a.provider);
}

TEST_CASE("REST: a REST call to a gRPC service is refused with a clear fault", "[rest]") {
  RestAgencies a;
  ClientResult r = Curl({absl::StrCat("http://", a.rest_address(), "/r1/", kTaxSubsystem, "/",
                                      kGrpcService),
                         "-X", "POST", "-H", kClient, "--data-binary", "x"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.status == 400);
  CHECK(r.fault == faults::kUnsupportedCall);
  CHECK(absl::StrContains(r.body, "gRPC client port"));
  CHECK(a.agencies.backend.hits() == 0);
}

}  // namespace
}  // namespace darvoza::testing
