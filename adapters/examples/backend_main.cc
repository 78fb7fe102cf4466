// darvoza-example-backend: the example agency backend (a tax registry) as a process, for the
// demo. Prints its bound address on stdout, serves until SIGTERM/SIGINT.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "adapters/examples/tax_registry_service.h"
#include "common/version.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"darvoza-example-backend: an example agency service (TaxRegistry) on plaintext gRPC"};
  std::string listen = "127.0.0.1:0";
  std::string name = "tax-registry";
  std::string address_file;
  app.add_option("--listen", listen, "host:port to serve on (port 0: any free port)");
  app.add_option("--name", name, "Name echoed in answers (answered_by)");
  app.add_option("--address-file", address_file, "Write the bound host:port to this file");
  app.set_version_flag("--version", std::string("darvoza-example-backend ") + darvoza::kDarvozaVersion);
  CLI11_PARSE(app, argc, argv);

  darvoza::examples::TaxRegistryService service(name);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(32 << 20);  // large requests pass through Darvoza too
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "error: cannot listen on " << listen << "\n";
    return 1;
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  const std::string bound = host + ":" + std::to_string(port);
  if (!address_file.empty()) {
    std::ofstream(address_file + ".tmp") << bound << "\n";
    std::rename((address_file + ".tmp").c_str(), address_file.c_str());
  }
  std::cout << "example backend " << name << " serving on " << bound << std::endl;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  while (!g_stop) {
    struct timespec ts {0, 100 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  std::cout << "example backend " << name << " answered " << service.hits() << " calls" << std::endl;
  return 0;
}
