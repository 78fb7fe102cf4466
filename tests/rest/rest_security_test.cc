// Hostile requests on the REST port (the `security` label): malformed and oversized URIs and
// headers, smuggling shapes, CR/LF injection, bytes that are not UTF-8 or not ASCII. Each gets
// its documented answer, nothing reaches the backend, and both audit logs still verify.
#include <catch2/catch.hpp>

#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/faults.h"
#include "proto/envelope.pb.h"
#include "security_server/exchange/consumer_exchange.h"
#include "tests/rest/rest_fixture.h"
#include "tests/test_support.h"

namespace darvoza::testing {
namespace {

const std::string kClient = absl::StrCat("X-Road-Client: ", kBenefitsSubsystem);

// Sends one raw request and expects the server's answer to it.
ClientResult RawOne(const RestAgencies& a, const std::string& request) {
  std::vector<ClientResult> answers = RawExchange(a.rest_address(), request, 1);
  REQUIRE(answers.size() == 1);
  return answers[0];
}

std::string Get(const std::string& target, const std::string& extra_headers = "") {
  return absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: ss\r\n", kClient, "\r\n",
                      extra_headers, "\r\n");
}

// The refusal's shape: status, fault in X-Road-Error, JSON body with the same type.
void CheckRefused(const ClientResult& r, int status, absl::string_view fault) {
  CHECK(r.status == status);
  CHECK(r.fault == fault);
  CHECK(r.Header("content-type") == "application/json;charset=utf-8");
  CHECK(absl::StrContains(r.body, absl::StrCat("\"type\":\"", fault, "\"")));
}

struct Hostile {
  RestAgencies a;
  ~Hostile() {
    CHECK(a.backend.hits() == 0);
    RequireLogVerifies(a.fed, a.consumer);
    RequireLogVerifies(a.fed, a.provider);
  }
};

TEST_CASE("REST security: a request without X-Road-Client is refused", "[rest][security]") {
  Hostile h;
  ClientResult r = Curl({h.a.Url("/x")});
  REQUIRE(r.exit_code == 0);
  CheckRefused(r, 400, faults::kInvalidRequest);
  CHECK(absl::StrContains(r.body, "X-Road-Client"));
}

TEST_CASE("REST security: a path that is not /r1/ plus five parts is refused",
          "[rest][security]") {
  Hostile h;
  ClientResult v2 = Curl({absl::StrCat("http://", h.a.rest_address(), "/r2/", kRestServiceId),
                          "-H", kClient});
  CheckRefused(v2, 400, faults::kInvalidRequest);
  ClientResult four = Curl({absl::StrCat("http://", h.a.rest_address(), "/r1/", kTaxSubsystem),
                            "-H", kClient});
  CheckRefused(four, 400, faults::kInvalidIdentifier);
  ClientResult empty_part = Curl({absl::StrCat("http://", h.a.rest_address(),
                                               "/r1/UZ//70000001/tax-registry/persons"),
                                  "-H", kClient});
  CheckRefused(empty_part, 400, faults::kInvalidIdentifier);
}

TEST_CASE("REST security: parts are percent-decoded once, and %2F inside a part is refused",
          "[rest][security]") {
  RestAgencies a;
  const std::string base = absl::StrCat("http://", a.rest_address(), "/r1/UZ/GOV/70000001/");
  for (const char* part : {"tax%2Fregistry/persons", "tax-registry/per%2Fsons",
                           "tax%252Dregistry/persons", "tax-registry/per%00sons",
                           "tax-registry/%2E%2E", "tax-registry/per%zzsons"}) {
    INFO(part);
    ClientResult r = Curl({base + part, "-H", kClient, "--path-as-is"});
    REQUIRE(r.exit_code == 0);
    CheckRefused(r, 400, faults::kInvalidIdentifier);
  }
  CHECK(a.backend.hits() == 0);
  // One decoding is applied: %2D is '-', so this is the real service.
  ClientResult decoded = Curl({base + "tax%2Dregistry/persons/x", "-H", kClient});
  CHECK(decoded.status == 200);
  CHECK(decoded.Header("x-road-service") == kRestServiceId);
  CHECK(a.backend.hits() == 1);
  RequireLogVerifies(a.fed, a.consumer);
}

TEST_CASE("REST security: bare CR or LF inside a header is refused", "[rest][security]") {
  Hostile h;
  const std::string target = absl::StrCat("/r1/", kRestServiceId, "/x");
  ClientResult cr = RawOne(h.a, Get(target, "X-Road-Id: a\rX-Injected: 1\r\n"));
  CheckRefused(cr, 400, faults::kInvalidRequest);
  ClientResult lf = RawOne(h.a, Get(target, "X-Road-Id: a\nX-Injected: 1\r\n"));
  CheckRefused(lf, 400, faults::kInvalidRequest);
}

TEST_CASE("REST security: a path that climbs out of the backend's base is refused",
          "[rest][security]") {
  Hostile h;
  for (const char* path : {"/v1/../../admin", "/v1/%2e%2e/admin", "/v1/..%2Fadmin",
                           "/./x", "/v1/%2E%2E%5Cadmin"}) {
    INFO(path);
    ClientResult r = Curl({h.a.Url(path), "-H", kClient, "--path-as-is"});
    REQUIRE(r.exit_code == 0);
    CheckRefused(r, 400, faults::kInvalidRequest);
  }
}

TEST_CASE("REST security: request smuggling shapes are refused", "[rest][security]") {
  Hostile h;
  const std::string head =
      absl::StrCat("POST /r1/", kRestServiceId, "/x HTTP/1.1\r\nHost: ss\r\n", kClient, "\r\n");
  for (const char* shape :
       {"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding: gzip\r\n\r\nGET /r1/x HTTP/1.1\r\n\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"}) {
    INFO(shape);
    CheckRefused(RawOne(h.a, head + shape), 400, faults::kInvalidRequest);
  }
}

TEST_CASE("REST security: oversized URIs and headers are refused", "[rest][security]") {
  Hostile h;
  ClientResult uri = RawOne(h.a, Get(absl::StrCat("/r1/", kRestServiceId, "/",
                                                  std::string(5000, 'a'))));
  CheckRefused(uri, 400, faults::kInvalidRequest);
  ClientResult headers = RawOne(
      h.a, Get(absl::StrCat("/r1/", kRestServiceId),
               absl::StrCat("X-Big: ", std::string(20000, 'b'), "\r\n")));
  CheckRefused(headers, 400, faults::kInvalidRequest);
  ClientResult id = Curl({h.a.Url("/x"), "-H", kClient, "-H",
                          absl::StrCat("X-Road-Id: ", std::string(300, 'i'))});
  CheckRefused(id, 400, faults::kInvalidRequest);
  std::string many;
  for (int i = 0; i < 70; ++i) absl::StrAppend(&many, "X-H", i, ": v\r\n");
  ClientResult count = RawOne(h.a, Get(absl::StrCat("/r1/", kRestServiceId), many));
  CheckRefused(count, 400, faults::kInvalidRequest);
}

TEST_CASE("REST security: bytes outside ASCII, raw or percent-encoded, are refused",
          "[rest][security]") {
  Hostile h;
  const std::string target = absl::StrCat("/r1/", kRestServiceId, "/x");
  // Not UTF-8 / not ASCII in a header value, in the path, and in X-Road-Client.
  ClientResult value = RawOne(h.a, Get(target, "X-Note: caf\xe9\r\n"));
  CheckRefused(value, 400, faults::kInvalidRequest);
  ClientResult path = RawOne(h.a, Get(absl::StrCat(target, "/\xff\xfe")));
  CHECK(path.status == 400);
  CHECK(!path.fault.empty());
  ClientResult client = RawOne(
      h.a, absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: ss\r\nX-Road-Client: UZ/GOV/"
                                        "7000000\xc3\x28/benefits\r\n\r\n"));
  CheckRefused(client, 400, faults::kInvalidRequest);
  ClientResult encoded = Curl({h.a.Url("/x"), "-H",
                               "X-Road-Client: UZ/GOV/70000002/bene%0D%0Afits"});
  CheckRefused(encoded, 400, faults::kInvalidIdentifier);
}

