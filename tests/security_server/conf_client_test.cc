// The global configuration client (docs/design.md §6): watch beats a slow poll; forged, older and
// expired configurations are refused and the last good one kept; the registry going away and
// coming back.
#include <catch2/catch.hpp>

#include "common/faults.h"
#include "common/identifiers.h"
#include "common/globalconf.h"
#include "common/files.h"
#include "security_server/global_conf_client.h"
#include "security_server/metrics.h"
#include "tests/security_server/ss_test_util.h"

namespace darvoza::testing {
namespace {

std::unique_ptr<ss::GlobalConfClient> MakeClient(const std::string& data_dir,
                                                 TestRegistry& registry, Clock* clock,
                                                 ss::MetricsRegistry* metrics = nullptr) {
  REQUIRE(darvoza::MakeDirectory(data_dir, 0700).ok());
  ss::GlobalConfClientOptions options;
  options.data_dir = data_dir;
  auto anchor = LoadConfigurationAnchor(registry.anchor_file());
  REQUIRE(anchor.ok());
  options.anchor = *anchor;
  options.registry_addresses = {registry.address()};
  options.poll_interval = absl::Hours(1);
  options.reconnect_delay = absl::Milliseconds(200);
  options.clock = clock;
  options.metrics = metrics;
  auto client = ss::GlobalConfClient::Create(std::move(options));
  INFO(client.status().ToString());
  REQUIRE(client.ok());
  return std::move(*client);
}

uint64_t SerialOf(const ss::GlobalConfClient& client) {
  auto conf = client.LastGood();
  return conf == nullptr ? 0 : conf->serial();
}

void AddMember(TestRegistry& registry, const std::string& member) {
  REQUIRE(registry.registry().AddMember(ParseMemberId(member).value(), member, "admin").ok());
}

TEST_CASE("Conf client: a new serial arrives through the watch despite a one-hour poll",
          "[ss][conf]") {
  TempDir dir;
  SimulatedClock clock(absl::Now());
  TestRegistry registry(dir.path(), &clock, {});
  ss::MetricsRegistry metrics;
  auto client = MakeClient(dir.File("ss"), registry, &clock, &metrics);
  CHECK(absl::IsUnavailable(client->Current().status()));  // nothing yet
  client->Start();
  REQUIRE(WaitFor([&] { return SerialOf(*client) == registry.conf_serial(); }));
  uint64_t first = SerialOf(*client);
  int notified = 0;
  absl::Mutex mu;
  client->AddListener([&](std::shared_ptr<const v1::GlobalConf>) {
    absl::MutexLock lock(&mu);
    ++notified;
  });
  AddMember(registry, "UZ/COM/123");
  REQUIRE(registry.conf_serial() > first);
  REQUIRE(WaitFor([&] { return SerialOf(*client) == registry.conf_serial(); }, absl::Seconds(5)));
  {
    absl::MutexLock lock(&mu);
    CHECK(notified >= 1);
  }
  CHECK(client->registry_reachable());
  CHECK(client->Current().ok());
  std::string text = metrics.RenderText();
  CHECK(text.find("darvoza_ss_globalconf_serial " + std::to_string(registry.conf_serial())) !=
        std::string::npos);
  client->Shutdown();
}

TEST_CASE("Conf client: follows a rolled-over configuration-signing key with the old anchor",
          "[ss][conf]") {
  TempDir dir;
  SimulatedClock clock(absl::Now());
  TestRegistry registry(dir.path(), &clock, {});
  auto client = MakeClient(dir.File("ss"), registry, &clock);  // holds the original anchor
  client->Start();
  REQUIRE(WaitFor([&] { return SerialOf(*client) == registry.conf_serial(); }));
  auto rotated = registry.registry().RotateConfKey("admin");
  INFO(rotated.status().ToString());
  REQUIRE(rotated.ok());
  AddMember(registry, "UZ/COM/7");  // a configuration signed by the new key only
  REQUIRE(WaitFor([&] { return SerialOf(*client) == registry.conf_serial(); }, absl::Seconds(5)));
  client->Shutdown();
}

TEST_CASE("Conf client: forged, older and expired configurations are refused", "[ss][conf]") {
  TempDir dir;
  SimulatedClock clock(absl::Now());
  TestRegistry registry(dir.path(), &clock, {});
  auto client = MakeClient(dir.File("ss"), registry, &clock);  // not started: Offer only
  auto older = registry.registry().CurrentConf();
  AddMember(registry, "UZ/COM/1");
  auto good = registry.registry().CurrentConf();
  REQUIRE(client->Offer(*good).ok());
  const uint64_t good_serial = SerialOf(*client);

  SECTION("forged") {
    v1::SignedGlobalConf forged = *good;
    v1::GlobalConf conf;
    REQUIRE(conf.ParseFromString(forged.conf()));
    conf.set_serial(conf.serial() + 10);
    conf.add_members()->set_name("intruder");
    forged.set_conf(conf.SerializeAsString());
    absl::Status s = client->Offer(forged);
    CHECK(absl::IsUnauthenticated(s));
    CHECK(ObservedFault(s) == faults::kInvalidConfiguration);
  }
  SECTION("older") {
    absl::Status s = client->Offer(*older);
    CHECK(absl::IsFailedPrecondition(s));
  }
  SECTION("expired") {
    AddMember(registry, "UZ/COM/2");
    auto newer = registry.registry().CurrentConf();
    clock.Advance(absl::Seconds(601));
    absl::Status s = client->Offer(*newer);
    CHECK(ObservedFault(s) == faults::kConfigurationExpired);
    CHECK(ObservedFault(client->Current().status()) == faults::kConfigurationExpired);
  }
  CHECK(SerialOf(*client) == good_serial);  // the last good one is kept
  // ... also on disk: a restarted client starts from it.
  client.reset();
  auto restarted = MakeClient(dir.File("ss"), registry, &clock);
  CHECK(SerialOf(*restarted) == good_serial);
}

TEST_CASE("Conf client: works from disk while the registry is down, then reports expiry, then "
          "recovers",
          "[ss][conf]") {
  TempDir dir;
  SimulatedClock clock(absl::Now());
  TestRegistry registry(dir.path(), &clock, {.conf_validity = absl::Seconds(600)});
  auto client = MakeClient(dir.File("ss"), registry, &clock);
  client->Start();
  REQUIRE(WaitFor([&] { return SerialOf(*client) == registry.conf_serial(); }));
  const uint64_t serial = SerialOf(*client);

  registry.Stop();
  REQUIRE(WaitFor([&] { return !client->registry_reachable(); }));
  // A restarted SS starts from its last good copy on disk.
  client.reset();
  client = MakeClient(dir.File("ss"), registry, &clock);
  client->Start();
  REQUIRE(client->Current().ok());
  CHECK((*client->Current())->serial() == serial);
  clock.Advance(absl::Seconds(500));
  CHECK(client->Current().ok());  // still valid
  clock.Advance(absl::Seconds(101));
  absl::Status expired = client->Current().status();
  CHECK(absl::IsFailedPrecondition(expired));
  CHECK(ObservedFault(expired) == faults::kConfigurationExpired);

  registry.Start();  // same port; re-signs a fresh configuration at once
  REQUIRE(WaitFor([&] { return client->Current().ok(); }));
  CHECK(SerialOf(*client) > serial);
  CHECK(client->registry_reachable());
  client->Shutdown();
}

}  // namespace
}  // namespace darvoza::testing
