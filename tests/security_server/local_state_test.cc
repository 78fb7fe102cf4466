// LocalState, StateStore, SsConfig and MetricsRegistry: the node's pieces without a network.
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "security_server/config.h"
#include "security_server/local_state.h"
#include "security_server/metrics.h"
#include "security_server/state_store.h"
#include "tests/test_support.h"

namespace darvoza::ss {
namespace {

v1::LocalClient Client(const std::string& id) {
  v1::LocalClient c;
  *c.mutable_id() = ParseSubsystemId(id).value();
  c.set_auth_mode(v1::IS_AUTH_PLAINTEXT);
  return c;
}

v1::AclEntry Right(const std::string& service, const std::string& subject) {
  v1::AclEntry e;
  *e.mutable_service() = ParseServiceId(service).value();
  *e.mutable_subject() = ParseAclSubject(subject).value();
  return e;
}

TEST_CASE("LocalState: access rights are default deny and follow subjects and groups",
          "[ss][state]") {
  testing::TempDir dir;
  auto store = StateStore::Open(dir.File("state")).value();
  auto state = LocalState::Open(store.get()).value();
  REQUIRE(state->PutClient(Client("UZ/GOV/1/tax")).ok());
  v1::LocalService service;
  *service.mutable_id() = ParseServiceId("UZ/GOV/1/tax/getDebt").value();
  service.set_backend("grpc://127.0.0.1:9000");
  REQUIRE(state->AddService(service).ok());

  const auto caller = ParseSubsystemId("UZ/COM/2/bank").value();
  const auto other = ParseSubsystemId("UZ/COM/3/shop").value();
  const auto svc = ParseServiceId("UZ/GOV/1/tax/getDebt/v1").value();  // version ignored
  CHECK_FALSE(state->IsAllowed(caller, svc, nullptr));

  REQUIRE(state->Grant(Right("UZ/GOV/1/tax/getDebt", "subsystem:UZ/COM/2/bank")).ok());
  CHECK(state->IsAllowed(caller, svc, nullptr));
  CHECK_FALSE(state->IsAllowed(other, svc, nullptr));

  REQUIRE(state->Revoke(Right("UZ/GOV/1/tax/getDebt", "subsystem:UZ/COM/2/bank")).ok());
  CHECK_FALSE(state->IsAllowed(caller, svc, nullptr));
  CHECK(absl::IsNotFound(state->Revoke(Right("UZ/GOV/1/tax/getDebt", "subsystem:UZ/COM/2/bank"))));

  SECTION("member") {
    REQUIRE(state->Grant(Right("UZ/GOV/1/tax/getDebt", "member:UZ/COM/3")).ok());
    CHECK(state->IsAllowed(other, svc, nullptr));
    CHECK_FALSE(state->IsAllowed(caller, svc, nullptr));
  }
  SECTION("local group") {
    v1::LocalGroupId group;
    group.set_group_code("banks");
    REQUIRE(state->AddGroup(group, "banks").ok());
    REQUIRE(state->Grant(Right("UZ/GOV/1/tax/getDebt", "localgroup:banks")).ok());
    CHECK_FALSE(state->IsAllowed(caller, svc, nullptr));
    REQUIRE(state->AddGroupMember(group, caller).ok());
    CHECK(state->IsAllowed(caller, svc, nullptr));
    REQUIRE(state->RemoveGroupMember(group, caller).ok());
    CHECK_FALSE(state->IsAllowed(caller, svc, nullptr));
  }
  SECTION("global group from the configuration") {
    REQUIRE(state->Grant(Right("UZ/GOV/1/tax/getDebt", "globalgroup:UZ/banks")).ok());
    v1::GlobalConf conf;
    auto* g = conf.add_global_groups();
    *g->mutable_id() = ParseGlobalGroupId("UZ/banks").value();
    CHECK_FALSE(state->IsAllowed(caller, svc, &conf));
    *g->add_members() = caller;
    CHECK(state->IsAllowed(caller, svc, &conf));
    CHECK_FALSE(state->IsAllowed(caller, svc, nullptr));
  }
  SECTION("removing the service removes its rights") {
    REQUIRE(state->Grant(Right("UZ/GOV/1/tax/getDebt", "subsystem:UZ/COM/2/bank")).ok());
    REQUIRE(state->RemoveService(svc).ok());
    CHECK(state->ListAcl(nullptr).empty());
    CHECK(darvoza::testing::ObservedFault(state->LookupService(svc).status()) == faults::kUnknownService);
  }
}

TEST_CASE("LocalState: refusals and persistence across reopen", "[ss][state]") {
  testing::TempDir dir;
  {
    auto store = StateStore::Open(dir.File("state")).value();
    auto state = LocalState::Open(store.get()).value();
    v1::LocalService service;
    *service.mutable_id() = ParseServiceId("UZ/GOV/1/tax/getDebt").value();
    service.set_backend("grpc://127.0.0.1:9000");
    CHECK(absl::IsFailedPrecondition(state->AddService(service)));  // not a client yet
    REQUIRE(state->PutClient(Client("UZ/GOV/1/tax")).ok());
    service.set_backend("http://x");
    CHECK(absl::IsInvalidArgument(state->AddService(service)));
    service.set_backend("grpc://127.0.0.1:9000");
    REQUIRE(state->AddService(service).ok());
    CHECK(absl::IsNotFound(state->Grant(Right("UZ/GOV/1/tax/other", "member:UZ/COM/3"))));
    v1::AclEntry bad = Right("UZ/GOV/1/tax/getDebt", "member:UZ/COM/3");
    *bad.mutable_subject()->mutable_server() = ParseSecurityServerId("UZ/COM/3/ss").value();
    CHECK(absl::IsInvalidArgument(state->Grant(bad)));
    REQUIRE(state->Grant(Right("UZ/GOV/1/tax/getDebt", "member:UZ/COM/3")).ok());
    v1::LocalClient tls = Client("UZ/GOV/1/tls");
    tls.set_auth_mode(v1::IS_AUTH_TLS);
    CHECK(absl::IsInvalidArgument(state->PutClient(tls)));  // no pin
  }
  auto store = StateStore::Open(dir.File("state")).value();
  auto state = LocalState::Open(store.get()).value();
  CHECK(state->ListClients().size() == 1);
  CHECK(state->ListServices(nullptr).size() == 1);
  CHECK(state->ListAcl(nullptr).size() == 1);
}

TEST_CASE("LocalState: drops the nonces an older release kept in the state store",
          "[ss][state]") {
  testing::TempDir dir;
  {
    auto store = StateStore::Open(dir.File("state")).value();
    StateBatch batch;
    for (int i = 0; i < 25000; ++i) {  // more than one page of the drop
      batch.Put(absl::StrCat("x/nonce/UZ/GOV/1/ss1/", i), "1700000000000000000");
    }
    REQUIRE(store->Write(batch).ok());
    REQUIRE(LocalState::Open(store.get()).ok());
    CHECK(store->Scan("x/").value().empty());
    REQUIRE(LocalState::Open(store.get()).ok());  // and again, with nothing to drop
  }
}

TEST_CASE("SsConfig: parses, defaults, refuses unknown keys and bad values", "[ss][config]") {
  auto config = ParseSsConfig(
      "data_dir = \"/var/lib/ss\"\nserver_id = \"UZ/GOV/1/ss1\"\n"
      "registry_addresses = [\"r1:4400\", \"r2:4400\"]\nrenewal_margin_seconds = 90\n");
  REQUIRE(config.ok());
  CHECK(config->AnchorPath() == "/var/lib/ss/anchor.bin");
  CHECK(config->AdminSocketPath() == "/var/lib/ss/admin.sock");
  CHECK(config->registry_addresses.size() == 2);
  CHECK(config->renewal_margin == absl::Seconds(90));
  CHECK(config->conf_poll_interval == absl::Seconds(60));
  auto again = ParseSsConfig(FormatSsConfig(*config));
  REQUIRE(again.ok());
  CHECK(again->renewal_margin == absl::Seconds(90));
  CHECK(again->registry_addresses == config->registry_addresses);

  CHECK_FALSE(ParseSsConfig("data_dir = \"/x\"\nserver_id = \"UZ/GOV/1/ss1\"\nbogus = 1\n").ok());
  CHECK_FALSE(ParseSsConfig("data_dir = \"/x\"\n").ok());
  CHECK_FALSE(ParseSsConfig("data_dir = \"/x\"\nserver_id = \"UZ/GOV/ss1\"\n").ok());
  CHECK_FALSE(ParseSsConfig("data_dir = \"/" + std::string(120, 'a') +
                            "\"\nserver_id = \"UZ/GOV/1/ss1\"\n")
                  .ok());  // admin socket path too long
}

TEST_CASE("MetricsRegistry: Prometheus text with types and collectors", "[ss][metrics]") {
  MetricsRegistry metrics;
  metrics.Increment("darvoza_ss_handshake_refusals_total");
  metrics.Increment("darvoza_ss_handshake_refusals_total");
  metrics.AddCollector([](MetricsRegistry& m) {
    m.SetGauge("darvoza_ss_certificate_expiry_seconds{kind=\"auth\"}", 3600);
  });
  std::string text = metrics.RenderText();
  CHECK(text.find("# TYPE darvoza_ss_handshake_refusals_total counter\n"
                  "darvoza_ss_handshake_refusals_total 2\n") != std::string::npos);
  CHECK(text.find("# TYPE darvoza_ss_certificate_expiry_seconds gauge\n"
                  "darvoza_ss_certificate_expiry_seconds{kind=\"auth\"} 3600\n") !=
        std::string::npos);
}

}  // namespace
}  // namespace darvoza::ss
