// Admin: nothing that changes state is reachable without the admin credential.
#include <sys/stat.h>

#include <chrono>
#include <functional>
#include <vector>

#include <catch2/catch.hpp>

#include "common/identifiers.h"
#include "registry/client.h"
#include "tests/registry/registry_test_util.h"

namespace darvoza::testing {
namespace {

struct Snapshot {
  uint64_t serial;
  std::string members;
  std::string servers;
  int history;
  bool operator==(const Snapshot& o) const {
    return serial == o.serial && members == o.members && servers == o.servers && history == o.history;
  }
};

Snapshot Take(RegistryHarness& h) {
  Snapshot s;
  s.serial = Decode(h.GetConf()).serial();
  v1::MemberList members;
  auto c1 = h.AdminContext();
  REQUIRE(h.AdminStub()->ListMembers(c1.get(), v1::AdminEmpty(), &members).ok());
  s.members = members.SerializeAsString();
  v1::ServerList servers;
  auto c2 = h.AdminContext();
  REQUIRE(h.AdminStub()->ListServers(c2.get(), v1::AdminEmpty(), &servers).ok());
  s.servers = servers.SerializeAsString();
  v1::HistoryList history;
  auto c3 = h.AdminContext();
  REQUIRE(h.AdminStub()->History(c3.get(), v1::HistoryRequest(), &history).ok());
  s.history = history.entries_size();
  return s;
}

}  // namespace

TEST_CASE("Admin: every state-changing call without the admin credential is refused and changes nothing",
          "[registry][admin]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  v1::RequestRecord pending;
  {
    grpc::ClientContext context;
    REQUIRE(h.RegistrationStub()->Submit(&context, ss.RegistrationRequest(), &pending).ok());
  }
  const Snapshot before = Take(h);
  auto stub = h.AdminStub();

  v1::AdminMemberRequest member;
  *member.mutable_id() = ParseMemberId("UZ/GOV/123").value();
  v1::AdminMemberRequest existing;
  *existing.mutable_id() = ParseMemberId(kMember).value();
  v1::AdminSubsystemRequest subsystem;
  *subsystem.mutable_id() = ParseSubsystemId("UZ/GOV/70000001/tax").value();
  v1::AdminDecision decision;
  decision.set_request_id(pending.id());
  v1::AdminServerRequest server;
  *server.mutable_id() = ss.id;
  v1::AdminGroupRequest group;
  *group.mutable_id() = ParseGlobalGroupId("UZ/health").value();
  v1::AdminEmpty empty;
  v1::RequestRecord record;
  v1::RotateConfKeyResponse rotated;

  using Call = std::function<grpc::Status(grpc::ClientContext*)>;
  std::vector<std::pair<std::string, Call>> calls = {
      {"AddMember", [&](grpc::ClientContext* c) { return stub->AddMember(c, member, &empty); }},
      {"RemoveMember", [&](grpc::ClientContext* c) { return stub->RemoveMember(c, existing, &empty); }},
      {"AddSubsystem", [&](grpc::ClientContext* c) { return stub->AddSubsystem(c, subsystem, &empty); }},
      {"RemoveSubsystem", [&](grpc::ClientContext* c) { return stub->RemoveSubsystem(c, subsystem, &empty); }},
      {"ApproveRequest", [&](grpc::ClientContext* c) { return stub->ApproveRequest(c, decision, &record); }},
      {"RejectRequest", [&](grpc::ClientContext* c) { return stub->RejectRequest(c, decision, &record); }},
      {"RevokeServer", [&](grpc::ClientContext* c) { return stub->RevokeServer(c, server, &empty); }},
      {"AddGroup", [&](grpc::ClientContext* c) { return stub->AddGroup(c, group, &empty); }},
      {"RemoveGroup", [&](grpc::ClientContext* c) { return stub->RemoveGroup(c, group, &empty); }},
      {"AddGroupMember", [&](grpc::ClientContext* c) { return stub->AddGroupMember(c, group, &empty); }},
      {"RemoveGroupMember", [&](grpc::ClientContext* c) { return stub->RemoveGroupMember(c, group, &empty); }},
      {"RotateConfKey", [&](grpc::ClientContext* c) { return stub->RotateConfKey(c, v1::AdminEmpty(), &rotated); }},
  };
  for (auto& [name, call] : calls) {
    INFO(name);
    grpc::ClientContext none;
    grpc::Status s1 = call(&none);
    CHECK(s1.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(FaultOf(none) == "Client.NotAuthorized");
    grpc::ClientContext wrong;
    registry::AddAdminToken(&wrong, std::string(h.admin_token().size(), '0'));
    grpc::Status s2 = call(&wrong);
    CHECK(s2.error_code() == grpc::StatusCode::UNAUTHENTICATED);  // one rule for both daemons
    CHECK(FaultOf(wrong) == "Client.NotAuthorized");
  }
  // Reads need it too.
  grpc::ClientContext read;
  v1::MemberList list;
  CHECK(stub->ListMembers(&read, v1::AdminEmpty(), &list).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(Take(h) == before);

  // The admin service does not exist on the public port.
  auto public_admin = v1::RegistryAdmin::NewStub(
      registry::MakeRegistryChannel(h.anchor(), h.server().addresses().public_address));
  auto context = h.AdminContext();  // even with the token
  CHECK(public_admin->AddMember(context.get(), member, &empty).error_code() ==
        grpc::StatusCode::UNIMPLEMENTED);
  CHECK(Take(h) == before);

  // The admin socket is mode 0600.
  struct stat st;
  std::string path = h.server().addresses().admin_address.substr(5);
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("Admin: members, subsystems and groups appear in the configuration and the history",
          "[registry][admin]") {
  RegistryHarness h;
  h.AddMember(kMember);
  auto stub = h.AdminStub();
  v1::AdminSubsystemRequest subsystem;
  *subsystem.mutable_id() = ParseSubsystemId("UZ/GOV/70000001/tax").value();
  v1::AdminEmpty empty;
  auto c1 = h.AdminContext();
  REQUIRE(stub->AddSubsystem(c1.get(), subsystem, &empty).ok());
  v1::AdminGroupRequest group;
  *group.mutable_id() = ParseGlobalGroupId("UZ/health").value();
  group.set_description("health agencies");
  auto c2 = h.AdminContext();
  REQUIRE(stub->AddGroup(c2.get(), group, &empty).ok());
  *group.mutable_member() = subsystem.id();
  auto c3 = h.AdminContext();
  REQUIRE(stub->AddGroupMember(c3.get(), group, &empty).ok());
  // Duplicates and unknowns are refused clearly.
  auto c4 = h.AdminContext();
  CHECK(stub->AddGroupMember(c4.get(), group, &empty).error_code() == grpc::StatusCode::ALREADY_EXISTS);
  v1::AdminSubsystemRequest orphan;
  *orphan.mutable_id() = ParseSubsystemId("UZ/GOV/999/x").value();
  auto c5 = h.AdminContext();
  CHECK(stub->AddSubsystem(c5.get(), orphan, &empty).error_code() == grpc::StatusCode::FAILED_PRECONDITION);

  v1::GlobalConf conf = Decode(h.GetConf());
  REQUIRE(conf.global_groups_size() == 1);
  CHECK(conf.global_groups(0).members_size() == 1);
  REQUIRE(conf.members_size() == 1);
  CHECK(conf.members(0).subsystems_size() == 1);

  v1::HistoryList history;
  auto c6 = h.AdminContext();
  REQUIRE(stub->History(c6.get(), v1::HistoryRequest(), &history).ok());
  CHECK(history.chain_ok());
  std::vector<std::string> actions;
  for (const auto& e : history.entries()) actions.push_back(e.action());
  CHECK(actions.front() == "registry.init");
  CHECK(std::count(actions.begin(), actions.end(), "member.add") == 1);
  CHECK(std::count(actions.begin(), actions.end(), "subsystem.add") == 1);
  CHECK(std::count(actions.begin(), actions.end(), "group.add") == 1);
  CHECK(std::count(actions.begin(), actions.end(), "group.add-member") == 1);
  CHECK(std::count(actions.begin(), actions.end(), "conf.publish") == 5);
  for (int i = 1; i < history.entries_size(); ++i) {
    CHECK(history.entries(i).prev_hash() == history.entries(i - 1).hash());
  }
}

}  // namespace darvoza::testing
