// The one host:port rule (common/host_port.h), with the forms operators write and the ones a
// hostile registration or configuration file could carry.
#include "common/host_port.h"

#include <catch2/catch.hpp>

namespace darvoza {
namespace {

TEST_CASE("ParseHostPort takes names, IPv4 and bracketed IPv6", "[host_port]") {
  auto a = ParseHostPort("registry.gov.uz:4400");
  REQUIRE(a.ok());
  CHECK(a->host == "registry.gov.uz");
  CHECK(a->port == 4400);
  a = ParseHostPort("0.0.0.0:0");
  REQUIRE(a.ok());
  CHECK(a->host == "0.0.0.0");
  CHECK(a->port == 0);
  a = ParseHostPort("[::1]:65535");
  REQUIRE(a.ok());
  CHECK(a->host == "::1");
  CHECK(a->port == 65535);
  CHECK(FormatHostPort("::1", 5) == "[::1]:5");
  CHECK(FormatHostPort("127.0.0.1", 5) == "127.0.0.1:5");
}

TEST_CASE("ParseHostPort refuses what no listener or dialler can use", "[host_port]") {
  for (const char* bad :
       {"registry.gov.uz", ":4400", "host:", "host:65536", "host:-1", "host:+1", "host:1x",
        "host:123456", "::1:4400", "[::1:4400", "[::1]4400", "[evil.example]:1", "a b:1",
        "a/b:1", "user@host:1", "host\n:1", "ho\x7fst:1", "[]:1", "[::1]:"}) {
    INFO(bad);
    CHECK(ParseHostPort(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("ParseDialAddress also refuses port 0 and very long addresses", "[host_port]") {
  CHECK(ParseDialAddress("ss1.gov.uz:5500").ok());
  CHECK_FALSE(ParseDialAddress("ss1.gov.uz:0").ok());
  CHECK_FALSE(ParseDialAddress(std::string(kMaxDialAddressLength, 'a') + ":1").ok());
}

TEST_CASE("IsLoopbackHost", "[host_port]") {
  CHECK(IsLoopbackHost("127.0.0.1"));
  CHECK(IsLoopbackHost("127.9.9.9"));
  CHECK(IsLoopbackHost("::1"));
  CHECK(IsLoopbackHost("localhost"));
  CHECK_FALSE(IsLoopbackHost("0.0.0.0"));
  CHECK_FALSE(IsLoopbackHost("10.0.0.1"));
  CHECK_FALSE(IsLoopbackHost("127.evil.example"));  // a name DNS may point anywhere
  CHECK_FALSE(IsLoopbackHost("127.0.0.1.evil.example"));
}

}  // namespace
}  // namespace darvoza
