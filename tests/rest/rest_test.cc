// The REST interface (X-Road PR-REST r1) through two security servers: curl and python3's
// http.client as the client IS, an HTTP backend behind the provider SS.
#include <catch2/catch.hpp>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "proto/envelope.pb.h"
#include "security_server/exchange/consumer_exchange.h"
#include "security_server/exchange/signed_message.h"
#include "security_server/metrics.h"
#include "tests/rest/rest_fixture.h"
#include "tests/test_support.h"

namespace darvoza::testing {
namespace {

const std::string kClient = absl::StrCat("X-Road-Client: ", kBenefitsSubsystem);

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

// The kinds of `records`, in log order.
std::vector<v1::AuditRecordKind> Kinds(const std::vector<v1::AuditRecord>& records) {
  std::vector<v1::AuditRecordKind> kinds;
  for (const v1::AuditRecord& r : records) kinds.push_back(r.kind());
  return kinds;
}

// The request envelope a REQUEST_OUT / REQUEST_IN record holds.
v1::Envelope EnvelopeOf(const v1::AuditRecord& record) {
  v1::Envelope envelope;
  REQUIRE(envelope.ParseFromString(record.envelope()));
  return envelope;
}

bool IsLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !text.empty();
}

constexpr char kProviderId[] = "UZ/GOV/70000001/ss1";
constexpr char kSecondProviderId[] = "UZ/GOV/70000001/ss1b";

// A second SS of the tax member hosting the same subsystem, with `persons` and `slow` at the
// same backend and the same rights.
Federation::SecurityServer& StartSecondProvider(RestAgencies& a) {
  Federation::SecurityServer& second = a.fed.StartSecurityServer(kSecondProviderId);
  a.fed.Host(second, kTaxSubsystem);
  a.fed.AddServiceAt(second, kTaxSubsystem, kRestService, a.backend.url() + "/base");
  a.fed.AddServiceAt(second, kTaxSubsystem, kSlowService, a.backend.url(),
                     /*timeout_millis=*/300);
  for (const char* service : {kRestService, kSlowService}) {
    a.fed.Grant(second, absl::StrCat(kTaxSubsystem, "/", service),
                absl::StrCat("subsystem:", kBenefitsSubsystem));
  }
  a.fed.WaitForConfEverywhere();
  return second;
}

TEST_CASE("REST: a call fails over once to another provider SS, and no call runs twice",
          "[rest][failover]") {
  RestAgencies a;
  Federation::SecurityServer& second = StartSecondProvider(a);
  // ss1b is listed as a host but refuses connections.
  a.fed.StopSecurityServer(second);

  // Untried servers are tried first, so of two calls exactly one starts at ss1b: its
  // connection is refused before anything was sent, and it moves on to ss1 once.
  int failed_over = 0;
  for (int i = 1; i <= 2; ++i) {
    const std::string id = absl::StrCat("failover-", i);
    INFO(id);
    ClientResult r = Curl({a.Url("/v1/payments"), "-X", "POST", "-H", kClient, "-H",
                           "X-Road-Id: " + id, "--data-binary", "pay once"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.status == 200);
    CHECK(a.backend.HitsFor(id) == 1);
    std::vector<v1::AuditRecord> records = Records(a.consumer, id);
    REQUIRE(!records.empty());
    CHECK(records.back().kind() == v1::RESPONSE_IN);
    CHECK(FormatSecurityServerId(records.back().peer_server()) == kProviderId);
    if (records.size() == 3) {
      ++failed_over;
      CHECK(records[0].kind() == v1::REQUEST_OUT);
      CHECK(FormatSecurityServerId(records[0].peer_server()) == kSecondProviderId);
      CHECK(records[1].kind() == v1::REQUEST_OUT);
      CHECK(FormatSecurityServerId(records[1].peer_server()) == kProviderId);
      // Each attempt is signed afresh: its own nonce and target.
      CHECK(EnvelopeOf(records[0]).nonce() != EnvelopeOf(records[1]).nonce());
    } else {
      CHECK(Kinds(records) ==
            std::vector<v1::AuditRecordKind>{v1::REQUEST_OUT, v1::RESPONSE_IN});
    }
    CHECK(Kinds(Records(a.provider, id)) ==
          std::vector<v1::AuditRecordKind>{v1::REQUEST_IN, v1::RESPONSE_OUT});
  }
  CHECK(failed_over == 1);
  CHECK(a.backend.hits() == 2);

  // With both provider SSs up, a failure after the request may have reached one (here: the
  // backend got it, then the provider SS refused the answer, or timed out) is not retried at
  // the other: the client gets the fault and the backend saw the call once.
  a.fed.RestartSecurityServer(second);
  a.fed.WaitForConfEverywhere();
  a.backend.Answer([](const HttpRequest&) {
    return HttpResponse{200, {{"X-Huge", std::string(5000, 'h')}}, "done"};
  });
  ClientResult broken = Curl({a.Url("/v1/payments"), "-X", "POST", "-H", kClient, "-H",
                              "X-Road-Id: failover-broken", "--data-binary", "pay once"});
  REQUIRE(broken.exit_code == 0);
  CHECK(broken.status == 500);
  CHECK(broken.fault == faults::kServiceFailed);
  CHECK(a.backend.HitsFor("failover-broken") == 1);

  a.backend.Hold();
  ClientResult slow = Curl({absl::StrCat("http://", a.rest_address(), "/r1/", kTaxSubsystem, "/",
                                         kSlowService, "/pay"),
                            "-X", "POST", "-H", kClient, "-H", "X-Road-Id: failover-slow",
                            "--data-binary", "pay once"});
  REQUIRE(slow.exit_code == 0);
  CHECK(slow.status == 500);
  CHECK(slow.fault == faults::kTimeout);
  CHECK(a.backend.HitsFor("failover-slow") == 1);
  for (const char* id : {"failover-broken", "failover-slow"}) {
    INFO(id);
    std::vector<v1::AuditRecord> records = Records(a.consumer, id);
    CHECK(Kinds(records) == std::vector<v1::AuditRecordKind>{v1::REQUEST_OUT, v1::REFUSAL});
  }
  RequireLogVerifies(a.fed, a.consumer);
  RequireLogVerifies(a.fed, a.provider);
}

TEST_CASE("REST: X-Road-Security-Server pins the call, and an unknown or wrong one is refused",
          "[rest]") {
  RestAgencies a;
  Federation::SecurityServer& second = StartSecondProvider(a);
  for (const char* pin : {"UZ/GOV/70000001/ss1b", "UZ/GOV/70000001/ss1%62"}) {
    for (int i = 0; i < 2; ++i) {
      const std::string id = absl::StrCat("pinned-", i, "-", pin);
      INFO(id);
      ClientResult r = Curl({a.Url("/v1/persons/1"), "-H", kClient, "-H",
                             absl::StrCat("X-Road-Security-Server: ", pin), "-H",
                             "X-Road-Id: " + id});
      REQUIRE(r.exit_code == 0);
      CHECK(r.status == 200);
      CHECK(Kinds(Records(second, id)) ==
            std::vector<v1::AuditRecordKind>{v1::REQUEST_IN, v1::RESPONSE_OUT});
      CHECK(Records(a.provider, id).empty());
      std::vector<v1::AuditRecord> consumer = Records(a.consumer, id);
      REQUIRE(consumer.size() == 2);
      CHECK(FormatSecurityServerId(consumer[0].peer_server()) == kSecondProviderId);
    }
  }
  const int hits = a.backend.hits();
  CHECK(hits == 4);

  struct Refused {
    const char* pin;
    absl::string_view fault;
  };
  for (const Refused& c :
       {Refused{"UZ/GOV/70000001/ss9", faults::kUnknownService},  // not registered
        Refused{"UZ/GOV/70000002/ss2", faults::kUnknownService},  // does not host the service
        Refused{"UZ/GOV/ss1", faults::kInvalidIdentifier},
        Refused{"UZ/GOV/70000001/ss%2F1", faults::kInvalidIdentifier},
        Refused{"UZ/GOV/70000001/ss1/extra", faults::kInvalidIdentifier}}) {
    INFO(c.pin);
    ClientResult r = Curl({a.Url("/v1/persons/1"), "-H", kClient, "-H",
                           absl::StrCat("X-Road-Security-Server: ", c.pin)});
    REQUIRE(r.exit_code == 0);
    CHECK(r.status == 400);
    CHECK(r.fault == c.fault);
  }
  // Pinned to a server that is down: no failover to the other one.
  a.fed.StopSecurityServer(second);
  ClientResult down = Curl({a.Url("/v1/persons/1"), "-H", kClient, "-H",
                            "X-Road-Security-Server: UZ/GOV/70000001/ss1b", "-H",
                            "X-Road-Id: pinned-down"});
  REQUIRE(down.exit_code == 0);
  CHECK(down.status == 500);
  CHECK(down.fault == faults::kNetworkError);
  CHECK(Records(a.provider, "pinned-down").empty());
  CHECK(a.backend.hits() == hits);
  RequireLogVerifies(a.fed, a.consumer);
}

TEST_CASE("REST: X-Road-Represented-Party reaches the backend and both logs, malformed is "
          "refused",
          "[rest]") {
  RestAgencies a;
  const std::string party = "UZ/COM/80000001/citizen-portal";
  ClientResult r = Curl({a.Url("/v1/persons/3"), "-H", kClient, "-H",
                         "X-Road-Represented-Party: " + party, "-H", "X-Road-Id: represented-1"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.status == 200);
  CHECK(HeaderValue(a.backend.last(), "x-road-represented-party") == party);
  for (Federation::SecurityServer* server : {&a.consumer, &a.provider}) {
    std::vector<v1::AuditRecord> records = Records(*server, "represented-1");
    REQUIRE(!records.empty());
    CHECK(FormatSubsystemId(EnvelopeOf(records[0]).represented_party()) == party);
  }
  for (const char* malformed : {"UZ/COM/80000001", "UZ/COM/80000001/a%2Fb", "UZ//80000001/x",
                                "UZ/COM/80000001/citizen portal"}) {
    INFO(malformed);
    ClientResult bad = Curl({a.Url("/v1/persons/3"), "-H", kClient, "-H",
                             absl::StrCat("X-Road-Represented-Party: ", malformed)});
    REQUIRE(bad.exit_code == 0);
    CHECK(bad.status == 400);
    CHECK(bad.fault == faults::kInvalidIdentifier);
  }
  CHECK(a.backend.hits() == 1);
}

TEST_CASE("REST: X-Road-UserId and X-Road-Issue reach the backend and both logs, and the X-Road "
          "response headers have their documented form",
          "[rest]") {
  RestAgencies a;
  // A backend that sets the protocol's headers itself, an X-Road-Error among them.
  a.backend.Answer([](const HttpRequest&) {
    return HttpResponse{201,
                        {{"X-Road-Client", "UZ/GOV/70000001/tax-registry"},
                         {"X-Road-Service", "UZ/GOV/70000001/tax-registry/other"},
                         {"X-Road-Id", "forged"},
                         {"X-Road-Request-Id", "forged"},
                         {"X-Road-Request-Hash", "forged"},
                         {"X-Road-Error", "Server.ServerProxy.AccessDenied"},
                         {"Content-Type", "application/json"}},
                        "{}"};
  });
  // No X-Road-Id: the consumer SS makes one.
  ClientResult r = Curl({a.Url("/v1/persons/9"), "-X", "POST", "-H", kClient, "-H",
                         "X-Road-UserId: UZ:inspector-17", "-H", "X-Road-Issue: case 2026/4411",
                         "--data-binary", "{\"q\":1}"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.status == 201);
  CHECK(r.fault.empty());  // the backend's X-Road-Error is not passed on
  CHECK(r.headers.count("x-road-error") == 0);
  for (const char* name : {"x-road-client", "x-road-service", "x-road-id", "x-road-request-id",
                           "x-road-request-hash"}) {
    INFO(name);
    CHECK(r.headers.count(name) == 1);
  }
  CHECK(r.Header("x-road-client") == kBenefitsSubsystem);
  CHECK(r.Header("x-road-service") == kRestServiceId);
  const std::string id = r.Header("x-road-id");
  CHECK(id.size() == 32);
  CHECK(IsLowerHex(id));
  CHECK(r.Header("x-road-request-id").size() == 32);
  CHECK(IsLowerHex(r.Header("x-road-request-id")));
  CHECK(r.Header("x-road-request-id") != id);
  std::string hash;
  REQUIRE(absl::Base64Unescape(r.Header("x-road-request-hash"), &hash));
  CHECK(hash.size() == 64);  // SHA-512

  HttpRequest seen = a.backend.last();
  CHECK(HeaderValue(seen, "x-road-id") == id);
  CHECK(HeaderValue(seen, "x-road-userid") == "UZ:inspector-17");
  CHECK(HeaderValue(seen, "x-road-issue") == "case 2026/4411");
  CHECK(HeaderValue(seen, "x-road-request-id") == r.Header("x-road-request-id"));

  std::vector<v1::AuditRecord> consumer = Records(a.consumer, id);
  std::vector<v1::AuditRecord> provider = Records(a.provider, id);
  REQUIRE(consumer.size() == 2);
  REQUIRE(provider.size() == 2);
  for (const v1::AuditRecord* request : {&consumer[0], &provider[0]}) {
    v1::Envelope envelope = EnvelopeOf(*request);
    CHECK(envelope.user_id() == "UZ:inspector-17");
    CHECK(envelope.issue() == "case 2026/4411");
    CHECK(envelope.message_id() == id);
    CHECK(crypto::HexEncode(envelope.nonce()) == r.Header("x-road-request-id"));
  }
  CHECK(r.Header("x-road-request-hash") ==
        absl::Base64Escape(ss::exchange::RestRequestHash(consumer[0].envelope(), "{\"q\":1}")));
  CHECK(provider[1].detail() == "HTTP 201");
}

TEST_CASE("REST: content, cache and user headers pass both ways, hop-by-hop and host-naming "
          "ones do not, and any method and binary bodies travel",
          "[rest]") {
  RestAgencies a;
  a.backend.Answer([](const HttpRequest& request) {
    return HttpResponse{200,
                        {{"Content-Type", "application/octet-stream"},
                         {"Cache-Control", "private, max-age=60"},
                         {"ETag", "\"v7\""},
                         {"Last-Modified", "Tue, 01 Dec 2026 06:00:00 GMT"},
                         {"Expires", "Tue, 01 Dec 2026 07:00:00 GMT"},
                         {"Vary", "Accept"},
                         {"X-Backend-Note", "n1"},
                         {"Keep-Alive", "timeout=5"},
                         {"Proxy-Authenticate", "Basic realm=\"internal\""},
                         {"Upgrade", "h2c"},
                         {"Trailer", "X-Checksum"},
                         {"Server", "backend.tax.internal"}},
                        request.body};
  });
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  binary += std::string("\r\n\r\n\0\0", 6);
  const std::string request = absl::StrCat(
      "PATCH /r1/", kRestServiceId, "/v1/persons/42 HTTP/1.1\r\n",
      "Host: ss2.benefits.internal\r\n",
      "User-Agent: benefits-app/3.1\r\n", kClient, "\r\n",
      "Connection: keep-alive\r\n",
      "Keep-Alive: timeout=5\r\n",
      "TE: trailers\r\n",
      "Upgrade: h2c\r\n",
      "Proxy-Authorization: Basic YWdlbmN5OnNlY3JldA==\r\n",
      "Proxy-Connection: keep-alive\r\n",
      "Accept: application/octet-stream, application/json;q=0.5\r\n",
      "Accept-Language: uz\r\n",
      "Cache-Control: no-cache\r\n",
      "Pragma: no-cache\r\n",
      "If-None-Match: \"v6\"\r\n",
      "X-User-Header: Value With  Spaces\r\n",
      "Content-Type: application/octet-stream\r\n",
      "Content-Length: ", binary.size(), "\r\n\r\n", binary);
  std::vector<ClientResult> answers = RawExchange(a.rest_address(), request, 1);
  REQUIRE(answers.size() == 1);
  const ClientResult& r = answers[0];
  CHECK(r.status == 200);
  CHECK(r.body == binary);

  HttpRequest seen = a.backend.last();
  CHECK(seen.method == "PATCH");
  CHECK(seen.body == binary);
  CHECK(seen.target == "/base/v1/persons/42");
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{
           {"accept", "application/octet-stream, application/json;q=0.5"},
           {"accept-language", "uz"},
           {"cache-control", "no-cache"},
           {"pragma", "no-cache"},
           {"if-none-match", "\"v6\""},
           {"x-user-header", "Value With  Spaces"},
           {"content-type", "application/octet-stream"}}) {
    INFO(name);
    CHECK(HeaderValue(seen, name) == value);
  }
  for (const char* name : {"keep-alive", "te", "upgrade", "proxy-authorization",
                           "proxy-connection", "user-agent"}) {
    INFO(name);
    CHECK_FALSE(HasHeader(seen, name));
  }
  CHECK(HeaderValue(seen, "host") != "ss2.benefits.internal");

  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"content-type", "application/octet-stream"},
           {"cache-control", "private, max-age=60"},
           {"etag", "\"v7\""},
           {"last-modified", "Tue, 01 Dec 2026 06:00:00 GMT"},
           {"expires", "Tue, 01 Dec 2026 07:00:00 GMT"},
           {"vary", "Accept"},
           {"x-backend-note", "n1"}}) {
    INFO(name);
    CHECK(r.Header(name) == value);
  }
  for (const char* name : {"keep-alive", "proxy-authenticate", "upgrade", "trailer", "server"}) {
    INFO(name);
    CHECK(r.headers.count(name) == 0);
  }