TEST_CASE("REST security: a header whose name ends in -bin holds printable ASCII like any other",
          "[rest][security]") {
  // gRPC base64-encodes metadata whose key ends in -bin; HTTP sends header bytes as they are.
  Hostile h;
  const std::string target = absl::StrCat("/r1/", kRestServiceId, "/x");
  ClientResult high = RawOne(h.a, Get(target, "X-Data-Bin: caf\xe9\r\n"));
  CheckRefused(high, 400, faults::kInvalidRequest);
  ClientResult tab = RawOne(h.a, Get(target, "X-Data-Bin: a\tb\r\n"));
  CheckRefused(tab, 400, faults::kInvalidRequest);
}

TEST_CASE("REST security: a backend header that is not printable ASCII is not passed on",
          "[rest][security]") {
  RestAgencies a;
  // (The backend's own HTTP server never sends control bytes, so only high ones are tried.)
  for (const char* value : {"caf\xe9", "\xff\xfe"}) {
    INFO(value);
    a.backend.Answer([value](const HttpRequest&) {
      return HttpResponse{200, {{"X-Data-Bin", value}}, "ok"};
    });
    ClientResult r = Curl({a.Url("/x"), "-H", kClient});
    REQUIRE(r.exit_code == 0);
    CheckRefused(r, 500, faults::kServiceFailed);
    CHECK(absl::StrContains(r.body, "cannot be passed on"));
  }
  RequireLogVerifies(a.fed, a.consumer);
  RequireLogVerifies(a.fed, a.provider);
}

