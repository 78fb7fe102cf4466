// common/outside_values: the one check of metadata, method paths and status messages from
// outside. The bytes here are the ones gRPC 1.51 aborts on when it sends them.
#include "common/outside_values.h"

#include <catch2/catch.hpp>
#include <string>

#include "common/faults.h"
#include "tests/test_support.h"

namespace darvoza {
namespace {

TEST_CASE("ValidateMetadataEntry: printable ASCII, bounded, strict keys", "[outside_values]") {
  CHECK(ValidateMetadataEntry("x-road-id", "abc-123 ~!").ok());
  CHECK(ValidateMetadataEntry("authorization", "Bearer eyJhbGciOi.x_y").ok());
  CHECK(ValidateMetadataEntry("x-trace-bin", std::string("\0\xff\n", 3)).ok());
  CHECK(ValidateMetadataEntry("x-road-id", "").ok());
  CHECK(ValidateMetadataEntry("x-custom", std::string(kMaxMetadataValueBytes, 'a')).ok());
  CHECK(ValidateMetadataEntry("x-road-id", std::string(kMaxProtocolValueBytes, 'a')).ok());

  for (const std::string& bad :
       {std::string("a\tb"), std::string("a\0b", 3), std::string("a\r\nb"), std::string("\x7f"),
        std::string("\x01"), std::string("\xff\xfe"), std::string("\xc3\xa9")}) {
    absl::Status s = ValidateMetadataEntry("x-road-id", bad);
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK(darvoza::testing::ObservedFault(s) == faults::kInvalidRequest);
    // The refused value is never quoted back.
    CHECK(s.message().find(bad) == absl::string_view::npos);
  }
  CHECK_FALSE(ValidateMetadataEntry("x-road-id", std::string(kMaxProtocolValueBytes + 1, 'a')).ok());
  CHECK_FALSE(ValidateMetadataEntry("x-custom", std::string(kMaxMetadataValueBytes + 1, 'a')).ok());
  CHECK_FALSE(ValidateMetadataEntry("x-bin", std::string(kMaxMetadataValueBytes + 1, 'a')).ok());
  for (const char* key : {"", "X-Upper", "with space", ":path", "a\nb", "x/y"}) {
    CHECK_FALSE(ValidateMetadataEntry(key, "v").ok());
  }
  CHECK_FALSE(ValidateMetadataEntry(std::string(kMaxMetadataKeyBytes + 1, 'k'), "v").ok());
}

TEST_CASE("ServiceCodeFromMethodPath: /pkg.Svc/Method only, and back", "[outside_values]") {
  auto code = ServiceCodeFromMethodPath("/darvoza.examples.v1.TaxRegistry/GetTaxDebt");
  REQUIRE(code.ok());
  CHECK(*code == "darvoza.examples.v1.TaxRegistry.GetTaxDebt");
  auto path = MethodPathFromServiceCode(*code);
  REQUIRE(path.ok());
  CHECK(*path == "/darvoza.examples.v1.TaxRegistry/GetTaxDebt");
  CHECK(ServiceCodeFromMethodPath("/Svc/M").ok());
  CHECK(ServiceCodeFromMethodPath("/_a._b/_c9").ok());

  for (const std::string& bad :
       std::initializer_list<std::string>{"", "/", "//", "/a/", "//M", "a.B/M", "/a.B/M/", "/a.B/M/x", "/../a/M", "/a..B/M",
        "/.a/M", "/a./M", "/a.B/1M", "/9a/M", "/a-b/M", "/a.B/M;x", "/a.B/M x", "/a.B/M\t",
        "/a.B/M\n", "/a.B/\xc3\xa9", "/a.B/M?x=1", "/a.B/M%20", std::string("/a.B/M\0", 7)}) {
    absl::Status s = ServiceCodeFromMethodPath(bad).status();
    INFO(bad);
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK(darvoza::testing::ObservedFault(s) == faults::kInvalidRequest);
  }
  CHECK_FALSE(
      ServiceCodeFromMethodPath("/a." + std::string(kMaxMethodPathBytes, 'b') + "/C").ok());
  CHECK_FALSE(MethodPathFromServiceCode("NoDot").ok());
  CHECK_FALSE(MethodPathFromServiceCode("a..b").ok());
  CHECK_FALSE(MethodPathFromServiceCode("a.b-c.d").ok());
}

TEST_CASE("ValidateStatusMessage: UTF-8 without control characters, bounded",
          "[outside_values]") {
  CHECK(ValidateStatusMessage("").ok());
  CHECK(ValidateStatusMessage("not found\twith tab").ok());
  CHECK(ValidateStatusMessage("\xd0\xbd\xd0\xb5\xd1\x82 \xe2\x82\xac \xf0\x9f\x98\x80").ok());
  for (const std::string& bad :
       {std::string("line\nbreak"), std::string("nul\0", 4), std::string("\x1b[2J"),
        std::string("\x7f"), std::string("caf\xe9"), std::string("\xc0\xaf"),
        std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"), std::string("\xe2\x82")}) {
    CHECK_FALSE(ValidateStatusMessage(bad).ok());
  }
  CHECK(ValidateStatusMessage(std::string(kMaxStatusMessageBytes, 'm')).ok());
  CHECK_FALSE(ValidateStatusMessage(std::string(kMaxStatusMessageBytes + 1, 'm')).ok());
}

TEST_CASE("HTTP request parts: method, path under a base, query", "[outside_values]") {
  for (const char* method : {"GET", "POST", "PROPFIND", "M-SEARCH"}) {
    CHECK(ValidateHttpMethod(method).ok());
  }
  for (const char* method : {"", "GE T", "GET\r", "G(ET"}) {
    INFO(method);
    CHECK(darvoza::testing::ObservedFault(ValidateHttpMethod(method)) == faults::kInvalidRequest);
  }
  CHECK_FALSE(ValidateHttpMethod(std::string(kMaxHttpMethodBytes + 1, 'G')).ok());

  for (const char* path : {"", "/", "/v1/persons/42", "/a%20b", "/a..b/c.d", "/x%2Fy"}) {
    INFO(path);
    CHECK(ValidateHttpPath(path).ok());
  }
  for (const char* path : {"v1", "/..", "/a/../b", "/./a", "/%2e%2E/a", "/a/..%2Fb",
                           "/a/%2E%2E%5Cb", "/a b", "/a?b", "/a#b", "/a\\b", "/a%zz", "/a%2", "/caf\xc3\xa9"}) {
    INFO(path);
    CHECK_FALSE(ValidateHttpPath(path).ok());
  }
  CHECK_FALSE(ValidateHttpPath("/" + std::string(kMaxHttpTargetBytes, 'p')).ok());
  CHECK(ValidateHttpQuery("a=1&b=%20x&c").ok());
  CHECK_FALSE(ValidateHttpQuery("a=1#frag").ok());
  CHECK_FALSE(ValidateHttpQuery("a= 1").ok());
}

TEST_CASE("DecodeIdentifierPart: decoded once, then the identifier rule", "[outside_values]") {
  CHECK(*DecodeIdentifierPart("tax%2Dregistry") == "tax-registry");
  CHECK(*DecodeIdentifierText("UZ/GOV/7000%30001/benefits") == "UZ/GOV/70000001/benefits");
  for (const char* bad : {"a%2Fb", "a%252Db", "%2E%2E", "a%00b", "a%zz", "a%2", "", "a b"}) {
    INFO(bad);
    CHECK(darvoza::testing::ObservedFault(DecodeIdentifierPart(bad).status()) ==
          faults::kInvalidIdentifier);
  }
  CHECK_FALSE(DecodeIdentifierText("UZ//GOV").ok());
}

}  // namespace
}  // namespace darvoza
