// Restart: members, servers, serials, witness heads and history survive.
#include <chrono>

#include <catch2/catch.hpp>

#include "common/globalconf.h"
#include "common/identifiers.h"
#include "registry/keys.h"
#include "registry/store.h"
#include "tests/registry/registry_test_util.h"

namespace darvoza::testing {

TEST_CASE("Restart: members, servers, serials, witness heads and history are intact",
          "[registry][restart]") {
  RegistryHarness h;
  h.AddMember(kMember);
  FakeSecurityServer ss;
  v1::RequestRecord record;
  {
    grpc::ClientContext context;
    REQUIRE(h.RegistrationStub()->Submit(&context, ss.RegistrationRequest(), &record).ok());
  }
  record = h.Approve(record.id());
  const std::string seal_cert = CertOf(record, v1::CERT_KIND_SEAL)->der();
  {
    grpc::ClientContext context;
    v1::SignedWitnessReceipt receipt;
    REQUIRE(h.WitnessStub()->Witness(&context, ss.MakeSeal(1, 10, Hash32('a'), 0, "", seal_cert), &receipt).ok());
  }
  const v1::SignedGlobalConf conf_before = h.GetConf();
  const uint64_t serial_before = Decode(conf_before).serial();
  v1::HistoryList history_before;
  {
    auto context = h.AdminContext();
    REQUIRE(h.AdminStub()->History(context.get(), v1::HistoryRequest(), &history_before).ok());
  }

  h.Stop();
  h.Start();

  // The same configuration is served (it is not yet due for re-signing).
  v1::SignedGlobalConf conf_after = h.GetConf();
  CHECK(conf_after.SerializeAsString() == conf_before.SerializeAsString());
  v1::MemberList members;
  {
    auto context = h.AdminContext();
    REQUIRE(h.AdminStub()->ListMembers(context.get(), v1::AdminEmpty(), &members).ok());
  }
  REQUIRE(members.members_size() == 1);
  CHECK(FormatMemberId(members.members(0).id()) == kMember);
  v1::ServerList servers;
  {
    auto context = h.AdminContext();
    REQUIRE(h.AdminStub()->ListServers(context.get(), v1::AdminEmpty(), &servers).ok());
  }
  REQUIRE(servers.servers_size() == 1);
  CHECK(servers.servers(0).certificates_size() == 3);
  // Requests survive too.
  {
    grpc::ClientContext context;
    v1::RequestStatusQuery query;
    query.set_id(record.id());
    v1::RequestRecord polled;
    REQUIRE(h.RegistrationStub()->GetStatus(&context, query, &polled).ok());
    CHECK(polled.state() == v1::APPROVED);
  }
  // The witness head: a seal starting over is refused, the honest next one accepted.
  {
    grpc::ClientContext context;
    v1::SignedWitnessReceipt receipt;
    grpc::Status status =
        h.WitnessStub()->Witness(&context, ss.MakeSeal(1, 5, Hash32('z'), 0, "", seal_cert), &receipt);
    CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    grpc::ClientContext context;
    v1::SignedWitnessReceipt receipt;
    CHECK(h.WitnessStub()
              ->Witness(&context, ss.MakeSeal(11, 20, Hash32('b'), 10, Hash32('a'), seal_cert), &receipt)
              .ok());
  }
  // Serials keep increasing across the restart.
  h.AddMember("UZ/COM/5");
  v1::SignedGlobalConf next = h.GetConf();
  CHECK(Decode(next).serial() == serial_before + 1);
  CHECK(VerifySignedGlobalConf(next, h.anchor(), h.clock().Now(), serial_before).ok());
  // History: the old entries unchanged, the chain continued.
  v1::HistoryList history_after;
  {
    auto context = h.AdminContext();
    REQUIRE(h.AdminStub()->History(context.get(), v1::HistoryRequest(), &history_after).ok());
  }
  CHECK(history_after.chain_ok());
  REQUIRE(history_after.entries_size() > history_before.entries_size());
  for (int i = 0; i < history_before.entries_size(); ++i) {
    CHECK(history_after.entries(i).SerializeAsString() == history_before.entries(i).SerializeAsString());
  }
}

TEST_CASE("Restart: a history entry changed on disk breaks the chain visibly", "[registry][restart]") {
  RegistryHarness h;
  h.AddMember(kMember);
  h.Stop();
  {
    auto store = registry::RegistryStore::Open(registry::DatabasePath(h.data_dir() + "/reg"), false);
    REQUIRE(store.ok());
    auto rows = (*store)->Scan("hist/");
    REQUIRE(rows.ok());
    REQUIRE(rows->size() >= 3);
    v1::HistoryEntry entry;
    REQUIRE(entry.ParseFromString((*rows)[1].second));
    entry.set_subject("member:UZ/GOV/666");  // rewrite what happened
    registry::StoreBatch batch;
    batch.Put((*rows)[1].first, entry.SerializeAsString());
    REQUIRE((*store)->Write(batch).ok());
  }
  h.Start();
  v1::HistoryList history;
  auto context = h.AdminContext();
  REQUIRE(h.AdminStub()->History(context.get(), v1::HistoryRequest(), &history).ok());
  CHECK_FALSE(history.chain_ok());
}

TEST_CASE("Restart: an expired configuration is re-signed at start", "[registry][restart]") {
  RegistryHarness h;
  const uint64_t serial = Decode(h.GetConf()).serial();
  h.Stop();
  h.clock().Advance(absl::Hours(1));
  h.Start();
  v1::SignedGlobalConf conf = h.GetConf();
  CHECK(Decode(conf).serial() == serial + 1);
  CHECK(VerifySignedGlobalConf(conf, h.anchor(), h.clock().Now()).ok());
}

}  // namespace darvoza::testing
