#include "common/identifiers.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "common/faults.h"
#include "tests/test_support.h"

namespace darvoza {
namespace {

TEST_CASE("Identifiers: valid text forms parse and format back", "[identifiers]") {
  auto member = ParseMemberId("UZ/GOV/70000001");
  REQUIRE(member.ok());
  CHECK(member->instance() == "UZ");
  CHECK(member->member_class() == "GOV");
  CHECK(member->member_code() == "70000001");
  CHECK(FormatMemberId(*member) == "UZ/GOV/70000001");

  auto subsystem = ParseSubsystemId("UZ/GOV/70000001/tax-registry");
  REQUIRE(subsystem.ok());
  CHECK(subsystem->subsystem_code() == "tax-registry");
  CHECK(FormatSubsystemId(*subsystem) == "UZ/GOV/70000001/tax-registry");

  auto service = ParseServiceId("UZ/GOV/70000001/tax-registry/getTaxDebt/v1");
  REQUIRE(service.ok());
  CHECK(service->service_code() == "getTaxDebt");
  CHECK(service->service_version() == "v1");
  CHECK(FormatServiceId(*service) == "UZ/GOV/70000001/tax-registry/getTaxDebt/v1");
  auto unversioned = ParseServiceId("UZ/GOV/70000001/tax-registry/getTaxDebt");
  REQUIRE(unversioned.ok());
  CHECK(unversioned->service_version().empty());

  auto server = ParseSecurityServerId("UZ/GOV/70000001/ss1");
  REQUIRE(server.ok());
  CHECK(server->server_code() == "ss1");
  CHECK(FormatSecurityServerId(*server) == "UZ/GOV/70000001/ss1");

  auto group = ParseGlobalGroupId("UZ/health-agencies");
  REQUIRE(group.ok());
  CHECK(FormatGlobalGroupId(*group) == "UZ/health-agencies");
  CHECK(ParseLocalGroupId("auditors_2026").ok());

  // Dotted parts that are not exactly "." or ".." are fine.
  CHECK(ParseMemberId("UZ-TEST/COM/a.b..c").ok());
  CHECK(ParseMemberId(std::string("UZ/GOV/") + std::string(255, 'x')).ok());
}

TEST_CASE("Identifiers: text -> proto -> bytes -> proto -> text round trips", "[identifiers]") {
  for (const char* text : {"UZ/GOV/70000001/tax-registry/getTaxDebt/v1",
                           "UZ-TEST/COM/123/x/pkg.Svc.Method", "UZ/NGO/1/a_b/c-d"}) {
    auto parsed = ParseServiceId(text);
    REQUIRE(parsed.ok());
    std::string bytes = parsed->SerializeAsString();
    ServiceId back;
    REQUIRE(back.ParseFromString(bytes));
    CHECK(SameService(back, *parsed));
    CHECK(FormatServiceId(back) == text);
    CHECK(ValidateServiceId(back).ok());
  }
}

TEST_CASE("Identifiers: malformed forms are INVALID_ARGUMENT with the fault code",
          "[identifiers]") {
  const std::vector<std::string> bad_subsystems = {
      "",
      "/",
      "UZ",
      "UZ/GOV",
      "UZ/GOV/70000001",
      "UZ/GOV/70000001/tax/extra",
      "UZ/GOV/70000001/",
      "/UZ/GOV/70000001/tax",
      "UZ//70000001/tax",
      "UZ/GOV/70000001//tax",
      "UZ/GOV/70000001/tax/",
      "UZ/GOV/70000001/tax//",
      "UZ/GOV/./tax",
      "UZ/GOV/../tax",
      "UZ/GOV/70000001/..",
      "./GOV/70000001/tax",
      "UZ/GOV/70000001/tax registry",
      "UZ/GOV/70000001/tax\tregistry",
      "UZ/GOV/70000001/tax\nregistry",
      std::string("UZ/GOV/70000001/tax\0x", 21),
      std::string("UZ/GOV/7000\0" "001/tax", 19),
      "UZ/GOV/70000001/tax%2Fregistry",
      "UZ/GOV/70000001/%2e%2e",
      "UZ/GOV/70000001/tax?x=1",
      "UZ/GOV/70000001/tax#frag",
      "UZ/GOV/70000001/tax;x",
      "UZ/GOV/70000001/tax\\registry",
      "UZ/GOV/70000001/t\xd0\xb0x",          // Cyrillic 'а' looks like Latin 'a'
      "UZ/G\xce\x9fV/70000001/tax",          // Greek Omicron looks like 'O'
      "UZ/GOV/70000001/tax\xef\xbc\x8fx",    // fullwidth solidus
      "UZ/GOV/70000001/tax\xe2\x80\x8b",     // zero-width space
      "UZ/GOV/70000001/" + std::string(256, 'a'),
      "UZ/GOV/70000001/ tax",
      "UZ/GOV/70000001/tax:x",
      "UZ/GOV/70000001/t*x",
  };
  REQUIRE(bad_subsystems.size() >= 30);
  for (const std::string& text : bad_subsystems) {
    INFO("input: " << text);
    auto parsed = ParseSubsystemId(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(darvoza::testing::ObservedFault(parsed.status()) == "Client.InvalidIdentifier");
    CHECK_FALSE(parsed.status().message().empty());
  }
  // Wrong part counts for the other kinds.
  CHECK_FALSE(ParseMemberId("UZ/GOV").ok());
  CHECK_FALSE(ParseMemberId("UZ/GOV/1/2").ok());
  CHECK_FALSE(ParseServiceId("UZ/GOV/1/sub").ok());
  CHECK_FALSE(ParseServiceId("UZ/GOV/1/sub/svc/v1/extra").ok());
  CHECK_FALSE(ParseSecurityServerId("UZ/GOV/1").ok());
  CHECK_FALSE(ParseGlobalGroupId("UZ").ok());
  CHECK_FALSE(ParseGlobalGroupId("UZ/a/b").ok());
  CHECK_FALSE(ParseLocalGroupId("a/b").ok());
  CHECK_FALSE(ParseLocalGroupId("").ok());
}

TEST_CASE("Identifiers: ReadIdentifier names every kind a text can be", "[identifiers]") {
  auto four = ReadIdentifier("UZ/GOV/70000001/ss1");
  REQUIRE(four.ok());
  REQUIRE(four->size() == 2);
  CHECK((*four)[0].kind == IdentifierKind::kSubsystem);
  CHECK((*four)[1].kind == IdentifierKind::kSecurityServer);
  CHECK((*four)[1].part_names.back() == "server code");

  auto prefixed = ReadIdentifier("server:UZ/GOV/70000001/ss1");
  REQUIRE(prefixed.ok());
  REQUIRE(prefixed->size() == 1);
  CHECK((*prefixed)[0].kind == IdentifierKind::kSecurityServer);

  auto one = ReadIdentifier("auditors");
  REQUIRE(one.ok());
  REQUIRE(one->size() == 1);
  CHECK((*one)[0].kind == IdentifierKind::kLocalGroup);

  auto six = ReadIdentifier("UZ/GOV/1/sub/svc/v2");
  REQUIRE(six.ok());
  REQUIRE(six->size() == 1);
  CHECK((*six)[0].kind == IdentifierKind::kService);
  CHECK((*six)[0].parts[5] == "v2");

  CHECK_FALSE(ReadIdentifier("UZ/GOV/1/a/b/c/d").ok());
  CHECK_FALSE(ReadIdentifier("thing:UZ/GOV/1").ok());
  CHECK_FALSE(ReadIdentifier("member:UZ/GOV/1/x").ok());
  CHECK_FALSE(ReadIdentifier(":UZ/GOV/1").ok());
  CHECK_FALSE(ReadIdentifier("UZ/GOV/1/x y").ok());
}

TEST_CASE("Identifiers: ACL subjects need a known prefix", "[identifiers]") {
  for (const char* text :
       {"subsystem:UZ/GOV/1/tax", "member:UZ/GOV/1", "globalgroup:UZ/health",
        "localgroup:auditors", "server:UZ/GOV/1/ss1"}) {
    auto subject = ParseAclSubject(text);
    REQUIRE(subject.ok());
    CHECK(FormatAclSubject(*subject) == text);
  }
  CHECK_FALSE(ParseAclSubject("UZ/GOV/1/tax").ok());
  CHECK_FALSE(ParseAclSubject("Subsystem:UZ/GOV/1/tax").ok());
  CHECK_FALSE(ParseAclSubject("service:UZ/GOV/1/tax/svc").ok());
  CHECK_FALSE(ParseAclSubject("member:UZ/GOV/1/tax").ok());
  CHECK(darvoza::testing::ObservedFault(ParseAclSubject("group:x").status()) == "Client.InvalidIdentifier");
}

TEST_CASE("Identifiers: structured ids from peers are validated", "[identifiers]") {
  SubsystemId id;
  id.mutable_member()->set_instance("UZ");
  id.mutable_member()->set_member_class("GOV");
  id.mutable_member()->set_member_code("1");
  id.set_subsystem_code("tax");
  CHECK(ValidateSubsystemId(id).ok());
  id.set_subsystem_code("tax/../../etc");
  CHECK_FALSE(ValidateSubsystemId(id).ok());
  id.set_subsystem_code("");
  CHECK_FALSE(ValidateSubsystemId(id).ok());
  ServiceId service;
  *service.mutable_subsystem() = id;
  service.mutable_subsystem()->set_subsystem_code("tax");
  service.set_service_code("get/Debt");
  CHECK_FALSE(ValidateServiceId(service).ok());
}

}  // namespace
}  // namespace darvoza
