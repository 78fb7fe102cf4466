// The ops port's gRPC health tells the truth: NOT_SERVING with no global configuration, after
// the configuration expired (a simulated clock), while the audit log cannot write (ENOSPC
// injected under RocksDB), and in maintenance mode; SERVING again once each reason is gone.
// The status report carries the same reasons.
#include <catch2/catch.hpp>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <rocksdb/env.h>

#include "absl/strings/match.h"
#include "common/identifiers.h"
#include "tests/audit/audit_test_util.h"
#include "tests/security_server/ss_test_util.h"

namespace darvoza::testing {
namespace {

constexpr char kHealthCheck[] = "/grpc.health.v1.Health/Check";
const std::string kServing("\x08\x01", 2);
const std::string kNotServing("\x08\x02", 2);

std::string HealthOf(const std::shared_ptr<grpc::Channel>& ops) {
  std::string response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!GenericUnary(ops, kHealthCheck, "", &response, &context).ok()) return "unreachable";
  return response;
}

// Whether the status report gives a reason starting with `key`.
bool HasReason(ss::Node& node, const std::string& key) {
  v1::StatusReport report = node.Status();
  for (const auto& reason : report.not_serving_reasons()) {
    if (absl::StartsWith(reason, key + ": ")) return true;
  }
  return false;
}

// A change the administrator makes: one audit record.
grpc::Status AddGroup(ss::Node& node, const ss::SsConfig& config, const std::string& code) {
  auto admin = AdminStub(node);
  v1::GroupRequest request;
  request.mutable_id()->set_group_code(code);
  request.set_description("health test");
  v1::SsEmpty empty;
  return admin->AddGroup(AdminContext(config.data_dir).get(), request, &empty);
}

TEST_CASE("Health: NOT_SERVING for each reason, SERVING once it is gone", "[ss][health]") {
  TempDir dir;
  SimulatedClock clock(absl::Now());
  TestRegistry::Options options;
  options.conf_validity = absl::Seconds(600);
  TestRegistry registry(dir.path(), &clock, options);
  REQUIRE(registry.registry().AddMember(ParseMemberId(kSsMember).value(), "Tax", "admin").ok());
  ss::SsConfig config = InitTestSecurityServer(dir.File("ss"), registry);
  RegisterAndApprove(config.data_dir, registry);
  auto fs = std::make_shared<audit::testing::FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);

  // No configuration: the registry went down before the SS ever fetched one.
  registry.Stop();
  auto started = ss::Node::StartForTest(config, &clock, env.get());
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  ss::Node& node = **started;
  auto ops = grpc::CreateChannel(node.addresses().ops, grpc::InsecureChannelCredentials());
  CHECK(HealthOf(ops) == kNotServing);
  CHECK(HasReason(node, "no_configuration"));
  CHECK_FALSE(node.Status().serving());

  registry.Start();
  REQUIRE(WaitFor([&] { return HealthOf(ops) == kServing; }));
  CHECK(node.NotServingReasons().empty());
  CHECK(node.Status().serving());

  // Expired: the registry is gone and the clock passes the configuration's expiry.
  registry.Stop();
  clock.Advance(absl::Seconds(601));
  REQUIRE(WaitFor([&] { return HealthOf(ops) == kNotServing; }));
  CHECK(HasReason(node, "configuration_expired"));
  CHECK_FALSE(HasReason(node, "no_configuration"));
  registry.Start();  // re-signs with the moved clock; the SS takes the new configuration
  REQUIRE(WaitFor([&] { return HealthOf(ops) == kServing; }));

  // The audit log cannot write: the disk is full.
  fs->set_no_space(true);
  CHECK_FALSE(AddGroup(node, config, "g1").ok());
  REQUIRE(WaitFor([&] { return HealthOf(ops) == kNotServing; }));
  CHECK(HasReason(node, "audit_log_cannot_write"));
  fs->set_no_space(false);
  // The next write that succeeds ends it.
  REQUIRE(WaitFor([&] { return AddGroup(node, config, "g2").ok(); }));
  REQUIRE(WaitFor([&] { return HealthOf(ops) == kServing; }));
  CHECK_FALSE(HasReason(node, "audit_log_cannot_write"));

  // Maintenance: at once, and back.
  node.SetMaintenance(true);
  CHECK(HealthOf(ops) == kNotServing);
  CHECK(HasReason(node, "maintenance"));
  CHECK(node.NotServingReasons().size() == 1);
  node.SetMaintenance(false);
  CHECK(HealthOf(ops) == kServing);
  node.Shutdown();
}

}  // namespace
}  // namespace darvoza::testing