  // Any method token travels as it is, with or without a body.
  for (const char* method : {"DELETE", "PUT", "OPTIONS", "PURGE", "X-ARCHIVE"}) {
    INFO(method);
    ClientResult m = Curl({a.Url("/v1/persons/42"), "-X", method, "-H", kClient,
                           "--data-binary", method});
    REQUIRE(m.exit_code == 0);
    CHECK(m.status == 200);
    CHECK(a.backend.last().method == method);
    CHECK(a.backend.last().body == method);
    CHECK(m.body == method);
  }
}

TEST_CASE("REST: a header named in Connection is not forwarded either way", "[rest]") {
  RestAgencies a;
  a.backend.Answer([](const HttpRequest&) {
    return HttpResponse{200, {{"Connection", "X-Backend-Hop"}, {"X-Backend-Hop", "internal"}},
                        "ok"};
  });
  std::vector<ClientResult> answers = RawExchange(
      a.rest_address(),
      absl::StrCat("GET /r1/", kRestServiceId, "/x HTTP/1.1\r\nHost: ss\r\n", kClient,
                   "\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nX-Kept: 1\r\n\r\n"),
      1);
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].status == 200);
  CHECK(HeaderValue(a.backend.last(), "x-kept") == "1");
  CHECK_FALSE(HasHeader(a.backend.last(), "x-hop"));
  CHECK(answers[0].headers.count("x-backend-hop") == 0);
}

