// darvoza-example-civil-registry: an example agency system that speaks plain HTTP (a civil
// registry look-up), served behind a security server as a REST service. For the demo and
// docs/integrator.md. Prints its bound address, serves until SIGTERM/SIGINT.
//
//   GET /persons/{id}   200 {"id": "...", "name": "...", "born": "..."}, or 404
//   POST /echo          200 with the request's body (tools/bench.sh: bodies each way)
//   anything else       404
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/http_server.h"
#include "common/version.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

// A few made-up people; ids are personal identification numbers.
const std::map<std::string, std::pair<std::string, std::string>>& People() {
  static const auto* people = new std::map<std::string, std::pair<std::string, std::string>>{
      {"30101900123456", {"Aziz Karimov", "1990-01-01"}},
      {"40512850654321", {"Dilnoza Rahimova", "1985-12-05"}}};
  return *people;
}

darvoza::HttpResponse Answer(const darvoza::HttpRequest& request) {
  absl::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  if (request.method == "GET" && absl::ConsumePrefix(&path, "/persons/")) {
    auto it = People().find(std::string(path));
    if (it != People().end()) {
      return {200,
              {{"Content-Type", "application/json; charset=utf-8"},
               {"Cache-Control", "no-store"}},
              absl::StrCat("{\"id\":\"", it->first, "\",\"name\":\"", it->second.first,
                           "\",\"born\":\"", it->second.second, "\"}")};
    }
  }
  if (request.method == "POST" && path == "/echo") {
    return {200, {{"Content-Type", "application/octet-stream"}}, request.body};
  }
  return {404, {{"Content-Type", "application/json"}}, "{\"error\":\"not found\"}"};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"darvoza-example-civil-registry: an example agency system on plain HTTP"};
  std::string listen = "127.0.0.1:0";
  std::string address_file;
  app.add_option("--listen", listen, "host:port to serve on (port 0: any free port)");
  app.add_option("--address-file", address_file, "Write the bound host:port to this file");
  app.set_version_flag("--version", std::string("darvoza-example-civil-registry ") + darvoza::kDarvozaVersion);
  CLI11_PARSE(app, argc, argv);

  auto server = darvoza::HttpServer::Start(
      listen, darvoza::HttpServerOptions(),
      [](darvoza::HttpRequest request, darvoza::HttpReply reply) { reply(Answer(request)); },
      [](const absl::Status& why) {
        return darvoza::HttpResponse{400, {}, std::string(why.message())};
      });
  if (!server.ok()) {
    std::cerr << "error: " << server.status().message() << "\n";
    return 1;
  }
  const std::string bound =
      absl::StrCat(listen.substr(0, listen.rfind(':')), ":", (*server)->port());
  if (!address_file.empty()) {
    std::ofstream(address_file + ".tmp") << bound << "\n";
    std::rename((address_file + ".tmp").c_str(), address_file.c_str());
  }
  std::cout << "example civil registry serving on " << bound << std::endl;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  while (!g_stop) {
    struct timespec ts {0, 100 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  (*server)->Shutdown();
  return 0;
}
