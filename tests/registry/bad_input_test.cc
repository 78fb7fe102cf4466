// Bad input: malformed identifiers, oversized requests and garbage CSRs each get a clear error
// and leave the store unchanged.
#include <chrono>

#include <catch2/catch.hpp>

#include "registry/config.h"
#include "tests/registry/registry_test_util.h"

namespace darvoza::testing {
namespace {

std::string StoreFingerprint(RegistryHarness& h) {
  std::string out = h.GetConf().SerializeAsString();
  v1::HistoryList history;
  auto c1 = h.AdminContext();
  REQUIRE(h.AdminStub()->History(c1.get(), v1::HistoryRequest(), &history).ok());
  out += history.SerializeAsString();
  v1::AdminListRequestsRequest all;
  all.set_all(true);
  v1::RequestList requests;
  auto c2 = h.AdminContext();
  REQUIRE(h.AdminStub()->ListRequests(c2.get(), all, &requests).ok());
  out += requests.SerializeAsString();
  return out;
}

struct Outcome {
  grpc::Status status;
  std::string fault;
};

Outcome Submit(RegistryHarness& h, const v1::SubmitRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::RequestRecord record;
  Outcome o;
  o.status = h.RegistrationStub()->Submit(&context, request, &record);
  o.fault = FaultOf(context);
  return o;
}

v1::SubmitRequest WithRegistration(const v1::ServerRegistration& reg) {
  v1::SubmitRequest request;
  request.set_server_registration(reg.SerializeAsString());
  return request;
}

}  // namespace

TEST_CASE("Bad input: each is refused clearly and leaves the store unchanged", "[registry][bad-input]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  const std::string before = StoreFingerprint(h);
  v1::ServerRegistration good;
  REQUIRE(good.ParseFromString(ss.RegistrationRequest().server_registration()));

  SECTION("malformed identifiers over the public port") {
    v1::ServerRegistration reg = good;
    reg.mutable_server()->set_server_code("ss/1");
    Outcome o = Submit(h, WithRegistration(reg));
    CHECK(o.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(o.fault == "Client.InvalidIdentifier");
    reg = good;
    reg.mutable_server()->mutable_owner()->set_member_class("..");
    o = Submit(h, WithRegistration(reg));
    CHECK(o.fault == "Client.InvalidIdentifier");
    v1::SubmitRequest hosting = ss.HostingRequest("UZ/GOV/70000001/tax");
    hosting.mutable_hosting()->mutable_subsystem()->set_subsystem_code("");
    o = Submit(h, hosting);
    CHECK(o.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(o.fault == "Client.InvalidIdentifier");
  }
  SECTION("malformed identifiers over the admin port") {
    v1::AdminMemberRequest member;
    member.mutable_id()->set_instance("UZ");
    member.mutable_id()->set_member_class("G V");
    member.mutable_id()->set_member_code("1");
    v1::AdminEmpty empty;
    auto context = h.AdminContext();
    grpc::Status status = h.AdminStub()->AddMember(context.get(), member, &empty);
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(FaultOf(*context) == "Client.InvalidIdentifier");
    member.mutable_id()->set_member_class("GOV");
    member.mutable_id()->set_instance("EE");
    auto context2 = h.AdminContext();
    status = h.AdminStub()->AddMember(context2.get(), member, &empty);
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(status.error_message().find("not of instance UZ") != std::string::npos);
  }
  SECTION("garbage CSRs") {
    v1::ServerRegistration reg = good;
    reg.mutable_csrs(0)->set_csr("-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n");
    Outcome o = Submit(h, WithRegistration(reg));
    CHECK(o.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(o.fault == "Client.InvalidCertificateRequest");
    CHECK(o.status.error_message().find("auth CSR") != std::string::npos);
    reg = good;
    reg.mutable_csrs(1)->set_csr(std::string(300, '\x30'));
    o = Submit(h, WithRegistration(reg));
    CHECK(o.fault == "Client.InvalidCertificateRequest");
    CHECK(o.status.error_message().find("seal CSR") != std::string::npos);
  }
  SECTION("a request that is not a registration at all") {
    v1::SubmitRequest request;
    request.set_server_registration("\xff\xff\xff garbage");
    Outcome o = Submit(h, request);
    CHECK(o.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(o.fault == "Client.InvalidRequest");
    o = Submit(h, v1::SubmitRequest());
    CHECK(o.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  SECTION("an oversized request") {
    v1::ServerRegistration reg = good;
    reg.mutable_csrs(0)->set_csr(std::string(2 << 20, 'A'));
    Outcome o = Submit(h, WithRegistration(reg));
    CHECK(o.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    // The port is still healthy afterwards.
    CHECK(Submit(h, ss.RegistrationRequest()).status.ok() == true);
    return;  // that last submission did change the store, on purpose
  }
  SECTION("an unknown request id") {
    v1::AdminDecision decision;
    decision.set_request_id("nope");
    v1::RequestRecord record;
    auto context = h.AdminContext();
    grpc::Status status = h.AdminStub()->ApproveRequest(context.get(), decision, &record);
    CHECK(status.error_code() == grpc::StatusCode::NOT_FOUND);
    CHECK(status.error_message().find("request list") != std::string::npos);
  }
  CHECK(StoreFingerprint(h) == before);
}

TEST_CASE("Config: TOML is parsed strictly", "[registry][config]") {
  auto config = registry::ParseRegistryConfig(
      "data_dir = \"/tmp/x\"\npublic_listen = \"127.0.0.1:0\"\nauto_approve = true\n"
      "conf_validity_seconds = 120\n");
  REQUIRE(config.ok());
  CHECK(config->auto_approve);
  CHECK(config->conf_validity == absl::Seconds(120));
  CHECK(config->AdminSocketPath() == "/tmp/x/admin.sock");
  CHECK_FALSE(registry::ParseRegistryConfig("public_listen = \"x\"\n").ok());
  auto unknown = registry::ParseRegistryConfig("data_dir = \"/x\"\nauto_aprove = true\n");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().message().find("auto_aprove") != absl::string_view::npos);
  CHECK_FALSE(registry::ParseRegistryConfig("data_dir = \"/x\"\nconf_validity_seconds = \"long\"\n").ok());
  CHECK_FALSE(registry::ParseRegistryConfig("data_dir = [").ok());
  std::string long_dir(120, 'd');
  CHECK_FALSE(registry::ParseRegistryConfig("data_dir = \"/" + long_dir + "\"\n").ok());
}

}  // namespace darvoza::testing