TEST_CASE("REST: a gRPC client calling a service with an HTTP backend gets a clear fault",
          "[rest]") {
  RestAgencies a;
  grpc::GenericStub stub(grpc::CreateChannel(a.consumer.client_address(),
                                             grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-road-client", kBenefitsSubsystem);
  ctx.AddMetadata("x-road-service", kTaxSubsystem);
  ctx.AddMetadata("x-road-id", "grpc-to-rest");
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  grpc::Slice slice(std::string("x"));
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  // The service code `persons.Get` is the REST service `persons` at service level.
  stub.UnaryCall(&ctx, "/persons/Get", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  CHECK(status.error_code() == grpc::StatusCode::UNIMPLEMENTED);
  CHECK(ObservedFault(ctx.GetServerTrailingMetadata()) == faults::kUnsupportedCall);
  CHECK(absl::StrContains(status.error_message(), "REST interface"));
  CHECK(a.backend.hits() == 0);
  CHECK(Kinds(Records(a.provider, "grpc-to-rest")) ==
        std::vector<v1::AuditRecordKind>{v1::REFUSAL});
  RequireLogVerifies(a.fed, a.consumer);
}

TEST_CASE("REST: both SSs log a REST exchange, their logs verify, and the metrics count it",
          "[rest]") {
  RestAgencies a;
  ss::MetricsRegistry& consumer_metrics = *a.consumer.node->services().metrics;
  ss::MetricsRegistry& provider_metrics = *a.provider.node->services().metrics;
  const std::string not_hosted_refusals =
      absl::StrCat("darvoza_ss_consumer_refusals_total{fault=\"", faults::kNotAuthorized, "\"}");
  struct Count {
    ss::MetricsRegistry* registry;
    std::string name;
    double before;
  };
  std::vector<Count> counts;
  auto expect = [&](ss::MetricsRegistry& registry, const std::string& name) {
    counts.push_back({&registry, name, registry.Get(name)});
  };
  expect(consumer_metrics, "darvoza_ss_consumer_rest_calls_total");
  expect(consumer_metrics, "darvoza_ss_consumer_exchanges_ok_total");
  expect(consumer_metrics, "darvoza_ss_consumer_service_errors_total");
  expect(consumer_metrics, not_hosted_refusals);
  expect(provider_metrics, "darvoza_ss_provider_calls_total");
  expect(provider_metrics, "darvoza_ss_backend_calls_total");

  a.backend.Answer([](const HttpRequest& request) {
    return absl::StrContains(request.target, "missing")
               ? HttpResponse{404, {}, "no such person"}
               : HttpResponse{200, {}, "found"};
  });
  ClientResult ok = Curl({a.Url("/v1/persons/1"), "-H", kClient, "-H", "X-Road-Id: audit-ok",
                          "-X", "POST", "--data-binary", "body-in"});
  CHECK(ok.status == 200);
  ClientResult missing = Curl({a.Url("/v1/missing"), "-H", kClient, "-H",
                               "X-Road-Id: audit-404"});
  CHECK(missing.status == 404);
  ClientResult refused = Curl({a.Url("/v1/persons/1"), "-H",
                               "X-Road-Client: UZ/GOV/70000001/tax-registry", "-H",
                               "X-Road-Id: audit-refused"});
  CHECK(refused.fault == faults::kNotAuthorized);

  std::vector<v1::AuditRecord> consumer = Records(a.consumer, "audit-ok");
  std::vector<v1::AuditRecord> provider = Records(a.provider, "audit-ok");
  REQUIRE(Kinds(consumer) == std::vector<v1::AuditRecordKind>{v1::REQUEST_OUT, v1::RESPONSE_IN});
  REQUIRE(Kinds(provider) == std::vector<v1::AuditRecordKind>{v1::REQUEST_IN, v1::RESPONSE_OUT});
  CHECK(FormatSecurityServerId(consumer[0].peer_server()) == kProviderId);
  CHECK(FormatSecurityServerId(provider[0].peer_server()) == "UZ/GOV/70000002/ss2");
  // Both SSs logged the same signed request, with its body's hash and length.
  CHECK(consumer[0].envelope() == provider[0].envelope());
  CHECK(consumer[0].signature() == provider[0].signature());
  CHECK(consumer[1].envelope() == provider[1].envelope());
  CHECK(EnvelopeOf(consumer[0]).has_http());
  CHECK(EnvelopeOf(consumer[0]).body_length() == 7);
  CHECK(EnvelopeOf(consumer[0]).body_sha256() == crypto::Sha256("body-in"));
  CHECK(consumer[1].detail() == "HTTP 200");
  CHECK(Records(a.consumer, "audit-404").back().detail() == "HTTP 404");
  CHECK(Records(a.provider, "audit-404").back().detail() == "HTTP 404");
  std::vector<v1::AuditRecord> refusal = Records(a.consumer, "audit-refused");
  REQUIRE(Kinds(refusal) == std::vector<v1::AuditRecordKind>{v1::REFUSAL});
  CHECK(refusal[0].fault_code() == faults::kNotAuthorized);
  CHECK(Records(a.provider, "audit-refused").empty());

  for (const Count& c : counts) {
    INFO(c.name);
    const double expected = c.name == "darvoza_ss_consumer_rest_calls_total" ? 3
                            : c.name == "darvoza_ss_provider_calls_total" ||
                                    c.name == "darvoza_ss_backend_calls_total"
                                ? 2
                                : 1;
    CHECK(c.registry->Get(c.name) - c.before == expected);
  }
  RequireLogVerifies(a.fed, a.consumer);
  RequireLogVerifies(a.fed, a.provider);
}

}  // namespace
}  // namespace darvoza::testing