TEST_CASE("REST security: X-Road headers given twice are refused", "[rest][security]") {
  Hostile h;
  ClientResult r = Curl({h.a.Url("/x"), "-H", kClient, "-H",
                         "X-Road-Client: UZ/GOV/70000001/tax-registry"});
  CheckRefused(r, 400, faults::kInvalidRequest);
}

TEST_CASE("REST security: a client that is not hosted here, or not who it claims, is refused",
          "[rest][security]") {
  Hostile h;
  ClientResult other = Curl({h.a.Url("/x"), "-H", "X-Road-Client: UZ/GOV/70000001/tax-registry"});
  CheckRefused(other, 400, faults::kNotAuthorized);
}

// The kinds of `records`, in log order.
std::vector<v1::AuditRecordKind> Kinds(const std::vector<v1::AuditRecord>& records) {
  std::vector<v1::AuditRecordKind> kinds;
  for (const v1::AuditRecord& r : records) kinds.push_back(r.kind());
  return kinds;
}

TEST_CASE("REST security: access rights: never granted is refused, a grant lets in, a revoke "
          "refuses again",
          "[rest][security]") {
  RestAgencies a;
  // A second subsystem of the same member, hosted by the same consumer SS, with no right yet.
  const std::string pensions = "UZ/GOV/70000002/pensions";
  a.fed.AddSubsystem(pensions);
  a.fed.Host(a.consumer, pensions);
  a.fed.WaitForConfEverywhere();
  auto call = [&](const std::string& id) {
    ClientResult r = Curl({a.Url("/v1/persons/7"), "-X", "POST", "-H", "X-Road-Client: " + pensions,
                           "-H", "X-Road-Id: " + id, "--data-binary", "{}"});
    REQUIRE(r.exit_code == 0);
    return r;
  };
  const std::string service = absl::StrCat(kRestServiceId);
  const std::string subject = "subsystem:" + pensions;

  ClientResult never = call("acl-never");
  CheckRefused(never, 500, faults::kAccessDenied);
  CHECK(never.Header("x-road-id") == "acl-never");
  CHECK(absl::StrContains(never.body, "has no access right"));
  CHECK(a.backend.hits() == 0);
  // The provider refused after logging the request; the consumer logged the refusal it got.
  CHECK(Kinds(Records(a.provider, "acl-never")) ==
        std::vector<v1::AuditRecordKind>{v1::REFUSAL});
  std::vector<v1::AuditRecord> consumer_never = Records(a.consumer, "acl-never");
  REQUIRE(Kinds(consumer_never) ==
          std::vector<v1::AuditRecordKind>{v1::REQUEST_OUT, v1::REFUSAL});
  CHECK(consumer_never[1].fault_code() == faults::kAccessDenied);

  a.fed.Grant(a.provider, service, subject);
  ClientResult granted = call("acl-granted");
  CHECK(granted.status == 200);
  CHECK(granted.fault.empty());
  CHECK(a.backend.HitsFor("acl-granted") == 1);
  CHECK(HeaderValue(a.backend.last(), "x-road-client") == pensions);

  a.fed.Revoke(a.provider, service, subject);
  ClientResult revoked = call("acl-revoked");
  CheckRefused(revoked, 500, faults::kAccessDenied);
  CHECK(a.backend.hits() == 1);
  // The right of `benefits` was never touched.
  ClientResult other = Curl({a.Url("/v1/persons/7"), "-H", kClient});
  CHECK(other.status == 200);
  CHECK(a.backend.hits() == 2);

  RequireLogVerifies(a.fed, a.consumer);
  RequireLogVerifies(a.fed, a.provider);
}

