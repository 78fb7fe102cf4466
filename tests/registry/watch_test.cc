// Watch in-process: new serials (changes and re-signing) reach watchers, and shutdown ends
// open streams with UNAVAILABLE instead of hanging. Ops metrics.
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/support/sync_stream.h>
#include <grpcpp/support/byte_buffer.h>

#include <catch2/catch.hpp>

#include "registry/client.h"
#include "registry/registry.h"
#include "tests/registry/registry_test_util.h"

namespace darvoza::testing {

TEST_CASE("Watch: sends the current configuration, then each new serial, and ends on shutdown",
          "[registry][watch]") {
  RegistryHarness h;
  auto stub = h.ConfStub();
  const uint64_t serial = Decode(h.GetConf()).serial();

  grpc::ClientContext context;
  v1::WatchConfRequest request;
  request.set_known_serial(0);
  auto reader = stub->Watch(&context, request);
  v1::SignedGlobalConf conf;
  REQUIRE(reader->Read(&conf));
  CHECK(Decode(conf).serial() == serial);

  h.AddMember(kMember);
  REQUIRE(reader->Read(&conf));
  CHECK(Decode(conf).serial() == serial + 1);

  // Re-signing without a change is a new serial too.
  h.clock().Advance(absl::Seconds(301));
  REQUIRE(h.server().registry()->RefreshConfIfDue().value());
  REQUIRE(reader->Read(&conf));
  CHECK(Decode(conf).serial() == serial + 2);

  // A watcher that already knows the latest serial gets nothing until the next one.
  grpc::ClientContext context2;
  request.set_known_serial(serial + 2);
  auto reader2 = stub->Watch(&context2, request);
  h.AddMember("UZ/COM/1");
  REQUIRE(reader2->Read(&conf));
  CHECK(Decode(conf).serial() == serial + 3);
  REQUIRE(reader->Read(&conf));
  CHECK(Decode(conf).serial() == serial + 3);

  // Shutdown finishes open streams promptly.
  const auto started = std::chrono::steady_clock::now();
  h.Stop();
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
  CHECK_FALSE(reader->Read(&conf));
  grpc::Status status = reader->Finish();
  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_FALSE(reader2->Read(&conf));
  reader2->Finish();
}

TEST_CASE("Ops: metrics report the serial, expiry and counts", "[registry][ops]") {
  RegistryHarness h;
  h.AddMember(kMember);
  auto ops = v1::RegistryOps::NewStub(
      grpc::CreateChannel(h.server().addresses().ops_address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::MetricsText text;
  REQUIRE(ops->Metrics(&context, v1::MetricsRequest(), &text).ok());
  const uint64_t serial = Decode(h.GetConf()).serial();
  CHECK(text.text().find("darvoza_registry_conf_serial " + std::to_string(serial) + "\n") != std::string::npos);
  CHECK(text.text().find("darvoza_registry_conf_expiry_seconds 600\n") != std::string::npos);
  CHECK(text.text().find("darvoza_registry_members 1\n") != std::string::npos);
  // The ops port carries no registry service.
  grpc::ClientContext context2;
  v1::SignedGlobalConf conf;
  auto conf_stub = v1::GlobalConfService::NewStub(
      grpc::CreateChannel(h.server().addresses().ops_address, grpc::InsecureChannelCredentials()));
  CHECK(conf_stub->Get(&context2, v1::GetConfRequest(), &conf).error_code() == grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace darvoza::testing

namespace darvoza::testing {
namespace {

// grpc.health.v1.Health/Check with an empty request, as raw bytes (no health proto needed).
grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel, std::string* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  grpc::ByteBuffer reply;
  grpc::internal::RpcMethod method("/grpc.health.v1.Health/Check", grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel.get(), method, &context, request, &reply);
  if (status.ok()) {
    std::vector<grpc::Slice> slices;
    (void)reply.Dump(&slices);
    response->clear();
    for (const auto& s : slices) response->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return status;
}

}  // namespace

TEST_CASE("Ops: health is served on the ops port only", "[registry][ops]") {
  RegistryHarness h;
  std::string response;
  grpc::Status ops = HealthCheck(
      grpc::CreateChannel(h.server().addresses().ops_address, grpc::InsecureChannelCredentials()), &response);
  INFO(ops.error_message());
  REQUIRE(ops.ok());
  CHECK(response == std::string("\x08\x01", 2));  // status: SERVING
  CHECK(HealthCheck(registry::MakeRegistryChannel(h.anchor(), h.server().addresses().public_address), &response)
            .error_code() == grpc::StatusCode::UNIMPLEMENTED);
  CHECK(HealthCheck(registry::MakeAdminChannel(h.server().addresses().admin_address), &response).error_code() ==
        grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace darvoza::testing

namespace darvoza::testing {

TEST_CASE("Admin: server reflection is on the admin port only", "[registry][ops]") {
  RegistryHarness h;
  auto list_services = [](const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::internal::RpcMethod method("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                     grpc::internal::RpcMethod::BIDI_STREAMING);
    std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
        grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
            channel.get(), method, &context));
    const std::string list_request("\x3a\x00", 2);  // ServerReflectionRequest{list_services: ""}
    grpc::Slice slice(list_request);
    grpc::ByteBuffer request(&slice, 1);
    stream->Write(request);
    stream->WritesDone();
    grpc::ByteBuffer reply;
    std::string text;
    while (stream->Read(&reply)) {
      std::vector<grpc::Slice> slices;
      (void)reply.Dump(&slices);
      for (const auto& s : slices) text.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    grpc::Status status = stream->Finish();
    return std::make_pair(status.error_code(), text);
  };
  auto admin = list_services(registry::MakeAdminChannel(h.server().addresses().admin_address));
  CHECK(admin.first == grpc::StatusCode::OK);
  CHECK(admin.second.find("darvoza.v1.RegistryAdmin") != std::string::npos);
  auto pub = list_services(registry::MakeRegistryChannel(h.anchor(), h.server().addresses().public_address));
  CHECK(pub.first == grpc::StatusCode::UNIMPLEMENTED);
  auto ops = list_services(
      grpc::CreateChannel(h.server().addresses().ops_address, grpc::InsecureChannelCredentials()));
  CHECK(ops.first == grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace darvoza::testing
