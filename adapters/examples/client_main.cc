// darvoza-example-client: an agency information system calling TaxRegistry.GetTaxDebt of
// another agency through its own security server, exactly as an integrator's client would:
// the ordinary generated stub, pointed at the SS, with x-road-client and x-road-service.
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "common/version.h"
#include "proto/example_agency.grpc.pb.h"

int main(int argc, char** argv) {
  CLI::App app{
      "darvoza-example-client: call TaxRegistry.GetTaxDebt through a Darvoza security server"};
  std::string ss = "127.0.0.1:5580";
  std::string client;
  std::string service;
  std::string person = "31234567890123";
  std::string message_id;
  int count = 1;
  int concurrency = 1;
  bool quiet = false;
  app.add_option("--ss", ss, "The client port of your own security server (plaintext)");
  app.add_option("--client", client, "Your subsystem, e.g. UZ/GOV/70000002/benefits")->required();
  app.add_option("--service", service,
                 "The provider subsystem, e.g. UZ/GOV/70000001/tax-registry")->required();
  app.add_option("--person", person, "Person id to ask about");
  app.add_option("--id", message_id, "x-road-id to send (default: the SS makes one)");
  app.add_option("--count", count, "Calls to make in all");
  app.add_option("--concurrency", concurrency, "Calls in flight at once");
  app.add_flag("--quiet", quiet, "Print only the summary");
  app.set_version_flag("--version", std::string("darvoza-example-client ") + darvoza::kDarvozaVersion);
  CLI11_PARSE(app, argc, argv);

  auto channel = grpc::CreateChannel(ss, grpc::InsecureChannelCredentials());
  auto stub = darvoza::examples::v1::TaxRegistry::NewStub(channel);
  std::atomic<int> next{0}, ok{0}, failed{0};
  std::mutex print_mu;
  auto worker = [&] {
    while (next.fetch_add(1) < count) {
      grpc::ClientContext ctx;
      ctx.AddMetadata("x-road-client", client);
      ctx.AddMetadata("x-road-service", service);
      if (!message_id.empty()) ctx.AddMetadata("x-road-id", message_id);
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      darvoza::examples::v1::TaxDebtRequest request;
      request.set_person_id(person);
      darvoza::examples::v1::TaxDebtReply reply;
      grpc::Status status = stub->GetTaxDebt(&ctx, request, &reply);
      std::lock_guard<std::mutex> lock(print_mu);
      if (status.ok()) {
        ++ok;
        if (!quiet) {
          auto id = ctx.GetServerInitialMetadata().find("x-road-id");
          std::cout << "answer: person " << reply.person_id() << " owes " << reply.debt_tiyin()
                    << " tiyin (as of " << reply.as_of() << ", answered by "
                    << reply.answered_by() << ")"
                    << (id != ctx.GetServerInitialMetadata().end()
                            ? " x-road-id=" + std::string(id->second.data(), id->second.size())
                            : "")
                    << "\n";
        }
      } else {
        ++failed;
        auto fault = ctx.GetServerTrailingMetadata().find("x-road-error");
        std::cout << "refused: " << status.error_code() << " "
                  << (fault != ctx.GetServerTrailingMetadata().end()
                          ? std::string(fault->second.data(), fault->second.size())
                          : std::string("(no fault code)"))
                  << ": " << status.error_message() << "\n";
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < concurrency; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (count > 1 || quiet) std::cout << ok << " answered, " << failed << " refused\n";
  return failed == 0 ? 0 : 1;
}