// Installs a stand-in for whatever lies between the two SSs for one scope.
class WireHook {
 public:
  explicit WireHook(std::function<void(v1::SignedMessage&)> hook) {
    ss::exchange::SetOutgoingRequestHookForTest(std::move(hook));
  }
  ~WireHook() { ss::exchange::SetOutgoingRequestHookForTest(nullptr); }
};

TEST_CASE("REST security: a signed REST request replayed at the provider is refused",
          "[rest][security]") {
  RestAgencies a;
  auto call = [&](const std::string& id) {
    ClientResult r = Curl({a.Url("/v1/transfer"), "-X", "POST", "-H", kClient, "-H",
                           "X-Road-Id: " + id, "--data-binary", "amount=100"});
    REQUIRE(r.exit_code == 0);
    return r;
  };
  v1::SignedMessage first;
  {
    WireHook record([&](v1::SignedMessage& m) { first = m; });
    REQUIRE(call("replay-1").status == 200);
  }
  REQUIRE(a.backend.hits() == 1);
  v1::Envelope envelope;
  REQUIRE(envelope.ParseFromString(first.envelope()));
  REQUIRE(envelope.has_http());

  // The same X-Road-Id from the client is no replay: each exchange has its own nonce.
  CHECK(call("replay-1").status == 200);
  CHECK(a.backend.HitsFor("replay-1") == 2);

  // The first exchange's signed bytes, sent again in place of a new request.
  {
    WireHook replay([&](v1::SignedMessage& m) { m = first; });
    ClientResult replayed = call("replay-2");
    CheckRefused(replayed, 500, faults::kReplayedMessage);
    // Also after the provider restarted: seen nonces are durable.
    a.fed.RestartSecurityServer(a.provider);
    a.fed.WaitForConfEverywhere();
    CheckRefused(call("replay-3"), 500, faults::kReplayedMessage);
  }
  CHECK(a.backend.hits() == 2);
  std::vector<v1::AuditRecord> refused = Records(a.consumer, "replay-2");
  REQUIRE(!refused.empty());
  CHECK(refused.back().kind() == v1::REFUSAL);
  CHECK(refused.back().fault_code() == faults::kReplayedMessage);
  RequireLogVerifies(a.fed, a.consumer);
  RequireLogVerifies(a.fed, a.provider);
}

}  // namespace
}  // namespace darvoza::testing
